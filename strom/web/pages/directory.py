"""The pages people browse: the directory (live channels, by viewers or category, search),
categories, a channel's page with its past broadcasts, followed channels, the bare watch
page and the directory's thumbnails."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers
from strom.errors import ApiError
from strom.record.thumbnails import Thumbnail
from strom.settings import valid_channel_name
from strom.store import StoreError
from strom.web.auth import get_session
from strom.web.follows import followed_channels
from strom.web.pages.common import RESERVED, error_page, require_user
from strom.web.pages.embed import CHAT_WIDTH, HEIGHT, iframe_code, site_origin
from strom.web.pages.private import watch_or_refuse
from strom.web.paths import category_art_url, clock_text, rtmp_url
from strom.web.profiles import SEARCH_RESULTS_SHOWN, channel_profile, search_channels
from strom.web.recordings import or_elsewhere, site_recordings
from strom.web.render import render
from strom.web.site import Site
from strom.web.visibility import granted_response, media_grant, with_token

log = logging.getLogger(__name__)

#: how many past broadcasts the channel page lists
PAST_BROADCASTS = 20


async def past_broadcasts(
    site: Site, name: str, title: str, request: web.Request
) -> list[dict[str, Any]]:
    """The channel's finished recordings for its page (on any node of the site), newest
    first: id, title (as it was when the broadcast started, else the channel's), started
    (epoch s), duration (s), peak viewers (None when unknown), the line of facts under
    the title (:func:`vod_facts`, the one text of it: static/vod.js takes the list from
    this page's HTML), the VOD playlist and the MP4 download's URLs."""
    try:
        found = await site_recordings(site, name, request)
    except OSError:
        log.exception("channel %s: could not list the recordings", name)
        return []
    found = [r for r in found if r.get("mp4_url")][:PAST_BROADCASTS]  # finished, not empty
    known: dict[int, tuple[str, int]] = {}
    store = site.store
    if any(r.get("broadcast_id") is not None for r in found):
        try:
            for b in await store.broadcasts.list(name, limit=100):
                known[b.id] = (b.title, b.peak_viewers)
        except StoreError:
            log.exception("channel %s: could not read the broadcasts", name)
    items = []
    for r in found:
        bid = r.get("broadcast_id")
        then = known.get(bid) if isinstance(bid, int) else None
        started, duration = float(r["started"]), float(r.get("duration") or 0)
        peak = then[1] if then else None
        items.append(
            {
                "id": r["id"],
                "title": (then[0] if then else "") or title,
                "started": started,
                "duration": duration,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                "length": clock_text(duration),
                "peak_viewers": peak,
                "facts": vod_facts(started, duration, peak),
                "playlist_url": r.get("playlist_url"),
                "mp4_url": r.get("mp4_url"),
                "thumbnail_url": r.get("thumbnail_url"),
            }
        )
    return items


def vod_facts(started: float, duration: float, peak: int | None) -> str:
    """A past broadcast's facts as the channel page lists them: when (UTC), how long, and
    its peak viewers when known (``2026-12-07 17:20 UTC · 1:02:03 · 12 peak viewers``)."""
    parts = [time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), clock_text(duration)]
    if peak is not None:
        parts.append(f"{peak:,} peak {'viewer' if peak == 1 else 'viewers'}")
    return " · ".join(parts)


class DirectoryPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.directory)
        r.add_get("/search", self.directory)
        r.add_get("/categories", self.categories)
        r.add_get("/categories/{slug}", self.directory)
        r.add_get("/following", self.following)
        r.add_get("/live/{channel}", self.watch)
        r.add_get("/thumbnails/{file}", or_elsewhere(self.site, self.thumbnail))

    def channel_routes(self, app: web.Application) -> None:
        """``/{username}`` last: it matches any single path segment."""
        app.router.add_get("/{username}", self.channel)

    async def directory(self, request: web.Request) -> web.Response:
        store = self.site.store
        slug = request.match_info.get("slug")
        category = None
        categories = await store.channels.categories()
        if slug is not None:
            category = next((c for c in categories if c.slug == slug), None)
            if category is None:
                return error_page(request, 404, "No such category.")
        sort = request.query.get("sort", "viewers")
        q = request.query.get("q", "").strip()[:100] or None
        streams = self.site.directory.streams(sort=sort, category=slug, query=q)
        counts = self.site.directory.live_counts()
        # A search lists the offline channels that match too (the live ones are the cards).
        found = await search_channels(self.site, q, SEARCH_RESULTS_SHOWN) if q else []
        return render(
            request,
            "directory.html",
            streams=streams,
            categories=[
                {"slug": c.slug, "name": c.name, "live_count": counts.get(c.slug, 0)}
                for c in categories
                if counts.get(c.slug) or slug == c.slug
            ],
            sort=sort if sort in ("viewers", "category") else "viewers",
            category=(
                {
                    "slug": category.slug,
                    "name": category.name,
                    "art_url": category_art_url(category.slug, category.art),
                }
                if category
                else None
            ),
            q=q,
            offline_matches=[c for c in found if not c["live"]],
            rtmp_url=rtmp_url(request, self.site.rtmp_port),
            http_base=f"{request.scheme}://{request.host}",
        )

    async def categories(self, request: web.Request) -> web.Response:
        store = self.site.store
        counts = self.site.directory.live_counts()
        cats = await store.channels.categories()
        return render(
            request,
            "categories.html",
            categories=sorted(
                (
                    {
                        "slug": c.slug,
                        "name": c.name,
                        "is_game": c.is_game,
                        "live_count": counts.get(c.slug, 0),
                        "art_url": category_art_url(c.slug, c.art),
                    }
                    for c in cats
                ),
                key=lambda c: (-c["live_count"], c["name"]),
            ),
        )

    async def channel(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        if name.lower() in RESERVED or not valid_channel_name(name):
            return error_page(request, 404, "No such page.")
        view = await self.site.directory.channel_view(name)
        if view is None:
            return error_page(request, 404, f"There is no channel called {name}.")
        if view["username"] != name:
            raise web.HTTPFound(f"/{view['username']}")
        refusal, token = await watch_or_refuse(self.site, request, view["username"])
        if refusal is not None:
            return refusal
        session = get_session(request)
        store = self.site.store
        following = (
            session.logged_in
            and session.username is not None
            and session.username.lower() != name.lower()
            and await store.follows.is_following(session.username, name)
        )
        broadcasts = await past_broadcasts(self.site, name, view.get("title") or "", request)
        return render(
            request, "channel.html", channel=view, following=following,
            recordings=with_token(broadcasts, token), media_token=token,
            profile=await channel_profile(self.site, name),
            embed_code=iframe_code(origin := site_origin(self.site, request), view["username"]),
            embed_chat_code=iframe_code(
                origin, view["username"], CHAT_WIDTH, HEIGHT, chat=True
            ),
        )  # fmt: skip

    async def following(self, request: web.Request) -> web.Response:
        username = require_user(request)
        channels = await followed_channels(self.site, username, last_live=True)
        return render(
            request,
            "following.html",
            live=[c for c in channels if c["live"]],
            offline=[c for c in channels if not c["live"]],
        )

    async def watch(self, request: web.Request) -> web.Response:
        name = request.match_info["channel"]
        if not valid_channel_name(name):
            return error_page(request, 404, "No such channel.")
        channel = self.site.registry.get(name)
        live_here = channel is not None and channel.live
        if not live_here and await self.site.directory.channel_view(name) is None:
            # No account, static channel or open room of that name: nothing will start here.
            return error_page(request, 404, f"There is no channel called {name}.")
        refusal, token = await watch_or_refuse(self.site, request, name)
        return refusal or render(request, "watch.html", channel=name, media_token=token)

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"].removesuffix(".jpg")
        thumb = self.site.directory.thumbnails.get(name) if valid_channel_name(name) else None
        if thumb is None:
            raise ApiError(404, "no thumbnail")
        return granted_response(
            self._thumbnail(request, thumb), await media_grant(self.site.access, request, name)
        )

    def _thumbnail(self, request: web.Request, thumb: Thumbnail) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == thumb.etag:
            return web.Response(
                status=304, headers={"ETag": thumb.etag, **cache_headers(AnswerKind.LIVE_THUMBNAIL)}
            )
        return web.Response(
            body=thumb.jpeg,
            content_type="image/jpeg",
            headers={"ETag": thumb.etag, **cache_headers(AnswerKind.LIVE_THUMBNAIL)},
        )
