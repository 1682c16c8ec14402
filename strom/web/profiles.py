"""Profiles over HTTP: the avatar (uploaded to ``/api/v1/me/avatar``, served from
``/avatars/{name}/{size}.jpg``), the profile API (``/api/v1/me/profile``) and the channel
search (``/api/v1/search``, and the directory's ``/search`` page), which finds offline
channels too. The profile settings page is :mod:`strom.web.pages.profile`.

Avatars live in the database, so every node serves them; their URLs carry the avatar's
version (``?v=``), so an answer to one is cached for a year and a new avatar is a new URL.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from strom.errors import ApiError
from strom.record.avatars import (
    AVATAR_LARGE,
    AVATAR_MAX_BYTES,
    AVATAR_SMALL,
    AvatarRefused,
    avatar_url,
    make_avatar,
)
from strom.settings import valid_channel_name
from strom.store.profiles import SEARCH_QUERY_MAX, SEARCH_RESULTS_MAX, Profile
from strom.web.auth import authenticated_user
from strom.web.errors import json_body
from strom.web.paths import is_text
from strom.web.site import Site

log = logging.getLogger(__name__)

#: the upload's path: its body is read by the handler (bounded), not by the middleware
AVATAR_PATH = "/api/v1/me/avatar"
#: avatar pictures made at once on this node (each decodes up to AVATAR_MAX_PIXELS)
AVATAR_WORKERS = 2
#: offline channels the search page lists
SEARCH_RESULTS_SHOWN = 30
_YEAR = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=60"


def link_label(url: str) -> str:
    """What a link shows: its host and path, without the scheme and ``www.``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    return (host + parts.path.rstrip("/"))[:60] or url


def profile_view(profile: Profile | None) -> dict[str, Any]:
    """What the channel page and ``/api/v1/channels/{name}`` say of the user."""
    if profile is None:
        return {"display_name": "", "bio": "", "links": [], "avatar_url": None,
                "avatar_small_url": None, "last_online": None}  # fmt: skip
    return {
        "display_name": profile.display_name,
        "bio": profile.bio,
        "links": [{"url": url, "label": link_label(url)} for url in profile.links],
        "avatar_url": avatar_url(profile.username, profile.avatar_etag),
        "avatar_small_url": avatar_url(profile.username, profile.avatar_etag, small=True),
        "last_online": (
            profile.last_online_at.timestamp() if profile.last_online_at is not None else None
        ),
    }


async def channel_profile(site: Site, name: str) -> dict[str, Any]:
    """``name``'s profile view (an empty one for a channel without an account)."""
    return profile_view(await site.store.profiles.get(name))


async def search_channels(site: Site, text: str, limit: int) -> list[dict[str, Any]]:
    """Channels whose name, display name or title has ``text``: the live ones first (by
    viewers), then the others, each with its live state and avatar."""
    text = text.strip()[:SEARCH_QUERY_MAX]
    directory = site.directory
    live = [
        {**card, "display_name": "", "live": True, "last_online": None}
        for card in directory.streams(query=text)
    ][:limit]
    offline: list[dict[str, Any]] = []
    seen = {card["username"].lower() for card in live}
    for match in await site.store.profiles.search(text, limit=limit):
        if match.username.lower() in seen:
            for card in live:
                if card["username"].lower() == match.username.lower():
                    card["display_name"] = match.display_name
                    card["avatar_url"] = avatar_url(match.username, match.avatar_etag, small=True)
            continue
        if directory.live_card(match.username) is not None:
            continue  # live, but its title changed since: the live list has it or not
        offline.append(
            {
                "username": match.username,
                "display_name": match.display_name,
                "title": match.title,
                "live": False,
                "viewers": 0,
                "category": None,
                "avatar_url": avatar_url(match.username, match.avatar_etag, small=True),
                "last_online": (match.last_online_at.timestamp() if match.last_online_at else None),
            }
        )
    return (live + offline)[:limit]


class ProfilesHttp:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._workers = asyncio.Semaphore(AVATAR_WORKERS)

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/avatars/{name}/{size}.jpg", self.avatar)
        r.add_post(AVATAR_PATH, self.upload_avatar)
        r.add_delete(AVATAR_PATH, self.delete_avatar)
        r.add_get("/api/v1/me/profile", self.get_profile)
        r.add_put("/api/v1/me/profile", self.put_profile)
        r.add_get("/api/v1/search", self.search)

    # --- the avatar --------------------------------------------------------------------

    async def avatar(self, request: web.Request) -> web.StreamResponse:
        name, size = request.match_info["name"], request.match_info["size"]
        if not valid_channel_name(name) or size not in (str(AVATAR_LARGE), str(AVATAR_SMALL)):
            raise ApiError(404, "no such avatar")
        found = await self.site.store.profiles.avatar(name, small=size == str(AVATAR_SMALL))
        if found is None:
            raise ApiError(404, "no such avatar")
        etag = f'"{found.etag}"'
        cache = _YEAR if request.query.get("v") == found.etag else _SHORT
        headers = {"ETag": etag, "Cache-Control": cache}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=found.jpeg, content_type="image/jpeg", headers=headers)

    async def upload_avatar(self, request: web.Request) -> web.Response:
        """The body is the picture (any image type FFmpeg reads; not a form)."""
        username = authenticated_user(request)
        data = await self._read_picture(request)
        try:
            async with self._workers:
                pictures = await asyncio.to_thread(make_avatar, data)
        except AvatarRefused as exc:
            log.info("user %s: avatar refused (%d bytes): %s", username, len(data), exc)
            raise ApiError(422, str(exc)) from None
        etag = await self.site.store.profiles.set_avatar(username, pictures.large, pictures.small)
        log.info("user %s: new avatar %s", username, etag)
        self._avatar_changed(username, etag)
        return web.json_response(
            {
                "avatar_url": avatar_url(username, etag),
                "avatar_small_url": avatar_url(username, etag, small=True),
            }
        )

    async def _read_picture(self, request: web.Request) -> bytes:
        """The upload's body, at most AVATAR_MAX_BYTES, within the body timeout."""
        too_big = ApiError(413, f"The picture is larger than {AVATAR_MAX_BYTES // 2**20} MiB.")
        if (request.content_length or 0) > AVATAR_MAX_BYTES:
            log.info("avatar upload refused: %s bytes announced", request.content_length)
            raise too_big
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.site.http_guard.limits.body_timeout):
                while chunk := await request.content.read(64 * 1024):
                    size += len(chunk)
                    if size > AVATAR_MAX_BYTES:
                        log.info("avatar upload refused: over %d bytes", AVATAR_MAX_BYTES)
                        raise too_big
                    chunks.append(chunk)
        except TimeoutError:
            raise ApiError(408, "the picture did not arrive in time") from None
        return b"".join(chunks)

    async def delete_avatar(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)
        await self.site.store.profiles.remove_avatar(username)
        self._avatar_changed(username, None)
        return web.json_response({"avatar_url": None, "avatar_small_url": None})

    def _avatar_changed(self, username: str, etag: str | None) -> None:
        """Cards and chat show the new avatar: this node's at once; the other nodes' when
        the channel event announcing it reaches them (live cards; see
        :class:`~strom.channels.events.ChannelEvents`) or within a minute (chat)."""
        self.site.directory.avatar_changed(username, etag)
        self.site.chat.bylines.forget(username)
        if self.site.directory.live_card(username) is not None:
            self.site.events.changed(username)

    # --- the profile -------------------------------------------------------------------

    async def get_profile(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)
        return web.json_response(
            await channel_profile(self.site, username), headers={"Cache-Control": "no-store"}
        )

    async def put_profile(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)
        body = await json_body(request, {"display_name", "bio", "links"})
        display_name, bio, links = (
            body.get("display_name", ""),
            body.get("bio", ""),
            body.get("links", []),
        )
        if not isinstance(display_name, str) or not isinstance(bio, str):
            raise ApiError(422, "display_name and bio must be strings")
        if not is_text(display_name) or not is_text(bio) or not isinstance(links, list):
            raise ApiError(422, "display_name and bio must be text, links a list of URLs")
        if not all(isinstance(link, str) and is_text(link) for link in links):
            raise ApiError(422, "links must be a list of URLs")
        # A StoreError (a bad link, too long...) answers with its own status (422).
        profile = await self.site.store.profiles.update(
            username, display_name=display_name, bio=bio, links=links
        )
        self.site.chat.bylines.forget(username)  # their next chat message shows it
        return web.json_response(profile_view(profile))

    # --- search ------------------------------------------------------------------------

    async def search(self, request: web.Request) -> web.Response:
        text = request.query.get("q", "")
        if len(text) > SEARCH_QUERY_MAX or not is_text(text):
            raise ApiError(400, f"q must be text of at most {SEARCH_QUERY_MAX} characters")
        raw = request.query.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= SEARCH_RESULTS_MAX:
            raise ApiError(400, f"limit must be between 1 and {SEARCH_RESULTS_MAX}")
        found = await search_channels(self.site, text, int(raw)) if text.strip() else []
        return web.json_response({"channels": found})
