"""Just enough ISO BMFF (ISO/IEC 14496-12) to know which frame arrived: the track ids,
handlers and timescales of an init segment, and the track, decode time and sync flag of
each ``moof`` (CMAF chunk) in a message or an LL-HLS part.

The benchmark reads only the first bytes of each WebSocket message (:func:`chunk_info`
needs the ``moof``, never the ``mdat`` payload), so a 10 KB frame costs a few struct
reads, not a copy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_HEADER = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# 8.8.7 tfhd flags
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
# 8.8.8 trun flags
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_SAMPLE_DURATION = 0x000100
_TRUN_SAMPLE_SIZE = 0x000200
_TRUN_SAMPLE_FLAGS = 0x000400
_TRUN_COMPOSITION_OFFSETS = 0x000800
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
# 8.8.3.1 sample flags: sample_is_non_sync_sample
_NON_SYNC = 0x00010000


class Mp4Error(ValueError):
    """The bytes are not the ISO BMFF structure expected."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    #: mdhd timescale: units of tfdt per second
    timescale: int
    #: hdlr handler_type: "vide", "soun"...
    handler: str

    @property
    def video(self) -> bool:
        return self.handler == "vide"


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """The first ``traf`` of a ``moof``: its track, decode time and whether its first
    sample is a sync sample (a keyframe)."""

    track_id: int
    decode_time: int
    sync: bool


def iter_boxes(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, box_end)`` of each box in ``data[start:end]``. A box that
    runs past ``end`` is still yielded (its end clipped), so a truncated buffer can be
    read up to where it stops."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = _HEADER.unpack_from(data, pos)
        header = 8
        if size == 1:  # 4.2: largesize follows
            if pos + 16 > end:
                return
            size = _U64.unpack_from(data, pos + 8)[0]
            header = 16
        elif size == 0:  # to the end of the file
            size = end - pos
        if size < header:
            raise Mp4Error(f"box {kind!r} at {pos} has size {size}")
        yield bytes(kind), pos + header, min(pos + size, end)
        pos += size


def _child(data: bytes | memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in iter_boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def parse_init(data: bytes | memoryview) -> dict[int, TrackInfo]:
    """Track id -> :class:`TrackInfo` for every ``trak`` of the init segment's ``moov``."""
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        raise Mp4Error("no moov box in the init segment")
    tracks: dict[int, TrackInfo] = {}
    for kind, start, end in iter_boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, start, end, b"tkhd")
        mdia = _child(data, start, end, b"mdia")
        if tkhd is None or mdia is None:
            raise Mp4Error("trak without tkhd or mdia")
        version = data[tkhd[0]]
        # 8.3.2: version, flags, then (v1) two 64-bit or (v0) two 32-bit times, track_ID
        track_id = _U32.unpack_from(data, tkhd[0] + (20 if version == 1 else 12))[0]
        mdhd = _child(data, *mdia, b"mdhd")
        hdlr = _child(data, *mdia, b"hdlr")
        if mdhd is None or hdlr is None:
            raise Mp4Error("mdia without mdhd or hdlr")
        version = data[mdhd[0]]
        timescale = _U32.unpack_from(data, mdhd[0] + (20 if version == 1 else 12))[0]
        # 8.4.3: version/flags, pre_defined, handler_type
        handler = bytes(data[hdlr[0] + 8 : hdlr[0] + 12]).decode("latin-1")
        if timescale <= 0:
            raise Mp4Error(f"track {track_id} has timescale 0")
        tracks[track_id] = TrackInfo(track_id, timescale, handler)
    if not tracks:
        raise Mp4Error("moov without trak")
    return tracks


def is_init(data: bytes | memoryview) -> bool:
    return len(data) >= 8 and bytes(data[4:8]) in (b"ftyp", b"moov")


def chunk_info(data: bytes | memoryview, start: int = 0) -> ChunkInfo:
    """Read the first ``traf`` of the ``moof`` at ``start``: only its boxes are touched,
    so ``data`` may stop right after it (the ``mdat`` payload is not needed)."""
    size, kind = _HEADER.unpack_from(data, start)
    if kind != b"moof":
        raise Mp4Error(f"expected moof, found {bytes(kind)!r}")
    end = min(start + size, len(data))
    traf = _child(data, start + 8, end, b"traf")
    if traf is None:
        raise Mp4Error("moof without traf")
    return _traf_info(data, *traf)


def _traf_info(data: bytes | memoryview, start: int, end: int) -> ChunkInfo:
    """The track, decode time and first sample's sync flag of the ``traf`` whose children
    lie in ``data[start:end]``."""
    track_id = -1
    default_flags: int | None = None
    decode_time: int | None = None
    sync: bool | None = None
    for k, s, _e in iter_boxes(data, start, end):
        if k == b"tfhd":
            flags = _U32.unpack_from(data, s)[0] & 0xFFFFFF
            track_id = _U32.unpack_from(data, s + 4)[0]
            if flags & _TFHD_DEFAULT_FLAGS:
                pos = s + 8
                pos += 8 if flags & _TFHD_BASE_DATA_OFFSET else 0
                for bit in (
                    _TFHD_SAMPLE_DESCRIPTION_INDEX,
                    _TFHD_DEFAULT_DURATION,
                    _TFHD_DEFAULT_SIZE,
                ):
                    pos += 4 if flags & bit else 0
                default_flags = _U32.unpack_from(data, pos)[0]
        elif k == b"tfdt":
            word = _U32.unpack_from(data, s)[0]
            if word >> 24 == 1:
                decode_time = _U64.unpack_from(data, s + 4)[0]
            else:
                decode_time = _U32.unpack_from(data, s + 4)[0]
        elif k == b"trun":
            sync = _trun_first_sync(data, s, default_flags)
    if track_id < 0 or decode_time is None:
        raise Mp4Error("traf without tfhd or tfdt")
    return ChunkInfo(track_id, decode_time, bool(sync))


def _trun_first_sync(data: bytes | memoryview, s: int, default_flags: int | None) -> bool | None:
    flags = _U32.unpack_from(data, s)[0] & 0xFFFFFF
    count = _U32.unpack_from(data, s + 4)[0]
    pos = s + 8
    if flags & _TRUN_DATA_OFFSET:
        pos += 4
    if flags & _TRUN_FIRST_SAMPLE_FLAGS:
        sample_flags: int | None = _U32.unpack_from(data, pos)[0]
    elif flags & _TRUN_SAMPLE_FLAGS and count:
        pos += 4 if flags & _TRUN_SAMPLE_DURATION else 0
        pos += 4 if flags & _TRUN_SAMPLE_SIZE else 0
        sample_flags = _U32.unpack_from(data, pos)[0]
    else:
        sample_flags = default_flags
    if sample_flags is None:
        return None
    return not sample_flags & _NON_SYNC


def iter_chunks(data: bytes | memoryview) -> Iterator[ChunkInfo]:
    """Every ``moof`` of a segment or part (``moof``+``mdat`` pairs, possibly preceded
    by ``styp``/``sidx``)."""
    for fields in iter_moofs(data):
        yield ChunkInfo(*fields)


def iter_moofs(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, bool]]:
    """(track id, decode time, sync) of every ``traf`` of every ``moof`` among the
    top-level boxes of ``data[start:end]``, read in place: a WebSocket message (a video
    frame and the audio frames before it, a ``traf`` each), an LL-HLS part or a segment."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = _HEADER.unpack_from(data, pos)
        if size < 8:
            raise Mp4Error(f"box {bytes(kind)!r} at {pos} has size {size}")
        if kind == b"moof":
            fields = moof_fast(data, pos)
            first_traf_end = _FIRST_TRAF_AT + _U32.unpack_from(data, pos + _FIRST_TRAF_AT)[0]
            if fields is None or first_traf_end < size:  # another layout, or more trafs
                yield from _trafs(data, pos, min(pos + size, end))
            else:
                yield fields
        pos += size


def _trafs(data: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """Every ``traf`` of the ``moof`` at ``start``, the general way."""
    for kind, s, e in iter_boxes(data, start + 8, end):
        if kind == b"traf":
            info = _traf_info(data, s, e)
            yield info.track_id, info.decode_time, info.sync


def ms(decode_time: int, timescale: int) -> int:
    """A decode time in whole milliseconds, rounded to the nearest as RTMP rounds (Strom
    writes the exact times a publisher's millisecond timestamps were rounded from)."""
    return (2000 * decode_time + timescale) // (2 * timescale)


#: where the first traf of Strom's moof starts: after the moof header and the mfhd
_FIRST_TRAF_AT = 8 + 16
#: moof type; from offset 32: tfhd (type, flags, track_ID), tfdt (type, version/flags,
#: time), trun (type, flags, count, data_offset, first sample duration, size, flags)
_FAST = struct.Struct(">4x4s24x4x4sII4x4sIQ4x4sI4x4x4x4xI")
_FAST_TRUN_FLAGS = (
    _TRUN_DATA_OFFSET | _TRUN_SAMPLE_DURATION | _TRUN_SAMPLE_SIZE | _TRUN_SAMPLE_FLAGS
)


def fast_chunk_info(data: bytes | memoryview) -> ChunkInfo:
    return ChunkInfo(*moof_fields(data))


def moof_fields(data: bytes | memoryview) -> tuple[int, int, bool]:
    """(track id, decode time, sync) as :func:`chunk_info` reads them, with one struct
    read for the common layout ``moof(mfhd, traf(tfhd, tfdt v1, trun))`` with no
    optional tfhd fields (Strom's muxer, and many others); anything else goes the
    general way."""
    fields = moof_fast(data)
    if fields is not None:
        return fields
    info = chunk_info(data)
    return info.track_id, info.decode_time, info.sync


def moof_fast(data: bytes | memoryview, at: int = 0) -> tuple[int, int, bool] | None:
    """The fast layout of :func:`moof_fields` read in place at ``data[at:]`` (nothing is
    copied); None for any other layout."""
    if len(data) - at < 100:
        return None
    (moof, tfhd, tfhd_word, track_id, tfdt, tfdt_word, decode_time, trun, trun_word, flags) = (
        _FAST.unpack_from(data, at)
    )
    if (
        moof == b"moof"
        and tfhd == b"tfhd"
        and tfdt == b"tfdt"
        and trun == b"trun"
        and tfdt_word >> 24 == 1
        and tfhd_word & 0xFFFFFF & ~_TFHD_DEFAULT_BASE_IS_MOOF == 0
        and trun_word & 0xFFFFFF & ~_TRUN_COMPOSITION_OFFSETS == _FAST_TRUN_FLAGS
    ):
        return track_id, decode_time, not flags & _NON_SYNC
    return None
