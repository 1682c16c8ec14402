"""The registry of channels this process knows: the live ones and the ones being waited for."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from strom.live.channel import Channel, HubLimits
from strom.live.refusals import PublishRefusals
from strom.media.ladder import audience_name
from strom.settings import Settings

log = logging.getLogger(__name__)


class StreamKeyResolver(Protocol):
    """Maps a stream key to the channel it publishes to (``None``: unknown key)."""

    async def resolve(self, key: str) -> str | None: ...


class PublishAdmission(Protocol):
    """Whether a publish to a channel may start here, asked by every ingest door after
    the stream key and before :meth:`Channel.claim`: raises
    :class:`~strom.errors.PublishRefused` with the reason (another node ingests it, this
    node takes no publishers). A site of several nodes plugs its rule in
    (:mod:`strom.cluster`)."""

    async def admit(self, channel: str) -> None: ...


class AdmitAll:
    """One node on its own: :meth:`Channel.claim` alone decides."""

    async def admit(self, channel: str) -> None:
        return None


class StaticStreamKeys:
    """Keys from configuration (``--stream-key NAME=KEY``): the single-streamer setup."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = [(name, key.encode()) for name, key in keys.items()]
        self.names = sorted(keys)

    async def resolve(self, key: str) -> str | None:
        found = None
        candidate = key.encode()
        for name, secret in self._keys:
            # Compare against every key in constant time: no timing hint about any of them.
            if hmac.compare_digest(candidate, secret):
                found = name
        return found


class Registry:
    def __init__(
        self,
        limits: HubLimits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._channels: dict[str, Channel] = {}
        #: the ladder renditions (``alice~480p``) this process has of each source
        self._renditions: dict[str, set[str]] = {}
        self._limits = limits or HubLimits()
        self._clock = clock
        #: called with a channel whenever its state changes (live, offline, ...)
        self.listeners: list[Callable[[Channel], None]] = []
        #: asked before a publisher claims a channel (the site's rule; see :meth:`admit`)
        self.admission: PublishAdmission = AdmitAll()
        #: called with a channel the registry forgot (whoever keeps something per channel
        #: lets it go)
        self.forget_listeners: list[Callable[[Channel], None]] = []
        #: called with a channel when a counted viewer subscribes or leaves
        self.audience_listeners: list[Callable[[Channel], None]] = []
        #: why a channel's last publish was refused (its dashboard shows it)
        self.refusals = PublishRefusals()

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        return cls(
            HubLimits(
                gop_cache_max_bytes=settings.gop_cache_max_bytes,
                max_viewers=settings.max_viewers_per_channel,
                coalesce_audio=settings.coalesce_audio,
                reconnect_grace=settings.reconnect_grace,
            )
        )

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    async def admit(self, name: str) -> None:
        """May a publisher here claim ``name``? :class:`~strom.errors.PublishRefused` if
        not. Every ingest door asks, between the stream key and :meth:`Channel.claim`."""
        await self.admission.admit(name)

    def open(self, name: str) -> Channel:
        """The channel called ``name``, created (offline) if this process has none yet."""
        channel = self._channels.get(name)
        if channel is None:
            channel = Channel(
                name,
                self._limits,
                clock=self._clock or time.time,
                on_state=self._state_changed,
                on_idle=self.forget_if_idle,
                on_audience=self._audience_changed,
            )
            self._channels[name] = channel
            source = audience_name(name)
            if source != name:
                self._renditions.setdefault(source, set()).add(name)
        return channel

    def audience(self, name: str) -> int:
        """The counted viewers of ``name`` here, its ladder's renditions' included: a
        viewer switched to ``alice~480p`` still watches alice."""
        names = (name, *self._renditions.get(name, ()))
        return sum(c.viewers for n in names if (c := self._channels.get(n)) is not None)

    def _state_changed(self, channel: Channel) -> None:
        if channel.live:  # an older refusal is no news any more
            self.refusals.accepted(channel.name)
        self._tell(self.listeners, channel, "state")

    def _audience_changed(self, channel: Channel) -> None:
        self._tell(self.audience_listeners, channel, "audience")

    def forget_if_idle(self, channel: Channel) -> None:
        """Drop an offline channel nobody watches, so memory follows real use. (Its
        channel tells it when a broadcast ended with nobody left; whoever unsubscribes
        or releases a channel calls it too.) Its LL-HLS playlist goes with it."""
        if channel.idle and self._channels.get(channel.name) is channel:
            del self._channels[channel.name]
            source = audience_name(channel.name)
            if (renditions := self._renditions.get(source)) is not None:
                renditions.discard(channel.name)
                if not renditions:
                    del self._renditions[source]
            self._tell(self.forget_listeners, channel, "forget")

    @staticmethod
    def _tell(listeners: list[Callable[[Channel], None]], channel: Channel, what: str) -> None:
        for listener in list(listeners):
            try:
                listener(channel)
            except Exception:  # a listener's bug must not break the stream
                log.exception("channel %s: %s listener failed", channel.name, what)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))

    def live(self) -> list[Channel]:
        return [c for c in self._channels.values() if c.live]

    def metrics(self) -> list[dict[str, object]]:
        return [
            {
                "name": c.name,
                "state": c.state.value,
                "origin": c.origin,
                "viewers": c.viewers,
                "subscribers": len(c.subscribers),
                "viewers_by_transport": c.viewers_by_transport(),
                "frames_in": c.frames_in,
                "bytes_in": c.bytes_in,
                # the publisher's stream as received here, over the last few seconds
                "bitrate": round(c.stats.bitrate) if c.live else 0,
                "fps": round(c.stats.fps, 2) if c.live else 0.0,
                "chunks_out": c.chunks_out,
            }
            for c in self._channels.values()
        ]
