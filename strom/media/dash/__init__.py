"""MPEG-DASH manifests over Strom's CMAF segments, sans-IO (see :mod:`strom.media.dash.mpd`)."""

from strom.media.dash.mpd import (
    MIME_TYPE,
    Alternative,
    Content,
    LiveTiming,
    Period,
    Segment,
    iso_time,
    live_mpd,
    static_mpd,
    track_content,
)

__all__ = [
    "MIME_TYPE",
    "Alternative",
    "Content",
    "LiveTiming",
    "Period",
    "Segment",
    "iso_time",
    "live_mpd",
    "static_mpd",
    "track_content",
]
