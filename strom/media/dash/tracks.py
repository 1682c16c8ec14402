"""One track of a multiplexed CMAF stream, as a stream of its own, sans-IO.

Strom's chunks carry every track of a broadcast in one fragment (one ``moof`` with a
``traf`` per track, then one ``mdat``): what WebSocket viewers, LL-HLS and recordings
share. DASH wants one Representation per track (DASH-IF IOP: one media component per
Representation; ffmpeg's DASH demuxer cannot take two in one), so the MPD names
single-track views of the same segments, made here by taking the bytes apart, not by
muxing again: a view's fragment is the ``moof`` with only that track's ``traf`` (its
``trun`` data offsets moved to the new ``mdat``) and an ``mdat`` with only that
track's sample bytes, which are copied, never decoded. Its init segment is the
``moov`` with that track's ``trak`` and ``trex`` alone.

A stream's fragments are split one by one, so the view of a buffer holding several whole
fragments is the concatenation of their views: a segment's view grows fragment by
fragment as the segment does. A fragment without the track adds nothing.

The fragments must be as CMAF has them (ISO/IEC 23000-19 7.3.2.2): ``tfhd`` with
default-base-is-moof, every ``trun`` with a data offset, sample sizes in the ``trun`` or
as the ``tfhd``'s default. Anything else raises :class:`Mp4Error`.
"""

from __future__ import annotations

import struct

from strom.media.containers.isobmff import Mp4Error

_HEADER = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
#: 14496-12 8.8.7 tfhd flags
_BASE_DATA_OFFSET = 0x000001
_SAMPLE_DESCRIPTION_INDEX = 0x000002
_DEFAULT_DURATION = 0x000008
_DEFAULT_SIZE = 0x000010
_DEFAULT_FLAGS = 0x000020
_DEFAULT_BASE_IS_MOOF = 0x020000
#: 8.8.8 trun flags
_DATA_OFFSET = 0x000001
_FIRST_SAMPLE_FLAGS = 0x000004
_SAMPLE_FIELDS = ((0x000100, 4), (0x000200, 4), (0x000400, 4), (0x000800, 4))
_SAMPLE_SIZE = 0x000200


def _children(data: memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The boxes between ``start`` and ``end``: (type, where it starts, where it ends);
    32-bit sizes only (a fragment of a live stream is never 4 GiB)."""
    found = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise Mp4Error("box header is truncated")
        size, kind = _HEADER.unpack_from(data, pos)
        if size < 8 or pos + size > end:
            raise Mp4Error(f"box {bytes(kind)!r} runs past its parent")
        found.append((bytes(kind), pos, pos + size))
        pos += size
    return found


def init_for_track(init: bytes, track_id: int) -> bytes:
    """``init`` (``ftyp`` + ``moov``) with track ``track_id`` alone; Mp4Error if it has no
    such track."""
    data = memoryview(init)
    out: list[bytes] = []
    found = False
    for kind, start, end in _children(data, 0, len(data)):
        if kind != b"moov":
            out.append(bytes(data[start:end]))
            continue
        kept: list[bytes] = []
        for inner, s, e in _children(data, start + 8, end):
            if inner == b"trak":
                if _trak_id(data, s, e) != track_id:
                    continue
                found = True
            elif inner == b"mvex":
                trexes = [
                    bytes(data[ts:te])
                    for k, ts, te in _children(data, s + 8, e)
                    if k != b"trex" or _U32.unpack_from(data, ts + 12)[0] == track_id
                ]
                kept.append(_box(b"mvex", trexes))
                continue
            kept.append(bytes(data[s:e]))
        out.append(_box(b"moov", kept))
    if not found:
        raise Mp4Error(f"the init segment has no track {track_id}")
    return b"".join(out)


def _trak_id(data: memoryview, start: int, end: int) -> int:
    for kind, s, e in _children(data, start + 8, end):
        if kind == b"tkhd":
            version = data[s + 8] if e - s > 8 else 0
            at = s + 12 + (16 if version == 1 else 8)
            if at + 4 > e:
                raise Mp4Error("'tkhd' box is truncated")
            track: int = _U32.unpack_from(data, at)[0]
            return track
    raise Mp4Error("'trak' without a 'tkhd'")


def _box(kind: bytes, parts: list[bytes]) -> bytes:
    return _HEADER.pack(8 + sum(len(p) for p in parts), kind) + b"".join(parts)


def fragments_for_track(data: bytes | memoryview, track_id: int) -> bytes:
    """The fragments of ``data`` (whole ``moof`` + ``mdat`` pairs) with track
    ``track_id`` alone; empty if none holds it."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    boxes = _children(view, 0, len(view))
    for index, (kind, start, end) in enumerate(boxes):
        if kind != b"moof":
            continue  # its mdat is read through the moof; styp, prft and the like dropped
        if index + 1 >= len(boxes) or boxes[index + 1][0] != b"mdat":
            raise Mp4Error("a 'moof' without its 'mdat'")
        out.extend(_fragment(view, start, end, boxes[index + 1][2], track_id))
    return b"".join(out)


def _fragment(
    data: memoryview, start: int, end: int, mdat_end: int, track_id: int
) -> list[bytes | memoryview]:
    """The view of the fragment whose ``moof`` is ``start``..``end`` and whose ``mdat``
    ends at ``mdat_end``: [moof, mdat header, sample bytes...], or [] without the track."""
    mfhd: memoryview | None = None
    traf: tuple[int, int] | None = None
    for kind, s, e in _children(data, start + 8, end):
        if kind == b"mfhd":
            mfhd = data[s:e]
        elif kind == b"traf" and traf is None and _traf_id(data, s, e) == track_id:
            traf = (s, e)
    if traf is None:
        return []
    if mfhd is None:
        raise Mp4Error("'moof' without an 'mfhd'")
    new_traf = bytearray(data[traf[0] : traf[1]])
    default_size = _tfhd_default_size(data, traf[0], traf[1])
    ranges: list[memoryview] = []
    truns: list[tuple[int, int]] = []  # where each trun's data_offset is in new_traf
    for kind, s, e in _children(data, traf[0] + 8, traf[1]):
        if kind != b"trun":
            continue
        offset, length = _trun_range(data, s, e, default_size)
        if offset < end - start + 8 or start + offset + length > mdat_end:
            raise Mp4Error("a 'trun' names bytes outside its 'mdat'")
        ranges.append(data[start + offset : start + offset + length])
        truns.append((s - traf[0] + 16, length))
    moof_size = 8 + len(mfhd) + len(new_traf)
    at = moof_size + 8
    for field, length in truns:
        _I32.pack_into(new_traf, field, at)
        at += length
    mdat_size = at - moof_size
    return [
        _HEADER.pack(moof_size, b"moof"),
        mfhd,
        bytes(new_traf),
        _HEADER.pack(mdat_size, b"mdat"),
        *ranges,
    ]


def _traf_id(data: memoryview, start: int, end: int) -> int:
    """The track of a ``traf`` (its ``tfhd``, which 8.8.6 puts first)."""
    if start + 24 > end or bytes(data[start + 12 : start + 16]) != b"tfhd":
        raise Mp4Error("'traf' does not start with a 'tfhd'")
    flags = _U32.unpack_from(data, start + 16)[0] & 0xFFFFFF
    if flags & _BASE_DATA_OFFSET or not flags & _DEFAULT_BASE_IS_MOOF:
        raise Mp4Error("a 'tfhd' without default-base-is-moof (not CMAF)")
    track: int = _U32.unpack_from(data, start + 20)[0]
    return track


def _tfhd_default_size(data: memoryview, start: int, end: int) -> int | None:
    flags = _U32.unpack_from(data, start + 16)[0] & 0xFFFFFF
    if not flags & _DEFAULT_SIZE:
        return None
    at = start + 24
    for flag in (_SAMPLE_DESCRIPTION_INDEX, _DEFAULT_DURATION):
        at += 4 if flags & flag else 0
    if at + 4 > end:
        raise Mp4Error("'tfhd' box is truncated")
    size: int = _U32.unpack_from(data, at)[0]
    return size


def _trun_range(
    data: memoryview, start: int, end: int, default_size: int | None
) -> tuple[int, int]:
    """Where a ``trun``'s samples are, from the ``moof``'s start, and how many bytes."""
    if start + 16 > end:
        raise Mp4Error("'trun' box is truncated")
    flags = _U32.unpack_from(data, start + 8)[0] & 0xFFFFFF
    count = _U32.unpack_from(data, start + 12)[0]
    if not flags & _DATA_OFFSET:
        raise Mp4Error("a 'trun' without a data offset (not CMAF)")
    offset: int = _I32.unpack_from(data, start + 16)[0]
    at = start + 20 + (4 if flags & _FIRST_SAMPLE_FLAGS else 0)
    fields = [(flag, size) for flag, size in _SAMPLE_FIELDS if flags & flag]
    stride = sum(size for _, size in fields)
    if at + stride * count > end:
        raise Mp4Error("'trun' box is truncated")
    if flags & _SAMPLE_SIZE:
        at += sum(size for flag, size in fields if flag < _SAMPLE_SIZE)
        total = sum(_U32.unpack_from(data, at + i * stride)[0] for i in range(count))
        return offset, total
    if default_size is None:
        raise Mp4Error("a 'trun' without sample sizes and no default")
    return offset, default_size * count
