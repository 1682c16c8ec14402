"""The RTMP handshake, plain (spec 1.0 section 5.2) and with the Flash Player 9 digest.

Plain: C0/S0 is the version byte 3; C1/S1 are 1536 bytes (time, zero, random); C2/S2
echo the peer's C1/S1.

Digest ("FP9", what ffmpeg, librtmp/OBS, GStreamer and most mobile SDKs send): C1 has a
non-zero version in bytes 4..7 and a 32-byte HMAC-SHA256 digest hidden in it. Its
position depends on a scheme: scheme 0 takes the offset from bytes 8..11, scheme 1 from
bytes 772..775 (each: sum of the 4 bytes mod 728, plus 12 or 776). The digest covers the
other 1504 bytes, keyed by the first 30 bytes of the Flash Player key. The server answers
with an S1 carrying its own digest at the same scheme (keyed by the first 36 bytes of the
Flash Media Server key) and an S2 whose last 32 bytes are
``HMAC(HMAC(full FMS key, C1 digest), S2[:1504])``. Some ffmpeg versions check both when
the server's S1 advertises a version >= 3, so we do it properly.

Both sides are sans-IO: ``receive_data(bytes)`` returns the bytes that follow the
handshake once it is complete; ``data_to_send()`` returns what to write.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Final

from strom.errors import RtmpError

RTMP_VERSION: Final = 3
HANDSHAKE_SIZE: Final = 1536
DIGEST_SIZE: Final = 32

_KEY_TAIL: Final = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
#: Flash Player key: the first 30 bytes sign C1, all 62 sign C2.
GENUINE_FP_KEY: Final = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
#: Flash Media Server key: the first 36 bytes sign S1, all 68 sign S2.
GENUINE_FMS_KEY: Final = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
_FP_KEY_SHORT: Final = GENUINE_FP_KEY[:30]
_FMS_KEY_SHORT: Final = GENUINE_FMS_KEY[:36]

#: The version we put in S1 bytes 4..7. Its first byte must be >= 3 for digest-aware
#: clients (ffmpeg) to treat us as an FP9 server.
SERVER_VERSION: Final = bytes((5, 0, 3, 1))
#: The version a Flash Player 9+ client puts in C1 bytes 4..7 (what ffmpeg sends).
CLIENT_VERSION: Final = bytes((9, 0, 124, 2))

RandomBytes = Callable[[int], bytes]


def digest_offset(packet: bytes, scheme: int) -> int:
    """Where the 32-byte digest starts in a 1536-byte C1/S1 for ``scheme`` 0 or 1."""
    base = 8 if scheme == 0 else 772
    return sum(packet[base : base + 4]) % 728 + base + 4


def compute_digest(packet: bytes, offset: int, key: bytes) -> bytes:
    """HMAC-SHA256 of ``packet`` without the 32 bytes at ``offset``."""
    message = packet[:offset] + packet[offset + DIGEST_SIZE :]
    return hmac.new(key, message, hashlib.sha256).digest()


def find_digest(packet: bytes, key: bytes) -> tuple[int, bytes] | None:
    """The (scheme, digest) of a valid digest in ``packet`` signed with ``key``, if any."""
    for scheme in (0, 1):
        offset = digest_offset(packet, scheme)
        expected = compute_digest(packet, offset, key)
        if hmac.compare_digest(expected, packet[offset : offset + DIGEST_SIZE]):
            return scheme, expected
    return None


def embed_digest(packet: bytes, scheme: int, key: bytes) -> tuple[bytes, bytes]:
    """``packet`` with its digest written in at ``scheme``; returns (packet, digest)."""
    offset = digest_offset(packet, scheme)
    digest = compute_digest(packet, offset, key)
    return packet[:offset] + digest + packet[offset + DIGEST_SIZE :], digest


def sign_response(body: bytes, peer_digest: bytes, full_key: bytes) -> bytes:
    """S2/C2: 1504 bytes of ``body`` followed by their signature keyed by the peer digest."""
    key = hmac.new(full_key, peer_digest, hashlib.sha256).digest()
    body = body[: HANDSHAKE_SIZE - DIGEST_SIZE]
    return body + hmac.new(key, body, hashlib.sha256).digest()


def response_is_signed(packet: bytes, own_digest: bytes, full_key: bytes) -> bool:
    """Whether S2/C2 ``packet`` carries the signature for ``own_digest`` (our C1/S1 digest)."""
    return hmac.compare_digest(sign_response(packet, own_digest, full_key), packet)


def _check_version(byte: int) -> None:
    if byte == RTMP_VERSION:
        return
    if byte in (6, 8, 9):
        raise RtmpError(f"encrypted RTMP (RTMPE, version byte {byte}) is not supported")
    hint = " (looks like an HTTP request)" if chr(byte) in "GPHOCDT" else ""
    raise RtmpError(f"not an RTMP handshake: version byte {byte:#04x}{hint}")


class _Phase(enum.Enum):
    VERSION = "version"
    PACKET1 = "C1/S1"
    PACKET2 = "C2/S2"
    DONE = "done"


class ServerHandshake:
    """Server side: reads C0+C1, answers S0+S1+S2 at once, then reads C2.

    C2 is read but not compared to S1: real servers tolerate a mismatch, and it lets a
    capture of a client be replayed against a fresh session.
    """

    def __init__(self, random_bytes: RandomBytes = os.urandom) -> None:
        self._random = random_bytes
        self._phase = _Phase.VERSION
        self._buffer = bytearray()
        self._out = bytearray()
        #: The client's digest scheme (0 or 1), or None for a plain handshake.
        self.digest_scheme: int | None = None

    @property
    def complete(self) -> bool:
        return self._phase is _Phase.DONE

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> bytes:
        """Consume handshake bytes; returns the bytes after C2 once it is complete."""
        if self._phase is _Phase.DONE:
            return data
        self._buffer += data
        if self._phase is _Phase.VERSION and self._buffer:
            _check_version(self._buffer[0])
            del self._buffer[:1]
            self._phase = _Phase.PACKET1
        if self._phase is _Phase.PACKET1 and len(self._buffer) >= HANDSHAKE_SIZE:
            c1 = bytes(self._buffer[:HANDSHAKE_SIZE])
            del self._buffer[:HANDSHAKE_SIZE]
            self._out += bytes((RTMP_VERSION,)) + self._answer(c1)
            self._phase = _Phase.PACKET2
        if self._phase is _Phase.PACKET2 and len(self._buffer) >= HANDSHAKE_SIZE:
            del self._buffer[:HANDSHAKE_SIZE]  # C2: not checked (see class docstring)
            self._phase = _Phase.DONE
            rest = bytes(self._buffer)
            self._buffer.clear()
            return rest
        return b""

    def _answer(self, c1: bytes) -> bytes:
        found = find_digest(c1, _FP_KEY_SHORT) if any(c1[4:8]) else None
        if found is None:
            # Plain handshake (spec 5.2.3): S1 = time, zero, random; S2 = echo of C1.
            return bytes(8) + self._random(HANDSHAKE_SIZE - 8) + c1
        self.digest_scheme, client_digest = found
        s1, _ = embed_digest(
            bytes(4) + SERVER_VERSION + self._random(HANDSHAKE_SIZE - 8),
            self.digest_scheme,
            _FMS_KEY_SHORT,
        )
        s2 = sign_response(self._random(HANDSHAKE_SIZE), client_digest, GENUINE_FMS_KEY)
        return s1 + s2


class ClientHandshake:
    """Client side: sends C0+C1 at once, reads S0+S1+S2, answers C2.

    ``digest=False`` (default) sends a plain C1 (time 0, zero version, random bytes) and
    echoes S1. ``digest=True`` sends an FP9 C1 (scheme 0) and verifies the server's S1
    digest and S2 signature when the server advertises a version.
    """

    def __init__(self, random_bytes: RandomBytes = os.urandom, *, digest: bool = False) -> None:
        self._random = random_bytes
        self._phase = _Phase.VERSION
        self._buffer = bytearray()
        if digest:
            c1 = bytes(4) + CLIENT_VERSION + random_bytes(HANDSHAKE_SIZE - 8)
            self._c1, self._c1_digest = embed_digest(c1, 0, _FP_KEY_SHORT)
        else:
            self._c1, self._c1_digest = bytes(8) + random_bytes(HANDSHAKE_SIZE - 8), b""
        self._out = bytearray(bytes((RTMP_VERSION,)) + self._c1)

    @property
    def complete(self) -> bool:
        return self._phase is _Phase.DONE

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> bytes:
        """Consume S0+S1+S2; returns the bytes after S2 once the handshake is complete."""
        if self._phase is _Phase.DONE:
            return data
        self._buffer += data
        if self._phase is _Phase.VERSION and self._buffer:
            _check_version(self._buffer[0])
            del self._buffer[:1]
            self._phase = _Phase.PACKET1
        if len(self._buffer) < 2 * HANDSHAKE_SIZE:
            return b""
        s1 = bytes(self._buffer[:HANDSHAKE_SIZE])
        s2 = bytes(self._buffer[HANDSHAKE_SIZE : 2 * HANDSHAKE_SIZE])
        rest = bytes(self._buffer[2 * HANDSHAKE_SIZE :])
        self._buffer.clear()
        self._out += self._respond(s1, s2)
        self._phase = _Phase.DONE
        return rest

    def _respond(self, s1: bytes, s2: bytes) -> bytes:
        if not self._c1_digest or not any(s1[4:8]):
            return s1  # plain: C2 echoes S1
        found = find_digest(s1, _FMS_KEY_SHORT)
        if found is None:
            raise RtmpError("server S1 carries no valid digest")
        if not response_is_signed(s2, self._c1_digest, GENUINE_FMS_KEY):
            raise RtmpError("server S2 signature does not match our C1 digest")
        return sign_response(self._random(HANDSHAKE_SIZE), found[1], GENUINE_FP_KEY)
