"""The load generator's WebSocket client: handshake and a scanner that keeps only what
it needs of each message, fed in one lump and one byte at a time."""

from __future__ import annotations

import struct

import pytest

from bench.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    WireError,
    WsMessage,
    WsScanner,
    check_ws_upgrade,
    client_frame,
    parse_response_head,
    ws_accept,
    ws_request,
)
from strom.delivery.ws import frame_message
from tests.helpers.muxed import Muxed


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server frame, written independently of Strom's framing."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 1 << 16:
        return bytes((b0, 126)) + struct.pack(">H", n) + payload
    return bytes((b0, 127)) + struct.pack(">Q", n) + payload


def scan(data: bytes, *, bytewise: bool, keep: int = 256) -> list[WsMessage]:
    scanner = WsScanner(keep=keep)
    if not bytewise:
        return scanner.feed(memoryview(data))
    out: list[WsMessage] = []
    for i in range(len(data)):
        out += scanner.feed(data[i : i + 1])
    return out


def test_accept_key_of_rfc_6455_example() -> None:
    assert ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    request = ws_request("127.0.0.1", 8080, "/live/a/ws").decode()
    assert request.startswith("GET /live/a/ws HTTP/1.1\r\n")
    assert "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" in request
    assert request.endswith("\r\n\r\n")


def test_upgrade_response_is_checked() -> None:
    head = parse_response_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    )
    assert head.status == 101
    assert head.header("upgrade") == "websocket"
    check_ws_upgrade(head)
    with pytest.raises(WireError):
        check_ws_upgrade(parse_response_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0"))
    with pytest.raises(WireError):
        check_ws_upgrade(parse_response_head(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: x"))
    with pytest.raises(WireError):
        parse_response_head(b"SSH-2.0-OpenSSH\r\n")


@pytest.mark.parametrize("bytewise", [False, True])
def test_stream_of_strom_messages(muxed: Muxed, bytewise: bool) -> None:
    """What Strom sends a viewer: text init, the init segment, chunks, text end."""
    chunks = muxed.chunks[:30]
    stream = (
        frame_message(OP_TEXT, b'{"type":"init","mime":"video/mp4"}')
        + frame_message(OP_BINARY, muxed.init)
        + b"".join(frame_message(OP_BINARY, c) for c in chunks)
        + frame_message(OP_TEXT, b'{"type":"end"}')
    )
    msgs = scan(stream, bytewise=bytewise)
    assert [m.opcode for m in msgs] == [OP_TEXT, OP_BINARY] + [OP_BINARY] * 30 + [OP_TEXT]
    assert msgs[0].head == b'{"type":"init","mime":"video/mp4"}'
    assert msgs[1].head == muxed.init  # the init segment is kept whole
    for msg, chunk in zip(msgs[2:-1], chunks, strict=True):
        assert msg.length == len(chunk)
        assert msg.head == chunk[: min(256, len(chunk))]  # only the start is kept
    assert msgs[-1].head == b'{"type":"end"}'


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize("size", [0, 7, 8, 125, 126, 300, 65535, 65536, 200_000])
def test_every_length_encoding(size: int, bytewise: bool) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    stream = frame(OP_BINARY, payload) + frame(OP_TEXT, b"after")
    msgs = scan(stream, bytewise=bytewise, keep=100)
    assert [(m.opcode, m.length) for m in msgs] == [(OP_BINARY, size), (OP_TEXT, 5)]
    assert msgs[0].head == payload[:100]
    assert msgs[1].head == b"after"


@pytest.mark.parametrize("bytewise", [False, True])
def test_fragments_and_a_ping_in_between(bytewise: bool) -> None:
    stream = (
        frame(OP_BINARY, b"A" * 50, fin=False)
        + frame(OP_PING, b"hi")
        + frame(OP_CONTINUATION, b"B" * 500, fin=False)
        + frame(OP_CONTINUATION, b"C" * 10)
        + frame(OP_CLOSE, struct.pack(">H", 1000) + b"bye")
    )
    msgs = scan(stream, bytewise=bytewise, keep=100)
    assert [(m.opcode, m.length) for m in msgs] == [(OP_PING, 2), (OP_BINARY, 560), (OP_CLOSE, 5)]
    assert msgs[0].head == b"hi"
    assert msgs[1].head.startswith(b"A" * 50 + b"B")
    assert msgs[2].head == b"\x03\xe8bye"


def test_peer_errors() -> None:
    with pytest.raises(WireError):
        WsScanner().feed(bytes((0x82, 0x85)) + bytes(4) + b"hello")  # masked by a server
    with pytest.raises(WireError):
        WsScanner().feed(bytes((0xC2, 0)))  # RSV1 without an extension
    with pytest.raises(WireError):
        WsScanner().feed(frame(OP_CONTINUATION, b"x"))  # nothing to continue


def test_client_frames_are_masked() -> None:
    data = client_frame(OP_CLOSE, struct.pack(">H", 1000))
    assert data[0] == 0x88
    assert data[1] == 0x80 | 2  # mask bit and length
    assert data[6:] == b"\x03\xe8"  # with the all-zero key, the payload as is
