"""Clips: a stretch of a recording, cut at keyframes into one progressive MP4 without
decoding or encoding anything.

A recording's segments each start on a keyframe (:mod:`strom.record.recorder`), so a cut
that begins at a segment boundary begins on a keyframe: :func:`pick` chooses the
segments (the one holding the asked end, and as many before it as the asked length
needs), and :func:`cut` hands them to the recordings' own remux
(:func:`strom.record.remux.remux`: ``moov`` first, the first packet at time 0). A clip
is therefore at least as long as asked (unless the recording is shorter) and at most one
GOP longer. Blocking file work: callers on the event loop run it in a thread.

Files live beside the recordings, one directory per channel::

    clips/{channel}/{slug}.mp4
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from strom.errors import ApiError
from strom.record.remux import remux
from strom.record.storage import Segment
from strom.settings import Settings, section, setting

#: a clip's public name: 16 URL-safe characters (96 random bits)
SLUG = re.compile(r"^[A-Za-z0-9_-]{16}$")
#: a cut may run past the asked length by a GOP; keyframes further apart than this many
#: times the longest clip make no clip (a stream with no keyframes is one huge segment)
_GOP_SLACK = 2.0
#: seconds two timestamps may differ by and still be the same instant (sums of floats)
_EPSILON = 1e-3


def _gb_to_bytes(gb: float) -> int:
    return int(gb * (1 << 30))


@dataclass(frozen=True)
class ClipSettings:
    min_seconds: float = setting("clip_min_seconds")
    max_seconds: float = setting("clip_max_seconds")
    per_hour: int = setting("clips_per_hour")
    cuts_at_once: int = setting("clip_cuts_at_once")
    max_bytes: int = setting("clips_max_gb", _gb_to_bytes)
    keep_days: float = setting("clips_keep_days")
    #: what the length chooser starts at (kept within min and max)
    default_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ClipSettings:
        return section(cls, settings)

    @property
    def default(self) -> float:
        return min(max(self.default_seconds, self.min_seconds), self.max_seconds)


class ClipRefused(ApiError):
    """A clip that cannot be cut from this recording (409, with why)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(409, reason, code=code)


@dataclass(frozen=True)
class Cut:
    #: seconds from the recording's start (its playlist's timeline) to the clip's start
    start: float
    duration: float
    segments: tuple[Segment, ...]


def new_slug() -> str:
    return secrets.token_urlsafe(12)


def clip_path(root: Path, channel: str, slug: str) -> Path:
    return root / channel / f"{slug}.mp4"


def pick(segments: tuple[Segment, ...], seconds: float, end: float | None, most: float) -> Cut:
    """The segments of a ``seconds`` long clip ending at ``end`` (seconds into the
    recording; None: its newest media). ``most``: the longest clip allowed, which the
    keyframes must let a cut stay near."""
    if not segments:
        raise ClipRefused("nothing is recorded yet: try again in a few seconds", "empty")
    offsets = []
    at = 0.0
    for seg in segments:
        offsets.append(at)
        at += seg.duration
    until = at if end is None else min(end, at)
    last = len(segments) - 1
    while last > 0 and offsets[last] >= until - _EPSILON:  # starts at or after the end
        last -= 1
    first = last
    while first > 0 and offsets[first] > until - seconds + _EPSILON:
        first -= 1
    span = offsets[last] + segments[last].duration - offsets[first]
    if span > max(seconds, most) * _GOP_SLACK:
        raise ClipRefused(
            "the stream's keyframes are too far apart to cut a clip here", "keyframes"
        )
    return Cut(offsets[first], span, segments[first : last + 1])


def cut(recording: Path, chosen: Cut, out: Path) -> int:
    """Write the clip to ``out`` (atomically); its size in bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remux(recording, chosen.segments, out)
    return out.stat().st_size


def delete_file(root: Path, channel: str, slug: str) -> None:
    clip_path(root, channel, slug).unlink(missing_ok=True)
