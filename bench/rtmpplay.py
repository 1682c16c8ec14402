"""A lean RTMP player for the load generator, sans-IO: handshake, connect, createStream,
play, acknowledgements and ping answers, built from Strom's own RTMP pieces
(:class:`ClientHandshake`, :func:`encode_message`, :class:`Command`), with its own chunk
scanner (RTMP spec 1.0, section 5.3) that keeps only the first bytes of each audio/video
message and skips the rest as it streams past.

Strom's :class:`RtmpClientSession` reassembles every message (it is a general client);
at hundreds of players in one process that copying is what a load generator cannot
afford, so the players use this.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import NamedTuple

from strom.media.rtmp.chunk import DEFAULT_CHUNK_SIZE, encode_message
from strom.media.rtmp.handshake import ClientHandshake, RandomBytes
from strom.media.rtmp.messages import (
    COMMAND_CSID,
    CONTROL_CSID,
    STREAM_CSID,
    Acknowledgement,
    Command,
    MessageType,
    UserControl,
    UserControlEvent,
)

_EXTENDED = 0xFFFFFF
_HEADER_SIZE = (11, 7, 3, 0)
_MAX_HEADER = 3 + 11 + 4
_MEDIA_KEEP = 8  # bytes kept of an audio/video message: FLV tag header fields
_MAX_KEEP = 1 << 20  # commands and control messages are kept whole, up to this
_U32 = struct.Struct(">I")
MEDIA_TYPES = (MessageType.AUDIO.value, MessageType.VIDEO.value)


class RtmpScanError(ValueError):
    """The server's chunk stream is not what this player accepts."""


class Message(NamedTuple):
    message_type: int
    csid: int
    stream_id: int
    timestamp: int
    length: int
    #: the whole payload, or its first bytes for audio and video
    head: bytes


class _Stream:
    __slots__ = (
        "csid",
        "delta",
        "ext_field",
        "extended",
        "head",
        "keep",
        "length",
        "message_type",
        "remaining",
        "stream_id",
        "timestamp",
    )

    def __init__(self, csid: int) -> None:
        self.csid = csid
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.message_type = 0
        self.stream_id = 0
        self.extended = False
        self.ext_field = 0
        self.remaining = 0  # bytes of the current message still to come (0: none open)
        self.head = bytearray()
        self.keep = 0  # bytes still to keep into head


class ChunkScanner:
    """Splits a chunk stream into :class:`Message` objects without reassembling media
    payloads. Set Chunk Size and Abort take effect at once, as the next chunk needs them.
    Timestamps follow spec 5.3.1.2 (type 1/2 deltas, a type-3 chunk that starts a
    message repeats the delta) and the same tolerance about extended timestamps on
    type-3 chunks as Strom's reader."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _Stream] = {}
        self._header = bytearray()  # a chunk header split across reads
        self._cur: _Stream | None = None
        self._chunk_left = 0

    def feed(self, data: bytes | memoryview) -> list[Message]:
        out: list[Message] = []
        pos = 0
        end = len(data)
        while pos < end:
            if self._chunk_left:
                st = self._cur
                assert st is not None
                take = min(self._chunk_left, end - pos)
                if st.keep:
                    k = min(take, st.keep)
                    st.head += data[pos : pos + k]
                    st.keep -= k
                pos += take
                self._chunk_left -= take
                st.remaining -= take
                if not self._chunk_left and not st.remaining:
                    self._finish(st, out)
                continue
            st = self._cur
            if (
                st is not None
                and st.remaining
                and data[pos] == 0xC0 | st.csid
                and st.csid >= 2
                and not st.extended
                and not self._header
            ):
                # Fast path: the 1-byte type-3 header continuing the open message.
                pos += 1
                self._chunk_left = min(st.remaining, self.chunk_size)
                continue
            if self._header:
                prior = len(self._header)
                self._header += data[pos : pos + _MAX_HEADER - prior]
                used = self._start_chunk(self._header, 0, len(self._header), out)
                if used < 0:
                    pos = end
                    continue
                pos += used - prior
                self._header.clear()
            else:
                used = self._start_chunk(data, pos, end, out)
                if used < 0:
                    self._header += data[pos:end]
                    break
                pos += used
        return out

    def _start_chunk(
        self, buf: bytes | memoryview | bytearray, pos: int, end: int, out: list[Message]
    ) -> int:
        """Parse the chunk header at ``buf[pos:]``: its length, or -1 if incomplete."""
        if end - pos < 1:
            return -1
        b0 = buf[pos]
        fmt, csid, p = b0 >> 6, b0 & 0x3F, pos + 1
        if csid == 0:
            if end - pos < 2:
                return -1
            csid, p = buf[pos + 1] + 64, pos + 2
        elif csid == 1:
            if end - pos < 3:
                return -1
            csid, p = buf[pos + 1] + (buf[pos + 2] << 8) + 64, pos + 3
        if end < p + _HEADER_SIZE[fmt]:
            return -1
        st = self._streams.get(csid)
        if st is None:
            st = self._streams[csid] = _Stream(csid)
        new = st.remaining == 0
        if fmt < 3:
            if not new:
                raise RtmpScanError(f"type-{fmt} chunk interrupts a message on csid {csid}")
            field = buf[p] << 16 | buf[p + 1] << 8 | buf[p + 2]
            length, message_type, stream_id = st.length, st.message_type, st.stream_id
            if fmt < 2:
                length = buf[p + 3] << 16 | buf[p + 4] << 8 | buf[p + 5]
                message_type = buf[p + 6]
            if fmt == 0:
                stream_id = int.from_bytes(bytes(buf[p + 7 : p + 11]), "little")
            p += _HEADER_SIZE[fmt]
            extended = field == _EXTENDED
            if extended:
                if end < p + 4:
                    return -1
                field = _U32.unpack_from(buf, p)[0]
                p += 4
            st.extended, st.ext_field = extended, field if extended else 0
            if fmt == 0:
                st.timestamp, st.delta = field, field
            else:
                st.timestamp, st.delta = (st.timestamp + field) & 0xFFFFFFFF, field
            st.length, st.message_type, st.stream_id = length, message_type, stream_id
        else:
            timestamp = (st.timestamp + st.delta) & 0xFFFFFFFF if new else st.timestamp
            if st.extended:
                if end < p + 4:
                    return -1
                if _U32.unpack_from(buf, p)[0] in (st.ext_field, timestamp):
                    p += 4
            if new:
                st.timestamp = timestamp
        if new:
            st.remaining = st.length
            st.head = bytearray()
            media = st.message_type in MEDIA_TYPES
            st.keep = min(st.length, _MEDIA_KEEP if media else _MAX_KEEP)
            if not media and st.length > _MAX_KEEP:
                raise RtmpScanError(f"control/command message of {st.length} bytes")
        self._cur = st
        self._chunk_left = min(st.remaining, self.chunk_size)
        if not st.remaining:
            self._finish(st, out)
        return p - pos

    def _finish(self, st: _Stream, out: list[Message]) -> None:
        msg = Message(
            st.message_type, st.csid, st.stream_id, st.timestamp, st.length, bytes(st.head)
        )
        if st.message_type == MessageType.SET_CHUNK_SIZE and len(msg.head) >= 4:
            size = _U32.unpack_from(msg.head)[0] & 0x7FFFFFFF
            if size == 0:
                raise RtmpScanError("Set Chunk Size 0")
            self.chunk_size = size
        elif st.message_type == MessageType.ABORT and len(msg.head) >= 4:
            aborted = self._streams.get(_U32.unpack_from(msg.head)[0])
            if aborted is not None:
                aborted.remaining = 0
        out.append(msg)


@dataclass(frozen=True, slots=True)
class Status:
    level: str
    code: str


class RtmpPlayClient:
    """The player's protocol: ``start()`` gives C0+C1; feed what the server sends to
    ``receive_data``, write ``data_to_send()``. Audio/video messages come back as
    :class:`Message` (with the first bytes of the FLV tag body); ``statuses`` collects
    ``onStatus`` codes; ``playing`` turns true on ``NetStream.Play.Start``."""

    def __init__(
        self, app: str, tc_url: str, name: str, random_bytes: RandomBytes = os.urandom
    ) -> None:
        self.app, self.tc_url, self.name = app, tc_url, name
        self._handshake = ClientHandshake(random_bytes)
        self._scanner = ChunkScanner()
        self._out = bytearray()
        self.stream_id = 0
        self.playing = False
        self.statuses: list[Status] = []
        self.error = ""
        self._window = 0
        self._received = 0
        self._acked = 0

    def start(self) -> bytes:
        return self._handshake.data_to_send()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, csid: int, message_type: int, stream_id: int, payload: bytes) -> None:
        self._out += encode_message(csid, message_type, stream_id, 0, payload, DEFAULT_CHUNK_SIZE)

    def receive_data(self, data: bytes | memoryview) -> list[Message]:
        if not self._handshake.complete:
            data = self._handshake.receive_data(bytes(data))
            self._out += self._handshake.data_to_send()
            if not self._handshake.complete:
                return []
            connect = Command(
                "connect",
                1.0,
                {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (Strom bench)",
                 "tcUrl": self.tc_url},
            )  # fmt: skip
            self._send(COMMAND_CSID, MessageType.COMMAND_AMF0, 0, bytes(connect))
        self._received += len(data)
        media: list[Message] = []
        for msg in self._scanner.feed(data):
            if msg.message_type in MEDIA_TYPES:
                media.append(msg)
            else:
                self._control(msg)
        if self._window and self._received - self._acked >= self._window:
            self._acked = self._received
            ack = bytes(Acknowledgement(self._received & 0xFFFFFFFF))
            self._send(CONTROL_CSID, MessageType.ACKNOWLEDGEMENT, 0, ack)
        return media

    def _control(self, msg: Message) -> None:
        kind = msg.message_type
        if kind == MessageType.WINDOW_ACK_SIZE and len(msg.head) >= 4:
            self._window = _U32.unpack_from(msg.head)[0]
        elif kind == MessageType.USER_CONTROL:
            control = UserControl.parse(msg.head)
            if control.event_type == UserControlEvent.PING_REQUEST:
                pong = UserControl(UserControlEvent.PING_RESPONSE, control.value)
                self._send(CONTROL_CSID, MessageType.USER_CONTROL, 0, bytes(pong))
        elif kind == MessageType.COMMAND_AMF0:
            self._command(Command.parse(msg.head))

    def _command(self, cmd: Command) -> None:
        info = cmd.arguments[0] if cmd.arguments else None
        if cmd.name == "_result" and cmd.transaction_id == 1.0:
            create = Command("createStream", 2.0, None)
            self._send(COMMAND_CSID, MessageType.COMMAND_AMF0, 0, bytes(create))
        elif cmd.name == "_result" and cmd.transaction_id == 2.0:
            if isinstance(info, bool) or not isinstance(info, int | float) or info < 1:
                self.error = f"createStream gave no stream id: {info!r}"
                return
            self.stream_id = sid = int(info)
            play = Command("play", 0.0, None, (self.name, -2.0))
            self._send(STREAM_CSID, MessageType.COMMAND_AMF0, sid, bytes(play))
            buffer = UserControl(UserControlEvent.SET_BUFFER_LENGTH, sid, 1000)
            self._send(CONTROL_CSID, MessageType.USER_CONTROL, 0, bytes(buffer))
        elif cmd.name == "_error":
            self.error = f"{'connect' if cmd.transaction_id == 1.0 else 'command'} refused: {info}"
        elif cmd.name == "onStatus" and isinstance(info, dict):
            status = Status(str(info.get("level", "")), str(info.get("code", "")))
            self.statuses.append(status)
            if status.code == "NetStream.Play.Start":
                self.playing = True
            elif status.level == "error":
                self.error = f"play refused: {status.code}"
