"""The hub: one :class:`Channel` per channel name.

A publisher (any ingest) feeds neutral :class:`~strom.media.model.Track` and
:class:`~strom.media.model.Frame` objects in. A :class:`~strom.live.assembler.
ChunkAssembler` muxes each frame exactly once into a CMAF chunk (``moof`` + ``mdat``),
and that one :class:`~strom.live.chunk.Chunk` object is handed to every subscriber:
WebSocket viewers, RTMP players, the LL-HLS rendition, the recorder, and later edge
relays. Per-subscriber work is a write and a bookkeeping check. The hub knows none of
them by name: each is a :class:`Subscriber`.

The frame path ends in two steps, :meth:`Channel.start_media` (a new init segment) and
:meth:`Channel.add_chunk` (fan a chunk out); something that receives chunks muxed
elsewhere (an edge pulling from its origin) can feed those directly, no remux.

The channel keeps the chunks since the last keyframe (the GOP cache) so that a viewer
who joins gets a picture at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from strom.live.assembler import ChunkAssembler
from strom.live.chunk import Chunk
from strom.live.stats import StreamStats
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


class Subscriber(Protocol):
    """Anything that follows a channel: a viewer, the LL-HLS rendition, a recorder, a relay.

    Subclass it: the type checker then holds a subscriber to the whole protocol, and the
    optional callbacks (:meth:`on_stall`, :meth:`on_resume`) default to nothing. A
    callback that raises while the channel fans out is logged and its subscriber
    unsubscribed: it never reaches the publisher whose frame it was given. (Raised from
    :meth:`Channel.subscribe`, it reaches the caller of that.)
    """

    #: how it watches, for the numbers (viewers by transport): ``ws``, ``rtmp``...
    transport: ClassVar[str] = "other"

    def on_live(self, channel: Channel) -> None:
        """Media is ready (or its codec parameters changed): ``channel.init_segment`` is
        set; chunks follow, starting with the GOP cache."""

    def on_chunk(self, chunk: Chunk) -> None:
        """A new chunk. Must not block: write, or drop and remember."""

    def on_end(self) -> None:
        """The broadcast ended."""

    def on_stall(self) -> None:
        """The publisher dropped and the broadcast waits for it (reconnect grace)."""
        return

    def on_resume(self) -> None:
        """The publisher is back with the same codec parameters: chunks go on where they
        stopped (with new parameters, :meth:`on_live` comes instead)."""
        return


class Publisher(Protocol):
    """Whoever feeds a channel: an ingest connection."""

    def disconnect(self, reason: str) -> None:
        """Stop publishing now (an operator stopped the broadcast)."""


class ChannelState(enum.Enum):
    #: nobody is publishing
    OFFLINE = "offline"
    #: a publisher is connected; media not ready yet (waiting for codec configs/keyframe)
    STARTING = "starting"
    #: init segment ready, chunks flowing
    LIVE = "live"
    #: the publisher dropped without unpublishing; the broadcast waits for it
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class CarriedOver:
    """A broadcast that waited for its publisher on another node of the site, whose
    publisher came here within the grace: its start and where its media stopped
    (seconds), so that it goes on here as the same broadcast, on the same timeline (the
    nodes following it see it resume, not start over). The broadcast's record in the
    database is carried on by :class:`~strom.channels.Broadcasts`."""

    started_at: float | None
    timeline: float


class ChannelBusy(Exception):
    """Another publisher holds the channel."""


class TooManyViewers(Exception):
    """The channel has reached ``max_viewers``."""


class Channel:
    def __init__(
        self,
        name: str,
        limits: HubLimits | None = None,
        clock: Callable[[], float] = time.time,
        on_state: Callable[[Channel], None] | None = None,
        on_idle: Callable[[Channel], None] | None = None,
        *,
        on_audience: Callable[[Channel], None] | None = None,
    ) -> None:
        self.name = name
        #: told every state change; told ``on_idle`` when a broadcast ended and nobody
        #: is left (the registry forgets the channel then)
        self._on_state = on_state
        self._on_idle = on_idle
        #: told when a counted viewer comes or goes (whoever serves this channel from
        #: elsewhere learns that it is wanted here, or no longer)
        self._on_audience = on_audience
        self.limits = limits or HubLimits()
        self._clock = clock
        self.state = ChannelState.OFFLINE
        self.publisher: Publisher | None = None
        #: None when this node ingests the channel; the upstream's URL when it is pulled
        self.origin: str | None = None
        self.broadcast_id = 0
        self.started_at: float | None = None
        self.subscribers: set[Subscriber] = set()
        self._uncounted: set[Subscriber] = set()
        self._internal: set[Subscriber] = set()
        self.tracks: dict[int, Track] = {}
        self.init_segment: bytes | None = None
        self.mime = ""
        self._assembler: ChunkAssembler | None = None
        self._expect_video = True
        self._tracks_changed = False
        self._dropped_audio = 0
        self.gop: list[Chunk] = []
        self._gop_bytes = 0
        self._has_video = False
        # reconnect grace: where the timeline ended, the tracks before the drop, the
        # offset (seconds) that makes a resumed publisher's timestamps continue it
        self._timeline = 0.0
        self._resuming: dict[int, Track] | None = None
        self._offset = 0.0
        self._grace_timer: asyncio.TimerHandle | None = None
        #: set by :meth:`carry_on` for the next :meth:`claim`
        self._carried: CarriedOver | None = None
        self.frames_in = 0
        self.bytes_in = 0
        #: chunks fanned out to the subscribers since the channel was opened here
        self.chunks_out = 0
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
    def public_state(self) -> str:
        """What viewers are shown: ``live``; ``reconnecting`` while the broadcast waits for
        its publisher (and while a publisher back within the grace has not sent its first
        keyframe yet); else ``offline`` (a broadcast that has not started is not on yet)."""
        if self.state is ChannelState.LIVE:
            return "live"
        if self.state is ChannelState.RECONNECTING or (
            self.state is ChannelState.STARTING and self._resuming is not None
        ):
            return "reconnecting"
        return "offline"

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

    def viewers_by_transport(self) -> dict[str, int]:
        """:attr:`viewers` by how they watch (``ws``, ``rtmp``...), counted when asked
        (for the numbers): nothing is kept per transport as viewers come and go."""
        found: dict[str, int] = {}
        for sub in self.subscribers:
            if sub not in self._uncounted:
                found[sub.transport] = found.get(sub.transport, 0) + 1
        return found

    def subscribe(
        self, subscriber: Subscriber, *, counted: bool = True, internal: bool = False
    ) -> None:
        """Follow the channel. If it is live, the subscriber gets ``on_live`` and the GOP
        cache at once; otherwise ``on_live`` comes when the broadcast starts.

        ``counted=False`` for what is not an audience (the dashboard preview);
        ``internal=True`` for what the server itself attaches (the LL-HLS rendition, the
        recorder, a relay): not counted, and not refused when viewers fill the channel.
        """
        if not internal and len(self.subscribers) - len(self._internal) >= (
            self.limits.max_viewers
        ):
            raise TooManyViewers(self.name)
        self.subscribers.add(subscriber)
        if internal:
            self._internal.add(subscriber)
        if internal or not counted:
            self._uncounted.add(subscriber)
        self.peak_viewers = max(self.peak_viewers, self.viewers)
        if self.live:
            subscriber.on_live(self)
            for chunk in self.gop:
                subscriber.on_chunk(chunk)
        if counted and not internal and self._on_audience is not None:
            self._on_audience(self)

    def catch_up(self, subscriber: Subscriber) -> bool:
        """A subscriber that joined while the broadcast waits for its publisher (which
        :meth:`subscribe` does not start) gets what the others saw: ``on_live``, the
        GOP cache it stopped on, then ``on_stall``; the resumption (or the end) follows
        as for them. False, telling nothing, when no broadcast waits."""
        if self.public_state != "reconnecting" or self.init_segment is None:
            return False
        subscriber.on_live(self)
        for chunk in self.gop:
            subscriber.on_chunk(chunk)
        subscriber.on_stall()
        return True

    def unsubscribe(self, subscriber: Subscriber) -> None:
        counted = subscriber in self.subscribers and subscriber not in self._uncounted
        self.subscribers.discard(subscriber)
        self._uncounted.discard(subscriber)
        self._internal.discard(subscriber)
        if counted and self._on_audience is not None:
            self._on_audience(self)

    def _tell(self, subscribers: Iterable[Subscriber], event: Callable[[Subscriber], None]) -> None:
        """``event(subscriber)`` for each; one that raises goes (see :meth:`add_chunk`)."""
        for sub in subscribers:
            try:
                event(sub)
            except Exception:
                log.exception("channel %s: %r failed; unsubscribed", self.name, sub)
                self.unsubscribe(sub)

    @property
    def timeline(self) -> float:
        """Where the broadcast's media has got to (seconds of decode time): a publisher
        coming back continues just after it."""
        return self._timeline

    # -- publisher -------------------------------------------------------------------------

    def carry_on(self, carried: CarriedOver | None) -> None:
        """The next :meth:`claim` continues ``carried``, a broadcast that waited for its
        publisher on another node (None: the next claim is what it would be anyway). The
        site's admission says so just before the claim (:mod:`strom.cluster.live_map`)."""
        self._carried = carried

    def claim(self, publisher: Publisher) -> None:
        """Start a broadcast for ``publisher``; :class:`ChannelBusy` if one is running."""
        if self.publisher is not None:
            raise ChannelBusy(self.name)
        self.publisher = publisher
        carried, self._carried = self._carried, None
        if carried is not None:
            # Ingested here from now on (it may have been pulled from the node it left),
            # on the broadcast's own timeline.
            self.origin = None
            self._timeline = max(self._timeline, carried.timeline)
        if self.state is ChannelState.RECONNECTING:
            # The same broadcast goes on: viewers, broadcast id and the muxer stay.
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
        if carried is not None:
            # The same broadcast, its timeline continued (an empty "before" makes the
            # first keyframe compute the offset, as for a publisher back here).
            self.started_at = carried.started_at or self.started_at
            self._timeline = carried.timeline
            self._resuming = {}
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
        if self.state is not ChannelState.LIVE or self._tracks_changed:
            # Media starts at a video keyframe; with no video track (yet), audio starts
            # it only once no video is coming (announced, or after many audio frames).
            is_video = track.kind is TrackKind.VIDEO
            ready = frame.keyframe if is_video else self._audio_only_fallback(is_video)
            if not ready:
                return
            if self._resuming is not None:
                # Continue the timeline just after where the dropped publisher left it.
                self._offset = self._timeline + 0.1 - frame.dts / track.timescale
            self._start_media()
        if self._offset:
            shift = round(self._offset * track.timescale)
            frame = Frame(frame.track_id, frame.dts + shift, frame.pts + shift,
                          frame.keyframe, frame.data)  # fmt: skip
        self._timeline = max(self._timeline, frame.dts / track.timescale)
        assert self._assembler is not None  # set by _start_media
        now = self._clock()
        self.stats.add(frame, track, now)
        for chunk in self._assembler.add_frame(track, frame, now):
            self.add_chunk(chunk)

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
        """The frame path can start the viewers: a publisher back with the same codec
        parameters goes on with the same muxer; otherwise a new one, a new init segment."""
        if self._resuming != self.tracks or self._assembler is None:
            self._assembler = ChunkAssembler(
                list(self.tracks.values()),
                coalesce_audio=self.limits.coalesce_audio,
                max_held_audio=self.limits.max_held_audio,
            )
        self.start_media(self._assembler.tracks, self._assembler.init_segment)

    def _flush_held(self) -> None:
        if self._assembler is not None:
            for chunk in self._assembler.flush(self._clock()):
                self.add_chunk(chunk)

    # -- media: where the frame path ends, and where chunks muxed elsewhere come in ---------

    def start_media(
        self, tracks: Sequence[Track], init_segment: bytes, *, resume: bool = True
    ) -> None:
        """Media begins, or its codec parameters changed: ``init_segment`` (of ``tracks``)
        goes to every subscriber (``on_live``), and the chunks of :meth:`add_chunk` follow,
        the first one a keyframe. A publisher back after a stall (:meth:`claim` in the
        reconnect grace) with the same init segment resumes instead (``on_resume``): the
        viewers' decoders carry on. ``resume=False``: a new timeline even so (chunks
        muxed elsewhere whose source started again)."""
        resuming, self._resuming = self._resuming, None
        self._tracks_changed = False
        self.tracks = {t.id: t for t in tracks}
        self._has_video = any(t.kind is TrackKind.VIDEO for t in tracks)
        # Whoever subscribes while the state changes (a state listener attaching the
        # LL-HLS rendition or the recorder) is told by subscribe(), once.
        subscribers = list(self.subscribers)
        if resume and resuming is not None and init_segment == self.init_segment:
            self._set_state(ChannelState.LIVE)
            self._tell(subscribers, lambda sub: sub.on_resume())
            return
        self.init_segment = init_segment
        self.mime = mime_type(tuple(tracks))
        self.gop = []
        self._gop_bytes = 0
        log.info(
            "channel %s: media ready (%s) broadcast %d",
            self.name,
            self.mime,
            self.broadcast_id,
        )
        self._set_state(ChannelState.LIVE)
        self._tell(subscribers, lambda sub: sub.on_live(self))

    def add_chunk(self, chunk: Chunk) -> None:
        """Fan ``chunk`` out while the channel is live: into the GOP cache (a keyframe
        starts it again) and to every subscriber."""
        if self.state is not ChannelState.LIVE:
            return
        # Chunks muxed elsewhere (pulled) move the timeline too.
        self._timeline = max(self._timeline, chunk.time)
        self.chunks_out += 1
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
        for sub in list(self.subscribers):
            try:
                sub.on_chunk(chunk)
            except Exception:
                # A subscriber's bug must not reach the publisher whose frame this is
                # (its connection would die, and every viewer with it): that subscriber
                # goes, with its traceback in the log.
                log.exception("channel %s: %r failed on a chunk; unsubscribed", self.name, sub)
                self.unsubscribe(sub)

    # -- the end ---------------------------------------------------------------------------

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
        self._flush_held()
        self._set_state(ChannelState.RECONNECTING)
        self._grace_timer = asyncio.get_running_loop().call_later(grace, self._grace_over)
        self._tell(list(self.subscribers), lambda sub: sub.on_stall())

    def moved(self, origin: str) -> None:
        """The broadcast waiting here for its publisher went on at another node (its
        publisher reconnected there, within the grace): this node no longer ingests it.
        It stays *reconnecting* for whoever follows it here, now as a channel of
        ``origin``'s, which a pull brings back (they see it resume); the grace starts
        again for that pull. Nothing ends: the broadcast is the other node's now."""
        if self.state is not ChannelState.RECONNECTING or self.origin is not None:
            return
        log.info("channel %s: the broadcast went on at %s", self.name, origin)
        self.origin = origin
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(self.limits.reconnect_grace, self._grace_over)
        if self._on_state is not None:
            self._on_state(self)  # the same state, a new owner: the services let go

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
        # The subscribers were told on_live (the init segment stays through a stall and a
        # publisher coming back): they are told the end.
        told_live = self.init_segment is not None
        if self.state is ChannelState.LIVE:
            self._flush_held()
        self._set_state(ChannelState.OFFLINE)
        self.gop = []
        self._gop_bytes = 0
        self._assembler = None
        if told_live:
            self._tell(list(self.subscribers), lambda sub: sub.on_end())
        self.init_segment = None
        if self._on_idle is not None and self.idle:
            self._on_idle(self)
