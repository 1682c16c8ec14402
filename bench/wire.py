"""Client-side wire formats the load generator speaks, sans-IO: the WebSocket opening
handshake and a frame scanner (RFC 6455), and HTTP/1.1 response heads (RFC 9112).

:class:`WsScanner` keeps only the first ``keep`` bytes of each binary message and skips
the rest without copying; a message is reported when its last byte has arrived, which is
the moment a player could use it.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: RFC 6455 section 1.3's example key: a fixed key is fine for a load generator.
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_U16 = struct.Struct(">H")
_INIT_BOXES = (b"ftyp", b"moov")
_U64 = struct.Struct(">Q")


class WireError(ValueError):
    """The peer sent something this client does not accept."""


def ws_accept(key: str) -> str:
    """RFC 6455 section 4.2.2: the Sec-WebSocket-Accept value for ``key``."""
    digest = hashlib.sha1((key + _WS_GUID).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def ws_request(host: str, port: int, path: str, key: str = WS_KEY) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A final client frame, masked as RFC 6455 5.3 requires (with the all-zero key,
    so the payload is sent as is: servers do not check the key's randomness)."""
    n = len(payload)
    if n >= 126:
        raise WireError("client control frames stay under 126 bytes")
    return bytes((0x80 | opcode, 0x80 | n)) + b"\x00\x00\x00\x00" + payload


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


def parse_response_head(head: bytes) -> ResponseHead:
    """Status line and header fields (up to, not including, the empty line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise WireError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise WireError(f"bad header line {line!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return ResponseHead(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


def check_ws_upgrade(head: ResponseHead, key: str = WS_KEY) -> None:
    if head.status != 101:
        raise WireError(f"WebSocket upgrade refused: {head.status} {head.reason}")
    if head.header("sec-websocket-accept") != ws_accept(key):
        raise WireError("wrong Sec-WebSocket-Accept")


class WsMessage(NamedTuple):
    opcode: int
    #: the whole message length
    length: int
    #: the whole payload for text/control messages and init segments, else its start
    head: bytes


class WsScanner:
    """Splits a server's WebSocket byte stream into messages (RFC 6455 5.2).

    Text and control messages are kept whole (up to ``max_text``); a binary message is
    kept whole when it is an init segment (``ftyp`` first) or ``keep`` is negative, else
    only its first ``keep`` bytes, and its remaining bytes are skipped as they stream
    past.
    """

    __slots__ = (
        "_frag_head",
        "_frag_len",
        "_frag_op",
        "_head",
        "_keep_whole",
        "_need",
        "_payload",
        "_pending",
        "_prefix",
        "_skip",
        "keep",
        "max_text",
        "on_binary",
        "on_message",
    )

    def __init__(
        self,
        keep: int = 256,
        max_text: int = 1 << 20,
        on_binary: Callable[[bytes | memoryview, int, int], bool] | None = None,
        on_message: Callable[[WsMessage], None] | None = None,
    ) -> None:
        self.keep = keep
        #: Called with (buffer, payload start, payload length) for a whole binary
        #: message found in one buffer; True means it was handled (no WsMessage).
        self.on_binary = on_binary
        #: If set, every other message goes here, in stream order, as it completes
        #: (and feed() returns nothing).
        self.on_message = on_message
        self.max_text = max_text
        self._head = bytearray()  # a frame header being assembled across reads
        self._payload = bytearray()  # the kept part of the current frame's payload
        self._need = 0  # payload bytes still to keep
        self._skip = 0  # payload bytes still to skip
        self._pending: tuple[int, bool, int] | None = None  # opcode, fin, payload length
        self._keep_whole = False
        self._prefix = False  # reading a binary message's first 8 bytes
        self._frag_op = -1  # a fragmented message in progress
        self._frag_len = 0
        self._frag_head = b""

    def feed(self, data: bytes | memoryview) -> list[WsMessage]:
        out: list[WsMessage] = []
        emit = self.on_message or out.append
        pos = 0
        end = len(data)
        keep = self.keep
        on_binary = self.on_binary
        while pos < end:
            if self._pending is None and not self._head and end - pos >= 10:
                # Fast path: a whole final binary frame inside this buffer, one step.
                b0 = data[pos]
                b1 = data[pos + 1]
                if b0 == 0x82 and b1 < 0x80:
                    n = b1
                    start = pos + 2
                    if n == 126:
                        n = _U16.unpack_from(data, pos + 2)[0]
                        start = pos + 4
                    elif n == 127:
                        n = _U64.unpack_from(data, pos + 2)[0]
                        start = pos + 10
                    if start + n <= end:
                        if on_binary is not None and on_binary(data, start, n):
                            pos = start + n
                            continue
                        if keep < 0 or (
                            n >= 8 and bytes(data[start + 4 : start + 8]) in _INIT_BOXES
                        ):
                            head = bytes(data[start : start + n])
                        else:
                            head = bytes(data[start : start + min(n, keep)])
                        emit(WsMessage(OP_BINARY, n, head))
                        pos = start + n
                        continue
            if self._pending is not None:
                if self._need:
                    take = min(self._need, end - pos)
                    self._payload += data[pos : pos + take]
                    pos += take
                    self._need -= take
                    if self._need:
                        break
                    if self._prefix:
                        # decided now, with the payload's first bytes in hand
                        self._prefix = False
                        self._decide_after_prefix()
                        if self._need:
                            continue
                if self._skip:
                    take = min(self._skip, end - pos)
                    pos += take
                    self._skip -= take
                    if self._skip:
                        break
                self._finish_frame(emit)
                continue
            # a frame header: 2 bytes, plus 2 or 8 of length (server frames: no mask)
            if self._head:
                take = min(14 - len(self._head), end - pos)
                self._head += data[pos : pos + take]
                used = self._start_frame(self._head)
                if used < 0:
                    pos += take
                    continue
                pos += used - (len(self._head) - take)
                self._head.clear()
            else:
                used = self._start_frame(data, pos, end)
                if used < 0:
                    self._head += data[pos:end]
                    break
                pos += used
        return out

    def _start_frame(self, buf: bytes | memoryview | bytearray, pos: int = 0, end: int = -1) -> int:
        """Parse a frame header at ``buf[pos:]``; header length, or -1 if incomplete."""
        if end < 0:
            end = len(buf)
        if end - pos < 2:
            return -1
        b0, b1 = buf[pos], buf[pos + 1]
        if b1 & 0x80:
            raise WireError("a server frame is masked")
        if b0 & 0x70:
            raise WireError("RSV bits set without an extension")
        n = b1 & 0x7F
        used = 2
        if n == 126:
            if end - pos < 4:
                return -1
            n = _U16.unpack_from(buf, pos + 2)[0]
            used = 4
        elif n == 127:
            if end - pos < 10:
                return -1
            n = _U64.unpack_from(buf, pos + 2)[0]
            used = 10
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        self._pending = (opcode, fin, n)
        self._payload = bytearray()
        effective = self._frag_op if opcode == OP_CONTINUATION else opcode
        if effective < 0:
            raise WireError("continuation frame without a message")
        if effective != OP_BINARY or opcode == OP_CONTINUATION:
            # text and control frames, and continuations of kept messages: keep it all
            if effective != OP_BINARY and n > self.max_text:
                raise WireError(f"text/control message of {n} bytes")
            keep_all = effective != OP_BINARY or self._keep_whole
            self._keep_whole = keep_all and effective == OP_BINARY
            # a binary continuation tops the kept start up to ``keep`` bytes
            self._need = n if keep_all else max(0, min(n, self.keep - len(self._frag_head)))
            self._skip = n - self._need
            self._prefix = False
        elif self.keep < 0:
            self._keep_whole = True
            self._need, self._skip, self._prefix = n, 0, False
        else:
            self._keep_whole = False
            self._need = min(n, 8)  # enough to see the first box type
            self._skip = n - self._need
            self._prefix = self._need == 8
        return used

    def _decide_after_prefix(self) -> None:
        if bytes(self._payload[4:8]) in _INIT_BOXES:
            self._keep_whole = True
            self._need += self._skip
            self._skip = 0
        else:
            more = min(self.keep - len(self._payload), self._skip)
            if more > 0:
                self._need += more
                self._skip -= more

    def _finish_frame(self, emit: Callable[[WsMessage], None]) -> None:
        assert self._pending is not None
        opcode, fin, n = self._pending
        self._pending = None
        payload = bytes(self._payload)
        if opcode >= OP_CLOSE:  # control frames may sit inside a fragmented message
            emit(WsMessage(opcode, n, payload))
            return
        if opcode == OP_CONTINUATION:
            self._frag_len += n
            if self._keep_whole or len(self._frag_head) < self.keep:
                self._frag_head += payload
            if fin:
                emit(WsMessage(self._frag_op, self._frag_len, self._frag_head))
                self._frag_op, self._frag_len, self._frag_head = -1, 0, b""
            return
        if not fin:
            self._frag_op, self._frag_len, self._frag_head = opcode, n, payload
            return
        emit(WsMessage(opcode, n, payload))
