"""Stream health as the streamer's dashboard shows it: :class:`StreamStats`, kept by each
:class:`~strom.live.channel.Channel` frame by frame."""

from __future__ import annotations

import collections

from strom.media.model import Frame, Track, TrackKind


class StreamStats:
    """Stream health as the streamer's dashboard shows it, updated per frame at the cost
    of a few additions.

    The frame rate is that of the media: video frames whose timestamps fall in the last
    ``window`` seconds of the stream, over the time they span (arrival times would count a
    burst after a network hiccup as a faster source). The bitrate is what arrived over the
    last ``window`` seconds of wall time."""

    __slots__ = (
        "_bytes",
        "_last_keyframe",
        "_start",
        "_times",
        "bitrate",
        "declared_fps",
        "keyframe_interval",
        "window",
    )

    #: video frames remembered at most (a second of 240 fps per second of window)
    MAX_FRAMES_PER_SECOND = 240

    def __init__(self, now: float, window: float = 5.0) -> None:
        self.window = window
        self._start = now
        self._bytes = 0
        self._times: collections.deque[float] = collections.deque(
            maxlen=max(2, round(window * self.MAX_FRAMES_PER_SECOND))
        )
        self._last_keyframe: float | None = None
        #: bits per second (all tracks), seconds between keyframes
        self.bitrate = 0.0
        self.keyframe_interval: float | None = None
        #: the frame rate the publisher says it sends (RTMP ``onMetaData`` ``framerate``,
        #: the browser's chosen rate), None if it did not say
        self.declared_fps: float | None = None

    @property
    def fps(self) -> float:
        """Video frames per second of media over the last ``window`` seconds of it."""
        times = self._times
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def add(self, frame: Frame, track: Track, now: float) -> None:
        self._bytes += len(frame.data)
        if track.kind is TrackKind.VIDEO:
            t = frame.dts / track.timescale
            times = self._times
            if times and t < times[-1]:
                times.clear()  # the timeline started over (a new publisher's clock)
            times.append(t)
            while t - times[0] > self.window:
                times.popleft()
            if frame.keyframe:
                if self._last_keyframe is not None and t > self._last_keyframe:
                    self.keyframe_interval = t - self._last_keyframe
                self._last_keyframe = t
        elapsed = now - self._start
        if elapsed >= self.window:
            self.bitrate = self._bytes * 8 / elapsed
            self._start, self._bytes = now, 0


def declared_fps(value: object) -> float | None:
    """A publisher's stated frame rate if it is a plausible one (1 to 240), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 1 <= value <= StreamStats.MAX_FRAMES_PER_SECOND else None
