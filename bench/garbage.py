"""Hostile and broken clients for the soak: what an open port on the internet gets.

Each client connects, misbehaves in one way, then reads whatever the server answers until
it closes the connection or the client's own time is up (never longer than
``HOLD_MAX``), and returns a short outcome for the report ("closed by server", "held
10 s", "HTTP 400"...). None of them expects a particular answer: the soak's question is
whether the server stays healthy, answers clearly and gives every resource back.

The kinds (:data:`KINDS`):

- RTMP: random bytes; a handshake cut short (C0 and part of C1, then silence); a
  complete handshake followed by random chunk-stream bytes.
- HTTP: random bytes; a request whose head never ends (held open); malformed requests
  (bad method, NUL in the path, a 64 KiB header, a bad Content-Length, bad chunking).
- WebSocket (chat, media viewer, browser ingest): a frame announcing 64 MiB; frames that
  break RFC 6455 (unmasked, reserved bits and opcodes, a fragmented ping, bad UTF-8) and
  text that is not the protocol's JSON.
- Socket.IO (``/socket.io/``): Engine.IO over WebSocket with packets that are not
  Socket.IO (cut JSON, wrong types, a binary placeholder without its attachment...); a
  long-polling session opened, fed garbage and abandoned (the server drops it after its
  ping timeout).
- Push ingest: random bytes as a PUT body (a real stream key of a channel kept for this),
  a browser ingest socket whose start message is garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.wire import WS_KEY, parse_response_head, ws_request
from strom.media.rtmp.handshake import HANDSHAKE_SIZE, ClientHandshake

#: no garbage client stays connected longer than this (seconds)
HOLD_MAX = 12.0
CONNECT_TIMEOUT = 5.0
_READ = 65536


@dataclass(frozen=True)
class Target:
    """Where the garbage goes: the server's ports, a live channel to aim at, and the
    stream key of a channel kept for broken pushes (its live state is not the soak's)."""

    host: str
    http_port: int
    rtmp_port: int
    channel: str
    junk_key: str


Client = Callable[[Target, random.Random], Awaitable[str]]


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)


async def _drain_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: float
) -> tuple[str, bytes]:
    """Read until the server closes or ``hold`` seconds pass; the outcome and the first
    bytes the server sent."""
    first = b""
    deadline = time.monotonic() + min(hold, HOLD_MAX)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"held {hold:.0f} s", first
            data = await asyncio.wait_for(reader.read(_READ), left)
            if not data:
                return "closed by server", first
            if len(first) < 4096:
                first += data[: 4096 - len(first)]
    except TimeoutError:
        return f"held {hold:.0f} s", first
    except (ConnectionError, OSError):
        return "reset by server", first
    finally:
        writer.transport.abort()


def _ws_outcome(first: bytes, outcome: str) -> str:
    """The server's close frame among the first frames it sent (RFC 6455 5.5.1), if any:
    a server that closes waits for the client's close frame before hanging up, which a
    garbage client never sends."""
    pos = 0
    while pos + 2 <= len(first):
        opcode, n = first[pos] & 0x0F, first[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n, pos = int.from_bytes(first[pos : pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(first[pos : pos + 8], "big"), pos + 8
        if opcode == 0x8:
            code = int.from_bytes(first[pos : pos + 2], "big") if n >= 2 else 1005
            return f"ws close {code}"
        pos += n
    return outcome


def _http_status(first: bytes, outcome: str) -> str:
    if first.startswith(b"HTTP/1."):
        end = first.find(b"\r\n")
        with contextlib.suppress(ValueError, IndexError):
            return f"HTTP {int(first[9:12])}" if end > 0 else outcome
    return outcome


# -- RTMP --------------------------------------------------------------------------------


async def rtmp_random(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.rtmp_port)
    writer.write(rng.randbytes(rng.randint(1, 64 * 1024)))
    outcome, _ = await _drain_until_closed(reader, writer, rng.uniform(1, HOLD_MAX))
    return outcome


async def rtmp_half_handshake(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.rtmp_port)
    writer.write(b"\x03" + rng.randbytes(rng.randint(0, HANDSHAKE_SIZE - 1)))
    outcome, _ = await _drain_until_closed(reader, writer, HOLD_MAX)
    return outcome


async def rtmp_bad_chunks(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.rtmp_port)
    hs = ClientHandshake()
    writer.write(hs.data_to_send())
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            while not hs.complete:
                data = await reader.read(_READ)
                if not data:
                    writer.transport.abort()
                    return "closed in handshake"
                hs.receive_data(data)
                writer.write(hs.data_to_send())
    except (TimeoutError, ConnectionError, OSError, ValueError) as exc:
        writer.transport.abort()
        return f"handshake: {type(exc).__name__}"
    writer.write(rng.randbytes(rng.randint(1, 32 * 1024)))
    outcome, _ = await _drain_until_closed(reader, writer, rng.uniform(1, HOLD_MAX))
    return outcome


# -- HTTP --------------------------------------------------------------------------------


async def http_random(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.http_port)
    writer.write(rng.randbytes(rng.randint(1, 16 * 1024)))
    outcome, first = await _drain_until_closed(reader, writer, rng.uniform(1, HOLD_MAX))
    return _http_status(first, outcome)


async def http_endless_head(t: Target, rng: random.Random) -> str:
    """A request head that never ends: a line now and then, then silence."""
    reader, writer = await _open(t.host, t.http_port)
    writer.write(f"GET /{t.channel} HTTP/1.1\r\nHost: {t.host}\r\n".encode())
    for _ in range(rng.randint(0, 3)):
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        if writer.is_closing():
            break
        writer.write(b"X-Slow: " + rng.randbytes(8).hex().encode() + b"\r\n")
    outcome, first = await _drain_until_closed(reader, writer, HOLD_MAX)
    return _http_status(first, outcome)


def _bad_requests(t: Target, rng: random.Random) -> list[bytes]:
    host = f"Host: {t.host}:{t.http_port}\r\n".encode()
    return [
        b"BREW /coffee HTCPCP/1.0\r\n" + host + b"\r\n",
        b"GET /live/\x00\xff../../etc/passwd HTTP/1.1\r\n" + host + b"\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n",
        b"POST /login HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n",
        b"POST /login HTTP/1.1\r\n" + host + b"Content-Length: 10\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + rng.randbytes(64),
        b"GET /api/v1/channels/" + b"%" * 300 + b" HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /live/" + t.channel.encode() + b"/ws HTTP/1.1\r\n" + host
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\n\r\n",
        b"GET /socket.io/?EIO=99&transport=carrier-pigeon HTTP/1.1\r\n" + host + b"\r\n",
    ]  # fmt: skip


async def http_malformed(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.http_port)
    writer.write(rng.choice(_bad_requests(t, rng)))
    outcome, first = await _drain_until_closed(reader, writer, 5.0)
    return _http_status(first, outcome)


# -- WebSocket ---------------------------------------------------------------------------


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """A client frame (RFC 6455 5.2), right or wrong as asked; ``length`` overrides the
    announced payload length (the payload sent stays ``payload``)."""
    n = len(payload) if length is None else length
    head = bytes(((0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F,))
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes((mask_bit | n,))
    elif n < 1 << 16:
        head += bytes((mask_bit | 126,)) + struct.pack(">H", n)
    else:
        head += bytes((mask_bit | 127,)) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def _upgrade(t: Target, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """Open a WebSocket (or try): the reader, writer and the answer's status."""
    reader, writer = await _open(t.host, t.http_port)
    writer.write(ws_request(t.host, t.http_port, path, WS_KEY))
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        writer.transport.abort()
        return reader, writer, 0
    return reader, writer, parse_response_head(raw[:-4]).status


def _ws_paths(t: Target) -> list[str]:
    return [f"/chat/{t.channel}/ws", f"/live/{t.channel}/ws", "/ingest/ws"]


async def ws_oversized(t: Target, rng: random.Random) -> str:
    """A frame announcing 64 MiB (some of it sent), or a real 256 KiB one."""
    reader, writer, status = await _upgrade(t, rng.choice(_ws_paths(t)))
    if status != 101:
        writer.transport.abort()
        return f"upgrade {status}"
    if rng.random() < 0.5:
        writer.write(frame(0x1, rng.randbytes(64 * 1024), length=64 << 20))
    else:
        writer.write(frame(0x2, rng.randbytes(256 * 1024)))
    outcome, first = await _drain_until_closed(reader, writer, 5.0)
    return _ws_outcome(first, outcome)


def _bad_frames(rng: random.Random) -> list[bytes]:
    return [
        frame(0x1, b'{"type":"send","text":"unmasked"}', masked=False),
        frame(0x1, b'{"type":"send"}', rsv=5),
        frame(0x3, b"reserved opcode"),
        frame(0x9, b"fragmented ping", fin=False),
        frame(0x1, b"\xff\xfe not utf-8 \xc3"),
        frame(0x1, b'{"type":'),
        frame(0x1, b'{"type":"send","text":' + b"1" * 50 + b"}"),
        frame(0x1, b'[1,2,{"type":"like"}]'),
        frame(0x1, b'{"type":"no-such-command","nonce":' + b"9" * 400 + b"}"),
        frame(0x2, rng.randbytes(rng.randint(1, 4000))),
        frame(0x8, b"\x03\xe8" + b"x" * 200),  # a close frame over 125 bytes
        frame(0x0, b"continuation of nothing"),
    ]


async def ws_bad_frames(t: Target, rng: random.Random) -> str:
    reader, writer, status = await _upgrade(t, rng.choice(_ws_paths(t)))
    if status != 101:
        writer.transport.abort()
        return f"upgrade {status}"
    for data in rng.sample(_bad_frames(rng), rng.randint(1, 3)):
        writer.write(data)
    outcome, first = await _drain_until_closed(reader, writer, 5.0)
    return _ws_outcome(first, outcome)


# -- Socket.IO ---------------------------------------------------------------------------


def _bad_socketio_packets(t: Target, rng: random.Random) -> list[bytes]:
    room = t.channel.encode()
    return [
        b'42["comment"',
        b"42[1,2,3]",
        b"4",
        b"4Z",
        b"9999",
        b'42["join_room",{"roomKey":{"nested":[1,2,3]}}]',
        b'42["comment",{"roomKey":"' + room + b'","text":null}]',
        b'42["comment",{"roomKey":"' + room + b'","text":' + b"[" * 200 + b"]" * 200 + b"}]",
        b'451-["frame",{"_placeholder":true,"num":0}]',  # the attachment never comes
        b'42["' + b"e" * 2000 + b'"]',
        b'42["start_stream","not a key"]',
        b'42["create_room",{"key":' + b"1" * 500 + b"}]",
        b"41/nowhere,",
        b"2probe",
        rng.randbytes(rng.randint(1, 300)).hex().encode(),
    ]


async def socketio_bad_packets(t: Target, rng: random.Random) -> str:
    reader, writer, status = await _upgrade(t, "/socket.io/?EIO=4&transport=websocket")
    if status != 101:
        writer.transport.abort()
        return f"upgrade {status}"
    writer.write(frame(0x1, b"40"))
    for data in rng.sample(_bad_socketio_packets(t, rng), rng.randint(1, 4)):
        if writer.is_closing():  # the server hung up on the previous packet
            break
        opcode = 0x2 if rng.random() < 0.2 else 0x1
        writer.write(frame(opcode, data))
        await asyncio.sleep(rng.uniform(0, 0.2))
    outcome, first = await _drain_until_closed(reader, writer, rng.uniform(0.5, 4.0))
    return _ws_outcome(first, outcome)


async def socketio_abandoned_polling(t: Target, rng: random.Random) -> str:
    """An Engine.IO long-polling session: opened, sent garbage, never polled again."""
    reader, writer = await _open(t.host, t.http_port)
    host = f"Host: {t.host}:{t.http_port}\r\n"
    writer.write(f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n{host}\r\n".encode())
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        head = parse_response_head(raw[:-4])
        body = await asyncio.wait_for(
            reader.readexactly(int(head.header("content-length", "0") or 0)), CONNECT_TIMEOUT
        )
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        writer.transport.abort()
        return "no open packet"
    start = body.find(b'"sid":"')
    if start < 0:
        writer.transport.abort()
        return f"HTTP {head.status} without a sid"
    sid = body[start + 7 : body.find(b'"', start + 7)].decode(errors="replace")
    junk = rng.choice(_bad_socketio_packets(t, rng))
    writer.write(
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n{host}"
        f"Content-Type: text/plain\r\nContent-Length: {len(junk)}\r\n\r\n".encode()
        + junk
    )
    outcome, first = await _drain_until_closed(reader, writer, 2.0)
    return "abandoned after " + _http_status(first, outcome)


# -- push ingest -------------------------------------------------------------------------


async def push_garbage(t: Target, rng: random.Random) -> str:
    reader, writer = await _open(t.host, t.http_port)
    body = rng.randbytes(rng.randint(1, 256 * 1024))
    if rng.random() < 0.5:
        body = b"\x1a\x45\xdf\xa3" + body  # an EBML (WebM) magic, then nonsense
    writer.write(
        f"PUT /ingest/{t.junk_key} HTTP/1.1\r\nHost: {t.host}:{t.http_port}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    outcome, first = await _drain_until_closed(reader, writer, 5.0)
    return _http_status(first, outcome)


async def ingest_ws_garbage(t: Target, rng: random.Random) -> str:
    reader, writer, status = await _upgrade(t, "/ingest/ws")
    if status != 101:
        writer.transport.abort()
        return f"upgrade {status}"
    start = rng.choice(
        [
            b'{"type":"start","key":"' + t.junk_key.encode() + b'","mime":"video/x-garbage"}',
            b'{"type":"start"}',
            b"not json at all",
            b'{"type":"start","key":' + b"7" * 300 + b"}",
        ]
    )
    writer.write(frame(0x1, start) + frame(0x2, rng.randbytes(rng.randint(1, 50_000))))
    outcome, first = await _drain_until_closed(reader, writer, 5.0)
    return _ws_outcome(first, outcome)


KINDS: dict[str, Client] = {
    "rtmp-random": rtmp_random,
    "rtmp-half-handshake": rtmp_half_handshake,
    "rtmp-bad-chunks": rtmp_bad_chunks,
    "http-random": http_random,
    "http-endless-head": http_endless_head,
    "http-malformed": http_malformed,
    "ws-oversized": ws_oversized,
    "ws-bad-frames": ws_bad_frames,
    "socketio-bad-packets": socketio_bad_packets,
    "socketio-abandoned-polling": socketio_abandoned_polling,
    "push-garbage": push_garbage,
    "ingest-ws-garbage": ingest_ws_garbage,
}


async def run_one(kind: str, target: Target, rng: random.Random) -> str:
    """One garbage client of ``kind``; its outcome, or what went wrong on our side."""
    try:
        async with asyncio.timeout(HOLD_MAX + 2 * CONNECT_TIMEOUT):
            return await KINDS[kind](target, rng)
    except TimeoutError:
        return "client timeout"
    except (ConnectionError, OSError) as exc:
        return f"{type(exc).__name__}"
    except RuntimeError:  # uvloop: a write on a transport the server already closed
        return "closed by server"
