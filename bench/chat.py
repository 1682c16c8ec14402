"""The chat load generator: many guests in one room (``GET /chat/{channel}/ws``, see
docs/chat-protocol.md), a few of them sending, every socket recording when each bench
message reached it.

- :class:`ChatLog`: the senders' log, message number -> when it was written (monotonic);
  a message's ``nonce`` is ``bench-<number>`` and its text carries the send wall-clock time;
- :class:`ChatSocket`: one member on the harness's own WebSocket client
  (:mod:`bench.wire`), recording ``(number, arrival)`` of every bench message in a
  ``batch`` frame into a :class:`~bench.viewers.ViewerRecord` (``ts`` holds the numbers);
- :func:`analyze_chat`: delivery latency (arrival - send), delivered vs expected.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import struct
import time
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

from bench.records import ViewerRecord, set_lowat
from bench.stats import Window, summary
from bench.wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    WireError,
    WsMessage,
    WsScanner,
    check_ws_upgrade,
    client_frame,
    parse_response_head,
    ws_request,
)

NONCE_PREFIX = "bench-"
#: a message later than this (or a lost connection) puts its socket "behind"
BEHIND_SECONDS = 1.0
#: messages sent this close to the window's end are not expected yet
LOSS_GRACE = 1.0
_BATCH_HEAD = b'{"type":"batch"'
_NONCE = re.compile(rb'"nonce"\s*:\s*"' + NONCE_PREFIX.encode() + rb'(\d+)"')
_MAX_HANDSHAKE = 16 * 1024
#: one receive buffer for every chat socket of the process (see viewers._SHARED)
_BUFFER = memoryview(bytearray(256 * 1024))


def client_text_frame(payload: bytes) -> bytes:
    """A final, masked text frame (RFC 6455 5.2, 5.3; the all-zero key, as
    :func:`bench.wire.client_frame`), with 16-bit extended lengths."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | OP_TEXT, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | OP_TEXT, 0x80 | 126)) + struct.pack(">H", n)
    else:
        raise WireError("chat frames stay under 64 KiB")
    return head + b"\x00\x00\x00\x00" + payload


def send_command(number: int, wall: float) -> bytes:
    """The ``send`` command of bench message ``number``, written at ``wall`` (UNIX s)."""
    nonce = f"{NONCE_PREFIX}{number}"
    text = f"{nonce} sent {wall:.6f}"
    return json.dumps({"type": "send", "text": text, "nonce": nonce}).encode()


def message_numbers(payload: bytes | memoryview) -> list[int]:
    """The bench messages in one server frame: the nonces of a ``batch`` (only message
    events carry one there; an ``error`` echoes the nonce too, but is no delivery)."""
    data = bytes(payload)
    if not data.startswith(_BATCH_HEAD):
        return []
    return [int(m) for m in _NONCE.findall(data)]


class ChatLog:
    """Bench messages in sending order: number ``i`` was written at ``times[i]``."""

    def __init__(self) -> None:
        self.times = array("d")

    def __len__(self) -> int:
        return len(self.times)

    def add(self, now: float) -> int:
        self.times.append(now)
        return len(self.times) - 1

    def time_of(self, number: int) -> float | None:
        return self.times[number] if 0 <= number < len(self.times) else None

    def sent_between(self, t1: float, t2: float) -> range:
        """Numbers of the messages written in [t1, t2)."""
        return range(bisect_left(self.times, t1), bisect_left(self.times, t2))


class ChatSocket(asyncio.BufferedProtocol):
    """One chat member. ``rec.t_connected`` is when its ``welcome`` arrived; a bulk
    reader (``bulk_lowat`` > 0) then lets the kernel wake it only that many bytes at a
    time (its arrival times are late by up to that much traffic)."""

    def __init__(
        self,
        record: ViewerRecord,
        host: str,
        port: int,
        path: str,
        done: asyncio.Future[None],
        bulk_lowat: int = 0,
    ) -> None:
        self.rec = record
        self._request = ws_request(host, port, path)
        self._done = done
        self._bulk_lowat = bulk_lowat
        self._handshake: bytearray | None = bytearray()
        self._scanner = WsScanner(keep=-1, on_message=self._on_message)
        self._now = 0.0
        #: error events this member got, by code (a sender's refusals)
        self.refused: Counter[str] = Counter()
        self.welcomed: asyncio.Future[None] = done.get_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.write(self._request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self._now = time.monotonic()
        self.rec.bytes += nbytes
        data: memoryview | bytes = _BUFFER[:nbytes]
        try:
            if self._handshake is not None:
                self._handshake += data
                end = self._handshake.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._handshake) > _MAX_HANDSHAKE:
                        raise WireError("handshake response too long")
                    return
                check_ws_upgrade(parse_response_head(bytes(self._handshake[:end])))
                data = bytes(self._handshake[end + 4 :])
                self._handshake = None
            self._scanner.feed(data)
        except (WireError, ValueError) as exc:
            self.fail(f"protocol: {exc}")

    def _on_message(self, msg: WsMessage) -> None:
        rec = self.rec
        if msg.opcode == OP_TEXT:
            numbers = message_numbers(msg.head)
            if numbers:
                now = self._now
                rec.ts.extend(numbers)
                rec.t.extend([now] * len(numbers))
            elif not rec.t_connected and msg.head.startswith(b'{"type":"welcome"'):
                rec.t_connected = self._now
                if not self.welcomed.done():
                    self.welcomed.set_result(None)
                if self._bulk_lowat and self.transport is not None:
                    set_lowat(self.transport, self._bulk_lowat)
            elif msg.head.startswith(b'{"type":"error"'):
                self.refused[str(json.loads(msg.head).get("code"))] += 1
                rec.unparsed += 1
        elif msg.opcode == OP_PING and self.transport is not None:
            self.transport.write(client_frame(OP_PONG, msg.head[:125]))
        elif msg.opcode == OP_CLOSE and self.transport is not None:
            if not rec.error:
                code = int.from_bytes(msg.head[:2], "big") if len(msg.head) >= 2 else 1005
                rec.error = f"closed by server {code} {msg.head[2:].decode(errors='replace')}"
            self.transport.write(client_frame(OP_CLOSE, msg.head[:2]))
            self.transport.close()

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_text_frame(payload))

    def fail(self, reason: str) -> None:
        if not self.rec.error:
            self.rec.error = reason
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.rec.t_end = time.monotonic()
        if exc is not None and not self.rec.error:
            self.rec.error = f"connection lost: {exc}"
        if not self.welcomed.done():
            self.welcomed.set_result(None)
        if not self._done.done():
            self._done.set_result(None)


# -- the numbers -------------------------------------------------------------------------


def analyze_chat(
    records: Iterable[ViewerRecord], log: ChatLog, window: Window, grace: float = LOSS_GRACE
) -> dict[str, Any]:
    """One row's chat figures. For each socket welcomed before a message was written:

    - *latency*: arrival - send of the messages that arrived inside the window;
    - *expected*: messages written in [window start (or its welcome), window end -
      ``grace``); *received*: those of them it got (any time before it left);
    - *deliveries*: arrivals inside the window (what the server's CPU is divided by);
    - *behind*: a message over ``BEHIND_SECONDS`` late, a lost connection, or no welcome.
    """
    recs = list(records)
    all_lat = array("d")
    probe_lat = array("d")
    joins: list[float] = []
    errors: Counter[str] = Counter()
    expected = received = deliveries = behind = duplicates = 0
    for rec in recs:
        if rec.error:
            errors[rec.error.split(":", 1)[0][:60]] += 1
        if rec.t_connected <= 0:
            behind += 1
            continue
        joins.append(rec.t_connected - rec.t_start)
        worst = 0.0
        for number, t in zip(rec.ts, rec.t, strict=True):
            if not window.start <= t < window.end:
                continue
            sent = log.time_of(number)
            if sent is None or sent < rec.t_connected:
                continue
            deliveries += 1
            latency = t - sent
            all_lat.append(latency)
            if rec.probe:
                probe_lat.append(latency)
            worst = max(worst, latency)
        got = set(rec.ts)
        duplicates += len(rec.ts) - len(got)
        wanted = log.sent_between(max(window.start, rec.t_connected), window.end - grace)
        expected += len(wanted)
        received += sum(1 for n in wanted if n in got)
        lost_connection = bool(rec.error) and rec.t_end < window.end
        behind += worst > BEHIND_SECONDS or lost_connection
    return {
        "sockets": len(recs),
        "welcomed": len(joins),
        "behind": behind,
        "errors": dict(errors),
        "probes": sum(1 for r in recs if r.probe),
        "latency_ms": summary(probe_lat),
        "latency_all_ms": summary(all_lat),
        "join_ms": summary(joins),
        "deliveries": deliveries,
        "expected": expected,
        "received": received,
        "loss": round(1 - received / expected, 5) if expected else None,
        "duplicates": duplicates,
    }


def per_delivery_us(cores: float | None, seconds: float, deliveries: int) -> float | None:
    """CPU µs per delivered message: ``cores`` busy for ``seconds`` over ``deliveries``."""
    if cores is None or not deliveries or math.isnan(cores):
        return None
    return cores * seconds * 1e6 / deliveries
