"""A recording as a static MPEG-DASH presentation: ``/vod/{channel}/{id}/index.mpd``.

The MPD (rendered by :mod:`strom.media.dash`) has one Representation per track, over
single-track views of the recording's own files, the ones its HLS playlist names
(``t{track}-init-{n}.mp4`` of ``init-{n}.mp4``, ``segments/t{track}-{seq}.m4s`` of
``segments/{seq}.m4s``, made as they are asked for: :func:`track_file`): one copy on
disk for both. A Period runs while the timeline goes on (no discontinuity, the same init segment,
consecutive segment numbers). The codecs come from the init segments themselves (a
recording's index does not keep them). Blocking file I/O: call it in a thread.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from strom.errors import ProtocolError
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.dash import Content, Period, Segment, static_mpd, track_content
from strom.media.dash.tracks import fragments_for_track, init_for_track
from strom.media.model import Track, TrackKind
from strom.record import storage

#: MPD time unit: 10 µs, like the live MPD
TIMESCALE = 100_000
MEDIA_TEMPLATE = f"{storage.SEGMENTS}/t$RepresentationID$-$Number$.m4s"
#: bits per second an audio track is announced at (the rest of the rate is the video's)
_AUDIO_RATE = 128_000


def vod_mpd(info: storage.RecordingInfo) -> str:
    """The static MPD of the segments ``info`` lists."""
    runs: list[list[storage.Segment]] = []
    for seg in info.segments:
        last = runs[-1][-1] if runs else None
        if last is None or seg.discontinuity or seg.init != last.init or seg.seq != last.seq + 1:
            runs.append([])
        runs[-1].append(seg)
    periods: list[Period] = []
    for run in runs:
        start = periods[-1].end if periods else 0
        periods.append(
            Period(
                id=str(run[0].seq),
                start=start,
                media_start=_ticks(run[0].start),
                initialization="t$RepresentationID$-" + storage.init_name(run[0].init),
                media=MEDIA_TEMPLATE,
                segments=[Segment(s.seq, _ticks(s.start), _ticks(s.duration)) for s in run],
            )
        )
    tracks = _tracks(info.path, runs[-1][0]) if runs else []
    total = sum(s.duration for s in info.segments)
    return static_mpd(_contents(tracks, info.bytes, total), periods, TIMESCALE)


def track_file(path: Path, track_id: int) -> bytes:
    """Track ``track_id`` of the init or media segment at ``path`` (OSError if there is no
    such file, ProtocolError if it holds no such track)."""
    data = path.read_bytes()
    if path.suffix == ".mp4":
        return init_for_track(data, track_id)
    return fragments_for_track(data, track_id)


def _ticks(seconds: float) -> int:
    return round(seconds * TIMESCALE)


def _tracks(path: Path, first: storage.Segment) -> list[Track]:
    """The tracks of ``first``'s init segment (with ``first`` itself: a track may be
    configured by its first keyframe)."""
    demuxer = Mp4Demuxer()
    found: dict[int, Track] = {}
    with contextlib.suppress(OSError, ProtocolError):
        for name in (storage.init_name(first.init), storage.segment_name(first.seq)):
            for event in demuxer.feed((path / name).read_bytes()):
                if isinstance(event, Track):
                    found[event.id] = event
    return sorted(found.values(), key=lambda t: t.id)


def _contents(tracks: list[Track], size: int, seconds: float) -> list[Content]:
    total = round(size * 8 / seconds) if seconds > 0 else 0
    audio = sum(_AUDIO_RATE for t in tracks if t.kind is TrackKind.AUDIO)
    ordered = sorted(tracks, key=lambda t: (t.kind is not TrackKind.VIDEO, t.id))
    return [
        track_content(t, _AUDIO_RATE if t.kind is TrackKind.AUDIO else max(total - audio, 1))
        for t in ordered
    ]
