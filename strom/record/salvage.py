"""What a crash left behind in the recordings: recordings still marked as being written
(:func:`close_interrupted`), and in each the segment that was being written when the
process died. That segment's chunks reached the kernel as they came (a buffered file: a
few KiB behind at most), so ``kill -9`` loses almost nothing of it, but its line in
``index.jsonl`` is only written when a segment closes: without the salvage the recording
would end up to a GOP early. Blocking file I/O: run it in a thread, at start-up, on
recordings no recorder writes any more.

The segment is cut after its last complete ``moof`` + ``mdat`` pair (ISO/IEC 14496-12
8.8.4, 8.1.1; a chunk cut short by the kill goes), its frames are read back through the
fragmented-MP4 demuxer for their times, and its index line is appended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from pathlib import Path

from strom.errors import StromError
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.model import Frame, Track, TrackKind
from strom.record import storage

log = logging.getLogger(__name__)

#: a half-written segment larger than this is left alone (a recording's segments are one
#: GOP, a few MB; the demuxer holds a sample at a time but the file is read whole)
MAX_SALVAGE_BYTES = 256 << 20


def complete_chunks(data: bytes) -> int:
    """How many leading bytes of ``data`` are whole ``moof`` + ``mdat`` pairs."""
    pos = good = 0
    expect = b"moof"
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind != expect or size < 8 or pos + size > len(data):
            break
        pos += size
        if kind == b"mdat":
            good = pos
        expect = b"mdat" if kind == b"moof" else b"moof"
    return good


def _times(init: bytes, media: bytes) -> tuple[float, float] | None:
    """(start, duration) in seconds of the frames in ``media``: from the first video frame
    (the first frame when there is no video) to the end of the last frame of any track,
    each track's last frame lasting as long as the one before it."""
    demuxer = Mp4Demuxer()
    tracks: dict[int, Track] = {}
    times: dict[int, list[float]] = {}
    for item in demuxer.feed(init + media):
        if isinstance(item, Track):
            tracks[item.id] = item
        elif isinstance(item, Frame) and item.track_id in tracks:
            times.setdefault(item.track_id, []).append(item.dts / tracks[item.track_id].timescale)
    if not times:
        return None
    video = [times[i] for i in times if tracks[i].kind is TrackKind.VIDEO]
    start = min(video[0]) if video else min(min(t) for t in times.values())
    end = start
    for found in times.values():
        found.sort()
        end = max(end, found[-1] + (found[-1] - found[-2] if len(found) > 1 else 0.0))
    return start, end - start


def _index_text(path: Path) -> str:
    """The index as it is, without a last line the crash cut short (it is dropped from
    the file too, so that the line appended next starts on a line of its own)."""
    index = path / storage.INDEX
    try:
        text = index.read_text()
    except FileNotFoundError:
        return ""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        with index.open("r+b") as f:
            f.truncate(len(text.encode()))
    return text


def salvage_last_segment(path: Path) -> storage.Segment | None:
    """Index the recording's trailing half-written segment (cut to its whole chunks);
    returns it, or None when there is none or nothing in it can be used."""
    text = _index_text(path)
    segments = storage.read_segments(path) if text else []
    seq = segments[-1].seq + 1 if segments else 1
    seg_path = path / storage.segment_name(seq)
    versions = sorted(
        int(p.name[len("init-") : -len(".mp4")])
        for p in path.glob("init-*.mp4")
        if p.name[len("init-") : -len(".mp4")].isdigit()
    )
    try:
        size = seg_path.stat().st_size
        if not versions or not 0 < size <= MAX_SALVAGE_BYTES:
            return None
        media = seg_path.read_bytes()
        init = (path / storage.init_name(versions[-1])).read_bytes()
    except OSError:
        return None
    keep = complete_chunks(media)
    if keep == 0:
        return None
    try:
        times = _times(init, media[:keep])
    except StromError as exc:
        log.warning("recording %s: last segment %d unreadable (%s): left out", path, seq, exc)
        return None
    if times is None:
        return None
    start, duration = times
    segment = storage.Segment(
        seq=seq,
        start=round(start, 6),
        duration=round(max(duration, 0.001), 6),
        bytes=keep,
        init=versions[-1],
        discontinuity=bool(segments) and segments[-1].init != versions[-1],
    )
    if keep < size:
        with seg_path.open("r+b") as f:
            f.truncate(keep)
    line = {
        "seq": segment.seq,
        "start": segment.start,
        "duration": segment.duration,
        "bytes": segment.bytes,
        "init": segment.init,
    }
    if segment.discontinuity:
        line["discontinuity"] = True
    with (path / storage.INDEX).open("ab") as f:
        f.write(json.dumps(line).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    log.info(
        "recording %s: kept the %.1f s the crash left unindexed (segment %d)", path, duration, seq
    )
    return segment


def last_write(path: Path) -> float | None:
    """When the recording in ``path`` last got media on disk: the newest modification of
    its index or of a segment file (the one being written when the process died holds
    the last frames), or None if it has neither."""
    times = []
    with contextlib.suppress(OSError):
        times.append((path / storage.INDEX).stat().st_mtime)
    with contextlib.suppress(OSError), os.scandir(path / storage.SEGMENTS) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                times.append(entry.stat().st_mtime)
    return max(times, default=None)


def close_interrupted(root: Path, active: set[Path]) -> list[storage.RecordingInfo]:
    """Recordings still marked ``recording`` that no recorder writes (the process stopped
    without finishing them) become ``finished``, ended when they last got media: their
    segments play as they are, with the one being written cut to its whole chunks and
    indexed. Returns them, as closed."""
    closed: list[storage.RecordingInfo] = []
    if not root.is_dir():
        return closed
    for channel_dir in root.iterdir():
        if not channel_dir.is_dir():
            continue
        for path in channel_dir.iterdir():
            if path in active or not storage.RECORDING_ID.match(path.name):
                continue
            try:
                meta = json.loads((path / storage.META).read_text())
                if meta.get("status") != storage.RECORDING:
                    continue
                # When it last got media: before the salvage below touches the files.
                meta["ended"] = last_write(path) or meta["started"]
                try:
                    salvage_last_segment(path)
                except OSError as exc:
                    log.warning("recording %s: last segment not salvaged: %s", path, exc)
                meta["status"] = storage.FINISHED
                storage.write_meta(path, meta)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            info = storage.load(path)
            if info is not None:
                closed.append(info)
    return closed
