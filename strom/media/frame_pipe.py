"""Tracks and frames over a byte pipe, sans-IO: how the hub and a ladder's worker process
talk (:mod:`strom.ladder`).

Every message is ``length:u32 kind:u8 lane:u8`` then its body (big-endian); ``lane``
says which rendition a worker's output is for (0 for what the hub sends).

* ``T`` a :class:`~strom.media.model.Track`: ``id:u8 kind:u8 timescale:u32 width:u16
  height:u16 sample_rate:u32 channels:u8 codec_len:u8`` codec value, ``string_len:u8``
  codec string, then the config record (the rest).
* ``F`` a :class:`~strom.media.model.Frame`: ``track_id:u8 keyframe:u8 dts:i64 pts:i64``
  then the sample data (the rest).

:class:`PipeReader` takes bytes as they come and returns whole messages; a length past
its limit or a body that does not parse raises :class:`~strom.errors.ProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.errors import ProtocolError
from strom.media.model import Codec, Frame, Track, TrackKind

_HEAD = struct.Struct(">IBB")
_TRACK = struct.Struct(">BBIHHIB")
_FRAME = struct.Struct(">BBqq")
TRACK, FRAME = ord("T"), ord("F")
_KINDS = (TrackKind.VIDEO, TrackKind.AUDIO)
#: the largest message a reader takes by default (a 4K keyframe fits many times over)
DEFAULT_MAX_MESSAGE = 16 << 20


@dataclass(frozen=True, slots=True)
class PipeMessage:
    lane: int
    item: Track | Frame


def _short(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"{value!r} is too long")
    return bytes([len(data)]) + data


def encode(item: Track | Frame, lane: int = 0) -> bytes:
    """The message carrying ``item`` (on ``lane``)."""
    if isinstance(item, Frame):
        body = _FRAME.pack(item.track_id, int(item.keyframe), item.dts, item.pts) + item.data
        kind = FRAME
    else:
        body = (
            _TRACK.pack(
                item.id, _KINDS.index(item.kind), item.timescale, item.width, item.height,
                item.sample_rate, item.channels,
            )
            + _short(item.codec.value)
            + _short(item.codec_string)
            + item.config
        )  # fmt: skip
        kind = TRACK
    return _HEAD.pack(len(body) + 2, kind, lane) + body


def _decode_track(body: memoryview) -> Track:
    if len(body) < _TRACK.size + 2:
        raise ProtocolError("track message too short")
    tid, kind, timescale, width, height, rate, channels = _TRACK.unpack_from(body)
    at = _TRACK.size
    texts = []
    for _ in range(2):
        size = body[at]
        if at + 1 + size > len(body):
            raise ProtocolError("track message too short")
        texts.append(bytes(body[at + 1 : at + 1 + size]).decode(errors="replace"))
        at += 1 + size
    if kind >= len(_KINDS) or timescale == 0:
        raise ProtocolError("bad track message")
    try:
        codec = Codec(texts[0])
    except ValueError:
        raise ProtocolError(f"unknown codec {texts[0]!r}") from None
    return Track(
        tid, _KINDS[kind], codec, timescale, bytes(body[at:]), texts[1], width, height,
        rate, channels,
    )  # fmt: skip


class PipeReader:
    """Bytes in (:meth:`feed`), whole messages out."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[PipeMessage]:
        self._buffer += data
        out: list[PipeMessage] = []
        at = 0
        buffer = self._buffer
        while len(buffer) - at >= 4:
            (length,) = struct.unpack_from(">I", buffer, at)
            if length < 2 or length > self.max_message:
                raise ProtocolError(f"pipe message of {length} bytes")
            if len(buffer) - at - 4 < length:
                break
            kind, lane = buffer[at + 4], buffer[at + 5]
            body = memoryview(buffer)[at + 6 : at + 4 + length]
            try:
                if kind == FRAME:
                    if len(body) < _FRAME.size:
                        raise ProtocolError("frame message too short")
                    tid, key, dts, pts = _FRAME.unpack_from(body)
                    data = bytes(body[_FRAME.size :])
                    item: Track | Frame = Frame(tid, dts, pts, bool(key), data)
                elif kind == TRACK:
                    item = _decode_track(body)
                else:
                    raise ProtocolError(f"unknown pipe message kind {kind}")
            finally:
                body.release()
            out.append(PipeMessage(lane, item))
            at += 4 + length
        del buffer[:at]
        return out

    @property
    def pending(self) -> int:
        """Bytes of a message not complete yet."""
        return len(self._buffer)
