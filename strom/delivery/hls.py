"""LL-HLS delivery: each live channel's rendition, and ``/live/{channel}/index.m3u8`` with
its media over HTTP.

:class:`HlsRendition` is a subscriber of one channel: it feeds the hub's CMAF chunks (the
very bytes every viewer gets) into the sans-IO :class:`~strom.media.hls.LiveHlsStream`,
which cuts parts and segments and renders the playlist, and it wakes the requests waiting
for a part when one completes. :class:`HlsDelivery` attaches a rendition to every channel
that goes live (internal: not an audience) and answers the HTTP requests.

Blocking playlist reloads (``_HLS_msn``/``_HLS_part``) and blocking preload-hinted part
requests wait, without polling, until the channel completes the part asked for
(draft-pantos-hls-rfc8216bis section 6.2.5.2). Requests for media too far ahead are
refused with 400, a wait longer than three target durations ends with 503 (section 6.2.6).

Media URLs are ``/live/{channel}/{rendition}/part12.3.m4s``: ``rendition`` is a random
token of this broadcast's rendition, so names never repeat across broadcasts (sequence
numbers restart) nor across restarts of the node, and parts, segments and init segments
are cached for good by any HTTP cache in front (:mod:`strom.delivery.caching`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from strom.delivery.answer import Answer, respond
from strom.delivery.caching import AnswerKind, cache_headers
from strom.delivery.chunked import stream_segment
from strom.delivery.hls_counts import HlsCounts
from strom.delivery.track_views import TrackViews
from strom.errors import ApiError, ProtocolError
from strom.live.channel import Channel, ChannelState, Subscriber
from strom.media.hls import HlsSettings, LiveHlsStream, ResourceKind

if TYPE_CHECKING:
    from strom.live.chunk import Chunk
    from strom.live.registry import Registry
    from strom.media.model import Track
    from strom.settings import Settings

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
PLAYLIST_CONTENT_TYPE = PLAYLIST_TYPE + "; charset=utf-8"
#: how often a quiet channel's blocked requests look at their deadlines
_RECHECK_SECONDS = 0.5
#: how long a blocking request may wait, in target durations (spec: 3)
_BLOCK_TARGET_DURATIONS = 3.0
#: how long an ended broadcast's playlist outlives its channel, in target durations: a
#: player reloads it about once a target duration (rfc8216bis 6.3.4), and its last reload
#: must find the last segment and EXT-X-ENDLIST, not a 404
_ENDED_KEEP_TARGET_DURATIONS = 3.0
#: random bytes of a rendition's token (its directory in media URLs)
_TOKEN_BYTES = 5
_OFFLINE = cache_headers(AnswerKind.OFFLINE)
_MEDIA_HEADERS = {**cache_headers(AnswerKind.LIVE_MEDIA), "Content-Type": "video/mp4"}


def _query_int(request: web.BaseRequest, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return int(raw)


class HlsRendition(Subscriber):
    """The LL-HLS rendition of one channel's broadcast: across stalls, and across codec
    changes (a discontinuity and a new init segment), until the broadcast ends."""

    def __init__(self, channel: Channel, settings: HlsSettings, first_msn: int = 0) -> None:
        self.channel = channel
        #: blocking requests waiting on this rendition now (the delivery counts them)
        self.waiting = 0
        #: when a completed part (or the end) last woke the blocked requests
        self.woken_at = 0.0
        #: the directory of this rendition's media in URLs, unique per broadcast
        self.token = secrets.token_hex(_TOKEN_BYTES)
        self.stream = LiveHlsStream(settings, uri_prefix=f"{self.token}/", first_msn=first_msn)
        self._started = False
        #: the blocked requests' futures, woken together by the next part
        self._waiters: list[asyncio.Future[None]] = []
        self._recheck: asyncio.TimerHandle | None = None
        #: the playlist answers (plain, blocking) of the last revision asked for:
        #: (revision, body, headers)
        self._answers: list[tuple[int, bytes, dict[str, str]] | None] = [None, None]
        #: the single-track views of the segments (LL-DASH), some sent as they grow
        self.views = TrackViews(self.stream)
        #: the tracks of each init segment version
        self.tracks: dict[int, tuple[Track, ...]] = {}

    def on_live(self, channel: Channel) -> None:
        assert channel.init_segment is not None
        if self._started:
            # New codec parameters (or a publisher back with other ones): a new timeline.
            self.stream.discontinuity()
        self._started = True
        self.stream.set_init(channel.init_segment)
        # What each init segment still served holds (the LL-DASH manifest names codecs).
        self.tracks = {v: t for v, t in self.tracks.items() if self.stream.init_segment(v)}
        self.tracks[self.stream.init_version] = tuple(channel.tracks.values())
        self.views.update()  # a segment being sent as it grows may have been closed

    def on_chunk(self, chunk: Chunk) -> None:
        stream = self.stream
        before = stream.revision
        try:
            stream.add_chunk(
                chunk.data, chunk.time, chunk.keyframe, chunk.received, end=chunk.end or None
            )
        except ProtocolError as exc:
            # A part past its byte limit: the chunk times stopped advancing. The
            # rendition ends (players see the end, memory stays bounded); the viewers of
            # the other deliveries are not affected.
            log.warning("channel %s: LL-HLS ends: %s", self.channel.name, str(exc))
            self.on_end()
            return
        if stream.revision != before:
            self._wake()
        self.views.update()

    def on_end(self) -> None:
        self.stream.end()
        self._wake()
        self.views.update()
        self.channel.unsubscribe(self)

    def let_go(self) -> None:
        """End every answer of a growing segment (a stopping node), now and from now on."""
        self.views.let_go()

    def _wake(self) -> None:
        self.woken_at = time.perf_counter()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` (re-checked whenever a part completes) or ``timeout``.

        Every blocked request of the rendition waits on a future of its own, all woken
        together by the part that completes (a hundred viewers' reloads cost a hundred
        callbacks, no task or timer each); one shared timer wakes them now and then while
        the channel is quiet, so each can see its own deadline pass."""
        if ready():
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            if self._recheck is None or self._recheck.cancelled():
                self._recheck = loop.call_later(_RECHECK_SECONDS, self._on_recheck)
            await waiter
            if ready():
                return True
            if loop.time() >= deadline:
                return False

    def _on_recheck(self) -> None:
        self._recheck = None
        if self._waiters:
            self._wake()

    def playlist_answer(self, blocking: bool) -> tuple[bytes, dict[str, str]]:
        """The playlist's body and headers, built once per revision (and kind): every
        viewer woken by a part gets the very same bytes."""
        hls = self.stream
        cached = self._answers[blocking]
        if cached is None or cached[0] != hls.revision:
            kind = AnswerKind.BLOCKING_PLAYLIST if blocking else AnswerKind.LIVE_PLAYLIST
            headers = {
                **cache_headers(kind),
                "ETag": f'"{self.token}.{hls.revision}"',
                "Content-Type": PLAYLIST_CONTENT_TYPE,
            }
            body = hls.playlist().encode()  # rendered once per revision
            cached = self._answers[blocking] = (hls.revision, body, headers)
        return cached[1], cached[2]


class HlsDelivery:
    """The LL-HLS renditions of the registry's channels, and their HTTP answers."""

    def __init__(self, registry: Registry, settings: HlsSettings | None = None) -> None:
        self._registry = registry
        self._settings = settings or HlsSettings()
        #: by channel name; an ended rendition is served (EXT-X-ENDLIST) for as long as
        #: the registry keeps its channel, and a few target durations after
        self._renditions: dict[str, HlsRendition] = {}
        #: by channel name: where the next broadcast's media sequence starts (after the
        #: last one's), so a cached blocking reload never answers for a later broadcast
        self._next_msn: dict[str, int] = {}
        self.counts = HlsCounts()
        registry.listeners.append(self._on_state)
        registry.forget_listeners.append(self._on_forget)
        for channel in registry.live():
            self._on_state(channel)

    @classmethod
    def from_settings(cls, registry: Registry, settings: Settings) -> HlsDelivery:
        return cls(
            registry,
            HlsSettings(
                part_target=settings.hls_part_target,
                window_segments=settings.hls_window_segments,
            ),
        )

    def _on_state(self, channel: Channel) -> None:
        if channel.state is not ChannelState.LIVE:
            return
        current = self._renditions.get(channel.name)
        if (
            current is not None
            and current.channel is channel
            and not current.stream.ended
            and current in channel.subscribers
        ):
            return  # the same broadcast going on (a publisher came back)
        first_msn = self._next_msn.get(channel.name, 0)
        if current is not None:
            first_msn = max(first_msn, current.stream.next_msn)
        rendition = HlsRendition(channel, self._settings, first_msn)
        self._renditions[channel.name] = rendition
        channel.subscribe(rendition, internal=True)

    def _on_forget(self, channel: Channel) -> None:
        current = self._renditions.get(channel.name)
        if current is not None and current.channel is channel:
            self._next_msn[channel.name] = current.stream.next_msn
            if not current.stream.ended:
                del self._renditions[channel.name]
                return
            # The broadcast's players are still reading its end: keep it for their next
            # reloads, then let it go (memory follows real use).
            keep = _ENDED_KEEP_TARGET_DURATIONS * max(current.stream.target_duration, 2)
            asyncio.get_running_loop().call_later(keep, self._drop, channel.name, current)

    def let_go(self) -> None:
        """The node is stopping: the segments being sent as they grow end now (their
        players ask again elsewhere), so the HTTP server need not wait for them."""
        for rendition in self._renditions.values():
            rendition.let_go()

    def _drop(self, channel_name: str, rendition: HlsRendition) -> None:
        if self._renditions.get(channel_name) is rendition:  # not a later broadcast's
            del self._renditions[channel_name]

    async def _blocked(
        self, rendition: HlsRendition, ready: Callable[[], bool], timeout: float
    ) -> bool:
        """:meth:`HlsRendition.wait`, counted: the requests waiting now, the seconds each
        waited (for ``/metrics``)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        rendition.waiting += 1
        woken_before = rendition.woken_at
        try:
            ready_now = await rendition.wait(ready, timeout)
        finally:
            rendition.waiting -= 1
            self.counts.blocked.observe(loop.time() - start)
        if ready_now and rendition.woken_at != woken_before:  # it waited for a part
            self.counts.answered_after_part.observe(time.perf_counter() - rendition.woken_at)
        return ready_now

    def waiting(self) -> dict[str, int]:
        """Requests blocked now, by channel (about one per low-latency player)."""
        return {name: r.waiting for name, r in self._renditions.items()}

    def rendition(self, channel_name: str) -> HlsRendition | None:
        """The channel's rendition (see :meth:`_stream`), for the LL-DASH manifest."""
        found = self._stream(channel_name)
        return found[0] if found is not None else None

    def _stream(self, channel_name: str) -> tuple[HlsRendition, LiveHlsStream] | None:
        """The rendition of the channel's broadcast, or of its last one while it is kept
        after the end (a new broadcast going live replaces it)."""
        rendition = self._renditions.get(channel_name)
        if rendition is None:
            return None
        if rendition.channel is not self._registry.get(channel_name) and not (
            rendition.stream.ended
        ):
            return None
        return rendition, rendition.stream

    async def playlist(self, request: web.BaseRequest, channel_name: str) -> web.StreamResponse:
        return respond(await self.playlist_answer(request, channel_name))

    async def playlist_answer(
        self, request: web.BaseRequest, channel_name: str
    ) -> Answer | web.StreamResponse:
        """The media playlist now, or once it lists what ``_HLS_msn``/``_HLS_part`` ask."""
        found = self._stream(channel_name)
        if found is None:
            raise ApiError(404, "channel is not live", headers=_OFFLINE)
        rendition, hls = found
        msn = _query_int(request, "_HLS_msn")
        part = _query_int(request, "_HLS_part")
        if part is not None and msn is None:
            raise ApiError(400, "_HLS_part requires _HLS_msn")
        self.counts.requests["playlist" if msn is None else "blocking_playlist"] += 1
        if msn is not None:
            if hls.too_far_ahead(msn, part):
                raise ApiError(400, "_HLS_msn is too far ahead of the live edge")
            ready = await self._blocked(
                rendition, lambda: hls.ended or hls.has(msn, part), self._block_timeout(hls)
            )
            if not ready:
                raise ApiError(503, "the requested part did not become available in time")
        body, headers = rendition.playlist_answer(blocking=msn is not None)
        if headers["ETag"] in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return Answer(body, headers)

    async def media(
        self, request: web.BaseRequest, channel_name: str, token: str, name: str
    ) -> web.StreamResponse:
        return respond(await self.media_answer(request, channel_name, token, name))

    async def media_answer(
        self, request: web.BaseRequest, channel_name: str, token: str, name: str
    ) -> Answer | web.StreamResponse:
        """A part, segment or init segment of the rendition ``token`` (once complete, its
        bytes never change: cached for good)."""
        found = self._stream(channel_name)
        if found is None or found[0].token != token:
            raise ApiError(404, "not a part of the channel's current broadcast")
        rendition, hls = found
        if name.startswith("t"):
            return await self._track_media(request, rendition, name)
        resource = hls.parse_name(name)
        if resource is None:
            raise ApiError(404, "no such file")
        self.counts.requests[resource.kind.value] += 1
        if resource.kind is not ResourceKind.INIT and hls.pending(resource.msn, resource.part):
            # A preload-hinted part (or the next segment) requested before it exists:
            # block until it is complete, unless it is absurdly far ahead.
            if hls.too_far_ahead(resource.msn, resource.part):
                raise ApiError(404, "not available yet")
            await self._blocked(
                rendition,
                lambda: not hls.pending(resource.msn, resource.part),
                self._block_timeout(hls),
            )
        data = hls.get(resource)
        self.counts.bytes_sent += len(data) if data is not None else 0
        if data is None:
            raise ApiError(404, "no longer or not yet available")
        return Answer(data, _MEDIA_HEADERS)

    async def _track_media(
        self, request: web.BaseRequest, rendition: HlsRendition, name: str
    ) -> Answer | web.StreamResponse:
        """A file of one track (LL-DASH): an init segment, a complete segment, or the
        segment being written, sent as it grows; the one after it, asked for just before
        it begins, waits for it."""
        hls = rendition.stream
        found = rendition.views.parse_name(name)
        if found is None:
            raise ApiError(404, "no such file")
        view, growing, resource = found
        self.counts.requests[resource.kind.value] += 1
        data: bytes | memoryview | None
        if resource.kind is ResourceKind.INIT:
            data = view.init_segment(resource.version)
        else:
            msn = resource.msn
            if hls.is_past_window(msn) or hls.too_far_ahead(msn):
                raise ApiError(404, "no longer or not yet available")
            if not hls.started(msn):
                await self._blocked(
                    rendition, lambda: hls.ended or hls.started(msn), self._block_timeout(hls)
                )
            so_far = view.segment_so_far(msn)
            if so_far is None:
                raise ApiError(404, "not available yet")
            if not so_far[1]:
                return await stream_segment(request, growing, msn)
            data = so_far[0][0]
        if data is None:
            raise ApiError(404, "no longer or not yet available")
        self.counts.bytes_sent += len(data)
        return Answer(data, _MEDIA_HEADERS)

    @staticmethod
    def _block_timeout(hls: LiveHlsStream) -> float:
        # Until the first segment completes the target duration is a guess of 1 s.
        return _BLOCK_TARGET_DURATIONS * max(hls.target_duration, 2)
