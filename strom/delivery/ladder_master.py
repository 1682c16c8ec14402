"""``/live/{channel}/master.m3u8``: the HLS master playlist of a channel and its ladder.

The source (passed through, ``index.m3u8``) comes first, then each rendition of the
quality ladder that is live now (``../alice~480p/index.m3u8``: a channel of its own,
:mod:`strom.ladder`), each with its ``BANDWIDTH``, ``RESOLUTION`` and ``CODECS`` so that
hls.js and Safari choose and switch between them. Without a ladder it lists the source
alone, so a player may always start here.

On a node that pulls the channel from another (an edge), the renditions are channels
live on that other node: :class:`LadderFollower` pulls the ones the site's live map lists,
on demand like the source, so that the master playlist (and the MPD) list them here too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers
from strom.delivery.hls import PLAYLIST_CONTENT_TYPE
from strom.errors import ApiError
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.ladder import (
    Rung,
    Variant,
    master_playlist,
    parse_rungs,
    rendition_name,
    split_rendition,
)
from strom.media.model import TrackKind
from strom.settings import Settings

_HEADERS = {**cache_headers(AnswerKind.LIVE_PLAYLIST), "Content-Type": PLAYLIST_CONTENT_TYPE}
_OFFLINE = cache_headers(AnswerKind.OFFLINE)
#: what a variant's peak is over its average (x264's VBV and the container)
_PEAK = 1.2
#: the audio a variant carries, when the source's bitrate is not known yet
_AUDIO_GUESS = 128_000


def _variant(channel: Channel, uri: str, video_bitrate: int, name: str) -> Variant | None:
    tracks = sorted(channel.tracks.values(), key=lambda t: t.id)
    video = next((t for t in tracks if t.kind is TrackKind.VIDEO), None)
    if not channel.live or video is None:
        return None
    measured = round(channel.stats.bitrate)
    audio = _AUDIO_GUESS if any(t.kind is TrackKind.AUDIO for t in tracks) else 0
    bandwidth = max(measured, video_bitrate + audio)
    return Variant(
        uri=uri,
        bandwidth=int(bandwidth * _PEAK),
        width=video.width,
        height=video.height,
        codecs=",".join(t.codec_string for t in tracks),
        name=name,
    )


class LadderMaster:
    """Master playlists of the registry's channels."""

    def __init__(self, registry: Registry, rungs: tuple[Rung, ...]) -> None:
        self.registry = registry
        self.rungs = rungs

    @classmethod
    def from_settings(cls, registry: Registry, settings: Settings) -> LadderMaster:
        return cls(registry, parse_rungs(settings.ladder_renditions))

    def variants(self, name: str) -> list[Variant]:
        """The source and its live renditions, best first (none: the source is not live)."""
        source = self.registry.get(name)
        top = _variant(source, "index.m3u8", 0, "Source") if source is not None else None
        if top is None:
            return []
        found = [top]
        for rung in self.rungs:
            rendition = self.registry.get(rendition_name(name, rung))
            if rendition is not None:
                uri = f"../{rendition.name}/index.m3u8"
                variant = _variant(rendition, uri, rung.bitrate, rung.name)
                if variant is not None:
                    found.append(variant)
        return found

    def answer(self, name: str) -> web.Response:
        variants = self.variants(name)
        if not variants:
            raise ApiError(404, "channel is not live", headers=_OFFLINE)
        return web.Response(body=master_playlist(variants).encode(), headers=_HEADERS)


class LadderFollower:
    """Pulls, on a node that does not ingest a channel, the renditions of its ladder that
    are live on other nodes, when a player asks for its master playlist or MPD: as an
    LL-HLS request wants a channel (``touch``: a pull on demand, waited for on a cold
    start, let go a linger time after the last request). A rendition nobody asks for
    again is let go: an HLS player asks for the master once, then for the playlist of
    the one it plays; a DASH player's MPD reloads keep them all.

    ``live_elsewhere`` names the channels live on the other nodes (the live map's
    snapshot); who has which renditions is worked out from it at most once every
    ``refresh`` seconds, not on every request (MPDs are reloaded twice a second)."""

    def __init__(
        self,
        registry: Registry,
        live_elsewhere: Callable[[], Iterable[str]],
        touch: Callable[[str], Awaitable[None]],
        refresh: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._live_elsewhere = live_elsewhere
        self._touch = touch
        self._refresh = refresh
        self._clock = clock
        self._renditions: dict[str, list[str]] = {}
        self._read_at: float | None = None

    async def follow(self, name: str) -> None:
        here = self.registry.get(name)
        if here is not None and here.origin is None and here.live:
            return  # ingested here: its ladder is here too
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh:
            self._read_at = now
            found: dict[str, list[str]] = {}
            for other in self._live_elsewhere():
                parts = split_rendition(other)
                if parts is not None:
                    found.setdefault(parts[0], []).append(other)
            self._renditions = found
        wanted = self._renditions.get(name)
        if wanted:
            await asyncio.gather(*(self._touch(w) for w in wanted))
