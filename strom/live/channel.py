"""The hub: one :class:`Channel` per channel name.

A publisher (any ingest) feeds neutral :class:`~strom.media.model.Track` and
:class:`~strom.media.model.Frame` objects in. Each frame is muxed exactly once into a CMAF
chunk (``moof`` + ``mdat``), and that one :class:`Chunk` object is handed to every
subscriber: WebSocket viewers, RTMP players, the LL-HLS part store, and later the
recorder and edge relays. Per-subscriber work is a write and a bookkeeping check.

The channel keeps the chunks since the last keyframe (the GOP cache) so that a viewer
who joins gets a picture at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strom.media.fmp4 import FragmentMuxer
from strom.media.hls import HlsSettings, LiveHlsStream
from strom.media.model import Frame, Track, TrackKind, mime_type

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubLimits:
    gop_cache_max_bytes: int = 8 << 20
    max_viewers: int = 20_000
    #: hold audio frames and send them with the next video frame: one write per video
    #: frame per viewer instead of one per frame (audio waits at most one video frame)
    coalesce_audio: bool = True
    #: audio frames held at most, should video stall (~190 ms of AAC at 44.1 kHz)
    max_held_audio: int = 8
    #: seconds a broadcast waits for its publisher to come back after a dropped
    #: connection (no unpublish) before it ends; 0 ends at once
    reconnect_grace: float = 30.0
    #: audio frames dropped while waiting for a video config before going audio-only
    audio_only_after_frames: int = 100


@dataclass(slots=True, eq=False)
class Chunk:
    """One CMAF chunk: a video frame, with the audio frames since the previous one, each
    muxed into ``moof`` + ``mdat`` (or a single audio frame in an audio-only stream).

    The same object reaches every subscriber; deliveries cache their own framing of it
    (``ws_frame``, ``rtmp_message``) so that is done once per chunk, not once per viewer.
    """

    data: bytes
    #: the track of the chunk's last frame (the video frame when there is one)
    track: Track
    #: the frames inside, in order; empty for chunks relayed without their frames
    frames: tuple[tuple[Track, Frame], ...]
    #: True when a viewer can start decoding here (video keyframe; audio in audio-only).
    keyframe: bool
    #: decode time in seconds
    time: float
    #: wall-clock time (UNIX seconds) the frame reached the server
    received: float
    ws_frame: bytes | None = None
    rtmp_message: bytes | None = None

    @property
    def frame(self) -> Frame | None:
        """The last (for coalesced chunks: the video) frame."""
        return self.frames[-1][1] if self.frames else None


class Subscriber(Protocol):
    """Anything that follows a channel: a viewer, the HLS store, a recorder, a relay."""

    def on_live(self, channel: Channel) -> None:
        """Media is ready (or its codec parameters changed): ``channel.init_segment`` is
        set; chunks follow, starting with the GOP cache."""

    def on_chunk(self, chunk: Chunk) -> None:
        """A new chunk. Must not block: write, or drop and remember."""

    def on_end(self) -> None:
        """The broadcast ended."""

    # Optional: ``on_stall()`` when the publisher dropped and the broadcast waits for it
    # (reconnect grace), ``on_resume()`` when it is back with the same codec parameters
    # (otherwise ``on_live`` comes with a new init segment).


class Publisher(Protocol):
    """Whoever feeds a channel: an ingest connection."""

    def disconnect(self, reason: str) -> None:
        """Stop publishing now (an operator stopped the broadcast)."""


class StreamStats:
    """Stream health as the streamer's dashboard shows it, updated per frame at the cost
    of a few additions; rates are computed once per ``window``."""

    __slots__ = (
        "_bytes",
        "_frames",
        "_last_keyframe",
        "_start",
        "bitrate",
        "fps",
        "keyframe_interval",
        "window",
    )

    def __init__(self, now: float, window: float = 5.0) -> None:
        self.window = window
        self._start = now
        self._frames = 0
        self._bytes = 0
        self._last_keyframe: float | None = None
        #: video frames per second, bits per second (all tracks), seconds between keyframes
        self.fps = 0.0
        self.bitrate = 0.0
        self.keyframe_interval: float | None = None

    def add(self, frame: Frame, track: Track, now: float) -> None:
        self._bytes += len(frame.data)
        if track.kind is TrackKind.VIDEO:
            self._frames += 1
            if frame.keyframe:
                t = frame.dts / track.timescale
                if self._last_keyframe is not None and t > self._last_keyframe:
                    self.keyframe_interval = t - self._last_keyframe
                self._last_keyframe = t
        elapsed = now - self._start
        if elapsed >= self.window:
            self.fps = self._frames / elapsed
            self.bitrate = self._bytes * 8 / elapsed
            self._start, self._frames, self._bytes = now, 0, 0


class ChannelState(enum.Enum):
    #: nobody is publishing
    OFFLINE = "offline"
    #: a publisher is connected; media not ready yet (waiting for codec configs/keyframe)
    STARTING = "starting"
    #: init segment ready, chunks flowing
    LIVE = "live"
    #: the publisher dropped without unpublishing; the broadcast waits for it
    RECONNECTING = "reconnecting"


class ChannelBusy(Exception):
    """Another publisher holds the channel."""


class TooManyViewers(Exception):
    """The channel has reached ``max_viewers``."""


class Channel:
    def __init__(
        self,
        name: str,
        limits: HubLimits | None = None,
        hls_settings: HlsSettings | None = None,
        clock: Callable[[], float] = time.time,
        on_state: Callable[[Channel], None] | None = None,
    ) -> None:
        self.name = name
        self._on_state = on_state
        self.limits = limits or HubLimits()
        self._hls_settings = hls_settings or HlsSettings()
        self._clock = clock
        self.state = ChannelState.OFFLINE
        self.publisher: Publisher | None = None
        self.broadcast_id = 0
        self.started_at: float | None = None
        self.subscribers: set[Subscriber] = set()
        self._uncounted: set[Subscriber] = set()
        self.tracks: dict[int, Track] = {}
        self.init_segment: bytes | None = None
        self.mime = ""
        self.hls: LiveHlsStream | None = None
        self._muxer: FragmentMuxer | None = None
        self._expect_video = True
        self._tracks_changed = False
        self._dropped_audio = 0
        self.gop: list[Chunk] = []
        self._gop_bytes = 0
        self._has_video = False
        self._held: list[tuple[Track, Frame, bytes]] = []
        # reconnect grace: where the timeline ended, the tracks before the drop, the
        # offset (seconds) that makes a resumed publisher's timestamps continue it
        self._timeline = 0.0
        self._resuming: dict[int, Track] | None = None
        self._offset = 0.0
        self._grace_timer: asyncio.TimerHandle | None = None
        self._hls_changed = asyncio.Event()
        self.frames_in = 0
        self.bytes_in = 0
        self.peak_viewers = 0
        self.stats = StreamStats(clock())

    def __repr__(self) -> str:
        return f"<Channel {self.name} {self.state.value} viewers={self.viewers}>"

    # -- state ----------------------------------------------------------------------------

    def _set_state(self, state: ChannelState) -> None:
        if state is not self.state:
            log.info("channel %s: %s -> %s", self.name, self.state.value, state.value)
            self.state = state
            if self._on_state is not None:
                self._on_state(self)

    @property
    def live(self) -> bool:
        return self.state is ChannelState.LIVE

    @property
    def idle(self) -> bool:
        """Nobody publishes, nobody watches, no broadcast waits for its publisher: the
        registry may forget this channel."""
        return (
            self.publisher is None
            and not self.subscribers
            and self.state is not ChannelState.RECONNECTING
        )

    # -- viewers ---------------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        """People watching: subscribers less the streamer's own previews and internals."""
        return len(self.subscribers) - len(self._uncounted)

    def subscribe(self, subscriber: Subscriber, *, counted: bool = True) -> None:
        """Follow the channel. If it is live, the subscriber gets ``on_live`` and the GOP
        cache at once; otherwise ``on_live`` comes when the broadcast starts.
        ``counted=False`` for what is not an audience (the dashboard preview, a recorder)."""
        if len(self.subscribers) >= self.limits.max_viewers:
            raise TooManyViewers(self.name)
        self.subscribers.add(subscriber)
        if not counted:
            self._uncounted.add(subscriber)
        self.peak_viewers = max(self.peak_viewers, self.viewers)
        if self.live:
            subscriber.on_live(self)
            for chunk in self.gop:
                subscriber.on_chunk(chunk)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self._uncounted.discard(subscriber)

    # -- publisher -------------------------------------------------------------------------

    def claim(self, publisher: Publisher) -> None:
        """Start a broadcast for ``publisher``; :class:`ChannelBusy` if one is running."""
        if self.publisher is not None:
            raise ChannelBusy(self.name)
        self.publisher = publisher
        if self.state is ChannelState.RECONNECTING:
            # The same broadcast goes on: viewers, broadcast id, HLS and the muxer stay.
            if self._grace_timer is not None:
                self._grace_timer.cancel()
                self._grace_timer = None
            self._resuming = self.tracks
            self.tracks = {}
            self._has_video = False
            log.info("channel %s: publisher is back, resuming the broadcast", self.name)
            self._set_state(ChannelState.STARTING)
            return
        self._resuming = None
        self._offset = 0.0
        self._timeline = 0.0
        self.broadcast_id += 1
        self.started_at = self._clock()
        self.tracks = {}
        self._expect_video = True
        self._dropped_audio = 0
        self.frames_in = self.bytes_in = 0
        self.peak_viewers = self.viewers
        self.stats = StreamStats(self._clock())
        self._set_state(ChannelState.STARTING)

    def expect_tracks(self, *, video: bool) -> None:
        """What the publisher announced (e.g. in ``onMetaData``): without video, the
        broadcast starts with the first audio frame."""
        self._expect_video = video

    def set_track(self, track: Track) -> None:
        old = self.tracks.get(track.id)
        if old == track:
            return
        self.tracks[track.id] = track
        self._has_video = any(t.kind is TrackKind.VIDEO for t in self.tracks.values())
        if self.state is ChannelState.LIVE:
            # New codec parameters mid-stream: a new init segment at the next keyframe.
            self._tracks_changed = True

    def add_frame(self, frame: Frame) -> None:
        track = self.tracks.get(frame.track_id)
        if track is None or self.publisher is None:
            return
        self.frames_in += 1
        self.bytes_in += len(frame.data)
        now = self._clock()
        is_video = track.kind is TrackKind.VIDEO
        starts_gop = frame.keyframe if is_video else not self._has_video
        if self.state is not ChannelState.LIVE or self._tracks_changed:
            # Media starts at a video keyframe; with no video track (yet), audio starts
            # it only once no video is coming (announced, or after many audio frames).
            ready = frame.keyframe if is_video else self._audio_only_fallback(is_video)
            if not ready:
                return
            starts_gop = True
            if self._resuming is not None:
                # Continue the timeline just after where the dropped publisher left it.
                self._offset = self._timeline + 0.1 - frame.dts / track.timescale
            self._start_media()
        if self._offset:
            shift = round(self._offset * track.timescale)
            frame = Frame(frame.track_id, frame.dts + shift, frame.pts + shift,
                          frame.keyframe, frame.data)  # fmt: skip
        self._timeline = max(self._timeline, frame.dts / track.timescale)
        assert self._muxer is not None  # set by _start_media
        self.stats.add(frame, track, now)
        data = self._muxer.add_frame(frame)
        if not is_video and self._has_video and self.limits.coalesce_audio:
            self._held.append((track, frame, data))
            if len(self._held) >= self.limits.max_held_audio:
                self._flush_held(now)  # video stalled: audio goes out on its own
            return
        if self._held:
            held = self._held
            held.append((track, frame, data))
            self._held = []
            first_track, first_frame, _ = held[0]
            chunk = Chunk(
                data=b"".join(d for _, _, d in held),
                track=track,
                frames=tuple((t, f) for t, f, _ in held),
                keyframe=starts_gop,
                time=first_frame.dts / first_track.timescale,
                received=now,
            )
        else:
            chunk = Chunk(
                data=data,
                track=track,
                frames=((track, frame),),
                keyframe=starts_gop,
                time=frame.dts / track.timescale,
                received=now,
            )
        self._publish(chunk)

    def _flush_held(self, now: float) -> None:
        held, self._held = self._held, []
        if not held:
            return
        first_track, first_frame, _ = held[0]
        self._publish(
            Chunk(
                data=b"".join(d for _, _, d in held),
                track=held[-1][0],
                frames=tuple((t, f) for t, f, _ in held),
                keyframe=False,
                time=first_frame.dts / first_track.timescale,
                received=now,
            )
        )

    def _audio_only_fallback(self, is_video: bool) -> bool:
        """An audio frame with no video config: go audio-only once it is clear no video is
        coming (announced, or many audio frames without a video sequence header)."""
        if is_video or self._has_video:
            return False
        self._dropped_audio += 1
        return not (
            self._expect_video and self._dropped_audio < self.limits.audio_only_after_frames
        )

    def _start_media(self) -> None:
        resuming, self._resuming = self._resuming, None
        if resuming == self.tracks and self._muxer is not None:
            # Same codec parameters: the viewers' decoders just carry on.
            self._tracks_changed = False
            self._held = []
            self._set_state(ChannelState.LIVE)
            for sub in list(self.subscribers):
                on_resume = getattr(sub, "on_resume", None)
                if on_resume is not None:
                    on_resume()
            return
        tracks = sorted(self.tracks.values(), key=lambda t: t.id)
        self._muxer = FragmentMuxer(tracks)
        self.init_segment = self._muxer.init_segment()
        self.mime = mime_type(tracks)
        self._tracks_changed = False
        self._held = []
        self.gop = []
        self._gop_bytes = 0
        if self.hls is None or self.hls.ended:
            self.hls = LiveHlsStream(self._hls_settings)
        else:
            self.hls.discontinuity()
        self.hls.set_init(self.init_segment)
        log.info(
            "channel %s: media ready (%s) broadcast %d",
            self.name,
            self.mime,
            self.broadcast_id,
        )
        self._set_state(ChannelState.LIVE)
        for sub in list(self.subscribers):
            sub.on_live(self)

    def _publish(self, chunk: Chunk) -> None:
        if chunk.keyframe:
            self.gop = [chunk]
            self._gop_bytes = len(chunk.data)
        elif self.gop:
            self._gop_bytes += len(chunk.data)
            if self._gop_bytes > self.limits.gop_cache_max_bytes:
                # Too long a GOP to keep: late joiners wait for the next keyframe.
                self.gop = []
            else:
                self.gop.append(chunk)
        hls = self.hls
        if hls is not None:
            before = hls.revision
            hls.add_chunk(chunk.data, chunk.time, chunk.keyframe, chunk.received)
            if hls.revision != before:
                self._wake_hls()
        for sub in list(self.subscribers):
            try:
                sub.on_chunk(chunk)
            except Exception:
                # A subscriber's bug must not reach the publisher whose frame this is
                # (its connection would die, and every viewer with it): that subscriber
                # goes, with its traceback in the log.
                log.exception("channel %s: %r failed on a chunk; unsubscribed", self.name, sub)
                self.unsubscribe(sub)

    def release(self, publisher: Publisher) -> None:
        """End the broadcast of ``publisher`` (no-op for anyone else)."""
        if self.publisher is not publisher:
            return
        self.publisher = None
        self._end_broadcast()

    def publisher_lost(self, publisher: Publisher) -> None:
        """``publisher`` dropped without unpublishing (network, encoder restart): keep the
        broadcast for ``reconnect_grace`` seconds; a claim in that time resumes it."""
        if self.publisher is not publisher:
            return
        grace = self.limits.reconnect_grace
        if grace <= 0 or self.state is not ChannelState.LIVE:
            self.release(publisher)
            return
        self.publisher = None
        self._flush_held(self._clock())
        self._set_state(ChannelState.RECONNECTING)
        self._grace_timer = asyncio.get_running_loop().call_later(grace, self._grace_over)
        for sub in list(self.subscribers):
            on_stall = getattr(sub, "on_stall", None)
            if on_stall is not None:
                on_stall()

    def _grace_over(self) -> None:
        self._grace_timer = None
        if self.state is ChannelState.RECONNECTING:
            log.info("channel %s: publisher did not come back in time", self.name)
            self._end_broadcast()

    def close(self) -> None:
        """End whatever is going on (server shutdown)."""
        if self.publisher is not None:
            self.release(self.publisher)
        elif self.state is ChannelState.RECONNECTING:
            self._end_broadcast()

    def _end_broadcast(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        self._resuming = None
        was_live = self.state in (ChannelState.LIVE, ChannelState.RECONNECTING)
        if self.state is ChannelState.LIVE:
            self._flush_held(self._clock())
        self._set_state(ChannelState.OFFLINE)
        self.gop = []
        self._gop_bytes = 0
        self._held = []
        self._muxer = None
        if self.hls is not None:
            self.hls.end()
            self._wake_hls()
        if was_live:
            for sub in list(self.subscribers):
                sub.on_end()
        self.init_segment = None

    # -- LL-HLS blocking requests -----------------------------------------------------------

    def _wake_hls(self) -> None:
        self._hls_changed.set()
        self._hls_changed = asyncio.Event()

    async def wait_hls(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` (re-checked whenever a part completes) or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._hls_changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True
