"""Recordings on disk: the layout, reading an index back, the VOD playlist, listing,
deleting and retention. Plain blocking file I/O: callers on the event loop run these in a
thread (``asyncio.to_thread``). The layout is documented in ``docs/recordings.md``::

    recordings/{channel}/{id}/recording.json      meta: started, ended, status, broadcast id
    recordings/{channel}/{id}/init-{n}.mp4        init segment, version n (1, 2, ...)
    recordings/{channel}/{id}/segments/{seq}.m4s  one GOP (or more) of moof+mdat chunks
    recordings/{channel}/{id}/index.jsonl         one line per complete segment
    recordings/{channel}/{id}/download.mp4        the progressive MP4, made on first request
    recordings/{channel}/{id}/thumbnail.jpg       its picture, made on first request
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

META = "recording.json"
INDEX = "index.jsonl"
DOWNLOAD = "download.mp4"
THUMBNAIL = "thumbnail.jpg"
SEGMENTS = "segments"

#: recording ids: the UTC start time, with a suffix if two start in the same second
RECORDING_ID = re.compile(r"^[0-9]{8}-[0-9]{6}(-[0-9]{1,3})?$")

#: status values in ``recording.json``
RECORDING, FINISHED, FAILED = "recording", "finished", "failed"


def init_name(version: int) -> str:
    return f"init-{version}.mp4"


def segment_name(seq: int) -> str:
    return f"{SEGMENTS}/{seq}.m4s"


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    #: decode time of its first video frame (seconds, the stream's own clock)
    start: float
    duration: float
    bytes: int
    #: the init segment version it needs
    init: int
    #: the timeline restarts here (a new init, or the publisher came back)
    discontinuity: bool


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    channel: str
    id: str
    path: Path
    started: float
    ended: float | None
    status: str
    broadcast_id: int | None
    error: str | None
    segments: tuple[Segment, ...]
    #: bytes of init segments and media segments (what was recorded)
    bytes: int

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def finished(self) -> bool:
        return self.status != RECORDING

    def json(self) -> dict[str, Any]:
        base = f"/vod/{self.channel}/{self.id}"
        return {
            "id": self.id,
            "channel": self.channel,
            "broadcast_id": self.broadcast_id,
            "started": self.started,
            "ended": self.ended,
            "status": self.status,
            "duration": round(self.duration, 3),
            "bytes": self.bytes,
            "playlist_url": f"{base}/index.m3u8",
            "manifest_url": f"{base}/index.mpd",
            "mp4_url": f"{base}.mp4" if self.finished and self.segments else None,
            "thumbnail_url": f"{base}/thumbnail.jpg" if self.finished and self.segments else None,
        }


def new_recording_id(channel_dir: Path, now: float) -> str:
    base = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    rec_id, n = base, 1
    while (channel_dir / rec_id).exists():
        n += 1
        rec_id = f"{base}-{n}"
    return rec_id


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Replace ``recording.json`` atomically (a reader never sees half of it)."""
    tmp = path / (META + ".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, path / META)


def read_segments(path: Path) -> list[Segment]:
    segments: list[Segment] = []
    try:
        text = (path / INDEX).read_text()
    except FileNotFoundError:
        return segments
    for line in text.splitlines():
        try:
            d = json.loads(line)
            segments.append(
                Segment(
                    seq=int(d["seq"]),
                    start=float(d["start"]),
                    duration=float(d["duration"]),
                    bytes=int(d["bytes"]),
                    init=int(d["init"]),
                    discontinuity=bool(d.get("discontinuity", False)),
                )
            )
        except (ValueError, KeyError, TypeError):
            # a line cut short by a crash or a full disk: the ones before it still play
            log.warning("recording %s: skipping a damaged index line", path)
    return segments


def load(path: Path) -> RecordingInfo | None:
    """The recording in ``path``, or None if there is none (or its meta is unreadable)."""
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError):
        return None
    segments = read_segments(path)
    inits = {s.init for s in segments}
    init_bytes = 0
    for version in inits:
        with contextlib.suppress(OSError):
            init_bytes += (path / init_name(version)).stat().st_size
    return RecordingInfo(
        channel=path.parent.name,
        id=path.name,
        path=path,
        started=float(meta.get("started", 0.0)),
        ended=meta.get("ended"),
        status=str(meta.get("status", RECORDING)),
        broadcast_id=meta.get("broadcast_id"),
        error=meta.get("error"),
        segments=tuple(segments),
        bytes=init_bytes + sum(s.bytes for s in segments),
    )


def recording_path(root: Path, channel: str, rec_id: str) -> Path | None:
    if not RECORDING_ID.match(rec_id):
        return None
    path = root / channel / rec_id
    return path if (path / META).is_file() else None


def list_recordings(root: Path, channel: str) -> list[RecordingInfo]:
    """A channel's recordings, newest first."""
    channel_dir = root / channel
    if not channel_dir.is_dir():
        return []
    found = []
    for entry in channel_dir.iterdir():
        if RECORDING_ID.match(entry.name):
            info = load(entry)
            if info is not None:
                found.append(info)
    found.sort(key=lambda r: r.started, reverse=True)
    return found


def delete(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def disk_usage(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


@dataclass(frozen=True, slots=True)
class DiskReport:
    """What the operator sees of the recordings on the admin page."""

    #: channel -> (recordings, bytes), biggest first
    channels: list[tuple[str, int, int]]
    total_bytes: int
    #: free and total bytes of the filesystem holding the recordings
    free_bytes: int
    disk_bytes: int


def disk_report(root: Path) -> DiskReport:
    channels = []
    if root.is_dir():
        for channel_dir in root.iterdir():
            if channel_dir.is_dir():
                count = sum(1 for p in channel_dir.iterdir() if RECORDING_ID.match(p.name))
                channels.append((channel_dir.name, count, disk_usage(channel_dir)))
    channels.sort(key=lambda c: (-c[2], c[0]))
    probe = root if root.is_dir() else root.parent
    try:
        fs = shutil.disk_usage(probe)
        free, size = fs.free, fs.total
    except OSError:
        free = size = 0
    return DiskReport(channels, sum(c[2] for c in channels), free, size)


def apply_retention(
    root: Path, keep_days: float, max_bytes_per_channel: int, active: set[Path], now: float
) -> list[Path]:
    """Delete finished recordings older than ``keep_days`` (0: keep), then a channel's
    oldest ones while it holds more than ``max_bytes_per_channel`` (0: unlimited). Returns
    the deleted paths. Recordings being written are never deleted."""
    deleted: list[Path] = []
    if not root.is_dir():
        return deleted
    for channel_dir in sorted(root.iterdir()):
        if not channel_dir.is_dir():
            continue
        recordings = [r for r in list_recordings(root, channel_dir.name) if r.path not in active]
        keep = []
        for rec in recordings:
            age_from = rec.ended or rec.started
            if keep_days > 0 and now - age_from > keep_days * 86400:
                delete(rec.path)
                deleted.append(rec.path)
            else:
                keep.append(rec)
        if max_bytes_per_channel > 0:
            used = disk_usage(channel_dir)
            for rec in sorted(keep, key=lambda r: r.started):  # oldest first
                if used <= max_bytes_per_channel:
                    break
                size = disk_usage(rec.path)
                delete(rec.path)
                deleted.append(rec.path)
                used -= size
    for path in deleted:
        log.info("recordings: retention deleted %s", path)
    return deleted


def vod_playlist(info: RecordingInfo, window: float = 0.0) -> str:
    """An HLS media playlist (RFC 8216) over the stored segments: ``EVENT`` while the
    broadcast is recorded (4.3.3.5: segments are only appended), ``VOD`` with
    ``EXT-X-ENDLIST`` once it is over. ``EXT-X-MAP`` (4.3.2.5) names each init version and
    ``EXT-X-DISCONTINUITY`` (4.3.2.3) marks every restart of the timeline.

    ``window`` (seconds, while recording): the DVR window. A broadcast longer than that
    gets a sliding playlist of its last ``window`` seconds instead (no PLAYLIST-TYPE, the
    media and discontinuity sequence numbers counting what slid out, 6.2.2)."""
    segments = info.segments
    breaks = [
        i > 0 and (seg.discontinuity or seg.init != segments[i - 1].init)
        for i, seg in enumerate(segments)
    ]
    first = 0
    if window > 0 and not info.finished:
        span = 0.0
        first = len(segments)
        while first > 0 and span + segments[first - 1].duration <= window:
            first -= 1
            span += segments[first].duration
        first = min(first, max(len(segments) - 1, 0))  # always the newest segment
    shown = segments[first:]
    target = max((math.ceil(s.duration) for s in shown), default=1)
    playlist_type = "VOD" if info.finished else "EVENT"
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{sum(breaks[: first + 1])}",
        *([f"#EXT-X-PLAYLIST-TYPE:{playlist_type}"] if first == 0 else []),
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    current_init = None
    for i, seg in enumerate(shown, start=first):
        if i > first and breaks[i]:
            lines.append("#EXT-X-DISCONTINUITY")
        if seg.init != current_init:
            lines.append(f'#EXT-X-MAP:URI="{init_name(seg.init)}"')
            current_init = seg.init
        lines.append(f"#EXTINF:{seg.duration:.5f},")
        lines.append(segment_name(seg.seq))
    if info.finished:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
