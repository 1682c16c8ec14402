"""Holding a pushed stream's first frames until its tracks are known. Sans-IO.

The hub builds one init segment from the tracks it knows when the first keyframe comes;
a track that turns up later means a second init segment (viewers re-initialise, and the
first seconds of that track are lost). RTMP/FLV publishers announce both codec
configurations before any frame, but containers do not always: an MPEG-TS demuxer learns
the AAC configuration from the first audio frame, which may follow a few video frames,
and a WebM demuxer may emit an Opus frame before the VP9 track it configures from the
first keyframe.

:class:`TrackGate` holds the items of a new container stream until it has seen both a
video and an audio track, or ``hold_seconds`` of media (then the stream has only one of
them), or ``hold_bytes`` of frame data; then it releases the tracks first and the frames
in their order, and passes everything through from then on.
"""

from __future__ import annotations

from strom.media.model import Frame, Track, TrackKind

#: seconds of media a stream with a single kind of track is held before it starts
DEFAULT_HOLD_SECONDS = 1.0
#: frame bytes held at most, whatever the timestamps say
DEFAULT_HOLD_BYTES = 8 << 20


class TrackGate:
    def __init__(
        self, hold_seconds: float = DEFAULT_HOLD_SECONDS, hold_bytes: int = DEFAULT_HOLD_BYTES
    ) -> None:
        self.hold_seconds = hold_seconds
        self.hold_bytes = hold_bytes
        #: True once the items flow through
        self.open = False
        # the latest Track of each id (a configuration that changed while held: the last)
        self._tracks: dict[int, Track] = {}
        self._frames: list[Frame] = []
        self._bytes = 0
        self._first_dts: dict[int, int] = {}
        self._span = 0.0

    def feed(self, items: list[Track | Frame]) -> list[Track | Frame]:
        """``items`` from the demuxer; what may go to the hub now."""
        if self.open:
            return items
        for item in items:
            if isinstance(item, Track):
                self._tracks[item.id] = item
                continue
            self._frames.append(item)
            self._bytes += len(item.data)
            track = self._tracks.get(item.track_id)
            if track is not None and track.timescale > 0:
                first = self._first_dts.setdefault(item.track_id, item.dts)
                self._span = max(self._span, (item.dts - first) / track.timescale)
        kinds = {track.kind for track in self._tracks.values()}
        if (
            {TrackKind.VIDEO, TrackKind.AUDIO} <= kinds
            or self._span >= self.hold_seconds
            or self._bytes >= self.hold_bytes
        ):
            return self.release()
        return []

    def release(self) -> list[Track | Frame]:
        """Open the gate (the stream ended, or its tracks are known): all that was held."""
        if self.open:
            return []
        self.open = True
        out: list[Track | Frame] = [*sorted(self._tracks.values(), key=lambda t: t.id)]
        out += self._frames
        self._tracks, self._frames, self._first_dts = {}, [], {}
        return out
