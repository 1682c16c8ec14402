"""What the directory, the channel pages and the dashboard show of the channels: cards of
the live ones (kept current without a query), channel views, stream health.

On a site of several nodes the directory also lists the channels live on the other nodes
and sums each channel's viewers over the nodes: :class:`OtherNodes` tells it what they
have (:class:`strom.cluster.LiveMap` over Redis; :class:`NoOtherNodes` on a node alone).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from strom.channels.rooms import OpenRooms
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.ladder import split_rendition
from strom.media.model import TrackKind
from strom.record.avatars import avatar_url
from strom.record.thumbnails import ThumbnailWorker
from strom.store import ChannelInfo, Store

#: a keyframe interval above this makes joins slow and LL-HLS segments long
MAX_GOOD_KEYFRAME_INTERVAL = 4.0
#: frames reaching the server below this share of the rate the streamer chose: a warning
LOW_FPS_SHARE = 0.85
#: with no chosen rate, fewer frames per second than this: a warning
LOW_FPS = 20.0

#: what a channel is, as the API, the pages and the event stream say (``state``)
LIVE, RECONNECTING, OFFLINE = "live", "reconnecting", "offline"


@dataclass(frozen=True)
class RemoteStream:
    """A channel live on another node of the site, as the directory lists it."""

    name: str
    #: the node that ingests it (its ``--node-url``)
    node_url: str
    started_at: float | None
    width: int | None
    height: int | None
    #: title and category, from the shared database (None: a static channel)
    info: ChannelInfo | None
    #: the version (ETag) of its live picture on the ingest node, if it has one yet
    thumbnail: str | None = None
    #: ``live``, or ``reconnecting`` while the broadcast waits for its publisher there
    state: str = LIVE


class OtherNodes(Protocol):
    """What the other nodes of the site have live, and their viewers."""

    def streams(self) -> Sequence[RemoteStream]:
        """The channels live on other nodes (ingested there)."""
        ...

    def viewers(self, name: str) -> int:
        """Viewers of ``name`` on the other nodes (this node's own not included)."""
        ...

    def thumbnail(self, name: str) -> str | None:
        """The version of ``name``'s live picture on the node that ingests it."""
        ...


class NoOtherNodes:
    """A node on its own."""

    def streams(self) -> Sequence[RemoteStream]:
        return ()

    def viewers(self, name: str) -> int:
        return 0

    def thumbnail(self, name: str) -> str | None:
        return None


def _thumbnail_url(name: str, etag: str | None) -> str | None:
    """The live picture's URL: any node answers it (the ingest node's, proxied), and the
    version in the query makes every new picture a new URL for caches."""
    return f"/thumbnails/{name}.jpg?v={etag}" if etag is not None else None


def display_title(name: str, info: ChannelInfo | None) -> str:
    """The stream title, empty when the streamer set none (channels made before titles
    started empty have their username as title: that is none too)."""
    title = info.title if info is not None else ""
    return "" if title == name else title


def _category(info: ChannelInfo | None) -> dict[str, str] | None:
    if info is None or info.category is None:
        return None
    return {"slug": info.category.slug, "name": info.category.name}


def _avatar(name: str, info: ChannelInfo | None) -> str | None:
    """The streamer's small avatar (64 px, for cards), None without one."""
    return avatar_url(name, info.avatar_etag if info is not None else None, small=True)


def _on(channel: Channel) -> bool:
    """The channel's broadcast is on here: live, or waiting for its publisher."""
    return channel.public_state != OFFLINE


class Directory:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        thumbnails: ThumbnailWorker,
        static_channels: Sequence[str] = (),
        *,
        others: OtherNodes | None = None,
        rooms: OpenRooms | None = None,
    ) -> None:
        self.registry = registry
        #: the rest of the site (nothing, on a node alone)
        self.others: OtherNodes = others or NoOtherNodes()
        self.store = store
        self.thumbnails = thumbnails
        #: channels without an account (``--stream-key NAME=KEY``)
        self.static_channels = static_channels
        #: open rooms (``--open-rooms``): channels without an account, named by their
        #: first publisher
        self.rooms = rooms
        #: what the directory shows of each live channel (title, category...), kept
        #: current on go-live and on every edit, so listing needs no query
        self.infos: dict[str, ChannelInfo] = {}

    def remember(self, info: ChannelInfo) -> None:
        """A channel went live: its title and category, as listed from now on."""
        self.infos[info.username] = info

    def forget(self, name: str) -> None:
        self.infos.pop(name, None)

    def info_changed(self, info: ChannelInfo) -> None:
        """The streamer edited the channel: live views pick it up."""
        if info.username in self.infos:
            self.infos[info.username] = info

    def avatar_changed(self, name: str, etag: str | None) -> None:
        """The streamer uploaded (or removed) their avatar: live cards show the new one."""
        info = self.infos.get(name)
        if info is not None:
            self.infos[name] = replace(info, avatar_etag=etag)

    async def reload(self, name: str) -> None:
        """Read a live channel's info again (it was edited on another node)."""
        if name in self.infos and (info := await self.store.channels.get(name)) is not None:
            self.info_changed(info)

    async def channel_view(self, name: str) -> dict[str, Any] | None:
        """What a channel page shows, or None if there is no such channel."""
        user = await self.store.users.get(name)
        if user is not None:
            info = await self.store.channels.get(user.username)
            followers = await self.store.follows.follower_count(user.username)
            return self._view(user.username, info, followers)
        if name in self.static_channels:
            return self._view(name, None)
        if self.rooms is not None and await self.rooms.room(name) is not None:
            return {**self._view(name, None), "room": True}
        return None

    def stream_card(self, channel: Channel) -> dict[str, Any]:
        info = self.infos.get(channel.name)
        video = next((t for t in channel.tracks.values() if t.kind is TrackKind.VIDEO), None)
        thumb = self.thumbnails.get(channel.name)
        # A pulled channel's picture is made on its ingest node (and served from there).
        etag = thumb.etag if thumb is not None else self.others.thumbnail(channel.name)
        return {
            "username": channel.name,
            "state": channel.public_state,
            "title": display_title(channel.name, info),
            "category": _category(info),
            "viewers": self.viewers(channel.name),
            "started_at": channel.started_at,
            "thumbnail_url": _thumbnail_url(channel.name, etag),
            "avatar_url": _avatar(channel.name, info),
            "width": video.width if video else None,
            "height": video.height if video else None,
            "room": info is None and self._is_room(channel.name),
        }

    def _is_room(self, name: str) -> bool:
        return self.rooms is not None and self.rooms.is_room(name)

    def remote_card(self, stream: RemoteStream) -> dict[str, Any]:
        info = stream.info
        return {
            "username": stream.name,
            "state": stream.state,
            "title": display_title(stream.name, info),
            "category": _category(info),
            "viewers": self.viewers(stream.name),
            "started_at": stream.started_at,
            "thumbnail_url": _thumbnail_url(stream.name, stream.thumbnail),
            "avatar_url": _avatar(stream.name, info),
            "width": stream.width,
            "height": stream.height,
            "room": info is None and self._is_room(stream.name),
        }

    def live_card(self, name: str) -> dict[str, Any] | None:
        """``name``'s directory card if it is live (or reconnecting) here or on another
        node, else None."""
        local, remote = self._listed()
        channel = next((c for c in local if c.name == name), None)
        if channel is not None:
            return self.stream_card(channel)
        stream = next((s for s in remote if s.name == name), None)
        return self.remote_card(stream) if stream is not None else None

    def broadcasts(self) -> list[dict[str, Any]]:
        """Every broadcast of the site, live or waiting for its publisher, by name: its
        card, the node that ingests it (``node``: its URL, None for this node) and, for
        this node's, the bitrate coming in. What an administrator sees and stops."""
        rows, here = [], set()
        for channel in self.registry:
            if channel.origin is None and _on(channel):
                here.add(channel.name)
                bitrate = round(channel.stats.bitrate / 1000)
                rows.append({**self.stream_card(channel), "node": None, "bitrate_kbps": bitrate})
        for stream in self.others.streams():
            if stream.name not in here:
                card = self.remote_card(stream)
                rows.append({**card, "node": stream.node_url, "bitrate_kbps": None})
        return sorted(rows, key=lambda row: row["username"])

    def viewers(self, name: str) -> int:
        """The site's viewers of ``name``: here (live here, or waiting for it or for its
        pull) and on every other node, its ladder's renditions' viewers included. The
        directory, the channel page and the chat room all show this one figure."""
        return self.registry.audience(name) + self.others.viewers(name)

    def live_viewers(self, name: str) -> int:
        """:meth:`viewers` while ``name`` is live (or reconnecting) here or on another
        node, else 0 (viewers waiting for an offline channel are not its audience)."""
        return self.viewers(name) if self.state(name) != OFFLINE else 0

    def state(self, name: str) -> str:
        """``name``'s :data:`LIVE`, :data:`RECONNECTING` or :data:`OFFLINE`, site-wide."""
        local, remote = self._listed()
        for channel in local:
            if channel.name == name:
                return channel.public_state
        return next((s.state for s in remote if s.name == name), OFFLINE)

    def _listed(self) -> tuple[list[Channel], list[RemoteStream]]:
        """What the directory lists: the channels whose card comes from here (live here,
        or ingested here and waiting for their publisher), and the ones live or
        reconnecting on other nodes. A channel pulled here is listed from here while it
        is live here; while it waits, the node that ingests it says whether it does (a
        broadcast that went on at another node is listed from there; one whose node died
        is not listed)."""
        # A quality ladder's renditions (alice~480p) are not listed: their source is.
        remote = {s.name: s for s in self.others.streams() if split_rendition(s.name) is None}
        local = []
        for channel in self.registry:
            if split_rendition(channel.name) is not None:
                continue
            if channel.live or (_on(channel) and channel.origin is None):
                local.append(channel)
                remote.pop(channel.name, None)
        return local, list(remote.values())

    def visibility(self, name: str) -> str:
        """A live channel's visibility, as its info (kept current on every edit) says:
        ``public`` (listed), ``unlisted`` or ``private`` (neither is listed to the site:
        :mod:`strom.channels.access`)."""
        info = self.infos.get(name)
        if info is None:
            info = next((s.info for s in self.others.streams() if s.name == name), None)
        return info.visibility if info is not None else "public"

    def _public(self) -> tuple[list[Channel], list[RemoteStream]]:
        """:meth:`_listed` without the unlisted and private channels."""
        local, remote = self._listed()
        elsewhere = {s.name: s.info for s in self.others.streams()}
        return (
            [
                c
                for c in local
                if self._is_public(
                    c.name,
                    self.infos.get(c.name) or elsewhere.get(c.name),
                    # pulled through an upstream the site's map does not know: as listed
                    unknown=c.origin is not None and c.name not in elsewhere,
                )
            ],
            [s for s in remote if self._is_public(s.name, s.info)],
        )

    def _is_public(self, name: str, info: ChannelInfo | None, *, unknown: bool = False) -> bool:
        """A channel of an account is listed once its info says it is public (not in the
        moment before its info is read); one without (static, an open room) always."""
        if info is not None:
            return info.visibility == "public"
        return unknown or name in self.static_channels or self._is_room(name)

    def streams(
        self,
        *,
        sort: str = "viewers",
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        local, remote = self._public()
        cards = [self.stream_card(c) for c in local] + [self.remote_card(s) for s in remote]
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
        local, remote = self._public()
        for channel in local:
            cat = _category(self.infos.get(channel.name))
            if cat is not None:
                counts[cat["slug"]] = counts.get(cat["slug"], 0) + 1
        for stream in remote:
            cat = _category(stream.info)
            if cat is not None:
                counts[cat["slug"]] = counts.get(cat["slug"], 0) + 1
        return counts

    def _view(self, name: str, info: ChannelInfo | None, followers: int = 0) -> dict[str, Any]:
        local, remote = self._listed()
        channel = next((c for c in local if c.name == name), None)
        stream = next((s for s in remote if s.name == name), None)
        state = channel.public_state if channel is not None else OFFLINE
        started_at = channel.started_at if channel is not None else None
        if stream is not None:
            state, started_at = stream.state, stream.started_at
        on = state != OFFLINE
        last = info.last_broadcast if info is not None else None
        return {
            "username": name,
            "state": state,
            # true while reconnecting too: the broadcast is on (for clients that know
            # no "state"); "state" tells a stall from live
            "live": on,
            "title": display_title(name, info),
            "description": info.description if info is not None else "",
            "category": _category(info),
            "viewers": self.viewers(name) if on else 0,
            "started_at": started_at,
            "last_broadcast": (
                {
                    "id": last.id,
                    "started_at": last.started_at.timestamp(),
                    "ended_at": (last.ended_at.timestamp() if last.ended_at else None),
                }
                if last is not None
                else None
            ),
            "follower_count": followers,
            "visibility": info.visibility if info is not None else "public",
            # the streamer's ladder switch; the renditions live now: /live/{name}/master.m3u8
            "quality_ladder": info.quality_ladder if info is not None else False,
        }

    def health(self, name: str) -> dict[str, Any]:
        refusal = self.registry.refusals.last(name)
        refused = {"reason": refusal.reason, "at": refusal.at} if refusal else None
        channel = self.registry.get(name)
        if channel is None or not channel.live:
            return {"live": False, "warnings": [], "refused": refused}
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
        fps, chosen = stats.fps, stats.declared_fps
        if fps and video is not None and chosen and fps < chosen * LOW_FPS_SHARE:
            warnings.append(
                f"Only {fps:.1f} of the {chosen:g} frames per second you chose reach the "
                "server: lower the resolution or frame rate, or free up the encoder's CPU."
            )
        elif fps and video is not None and not chosen and fps < LOW_FPS:
            warnings.append(f"Only {fps:.0f} frames per second reach the server.")
        return {
            "live": True,
            "codec": " / ".join(t.codec_string for t in tracks),
            "width": video.width if video else None,
            "height": video.height if video else None,
            "fps": round(fps, 1),
            "chosen_fps": chosen,
            "bitrate_kbps": round(stats.bitrate / 1000),
            "keyframe_interval": (
                round(stats.keyframe_interval, 2) if stats.keyframe_interval else None
            ),
            "uptime": round(time.time() - (channel.started_at or time.time())),
            "viewers": self.registry.audience(channel.name),
            "warnings": warnings,
            "refused": refused,
        }
