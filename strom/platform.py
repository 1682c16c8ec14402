"""The multi-user site around the hub: who may publish where, what the directory shows,
and the broadcasts table kept in step with the channels' live state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from strom.live.channel import Channel, ChannelState
from strom.live.registry import Registry, StaticStreamKeys
from strom.media.model import TrackKind
from strom.store.errors import StoreError

if TYPE_CHECKING:
    from strom.notify import WebhookSender
    from strom.record.thumbnails import ThumbnailWorker
    from strom.store import ChannelInfo, Store

log = logging.getLogger(__name__)

#: a keyframe interval above this makes joins slow and LL-HLS segments long
MAX_GOOD_KEYFRAME_INTERVAL = 4.0


def _category(info: ChannelInfo | None) -> dict[str, str] | None:
    if info is None or info.category is None:
        return None
    return {"slug": info.category.slug, "name": info.category.name}


#: told a broadcast's database id once it is recorded: (channel, hub broadcast number
#: (:attr:`Channel.broadcast_id` when it went live), database id)
BroadcastListener = Callable[[Channel, int, int], None]


class Platform:
    def __init__(
        self,
        registry: Registry,
        store: Store | None,
        static_keys: StaticStreamKeys | None = None,
        thumbnails: ThumbnailWorker | None = None,
        *,
        webhooks: WebhookSender | None = None,
        node: str | None = None,
        heartbeat: float = 10.0,
    ) -> None:
        self.registry = registry
        self.store = store
        self.static_keys = static_keys
        self._static_names = frozenset(
            n.lower() for n in (static_keys.names if static_keys is not None else ())
        )
        self.thumbnails = thumbnails
        #: tells followers' webhooks when a channel goes live
        self.webhooks = webhooks
        #: this node's id, written on its broadcasts (whose they are after a crash)
        self.node = node
        #: seconds between the notes in the database that live broadcasts are still on
        #: air (with their peak viewers): after a crash they end at the last note
        self.heartbeat = heartbeat
        #: what the directory shows of each live channel (title, category...), kept
        #: current on go-live and on every edit, so listing needs no query
        self.infos: dict[str, ChannelInfo] = {}
        #: told each broadcast's database id (the recorder writes it into the recording)
        self.broadcast_listeners: list[BroadcastListener] = []
        self._broadcasts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        registry.listeners.append(self._on_state)

    def start(self) -> None:
        if self.store is not None and self.heartbeat > 0:
            self._heartbeat_task = asyncio.get_running_loop().create_task(self._beat())

    # -- publishing ------------------------------------------------------------------------

    async def resolve(self, key: str) -> str | None:
        """Stream key -> channel name: the static keys first, then the accounts."""
        if self.static_keys is not None:
            name = await self.static_keys.resolve(key)
            if name is not None:
                return name
        if self.store is not None:
            name = await self.store.resolve(key)
            if name is not None and name.lower() in self._static_names:
                # Start-up and sign-up keep this from happening; a node configured
                # differently from the one that created the account must not let it in.
                log.warning(
                    "channel %s: an account's key refused, a static channel has its name", name
                )
                return None
            return name
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self, channel: Channel) -> None:
        if self.store is None:
            return
        if channel.state is ChannelState.LIVE and channel.name not in self._broadcasts:
            self._broadcasts[channel.name] = -1  # started; id follows
            self._spawn(self._went_live(channel, channel.broadcast_id))
        elif channel.state is ChannelState.OFFLINE and channel.name in self._broadcasts:
            self._spawn(self._ended(channel.name, channel.peak_viewers))

    def broadcast_id(self, name: str) -> int | None:
        """The database id of ``name``'s current broadcast, once it is recorded."""
        found = self._broadcasts.get(name)
        return found if found is not None and found > 0 else None

    async def _went_live(self, channel: Channel, number: int) -> None:
        assert self.store is not None
        name = channel.name
        try:
            info = await self.store.channel(name)
            if info is None:  # a static channel without an account: nothing to record
                self._broadcasts.pop(name, None)
                return
            self.infos[name] = info
            broadcast_id = await self.store.start_broadcast(name, self.node)
            self._broadcasts[name] = broadcast_id
        except Exception:
            self._broadcasts.pop(name, None)
            log.exception("channel %s: could not record the broadcast start", name)
            return
        for listener in self.broadcast_listeners:
            try:
                listener(channel, number, broadcast_id)
            except Exception:
                log.exception("channel %s: a broadcast listener failed", name)
        if self.webhooks is not None:
            self.webhooks.went_live(name, info.title or name, channel.started_at or time.time())

    async def _ended(self, name: str, peak: int) -> None:
        assert self.store is not None
        # Wait for the start to be recorded if it is still in flight.
        for _ in range(50):
            if self._broadcasts.get(name) != -1:
                break
            await asyncio.sleep(0.1)
        broadcast_id = self._broadcasts.pop(name, None)
        self.infos.pop(name, None)
        if broadcast_id is None or broadcast_id < 0:
            return
        try:
            await self.store.end_broadcast(broadcast_id, peak)
        except Exception:
            log.exception("channel %s: could not record the broadcast end", name)

    async def _beat(self) -> None:
        """Every ``heartbeat`` seconds, one transaction: each broadcast on air here is
        seen now, with its peak viewers (a crash then loses at most one interval of
        both). A broadcast waiting for its publisher is not on air: after a crash it ends
        when its media stopped."""
        assert self.store is not None
        while True:
            await asyncio.sleep(self.heartbeat)
            peaks = {
                broadcast_id: channel.peak_viewers
                for channel in self.registry.live()
                if (broadcast_id := self._broadcasts.get(channel.name, -1)) > 0
            }
            try:
                await self.store.broadcasts_seen(peaks)
            except StoreError as exc:
                log.warning("broadcasts: heartbeat not recorded: %s", exc)
            except Exception:
                log.exception("broadcasts: heartbeat not recorded")

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        for channel in self.registry:
            if channel.name in self._broadcasts and self.store is not None:
                await self._ended(channel.name, channel.peak_viewers)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wants_recording(self, name: str) -> bool:
        """The streamer's recording switch (channels without an account: recorded)."""
        if self.store is None:
            return True
        info = await self.store.channel(name)
        return info is None or info.record_broadcasts

    def info_changed(self, info: ChannelInfo) -> None:
        """The streamer edited the channel: live views pick it up."""
        if info.username in self.infos:
            self.infos[info.username] = info

    # -- views -------------------------------------------------------------------------------

    def stream_card(self, channel: Channel) -> dict[str, Any]:
        info = self.infos.get(channel.name)
        video = next((t for t in channel.tracks.values() if t.kind is TrackKind.VIDEO), None)
        thumb = self.thumbnails.get(channel.name) if self.thumbnails is not None else None
        return {
            "username": channel.name,
            "title": (info.title if info is not None and info.title else channel.name),
            "category": _category(info),
            "viewers": channel.viewers,
            "started_at": channel.started_at,
            "thumbnail_url": (
                f"/thumbnails/{channel.name}.jpg?v={thumb.etag}" if thumb is not None else None
            ),
            "width": video.width if video else None,
            "height": video.height if video else None,
        }

    def streams(
        self,
        *,
        sort: str = "viewers",
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        cards = [self.stream_card(c) for c in self.registry.live()]
        if category:
            cards = [c for c in cards if c["category"] and c["category"]["slug"] == category]
        if query:
            q = query.casefold()
            cards = [
                c for c in cards if q in c["title"].casefold() or q in c["username"].casefold()
            ]
        if sort == "category":
            cards.sort(key=lambda c: ((c["category"] or {}).get("name", "~"), -c["viewers"]))
        else:
            cards.sort(key=lambda c: (-c["viewers"], c["username"]))
        return cards

    def live_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for channel in self.registry.live():
            cat = _category(self.infos.get(channel.name))
            if cat is not None:
                counts[cat["slug"]] = counts.get(cat["slug"], 0) + 1
        return counts

    def channel_view(
        self, name: str, info: ChannelInfo | None, followers: int = 0
    ) -> dict[str, Any]:
        channel = self.registry.get(name)
        live = channel is not None and channel.live
        last = info.last_broadcast if info is not None else None
        return {
            "username": name,
            "title": (info.title if info is not None and info.title else name),
            "description": info.description if info is not None else "",
            "category": _category(info),
            "live": live,
            "viewers": channel.viewers if channel is not None and live else 0,
            "started_at": channel.started_at if channel is not None and live else None,
            "last_broadcast": (
                {
                    "started_at": last.started_at.timestamp(),
                    "ended_at": (last.ended_at.timestamp() if last.ended_at else None),
                }
                if last is not None
                else None
            ),
            "follower_count": followers,
        }

    def health(self, name: str) -> dict[str, Any]:
        channel = self.registry.get(name)
        if channel is None or not channel.live:
            return {"live": False, "warnings": []}
        tracks = sorted(channel.tracks.values(), key=lambda t: t.id)
        video = next((t for t in tracks if t.kind is TrackKind.VIDEO), None)
        stats = channel.stats
        warnings = []
        if stats.keyframe_interval is not None and (
            stats.keyframe_interval > MAX_GOOD_KEYFRAME_INTERVAL
        ):
            warnings.append(
                f"Keyframe interval is {stats.keyframe_interval:.1f} s: set it to 2 s "
                "(OBS: Output → Keyframe Interval) so viewers start quickly."
            )
        if video is None:
            warnings.append("No video: viewers only hear audio.")
        if stats.fps and video is not None and stats.fps < 20:
            warnings.append(f"Only {stats.fps:.0f} frames per second reach the server.")
        return {
            "live": True,
            "codec": " / ".join(t.codec_string for t in tracks),
            "width": video.width if video else None,
            "height": video.height if video else None,
            "fps": round(stats.fps, 1),
            "bitrate_kbps": round(stats.bitrate / 1000),
            "keyframe_interval": (
                round(stats.keyframe_interval, 2) if stats.keyframe_interval else None
            ),
            "uptime": round(time.time() - (channel.started_at or time.time())),
            "viewers": channel.viewers,
            "warnings": warnings,
        }


def static_channel_names(keys: StaticStreamKeys | None) -> Sequence[str]:
    return keys.names if keys is not None else ()
