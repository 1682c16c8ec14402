from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable

import pytest

from strom.errors import RtmpError
from strom.media.rtmp.handshake import (
    CLIENT_VERSION,
    GENUINE_FMS_KEY,
    GENUINE_FP_KEY,
    HANDSHAKE_SIZE,
    ClientHandshake,
    ServerHandshake,
    digest_offset,
    embed_digest,
    find_digest,
)


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def digest_c1(scheme: int, seed: int = 1) -> tuple[bytes, bytes]:
    """A C1 as ffmpeg/librtmp build it, written out from the published algorithm."""
    body = bytes(4) + CLIENT_VERSION + random.Random(seed).randbytes(HANDSHAKE_SIZE - 8)
    offset = digest_offset(body, scheme)
    message = body[:offset] + body[offset + 32 :]
    digest = hmac.new(GENUINE_FP_KEY[:30], message, hashlib.sha256).digest()
    return body[:offset] + digest + body[offset + 32 :], digest


def test_key_constants() -> None:
    assert len(GENUINE_FP_KEY) == 62
    assert len(GENUINE_FMS_KEY) == 68
    assert GENUINE_FP_KEY.startswith(b"Genuine Adobe Flash Player 001")
    assert GENUINE_FMS_KEY[36:] == GENUINE_FP_KEY[30:]


def test_digest_offsets_follow_the_two_schemes() -> None:
    packet = bytearray(HANDSHAKE_SIZE)
    packet[8:12] = bytes((200, 200, 200, 200))  # 800 % 728 = 72
    packet[772:776] = bytes((1, 2, 3, 4))
    assert digest_offset(bytes(packet), 0) == 72 + 12
    assert digest_offset(bytes(packet), 1) == 10 + 776


def test_plain_handshake_echoes_c1() -> None:
    server = ServerHandshake(seeded(2))
    c1 = bytes(8) + random.Random(3).randbytes(HANDSHAKE_SIZE - 8)
    assert server.receive_data(b"\x03" + c1) == b""
    out = server.data_to_send()
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE
    assert out[0] == 3
    assert out[1 + HANDSHAKE_SIZE :] == c1  # S2 echoes C1 (spec 5.2.3)
    assert server.digest_scheme is None
    assert not server.complete
    assert server.receive_data(out[1 : 1 + HANDSHAKE_SIZE] + b"rest") == b"rest"
    assert server.complete


@pytest.mark.parametrize("scheme", [0, 1])
def test_digest_handshake_answers_verifiably(scheme: int) -> None:
    c1, c1_digest = digest_c1(scheme)
    server = ServerHandshake(seeded(4))
    server.receive_data(b"\x03" + c1)
    out = server.data_to_send()
    assert server.digest_scheme == scheme
    s1, s2 = out[1 : 1 + HANDSHAKE_SIZE], out[1 + HANDSHAKE_SIZE :]
    assert s1[4] >= 3  # advertises a version, so clients check the digests
    # Client-side checks, written out: S1 digest at the same scheme with the FMS key...
    offset = digest_offset(s1, scheme)
    expected = hmac.new(
        GENUINE_FMS_KEY[:36], s1[:offset] + s1[offset + 32 :], hashlib.sha256
    ).digest()
    assert s1[offset : offset + 32] == expected
    # ...and S2 signed with a key derived from our C1 digest.
    key = hmac.new(GENUINE_FMS_KEY, c1_digest, hashlib.sha256).digest()
    assert s2[-32:] == hmac.new(key, s2[:-32], hashlib.sha256).digest()


def test_digest_handshake_byte_at_a_time() -> None:
    c1, _ = digest_c1(0, seed=9)
    server = ServerHandshake(seeded(4))
    for byte in b"\x03" + c1:
        assert server.receive_data(bytes([byte])) == b""
    lump = ServerHandshake(seeded(4))
    lump.receive_data(b"\x03" + c1)
    assert server.data_to_send() == lump.data_to_send()


def test_c2_mismatch_is_tolerated() -> None:
    server = ServerHandshake()
    server.receive_data(b"\x03" + bytes(HANDSHAKE_SIZE))
    assert server.receive_data(b"\xaa" * HANDSHAKE_SIZE) == b""
    assert server.complete


@pytest.mark.parametrize("digest", [False, True])
def test_client_and_server_complete(digest: bool) -> None:
    client = ClientHandshake(seeded(5), digest=digest)
    server = ServerHandshake(seeded(6))
    server.receive_data(client.data_to_send())
    assert server.digest_scheme == (0 if digest else None)
    assert client.receive_data(server.data_to_send() + b"after") == b"after"
    assert client.complete
    c2 = client.data_to_send()
    assert len(c2) == HANDSHAKE_SIZE
    assert server.receive_data(c2) == b""
    assert server.complete


def test_digest_client_refuses_a_forged_s2() -> None:
    client = ClientHandshake(seeded(5), digest=True)
    server = ServerHandshake(seeded(6))
    server.receive_data(client.data_to_send())
    answer = bytearray(server.data_to_send())
    answer[-1] ^= 0xFF
    with pytest.raises(RtmpError, match="S2"):
        client.receive_data(bytes(answer))


def test_embed_and_find_digest_agree() -> None:
    packet = random.Random(7).randbytes(HANDSHAKE_SIZE)
    for scheme in (0, 1):
        signed, digest = embed_digest(packet, scheme, b"key")
        assert find_digest(signed, b"key") == (scheme, digest)
    assert find_digest(packet, b"key") is None


@pytest.mark.parametrize(
    ("first", "match"),
    [
        (b"GET / HTTP/1.1\r\n", "HTTP"),
        (b"\x06", "RTMPE"),
        (b"\x00", "version byte"),
        (b"\x16\x03\x01", "version byte"),  # a TLS ClientHello
    ],
)
def test_garbage_c0_is_refused_at_once(first: bytes, match: str) -> None:
    with pytest.raises(RtmpError, match=match):
        ServerHandshake().receive_data(first)
