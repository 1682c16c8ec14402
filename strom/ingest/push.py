"""Push ingest without RTMP: one container byte stream in, one channel fed.

HTTP ``PUT``/``POST /ingest/{key}`` (:mod:`strom.web.ingest`), a raw TCP port bound to
a channel (:mod:`strom.ingest.tcp`) and the browser's ``/ingest/ws`` upload all carry the
same thing: WebM/Matroska, fragmented MP4, FLV or MPEG-TS bytes, in order. Each is a thin
adapter around one :class:`PushPublisher`, which

* sniffs the container from the first bytes (never trusting a file name or a header),
* claims the channel and feeds it the demuxed tracks and frames (VP8 video, which fMP4
  cannot carry, through a :class:`~strom.ingest.transcode.VideoTranscoder`),
* bounds the average rate (a token bucket; time is passed in, so it is testable), and
* ends the broadcast on a deliberate end (:meth:`~PushPublisher.finish`), or leaves it
  in the reconnect grace when the connection dropped (:meth:`~PushPublisher.lost`).

Errors are :class:`~strom.errors.ProtocolError` subclasses carrying the HTTP status and
the WebSocket close code an adapter answers with (their ``http_status`` and ``ws_close``).
Nothing here logs or keeps a stream key.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from strom import errors
from strom.errors import ProtocolError, RateExceeded
from strom.ingest.trackgate import TrackGate
from strom.live.channel import Channel, ChannelBusy
from strom.live.registry import Registry, StreamKeyResolver
from strom.media.containers import SNIFF_BYTES, ContainerKind, Demuxer, open_demuxer, sniff
from strom.media.model import VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind
from strom.ratelimit import AddressSlots, IPNetwork, RefusalLog, SlotLimits, TokenBucket
from strom.settings import Settings, exempt_networks, section, setting

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class UnsupportedContainer(errors.UnsupportedMedia):
    """Not a container (or codec) push ingest takes."""


class TranscodersBusy(errors.Busy):
    """Every transcoding slot is taken: try later, or send a codec that needs none."""


class Transcoder(Protocol):
    """What push ingest needs of :class:`strom.ingest.transcode.VideoTranscoder`."""

    #: frames fed, dropped (queue full), that failed, and frames delivered
    frames_in: int
    dropped: int
    errors: int
    frames_out: int

    def feed(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


OutputCallback = Callable[[list[Track | Frame]], None]
#: (input track, where the H.264 output goes, a label for its log lines) -> a transcoder
TranscoderFactory = Callable[[Track, OutputCallback, str], Transcoder]

#: video codecs the hub's fMP4 cannot carry: transcoded to H.264
TRANSCODED_CODECS = frozenset({Codec.VP8})


def default_transcoder(
    track: Track, on_output: OutputCallback, label: str, settings: Settings | None = None
) -> Transcoder:
    """A PyAV → H.264 transcoder in a worker thread (imported on first use: PyAV is heavy),
    shaped by the ``transcode_*`` settings."""
    try:
        from strom.ingest.transcode import VideoTranscoder  # noqa: PLC0415
    except ImportError as exc:
        raise UnsupportedContainer(
            "VP8 video needs transcoding, which this server cannot do; send VP9, AV1 or H.264"
        ) from exc
    if settings is None:
        return VideoTranscoder(track, on_output=on_output, label=label)
    return VideoTranscoder(
        track,
        on_output=on_output,
        label=label,
        bitrate=settings.transcode_bitrate or None,
        queue_frames=settings.transcode_queue_frames,
        max_pixels=settings.transcode_max_pixels,
        preset=settings.transcode_preset,
    )


def transcoder_from_settings(settings: Settings) -> TranscoderFactory:
    def make(track: Track, on_output: OutputCallback, label: str) -> Transcoder:
        return default_transcoder(track, on_output, label, settings)

    return make


#: seconds of ``ingest_max_bitrate`` a publisher may send at once (a bucket's depth): a
#: short file pushed without ``-re`` fits, a long one is cut off
INGEST_BURST_SECONDS = 5.0


def bitrate_bucket(max_bitrate: int, burst_seconds: float, now: float) -> TokenBucket:
    """The bytes a publisher may send (push, WHIP): ``max_bitrate`` bit/s on average,
    ``burst_seconds`` of it at once."""
    rate = max_bitrate / 8  # bytes per second
    return TokenBucket(rate, int(rate * burst_seconds), now)


@dataclass(frozen=True)
class PushLimits:
    #: average bits per second a push may send (token bucket refill)
    max_bitrate: int = setting("ingest_max_bitrate")
    #: seconds of ``max_bitrate`` a push may send at once (the bucket's depth)
    burst_seconds: float = INGEST_BURST_SECONDS
    idle_timeout: float = setting("ingest_idle_timeout")
    sniff_timeout: float = setting("ingest_sniff_timeout")
    max_connections: int = setting("ingest_max_connections")
    ws_max_message: int = setting("ingest_ws_max_message")
    #: VP8 pushes transcoded at once (CPU-bound: each is a decoder and an x264)
    max_transcodes: int = setting("transcode_max_streams")
    #: push connections per client address, counted before the key is checked (0: no limit)
    max_per_address: int = setting("ingest_max_connections_per_address")
    #: networks not counted per address
    exempt: tuple[IPNetwork, ...] = setting("connection_limit_exempt", exempt_networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> PushLimits:
        return section(cls, settings)


@dataclass
class PushStats:
    """Counters for ``/metrics`` (since the server started)."""

    started: int = 0
    completed: int = 0
    lost: int = 0
    refused: int = 0
    failed: int = 0
    bytes_in: int = 0
    by_transport: dict[str, int] = field(default_factory=dict)


class PushState(enum.Enum):
    #: reading the first bytes to learn the container
    SNIFFING = "sniffing"
    #: demuxing into the channel
    PUBLISHING = "publishing"
    ENDED = "ended"


class PushIngest:
    """Everything push publishers share: the hub, the key resolver, limits, counters."""

    def __init__(
        self,
        registry: Registry,
        keys: StreamKeyResolver,
        limits: PushLimits | None = None,
        *,
        transcoder: TranscoderFactory = default_transcoder,
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.limits = limits or PushLimits()
        self.transcoder = transcoder
        self.publishers: set[PushPublisher] = set()
        self.stats = PushStats()
        #: publishers whose video is being transcoded now (bounded: max_transcodes), WHIP's
        #: (:mod:`strom.ingest.whip`) among them
        self.transcoding: set[object] = set()
        #: push connections per client address, whatever carries them
        self.slots = AddressSlots(
            SlotLimits(per_address=self.limits.max_per_address, exempt=self.limits.exempt)
        )
        self._refusals = RefusalLog(log)

    @property
    def full(self) -> bool:
        return len(self.publishers) >= self.limits.max_connections

    def admit(self, host: str, transport: str, peer: str, now: float) -> str | None:
        """Count one more push connection from ``host``, before anything else is done for
        it: None if it may go on (the adapter then calls :meth:`leave` exactly once), else
        why it is refused (logged here, a flood in a few lines)."""
        reason = self.slots.acquire(host)
        if reason is not None:
            self.stats.refused += 1
            self._refusals.warning("push", now, "push %s %s refused: %s", transport, peer, reason)
        return reason

    def leave(self, host: str) -> None:
        """A connection :meth:`admit` let in has closed."""
        self.slots.release(host)

    async def resolve(self, key: str) -> str | None:
        """Stream key → channel name (``None``: unknown; the caller logs without the key)."""
        return await self.keys.resolve(key)

    def publisher(
        self,
        channel: str,
        *,
        transport: str,
        peer: str,
        now: float,
        close: Callable[[str], None],
        takeover: bool = False,
    ) -> PushPublisher:
        """A publisher for ``channel`` (not yet claimed). ``close(reason)`` is how it asks
        its adapter to hang up (an operator stopped the broadcast, or a newer connection of
        the same streamer took over)."""
        pub = PushPublisher(
            self, channel, transport=transport, peer=peer, now=now, close=close, takeover=takeover
        )
        self.publishers.add(pub)
        by = self.stats.by_transport
        by[transport] = by.get(transport, 0) + 1
        return pub

    def refused(self) -> None:
        self.stats.refused += 1

    def metrics(self) -> dict[str, Any]:
        active: dict[str, int] = {}
        for pub in self.publishers:
            active[pub.transport] = active.get(pub.transport, 0) + 1
        stats = self.stats
        return {
            "active": len(self.publishers),
            "active_by_transport": active,
            "started_by_transport": dict(stats.by_transport),
            "started": stats.started,
            "completed": stats.completed,
            "lost": stats.lost,
            "refused": stats.refused,
            "failed": stats.failed,
            "bytes_in": stats.bytes_in,
        }

    def close_all(self, reason: str) -> None:
        """Server shutdown: every push ends (the channels close themselves)."""
        for pub in list(self.publishers):
            pub.disconnect(reason)


class PushPublisher:
    """One pushed stream, whatever carries it. Driven by its adapter: :meth:`feed` with
    bytes as they come, then exactly one of :meth:`finish`, :meth:`lost` or :meth:`fail`.
    Also a :class:`~strom.live.channel.Publisher` (the operator may :meth:`disconnect` it)."""

    def __init__(
        self,
        ingest: PushIngest,
        channel_name: str,
        *,
        transport: str,
        peer: str,
        now: float,
        close: Callable[[str], None],
        takeover: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.ingest = ingest
        self.channel_name = channel_name
        self.transport = transport
        self.label = f"push#{self.id} {transport} {peer}"
        self.state = PushState.SNIFFING
        self.kind: ContainerKind | None = None
        self.channel: Channel | None = None
        self.bytes_in = 0
        #: frames demuxed (all tracks), and video frames among them
        self.frames_in = 0
        self.video_frames_in = 0
        self._close = close
        self._takeover = takeover
        self._prefix = b""
        self._demuxer: Demuxer | None = None
        self._gate = TrackGate()
        limits = ingest.limits
        self._bucket = bitrate_bucket(limits.max_bitrate, limits.burst_seconds, now)
        self._transcoder: Transcoder | None = None
        self._vp8_track: Track | None = None
        #: audio waits for the transcoder's first picture (the viewer cannot start before
        #: it, and the hub would otherwise count the audio as an audio-only stream)
        self._awaiting_video = False

    def __repr__(self) -> str:
        return f"<PushPublisher {self.label} -> {self.channel_name} {self.state.value}>"

    @property
    def read_timeout(self) -> float:
        """How long the adapter may wait for the next bytes before giving up."""
        limits = self.ingest.limits
        return limits.sniff_timeout if self.state is PushState.SNIFFING else limits.idle_timeout

    # -- the channel -----------------------------------------------------------------------

    def claim(self) -> Channel:
        """Take the channel (resuming its broadcast if it waits in the reconnect grace).
        :class:`ChannelBusy` if someone else publishes, unless that is an earlier
        connection of this same uploader which this one replaces (``takeover``)."""
        if self.channel is not None:
            return self.channel
        channel = self.ingest.registry.open(self.channel_name)
        try:
            channel.claim(self)
        except ChannelBusy:
            current = channel.publisher
            if not (self._takeover and isinstance(current, PushPublisher) and current._takeover):
                self.ingest.registry.forget_if_idle(channel)
                raise
            # The browser came back on a new socket while the old one still looks open
            # (a silent network drop): the old one is treated as lost, this one resumes.
            current.superseded()
            channel.claim(self)
        self.channel = channel
        self.ingest.stats.started += 1
        log.info("%s: publishing to %s", self.label, channel.name)
        return channel

    def disconnect(self, reason: str) -> None:
        """An operator stopped the broadcast: end it and hang up."""
        if self.state is PushState.ENDED:
            return
        log.warning("%s: disconnected: %s", self.label, reason)
        self._end(release=True)
        self._close(reason)

    def superseded(self) -> None:
        """A newer connection of the same uploader takes over: this one is lost."""
        if self.state is PushState.ENDED:
            return
        log.info("%s: replaced by a newer connection", self.label)
        self._end(release=False)
        self._close("replaced by a newer connection")

    # -- bytes in --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Container bytes, in order. Raises :class:`ProtocolError` (the adapter then
        calls :meth:`fail`) or :class:`ChannelBusy` (claimed on the first sniffed bytes)."""
        if self.state is PushState.ENDED or not data:
            return
        self.bytes_in += len(data)
        self.ingest.stats.bytes_in += len(data)
        if not self._bucket.spend(now, len(data)):
            raise RateExceeded(
                f"faster than the limit of {self.ingest.limits.max_bitrate // 1000} kbit/s"
            )
        if self._demuxer is None:
            self._prefix += data
            kind = sniff(self._prefix[:SNIFF_BYTES])
            if kind is None:
                if len(self._prefix) >= SNIFF_BYTES:
                    raise UnsupportedContainer(
                        "unsupported or unrecognised container; "
                        "send WebM/Matroska, fragmented MP4, FLV or MPEG-TS"
                    )
                return
            self._demuxer = _open(kind)
            self._gate = TrackGate()
            self.kind = kind
            data, self._prefix = self._prefix, b""
            self.claim()
            self.state = PushState.PUBLISHING
            log.info("%s: %s stream", self.label, kind.value)
        self._route(self._gate.feed(self._demuxer.feed(data)))

    def _end_of_stream(self) -> None:
        """The container stream is complete: what the demuxer (a last PES) and the track
        gate still hold goes to the hub."""
        demuxer = self._demuxer
        if demuxer is None or self.channel is None or self.state is PushState.ENDED:
            return
        flush = getattr(demuxer, "flush", None)  # only where a frame's end is implicit
        items: list[Track | Frame] = flush() if flush is not None else []
        self._route(self._gate.feed(items) + self._gate.release())

    async def drain(self, timeout: float = 2.0) -> None:
        """Before a deliberate end: let the transcoder deliver what it still has."""
        try:
            self._end_of_stream()
        except ProtocolError:
            return  # the tail was broken; finish() ends the broadcast anyway
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            t = self._transcoder
            if t is None or t.frames_out + t.dropped + t.errors >= t.frames_in:
                break
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0)  # run the output callbacks it has scheduled

    def restart_container(self) -> None:
        """The uploader starts a new container stream on the same connection (a browser
        restarting its MediaRecorder): its timestamps start over, so the broadcast goes
        through the reconnect path, which puts the new timeline after the old one."""
        self._end_of_stream()
        self._close_transcoder()
        self._demuxer = None
        self._prefix = b""
        channel = self.channel
        if channel is None or self.state is PushState.ENDED:
            return
        self.state = PushState.SNIFFING
        channel.publisher_lost(self)
        channel.claim(self)

    def _route(self, items: list[Track | Frame]) -> None:
        channel = self.channel
        assert channel is not None
        for item in items:
            if isinstance(item, Track):
                if item.kind is TrackKind.VIDEO and item.codec in TRANSCODED_CODECS:
                    self._start_transcoder(item)
                    continue
                if item.kind is TrackKind.VIDEO:
                    self._close_transcoder()
                channel.set_track(item)
                continue
            self.frames_in += 1
            if item.track_id == VIDEO_TRACK_ID:
                self.video_frames_in += 1
            vp8 = self._vp8_track
            if vp8 is not None and item.track_id == vp8.id:
                assert self._transcoder is not None
                self._transcoder.feed(item)
            elif not self._awaiting_video:
                channel.add_frame(item)

    # -- VP8 -------------------------------------------------------------------------------

    def _start_transcoder(self, track: Track) -> None:
        if track == self._vp8_track:
            return
        self._close_transcoder()
        codec = track.codec.value.upper()
        busy = self.ingest.transcoding
        if len(busy) >= self.ingest.limits.max_transcodes:
            raise TranscodersBusy(
                f"the server is already transcoding {len(busy)} {codec} streams, its limit; "
                "try again later, or send H.264, VP9 or AV1"
            )
        log.info("%s: %s video is transcoded to H.264", self.label, codec)
        self._transcoder = self.ingest.transcoder(
            track, self._transcoded, f"{self.label} {codec}->H.264"
        )
        busy.add(self)
        self._vp8_track = track
        self._awaiting_video = True

    def _transcoded(self, items: list[Track | Frame]) -> None:
        """The transcoder's output, on the event loop."""
        channel = self.channel
        if channel is None or self.state is PushState.ENDED or self._transcoder is None:
            return
        try:
            for item in items:
                if isinstance(item, Track):
                    channel.set_track(item)
                else:
                    self._awaiting_video = False
                    channel.add_frame(item)
        except ProtocolError as exc:  # a frame the hub cannot carry ends this push
            self.fail(exc)
            self._close(str(exc))

    def _close_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        self.ingest.transcoding.discard(self)
        self._vp8_track = None
        self._awaiting_video = False
        if transcoder is not None:
            transcoder.close()

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """The stream ended on purpose (body complete, EOF, ``stop``): so does the broadcast.
        Raises :class:`UnsupportedContainer` if not even the container was recognised."""
        if self.state is PushState.ENDED:
            return
        if self._demuxer is None:
            raise UnsupportedContainer(
                "the stream ended before its container was recognised"
                if self._prefix
                else "empty stream"
            )
        self._end_of_stream()
        log.info("%s: stream ended (%d bytes, %d frames)", self.label, self.bytes_in,
                 self.frames_in)  # fmt: skip
        self.ingest.stats.completed += 1
        self._end(release=True)

    def lost(self, why: str) -> None:
        """The connection dropped (reset, timeout): the broadcast waits for a comeback."""
        if self.state is PushState.ENDED:
            return
        if self.channel is not None:
            log.info("%s: %s: publisher lost (%s)", self.label, self.channel.name, why)
            self.ingest.stats.lost += 1
        self._end(release=False)

    def fail(self, exc: Exception) -> None:
        """A protocol error or a refusal: logged; a broken stream ends its broadcast."""
        if self.state is PushState.ENDED:
            return
        if self.channel is None:
            self.ingest.stats.refused += 1
            log.warning("%s: refused: %s", self.label, exc)
        else:
            self.ingest.stats.failed += 1
            log.warning("%s: %s: stream error, closing: %s", self.label, self.channel.name, exc)
        self._end(release=True)

    def _end(self, *, release: bool) -> None:
        self.state = PushState.ENDED
        self._close_transcoder()
        self.ingest.publishers.discard(self)
        channel, self.channel = self.channel, None
        if channel is None:
            return
        if release:
            channel.release(self)
        else:
            channel.publisher_lost(self)
        self.ingest.registry.forget_if_idle(channel)


def _open(kind: ContainerKind) -> Demuxer:
    try:
        return open_demuxer(kind)
    except NotImplementedError:
        raise UnsupportedContainer(
            f"{kind.value} push is not supported by this server yet"
        ) from None
