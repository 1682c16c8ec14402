"""The internal pull's wire format, sans-IO: what an upstream node sends a node pulling a
channel from it, over one WebSocket (``GET /internal/pull/{channel}``).

Every message is a binary WebSocket message whose first byte says what it is::

    START   0x01  channel, broadcast id and start time, the tracks (every field of
                  :class:`~strom.media.model.Track`), the init segment
    CHUNK   0x02  one chunk's header: keyframe flag, decode time and end, received wall time, the
                  payload's size and its frames (track, dts, pts - dts, keyframe, the
                  offset and size of the frame's sample inside the payload); the NEXT
                  message is the payload: the CMAF chunk bytes as the upstream hub holds
                  them (the very WebSocket frame its viewers get, framed once)
    STALL   0x03  the upstream's publisher dropped; the broadcast waits for it
    RESUME  0x04  it is back with the same codec parameters; chunks go on
    END     0x05  the broadcast ended

All integers are big-endian. Sizes are bounded (:class:`WireLimits`); anything malformed
raises :class:`PullProtocolError`. :class:`PullDecoder` turns messages into events;
:func:`encode_start`, :func:`chunk_header` and :func:`encode_state` make them. No I/O.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from strom.errors import LimitExceeded, ProtocolError
from strom.live.chunk import Chunk
from strom.media.model import Codec, Frame, Track, TrackKind


class PullProtocolError(ProtocolError):
    """The upstream sent what the pull wire cannot be."""


class PullLimitExceeded(PullProtocolError, LimitExceeded):
    """Well-formed, but past one of :class:`WireLimits`."""


class Kind(enum.IntEnum):
    START = 0x01
    CHUNK = 0x02
    STALL = 0x03
    RESUME = 0x04
    END = 0x05


@dataclass(frozen=True)
class WireLimits:
    max_tracks: int = 8
    max_init_bytes: int = 1 << 20
    max_config_bytes: int = 64 << 10
    #: a chunk is a frame (or one video frame and the audio before it): 8 MiB is a 4K
    #: keyframe at a high bitrate (the FLV bound on one payload)
    max_chunk_bytes: int = 16 << 20
    max_frames: int = 64


@dataclass(frozen=True)
class Start:
    """Media begins (or its codec parameters changed): a new init segment."""

    channel: str
    broadcast_id: int
    #: the upstream broadcast's start (UNIX seconds)
    started_at: float
    tracks: tuple[Track, ...]
    init_segment: bytes


@dataclass(frozen=True)
class ChunkArrived:
    chunk: Chunk


@dataclass(frozen=True)
class StateChanged:
    kind: Kind  # STALL, RESUME or END


Event = Start | ChunkArrived | StateChanged


@dataclass(frozen=True, slots=True)
class _Header:
    """A CHUNK message read; its payload comes next."""

    keyframe: bool
    track_id: int
    time: float
    end: float
    received: float
    size: int
    #: (track id, dts, pts, keyframe, offset, size) per frame
    frames: list[tuple[int, int, int, bool, int, int]]


_KIND_CODE = {TrackKind.VIDEO: 1, TrackKind.AUDIO: 2}
_KIND_BY_CODE = {v: k for k, v in _KIND_CODE.items()}
#: fixed numbers on the wire (nodes of different versions pull from each other): a new
#: codec takes the next number, none is ever renumbered
_CODEC_CODE = {
    Codec.H264: 1, Codec.AAC: 2, Codec.VP8: 3, Codec.VP9: 4, Codec.AV1: 5, Codec.OPUS: 6,
    Codec.HEVC: 7,
}  # fmt: skip
_CODEC_BY_CODE = {v: k for k, v in _CODEC_CODE.items()}

_START = struct.Struct(">BQdB")  # kind, broadcast id, started_at, track count
_TRACK = struct.Struct(">BBBIIIIB")  # id, kind, codec, timescale, w, h, rate, channels
_CHUNK = struct.Struct(">BBBdddIH")  # kind, keyframe, track id, time, end, received, size, frames
_FRAME = struct.Struct(">BBqiII")  # track id, keyframe, dts, cts, offset, size
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
#: moof + mdat header of a chunk the hub muxed (strom.media.fmp4: fixed size)
_BOX = struct.Struct(">I4s")


def _text(value: str, limit: int = 0xFFFF) -> bytes:
    raw = value.encode()
    if len(raw) > limit:
        raise ValueError("text too long for the pull wire")
    return _U16.pack(len(raw)) + raw


def _blob(value: bytes) -> bytes:
    return _U32.pack(len(value)) + value


def encode_start(
    channel: str,
    broadcast_id: int,
    started_at: float,
    tracks: Sequence[Track],
    init_segment: bytes,
) -> bytes:
    parts = [_START.pack(Kind.START, broadcast_id, started_at, len(tracks)), _text(channel)]
    for t in tracks:
        parts.append(
            _TRACK.pack(
                t.id,
                _KIND_CODE[t.kind],
                _CODEC_CODE[t.codec],
                t.timescale,
                t.width,
                t.height,
                t.sample_rate,
                t.channels,
            )
        )
        parts.append(_text(t.codec_string))
        parts.append(_blob(t.config))
    parts.append(_blob(init_segment))
    return b"".join(parts)


def encode_state(kind: Kind) -> bytes:
    if kind not in (Kind.STALL, Kind.RESUME, Kind.END):
        raise ValueError(f"{kind!r} is not a state message")
    return _U8.pack(kind)


def sample_ranges(data: bytes, sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(offset, size) of each sample in a chunk's bytes: the ``mdat`` payloads hold the
    chunk's frames in order, ``sizes`` long (ISO/IEC 14496-12 4.2 box headers, walked,
    not trusted)."""
    payloads = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < _BOX.size:
            raise PullProtocolError("chunk ends inside a box header")
        size, kind = _BOX.unpack_from(data, pos)
        if size < _BOX.size or pos + size > end:
            raise PullProtocolError(f"chunk box {kind!r} has a bad size {size}")
        if kind == b"mdat":
            payloads.append((pos + _BOX.size, pos + size))
        pos += size
    ranges = []
    for size in sizes:
        while payloads and payloads[0][0] + size > payloads[0][1]:
            if payloads[0][0] != payloads[0][1]:
                raise PullProtocolError("a chunk's samples do not match its frames")
            payloads.pop(0)
        if not payloads:
            raise PullProtocolError("a chunk's samples do not match its frames")
        start, stop = payloads[0]
        ranges.append((start, size))
        payloads[0] = (start + size, stop)
    if any(start != stop for start, stop in payloads):
        raise PullProtocolError("a chunk's samples do not match its frames")
    return ranges


def chunk_header(chunk: Chunk) -> bytes:
    """The CHUNK message announcing ``chunk`` (a :class:`~strom.live.chunk.ChunkEncoder`:
    made once per chunk, shared by every puller)."""
    ranges = (
        sample_ranges(chunk.data, [len(f.data) for _, f in chunk.frames]) if chunk.frames else []
    )
    parts = [
        _CHUNK.pack(
            Kind.CHUNK,
            chunk.keyframe,
            chunk.track.id,
            chunk.time,
            chunk.end,
            chunk.received,
            len(chunk.data),
            len(chunk.frames),
        )
    ]
    for (track, frame), (offset, size) in zip(chunk.frames, ranges, strict=True):
        parts.append(
            _FRAME.pack(track.id, frame.keyframe, frame.dts, frame.pts - frame.dts, offset, size)
        )
    return b"".join(parts)


class _Reader:
    """Bounded reads from one message: short input is the peer's error."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PullProtocolError("message too short")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: struct.Struct) -> tuple[int | float, ...]:
        raw = self.take(fmt.size)
        values: tuple[int | float, ...] = fmt.unpack(raw)
        return values

    def text(self) -> str:
        (n,) = self.unpack(_U16)
        try:
            return self.take(int(n)).decode()
        except UnicodeDecodeError as exc:
            raise PullProtocolError("text is not UTF-8") from exc

    def blob(self, limit: int) -> bytes:
        (n,) = self.unpack(_U32)
        if n > limit:
            raise PullLimitExceeded(f"a {n}-byte field is past the limit of {limit}")
        return self.take(int(n))

    def done(self) -> None:
        if self.pos != len(self.data):
            raise PullProtocolError("trailing bytes after a message")


class PullDecoder:
    """Messages in, events out: ``receive_message(data)`` returns the event a message
    completes (a CHUNK header completes nothing until its payload follows)."""

    def __init__(self, limits: WireLimits | None = None) -> None:
        self.limits = limits or WireLimits()
        self._tracks: dict[int, Track] = {}
        self._pending: _Header | None = None

    def receive_message(self, data: bytes) -> Event | None:
        if self._pending is not None:
            return self._payload(data)
        if not data:
            raise PullProtocolError("empty message")
        kind = data[0]
        if kind == Kind.START:
            return self._start(data)
        if kind == Kind.CHUNK:
            self._chunk_header(data)
            return None
        if kind in (Kind.STALL, Kind.RESUME, Kind.END):
            if len(data) != 1:
                raise PullProtocolError("trailing bytes after a state message")
            return StateChanged(Kind(kind))
        raise PullProtocolError(f"unknown message kind {kind:#x}")

    def _start(self, data: bytes) -> Start:
        r = _Reader(data)
        _, broadcast_id, started_at, count = r.unpack(_START)
        if not 0 < count <= self.limits.max_tracks:
            raise PullProtocolError(f"{count} tracks")
        channel = r.text()
        tracks = []
        for _ in range(int(count)):
            tid, kind, codec, timescale, width, height, rate, channels = (
                int(v) for v in r.unpack(_TRACK)
            )
            if kind not in _KIND_BY_CODE or codec not in _CODEC_BY_CODE or timescale == 0:
                raise PullProtocolError(f"track {tid}: unknown kind, codec or timescale")
            codec_string = r.text()
            config = r.blob(self.limits.max_config_bytes)
            tracks.append(
                Track(
                    tid,
                    _KIND_BY_CODE[kind],
                    _CODEC_BY_CODE[codec],
                    timescale,
                    config,
                    codec_string,
                    width,
                    height,
                    rate,
                    channels,
                )
            )
        init = r.blob(self.limits.max_init_bytes)
        r.done()
        if len({t.id for t in tracks}) != len(tracks):
            raise PullProtocolError("two tracks with one id")
        self._tracks = {t.id: t for t in tracks}
        return Start(channel, int(broadcast_id), float(started_at), tuple(tracks), init)

    def _chunk_header(self, data: bytes) -> None:
        if not self._tracks:
            raise PullProtocolError("a chunk before the start")
        r = _Reader(data)
        _, keyframe, track_id, time, end, received, size, count = r.unpack(_CHUNK)
        if int(track_id) not in self._tracks:
            raise PullProtocolError(f"chunk of unknown track {track_id}")
        if size > self.limits.max_chunk_bytes or count > self.limits.max_frames:
            raise PullLimitExceeded(f"chunk of {size} bytes, {count} frames")
        frames = []
        for _ in range(int(count)):
            tid, key, dts, cts, offset, length = (int(v) for v in r.unpack(_FRAME))
            if tid not in self._tracks or offset + length > size:
                raise PullProtocolError("frame outside its chunk or of an unknown track")
            frames.append((tid, dts, dts + cts, bool(key), offset, length))
        r.done()
        self._pending = _Header(
            bool(keyframe),
            int(track_id),
            float(time),
            float(end),
            float(received),
            int(size),
            frames,
        )

    def _payload(self, data: bytes) -> ChunkArrived:
        header, self._pending = self._pending, None
        assert header is not None  # our own state: called only with a header pending
        if len(data) != header.size:
            raise PullProtocolError(f"chunk payload of {len(data)} bytes, announced {header.size}")
        tracks = self._tracks
        # Each frame's sample is a slice of the payload: RTMP play on this node builds
        # its FLV messages from frames (the copy is one per frame per node, not per viewer).
        frames = tuple(
            (tracks[tid], Frame(tid, dts, pts, key, data[offset : offset + length]))
            for tid, dts, pts, key, offset, length in header.frames
        )
        chunk = Chunk(
            data,
            tracks[header.track_id],
            frames,
            header.keyframe,
            header.time,
            header.received,
            end=header.end,
        )
        return ChunkArrived(chunk)
