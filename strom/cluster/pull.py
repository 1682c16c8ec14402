"""The pulling side: a node that does not ingest a channel follows it from an upstream.

The first counted viewer of channel X here (a WebSocket or RTMP player subscribing, an
LL-HLS playlist request), or a node downstream pulling X from this one, makes
:class:`PullManager` start one :class:`ChannelPull`: it asks the :class:`~strom.cluster.
locate.Locator` where X is, opens one WebSocket to that node's pull route and feeds what
arrives into the local hub as X's publisher: ``claim``, ``start_media`` with the
upstream's init segment, ``add_chunk`` with its chunk bytes (no remux),
``publisher_lost`` when the upstream stalls or the connection drops (the viewers see
``reconnecting`` for the reconnect grace), ``release`` when the broadcast ends. A lost
upstream is located again and reconnected with backoff. The pull stops ``linger``
seconds after the last local viewer (and the last downstream pull) went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from strom.cluster import keys, wire
from strom.cluster.locate import Locator
from strom.live.channel import Channel, ChannelBusy, ChannelState
from strom.live.registry import Registry
from strom.settings import Settings, section, setting

log = logging.getLogger(__name__)

#: where a node serves its channels to pullers
PULL_PATH = "/internal/pull/{channel}"


@dataclass(frozen=True)
class PullLimits:
    #: seconds a pull outlives the last viewer here
    linger: float = setting("pull_linger")
    #: seconds to connect to an upstream
    connect_timeout: float = 5.0
    #: first and longest wait before locating and connecting again
    retry_min: float = 0.2
    retry_max: float = 3.0
    #: seconds an LL-HLS request waits for a channel being pulled to start here
    hls_wait: float = 5.0
    #: channels pulled at once (a viewer asking for made-up channel names must not make
    #: this node open a connection upstream for each)
    max_pulls: int = 1000
    wire: wire.WireLimits = field(default_factory=wire.WireLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> PullLimits:
        return section(cls, settings)


class ChannelPull:
    """One channel followed from an upstream: the channel's publisher in this hub."""

    def __init__(
        self,
        manager: PullManager,
        name: str,
    ) -> None:
        self._manager = manager
        self.name = name
        self.upstream: str | None = None
        #: set while the channel is live here from this pull; ``started`` once it was
        self.live = asyncio.Event()
        self.started = False
        self._start: wire.Start | None = None
        #: the upstream whose START this pull last followed
        self._followed: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<ChannelPull {self.name} from {self.upstream}>"

    # -- the Publisher protocol --------------------------------------------------------------

    def disconnect(self, reason: str) -> None:
        log.info("pull %s: stopped: %s", self.name, reason)
        self._manager.drop(self.name)

    # -- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        channel = self._manager.registry.get(self.name)
        if channel is None:
            return
        if channel.publisher is self:
            channel.release(self)
        elif channel.state is ChannelState.RECONNECTING and channel.origin is not None:
            channel.close()  # stalled under this pull: nobody is left to wait for it
        if channel.publisher is None:
            channel.origin = None
        self._manager.registry.forget_if_idle(channel)

    async def _run(self) -> None:
        limits = self._manager.limits
        delay = limits.retry_min
        while not self._stopping:
            url = await self._manager.locator.locate(self.name)
            if url is not None:
                self.upstream = url
                try:
                    if await self._follow(url):
                        delay = limits.retry_min
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("pull %s from %s: %s", self.name, url, exc or type(exc).__name__)
                except wire.PullProtocolError as exc:
                    log.warning("pull %s from %s: bad data: %s", self.name, url, exc)
                except Exception:  # a bug here must not end the pull for good
                    log.exception("pull %s from %s failed; trying again", self.name, url)
                self._lost()
            await asyncio.sleep(delay)
            delay = min(delay * 2, limits.retry_max)

    async def _follow(self, url: str) -> bool:
        """Follow the channel at ``url`` until the connection ends; whether media came."""
        manager = self._manager
        decoder = wire.PullDecoder(manager.limits.wire)
        got_media = False
        async with manager.session.ws_connect(
            url + PULL_PATH.format(channel=self.name),
            headers=keys.authorization(manager.secret),
            max_msg_size=manager.limits.wire.max_chunk_bytes + 4096,
            heartbeat=10.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
        ) as ws:
            log.info("pull %s: following %s", self.name, url)
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.BINARY:
                    break
                event = decoder.receive_message(msg.data)
                if event is not None:
                    got_media |= isinstance(event, wire.Start)
                    self.apply(event, url)
        log.info("pull %s: upstream %s closed the connection", self.name, url)
        return got_media

    # -- events into the hub ----------------------------------------------------------------

    def _channel(self) -> Channel:
        return self._manager.registry.open(self.name)

    def apply(self, event: wire.Event, url: str) -> None:
        """One event from the upstream at ``url``, into the local hub."""
        channel = self._channel()
        if isinstance(event, wire.ChunkArrived):
            if channel.publisher is self:
                channel.frames_in += len(event.chunk.frames)
                channel.bytes_in += len(event.chunk.data)
                channel.add_chunk(event.chunk)
        elif isinstance(event, wire.Start):
            carried_on = self._carried_on(channel, url, event)
            self._start = event
            if channel.publisher is not self and not self._claim(channel, url, event):
                return
            # A new timeline: after a stall, the upstream says RESUME when its publisher
            # came back to the same one, START when anything started again. Unless the
            # stalled broadcast itself comes from another node, which carried it on.
            channel.start_media(event.tracks, event.init_segment, resume=carried_on)
            self._followed = url
            self.started = True
            self.live.set()
        elif event.kind is wire.Kind.STALL:
            self.live.clear()
            channel.publisher_lost(self)
        elif event.kind is wire.Kind.RESUME:
            start = self._start
            if start is not None and channel.publisher is None and self._claim(channel, url, start):
                channel.start_media(start.tracks, start.init_segment)
                self.live.set()
        else:  # END
            self.live.clear()
            self._end(channel)

    def _carried_on(self, channel: Channel, url: str, start: wire.Start) -> bool:
        """Is ``start`` the stalled broadcast going on at another node (its publisher
        reconnected there within the grace, :class:`~strom.live.channel.CarriedOver`)?
        The same broadcast (its start travels with it) from another node than the one
        this pull followed: its timeline continues, and the viewers here resume. From the
        same node, a START means its source started over."""
        return (
            channel.state is ChannelState.RECONNECTING
            and channel.publisher is None
            and url != self._followed
            and channel.started_at is not None
            and start.started_at == channel.started_at
        )

    def _claim(self, channel: Channel, url: str, start: wire.Start) -> bool:
        if channel.publisher is not None:
            log.warning("pull %s: the channel is published here; not pulling it", self.name)
            self._manager.drop(self.name)
            return False
        resuming = channel.state is ChannelState.RECONNECTING
        channel.origin = url
        try:
            channel.claim(self)
        except ChannelBusy:  # pragma: no cover - checked just above
            return False
        if not resuming:
            # The broadcast is the upstream's: its number and start travel with it.
            channel.broadcast_id = start.broadcast_id
            channel.started_at = start.started_at or channel.started_at
        return True

    def _end(self, channel: Channel) -> None:
        if channel.publisher is self:
            channel.release(self)
        elif channel.state is ChannelState.RECONNECTING and channel.publisher is None:
            channel.close()
        if channel.publisher is None:
            channel.origin = None

    def _lost(self) -> None:
        """The connection to the upstream is gone: a stall here, as for a dropped
        publisher (the viewers wait ``reconnect_grace`` for the pull to come back)."""
        self.live.clear()
        channel = self._manager.registry.get(self.name)
        if channel is not None and channel.publisher is self:
            channel.publisher_lost(self)


class PullManager:
    """The channels this node follows from upstreams, one pull each, on demand."""

    def __init__(
        self,
        registry: Registry,
        locator: Locator,
        secret: bytes,
        limits: PullLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.locator = locator
        self.secret = secret
        self.limits = limits
        self._clock = clock
        self._pulls: dict[str, ChannelPull] = {}
        self._held: Counter[str] = Counter()
        #: channel -> until when (clock) an LL-HLS request keeps it wanted
        self._hls_until: dict[str, float] = {}
        self._linger: dict[str, asyncio.TimerHandle] = {}
        self._session: aiohttp.ClientSession | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self.started_total = 0
        registry.audience_listeners.append(self._audience)
        registry.listeners.append(self._owner_changed)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=self.limits.connect_timeout)
            )
        return self._session

    # -- demand -----------------------------------------------------------------------------

    def _audience(self, channel: Channel) -> None:
        self._review(channel.name)

    def _owner_changed(self, channel: Channel) -> None:
        """A broadcast ingested here went on at another node (Channel.moved): whoever
        follows it here gets it from there now. A channel pulled here whose publisher
        came here (it carried the broadcast on): nothing left to pull."""
        name = channel.name
        pull = self._pulls.get(name)
        if channel.origin is None:
            if pull is not None and channel.publisher not in (None, pull):
                log.info("pull %s: published here now; stopping the pull", name)
                self.drop(name)
        elif channel.publisher is None and channel.state is ChannelState.RECONNECTING:
            self._review(name)

    def hold(self, channel: str) -> None:
        """A downstream node pulls ``channel`` from this one."""
        self._held[channel] += 1
        self._review(channel)

    def let_go(self, channel: str) -> None:
        self._held[channel] -= 1
        if self._held[channel] <= 0:
            del self._held[channel]
        self._review(channel)

    async def touch(self, channel: str) -> None:
        """An LL-HLS request for ``channel``: it is wanted for ``linger`` seconds more.
        A pull that has not brought the channel yet (a cold start) is waited for, up to
        ``hls_wait`` seconds, so the first request finds the playlist."""
        self._hls_until[channel] = self._clock() + self.limits.linger
        self._review(channel)
        pull = self._pulls.get(channel)
        if pull is None:
            self._hls_until.pop(channel, None)  # not pulled here: nothing to keep
            return
        if pull.started:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pull.live.wait(), self.limits.hls_wait)

    def _held_here(self, name: str) -> bool:
        """Someone is subscribed: a counted viewer here, or a node downstream."""
        channel = self.registry.get(name)
        return bool((channel is not None and channel.viewers) or self._held[name])

    def _hls_left(self, name: str) -> float:
        """Seconds the last LL-HLS request keeps ``name`` wanted."""
        return self._hls_until.get(name, 0.0) - self._clock()

    def _wanted(self, name: str) -> bool:
        return self._held_here(name) or self._hls_left(name) > 0

    def _review(self, name: str) -> None:
        held, hls_left = self._held_here(name), self._hls_left(name)
        if (held or hls_left > 0) and name not in self._pulls and not self._ingested_here(name):
            if len(self._pulls) >= self.limits.max_pulls:
                log.warning("pull %s: not started, %d pulls already", name, len(self._pulls))
                return
            self._start(name)
        if held:
            timer = self._linger.pop(name, None)
            if timer is not None:
                timer.cancel()
        elif name in self._pulls and name not in self._linger:
            # Look again when the linger (or the last LL-HLS request's hold) is over.
            delay = hls_left if hls_left > 0 else self.limits.linger
            loop = asyncio.get_running_loop()
            self._linger[name] = loop.call_later(delay, self._linger_over, name)

    def _ingested_here(self, name: str) -> bool:
        channel = self.registry.get(name)
        if channel is None or channel.origin is not None:
            return False
        # A local publisher, or a local one's broadcast waiting for it to come back.
        return channel.publisher is not None or channel.state is ChannelState.RECONNECTING

    def _linger_over(self, name: str) -> None:
        self._linger.pop(name, None)
        if self._wanted(name):
            self._review(name)  # LL-HLS players still ask: look again later
            return
        log.info("pull %s: no viewer left; stopping", name)
        self.drop(name)

    def _start(self, name: str) -> None:
        pull = ChannelPull(self, name)
        self._pulls[name] = pull
        self.started_total += 1
        log.info("pull %s: starting (wanted here)", name)
        pull.start()

    def drop(self, name: str) -> None:
        """Stop pulling ``name`` now."""
        pull = self._pulls.pop(name, None)
        self._hls_until.pop(name, None)
        timer = self._linger.pop(name, None)
        if timer is not None:
            timer.cancel()
        if pull is not None:
            task = asyncio.get_running_loop().create_task(pull.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    # -- the node ---------------------------------------------------------------------------

    async def stop(self) -> None:
        for name in list(self._pulls):
            self.drop(name)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        with contextlib.suppress(ValueError):
            self.registry.audience_listeners.remove(self._audience)
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self._owner_changed)
        if self._session is not None:
            await self._session.close()

    def metrics(self) -> dict[str, object]:
        return {
            "active": len(self._pulls),
            "started_total": self.started_total,
            "channels": {n: p.upstream for n, p in sorted(self._pulls.items())},
        }
