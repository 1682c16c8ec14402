"""The RTMP chunk stream (RTMP spec 1.0, section 5.3) and its protocol control (5.4).

:class:`ChunkReader` reassembles messages from chunks, :class:`ChunkWriter` and
:func:`encode_message` cut messages into chunks, and :class:`ChunkStream` puts them
together with the protocol control messages (Set Chunk Size, Abort, Acknowledgement,
Window Acknowledgement Size, Set Peer Bandwidth) that both ends of a connection obey.

Peers disagree on one detail, so the reader is tolerant: when a message header carried
an extended timestamp, the spec (5.3.1.3) and librtmp repeat those 4 bytes after the
basic header of every following type-3 chunk, while some encoders do not. A type-3
chunk is taken to carry them iff the 4 bytes there equal the value expected (the
header's timestamp field, or the message's absolute timestamp). Deciding needs those
4 bytes, so such a chunk is only read once 4 bytes follow its basic header.

The reader is also where a hostile peer would make the server work or buffer without
bound, so everything it does is bounded: the peer's chunk size from below as well as
above (a 1-byte chunk size multiplies the per-chunk work ~130 times), message sizes,
unfinished bytes, chunk streams, and with ``max_bytes`` the work done per call.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from strom.errors import LimitExceeded, RtmpError
from strom.media.rtmp.messages import (
    CONTROL_CSID,
    AbortMessage,
    Acknowledgement,
    MessageType,
    SetChunkSize,
    SetPeerBandwidth,
    WindowAckSize,
)

#: Spec 5.4.1: until a Set Chunk Size says otherwise, chunks carry at most 128 bytes.
DEFAULT_CHUNK_SIZE: Final = 128
#: The smallest Set Chunk Size a reader accepts by default. The spec allows 1, but no
#: encoder sends less than its default of 128, and SRS refuses smaller ones too
#: (ossrs/srs#541): with 1-byte chunks a peer costs ~130 times the work per byte.
MIN_CHUNK_SIZE: Final = DEFAULT_CHUNK_SIZE
#: What one chunk counts against a ``max_bytes`` budget at least: parsing a chunk header
#: costs about as much as copying this many payload bytes, so a budget bounds the work
#: even of chunks that carry a byte or nothing (the last chunk of a message may be tiny).
CHUNK_COST: Final = DEFAULT_CHUNK_SIZE
MAX_CSID: Final = 65599  # spec 5.3.1.1: 3-byte basic header, 64 + 0xFFFF
_EXTENDED: Final = 0xFFFFFF
_MASK32: Final = 0xFFFFFFFF
_MESSAGE_HEADER_SIZE: Final = (11, 7, 3, 0)  # by chunk type (fmt), spec 5.3.1.2


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One reassembled message (spec 5.3.1.2: the fields a message header carries)."""

    csid: int
    message_type: int
    stream_id: int
    timestamp: int  # absolute, milliseconds, mod 2**32
    payload: bytes


def basic_header(fmt: int, csid: int) -> bytes:
    """Spec 5.3.1.1: 1, 2 or 3 bytes for csid 2..63, 64..319, 320..65599."""
    if csid < 2 or csid > MAX_CSID:
        raise ValueError(f"chunk stream id {csid} out of range 2..{MAX_CSID}")
    if csid < 64:
        return bytes((fmt << 6 | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes((fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


def _chunked(first: bytes, continuation: bytes, payload: bytes, chunk_size: int) -> bytes:
    if len(payload) <= chunk_size:
        return first + payload
    view = memoryview(payload)
    parts: list[bytes | memoryview] = [first, view[:chunk_size]]
    for offset in range(chunk_size, len(payload), chunk_size):
        parts.append(continuation)
        parts.append(view[offset : offset + chunk_size])
    return b"".join(parts)


def encode_message(  # noqa: PLR0917 - the positional signature is the public interface
    csid: int, message_type: int, stream_id: int, timestamp: int, payload: bytes, chunk_size: int
) -> bytes:
    """The complete chunks of one message: a type-0 header, type-3 continuations.

    Needs no per-connection state, so one result can be written to many peers that use
    the same chunk size. The extended timestamp is repeated on continuations (5.3.1.3).
    """
    timestamp &= _MASK32
    if len(payload) > 0xFFFFFF:
        raise ValueError(f"RTMP message of {len(payload)} bytes exceeds the 24-bit length")
    extended = b""
    field = timestamp
    if timestamp >= _EXTENDED:
        extended = timestamp.to_bytes(4, "big")
        field = _EXTENDED
    first = (
        basic_header(0, csid)
        + field.to_bytes(3, "big")
        + len(payload).to_bytes(3, "big")
        + bytes((message_type,))
        + stream_id.to_bytes(4, "little")
        + extended
    )
    return _chunked(first, basic_header(3, csid) + extended, payload, chunk_size)


class _Sent:
    __slots__ = ("delta", "length", "message_type", "stream_id", "timestamp")

    def __init__(self, stream_id: int, length: int, message_type: int, timestamp: int) -> None:
        self.stream_id = stream_id
        self.length = length
        self.message_type = message_type
        self.timestamp = timestamp
        self.delta = timestamp  # spec 5.3.1.2.4: after type 0, "delta" is the timestamp


class ChunkWriter:
    """Cuts messages into chunks of ``chunk_size``.

    With ``compress=True`` it picks the smallest header type the previous message on the
    same chunk stream allows (5.3.1.2); otherwise every message gets a type-0 header, as
    :func:`encode_message` does.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, *, compress: bool = False) -> None:
        self.chunk_size = chunk_size
        self.compress = compress
        self._last: dict[int, _Sent] = {}

    def write(
        self, csid: int, message_type: int, stream_id: int, timestamp: int, payload: bytes
    ) -> bytes:
        timestamp &= _MASK32
        prev = self._last.get(csid) if self.compress else None
        if prev is None or prev.stream_id != stream_id or timestamp < prev.timestamp:
            if self.compress:
                self._last[csid] = _Sent(stream_id, len(payload), message_type, timestamp)
            return encode_message(
                csid, message_type, stream_id, timestamp, payload, self.chunk_size
            )
        delta = timestamp - prev.timestamp
        extended = delta.to_bytes(4, "big") if delta >= _EXTENDED else b""
        header = min(delta, _EXTENDED).to_bytes(3, "big")
        if prev.length != len(payload) or prev.message_type != message_type:
            fmt = 1
            header += len(payload).to_bytes(3, "big") + bytes((message_type,))
        elif delta != prev.delta:
            fmt = 2
        else:
            fmt, header = 3, b""
        prev.length, prev.message_type = len(payload), message_type
        prev.timestamp, prev.delta = timestamp, delta
        first = basic_header(fmt, csid) + header + extended
        return _chunked(first, basic_header(3, csid) + extended, payload, self.chunk_size)


class _Incoming:
    """What a chunk stream remembers between chunks (spec 5.3.1.2)."""

    __slots__ = (
        "delta",
        "ext_field",
        "extended",
        "length",
        "message_type",
        "payload",
        "stream_id",
        "timestamp",
    )

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.message_type = 0
        self.stream_id = 0
        self.extended = False
        self.ext_field = 0
        self.payload: bytearray | None = None  # the message being reassembled


class ChunkReader:
    """Reassembles messages from a chunk stream; bounded in every dimension.

    Set Chunk Size and Abort take effect inside the reader, as the very next chunk may
    depend on them; those messages are still returned, so the output is the complete
    message sequence. ``max_chunk_streams`` counts every chunk stream id the peer has
    used (their header state must be kept for later type 1-3 headers);
    ``max_pending_bytes`` bounds the unfinished messages of all of them together. The
    message and pending bounds are plain attributes: a server raises them once the peer
    has earned it (an accepted publish).
    """

    def __init__(
        self,
        *,
        max_chunk_size: int = 1 << 20,
        min_chunk_size: int = MIN_CHUNK_SIZE,
        max_message_size: int = 8 << 20,
        max_chunk_streams: int = 64,
        max_pending_bytes: int = 16 << 20,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_chunk_size = max_chunk_size
        self.min_chunk_size = min_chunk_size
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_pending_bytes = max_pending_bytes
        #: True when the last ``receive_data`` stopped early (``max_bytes`` spent or a
        #: ``pause_after`` message read) with input left: call again to go on.
        self.stopped_early = False
        #: The work of every call so far: bytes read, each chunk counted as at least
        #: :data:`CHUNK_COST` (what ``max_bytes`` budgets).
        self.work = 0
        self._streams: dict[int, _Incoming] = {}
        self._buffer = bytearray()
        self._pending = 0  # bytes held in unfinished messages, all chunk streams

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet (at most one partial chunk, unless the last
        call stopped early)."""
        return len(self._buffer)

    def receive_data(
        self,
        data: bytes = b"",
        *,
        max_bytes: int | None = None,
        pause_after: Collection[int] = (),
    ) -> list[RtmpMessage]:
        """Buffer ``data`` and return the messages the buffered chunks complete.

        ``max_bytes`` bounds the work of this call: parsing stops once that many bytes
        (each chunk counted as at least :data:`CHUNK_COST`) have been read, and once a
        message of a type in ``pause_after`` is complete, so that the caller can act on
        it (say, change the limits) before later chunks are read. What is left stays
        buffered: ``stopped_early`` tells, and the next call goes on with it.
        """
        buf = self._buffer
        buf += data
        messages: list[RtmpMessage] = []
        pos = spent = 0
        self.stopped_early = False
        try:
            while used := self._read_chunk(buf, pos, messages):
                pos += used
                spent += max(used, CHUNK_COST)
                if (max_bytes is not None and spent >= max_bytes) or (
                    pause_after and messages and messages[-1].message_type in pause_after
                ):
                    self.stopped_early = pos < len(buf)
                    break
        finally:
            del buf[:pos]
            self.work += spent
        return messages

    def _state(self, csid: int) -> _Incoming:
        state = self._streams.get(csid)
        if state is None:
            if len(self._streams) >= self.max_chunk_streams:
                raise LimitExceeded(f"peer opened more than {self.max_chunk_streams} chunk streams")
            # A chunk stream's first header should be type 0; like other servers we
            # tolerate a type 1-3 one by starting from all-zero fields.
            state = self._streams[csid] = _Incoming()
        return state

    def _read_chunk(self, buf: bytearray, pos: int, out: list[RtmpMessage]) -> int:
        """Read one chunk at ``pos``; returns its size, or 0 if it is not all there yet."""
        avail = len(buf) - pos
        if avail < 1:
            return 0
        fmt, csid, p = buf[pos] >> 6, buf[pos] & 0x3F, pos + 1
        if csid == 0:  # spec 5.3.1.1: 2-byte form
            if avail < 2:
                return 0
            csid, p = buf[pos + 1] + 64, pos + 2
        elif csid == 1:  # 3-byte form
            if avail < 3:
                return 0
            csid, p = buf[pos + 1] + (buf[pos + 2] << 8) + 64, pos + 3
        end = len(buf)
        if end < p + _MESSAGE_HEADER_SIZE[fmt]:
            return 0
        state = self._state(csid)
        length, message_type, stream_id = state.length, state.message_type, state.stream_id
        partial = state.payload
        if fmt < 3:
            if partial is not None:
                raise RtmpError(
                    f"type-{fmt} chunk on chunk stream {csid} interrupts an unfinished message"
                )
            field = int.from_bytes(buf[p : p + 3], "big")
            if fmt < 2:
                length = int.from_bytes(buf[p + 3 : p + 6], "big")
                message_type = buf[p + 6]
            if fmt == 0:
                stream_id = int.from_bytes(buf[p + 7 : p + 11], "little")
            p += _MESSAGE_HEADER_SIZE[fmt]
            extended = field == _EXTENDED
            if extended:  # spec 5.3.1.3
                if end < p + 4:
                    return 0
                field = int.from_bytes(buf[p : p + 4], "big")
                p += 4
            if fmt == 0:
                timestamp, delta = field, field
            else:
                timestamp, delta = (state.timestamp + field) & _MASK32, field
        else:
            # Spec 5.3.1.2.4: a type-3 chunk that starts a message repeats the delta.
            delta = state.delta
            new = partial is None
            timestamp = (state.timestamp + delta) & _MASK32 if new else state.timestamp
            if state.extended:
                if end < p + 4:
                    return 0
                if int.from_bytes(buf[p : p + 4], "big") in (state.ext_field, timestamp):
                    p += 4
        if partial is None:
            if length > self.max_message_size:
                raise LimitExceeded(
                    f"message of {length} bytes exceeds the {self.max_message_size} byte limit"
                )
            size = min(length, self.chunk_size)
        else:
            size = min(length - len(partial), self.chunk_size)
        if end < p + size:
            return 0
        if self._pending + size > self.max_pending_bytes:
            raise LimitExceeded(
                f"more than {self.max_pending_bytes} bytes of unfinished messages buffered"
            )
        # The whole chunk is here: commit.
        if fmt < 3:
            state.extended, state.ext_field = extended, field if extended else 0
        if partial is None:
            state.timestamp, state.delta = timestamp, delta
            state.length, state.message_type, state.stream_id = length, message_type, stream_id
            partial = state.payload = bytearray()
        partial += buf[p : p + size]
        self._pending += size
        if len(partial) == length:
            self._pending -= length
            state.payload = None
            message = RtmpMessage(csid, message_type, stream_id, timestamp, bytes(partial))
            self._apply_control(message)
            out.append(message)
        return p + size - pos

    def _apply_control(self, message: RtmpMessage) -> None:
        if message.message_type == MessageType.SET_CHUNK_SIZE:
            size = SetChunkSize.parse(message.payload).size
            if size > self.max_chunk_size:
                raise LimitExceeded(
                    f"peer chunk size {size} exceeds the {self.max_chunk_size} byte limit"
                )
            if size < self.min_chunk_size:
                raise LimitExceeded(
                    f"peer chunk size {size} is below the {self.min_chunk_size} byte minimum"
                )
            self.chunk_size = size
        elif message.message_type == MessageType.ABORT:
            state = self._streams.get(AbortMessage.parse(message.payload).csid)
            if state is not None and state.payload is not None:
                self._pending -= len(state.payload)
                state.payload = None


class ChunkStream:
    """Reader, writer and the protocol control messages of spec 5.4, for either end.

    ``receive_data`` returns every message except protocol control ones (types 1, 2, 3,
    5, 6), which it obeys: it acknowledges every ``window`` bytes once the peer sent a
    Window Acknowledgement Size (5.4.3-5.4.4) and answers Set Peer Bandwidth with our
    window when it differs from what we announced (5.4.5). Outgoing bytes accumulate in
    ``outgoing`` until taken with :meth:`take_outgoing`.
    """

    def __init__(self, reader: ChunkReader, writer: ChunkWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.outgoing = bytearray()
        self.bytes_received = 0
        self.peer_window = 0  # 0: the peer asked for no acknowledgements
        self.peer_acknowledged = 0
        self.announced_window = 0
        self._acked_at = 0

    def receive_data(
        self,
        data: bytes = b"",
        *,
        max_bytes: int | None = None,
        pause_after: Collection[int] = (),
    ) -> list[RtmpMessage]:
        """Like :meth:`ChunkReader.receive_data`, without the control messages."""
        messages = []
        for message in self.reader.receive_data(data, max_bytes=max_bytes, pause_after=pause_after):
            kind = message.message_type
            if kind == MessageType.WINDOW_ACK_SIZE:
                self.peer_window = WindowAckSize.parse(message.payload).size
            elif kind == MessageType.ACKNOWLEDGEMENT:
                self.peer_acknowledged = Acknowledgement.parse(message.payload).sequence_number
            elif kind == MessageType.SET_PEER_BANDWIDTH:
                size = SetPeerBandwidth.parse(message.payload).size
                if size != self.announced_window:
                    self.announce_window(size)
            elif kind not in (MessageType.SET_CHUNK_SIZE, MessageType.ABORT):
                messages.append(message)
        self.bytes_received += len(data)
        if self.peer_window and self.bytes_received - self._acked_at >= self.peer_window:
            self._acked_at = self.bytes_received
            self.send_control(
                MessageType.ACKNOWLEDGEMENT, bytes(Acknowledgement(self.bytes_received))
            )
        return messages

    def send(
        self, csid: int, message_type: int, stream_id: int, timestamp: int, payload: bytes
    ) -> None:
        self.outgoing += self.writer.write(csid, message_type, stream_id, timestamp, payload)

    def send_control(self, message_type: int, payload: bytes) -> None:
        self.send(CONTROL_CSID, message_type, 0, 0, payload)

    def set_chunk_size(self, size: int) -> None:
        """Announce and start using ``size`` for what we send (spec 5.4.1)."""
        self.send_control(MessageType.SET_CHUNK_SIZE, bytes(SetChunkSize(size)))
        self.writer.chunk_size = size

    def announce_window(self, size: int) -> None:
        self.send_control(MessageType.WINDOW_ACK_SIZE, bytes(WindowAckSize(size)))
        self.announced_window = size

    def take_outgoing(self) -> bytes:
        out = bytes(self.outgoing)
        self.outgoing.clear()
        return out
