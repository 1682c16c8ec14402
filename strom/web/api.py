"""The versioned JSON API, ``/api/v1``. Errors are ``{"error": "..."}`` with the right
status. Authenticated endpoints accept the session cookie (with the CSRF header for
changes) or ``Authorization: Bearer <api token>``; see :mod:`strom.web.openapi`."""

from __future__ import annotations

import logging

from aiohttp import web

from strom.channels.control import stop_message
from strom.errors import ApiError
from strom.settings import valid_channel_name
from strom.web.auth import Session, authenticated_user, get_session, logout
from strom.web.errors import json_body
from strom.web.follows import followed_channels
from strom.web.openapi import document
from strom.web.openapi_channels import VISIBILITY_FIELDS
from strom.web.pages.private import set_visibility
from strom.web.paths import category_art_url, is_text, row_id, rtmp_url, site_url
from strom.web.profiles import channel_profile
from strom.web.site import Site
from strom.web.visibility import api_token

log = logging.getLogger(__name__)

MAX_PAGE = 100


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


class Api:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v1/openapi.json", self.openapi)
        r.add_get("/api/v1/streams", self.streams)
        r.add_get("/api/v1/channels/{username}", self.channel)
        r.add_get("/api/v1/categories", self.categories)
        r.add_get("/api/v1/ingest", self.ingest)
        r.add_get("/api/v1/me", self.me)
        r.add_patch("/api/v1/me/channel", self.update_channel)
        r.add_post("/api/v1/me/stream-key", self.reset_key)
        r.add_get("/api/v1/me/health", self.health)
        r.add_get("/api/v1/me/following", self.following)
        r.add_get("/api/v1/me/sessions", self.sessions)
        r.add_delete("/api/v1/me/sessions", self.end_sessions)
        r.add_delete("/api/v1/me/sessions/{id}", self.end_session)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(document())

    async def streams(self, request: web.Request) -> web.Response:
        sort = request.query.get("sort", "viewers")
        if sort not in ("viewers", "category"):
            raise ApiError(400, "sort must be 'viewers' or 'category'")
        limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
        offset = _int_param(request, "offset", 0, 0, 1_000_000)
        streams = self.site.directory.streams(
            sort=sort,
            category=request.query.get("category") or None,
            query=request.query.get("q", "").strip()[:100] or None,
        )
        return web.json_response(
            {"streams": streams[offset : offset + limit], "total": len(streams)}
        )

    async def channel(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        view = await self.site.directory.channel_view(name) if valid_channel_name(name) else None
        if view is None:
            raise ApiError(404, f"no channel called {name!r}")
        await api_token(self.site.access, request, view["username"])  # private: 403
        return web.json_response({**view, "profile": await channel_profile(self.site, name)})

    async def categories(self, request: web.Request) -> web.Response:
        store = self.site.store
        counts = self.site.directory.live_counts()
        cats = await store.channels.categories()
        return web.json_response(
            {
                "categories": [
                    {
                        "slug": c.slug,
                        "name": c.name,
                        "is_game": c.is_game,
                        "live_count": counts.get(c.slug, 0),
                        "art_url": category_art_url(c.slug, c.art),
                    }
                    for c in cats
                ]
            }
        )

    async def ingest(self, request: web.Request) -> web.Response:
        """Where publishers connect (what ``strom stream --server URL`` asks for):
        ``rtmps_url`` is None unless the node has a certificate (``--tls-cert``)."""
        rtmps_port = self.site.rtmps_port
        return web.json_response(
            {
                "rtmp_url": rtmp_url(request, self.site.rtmp_port),
                "rtmps_url": rtmp_url(request, rtmps_port, "rtmps") if rtmps_port else None,
                "whip_url": site_url(request, self.site.settings.public_url) + "/whip",
            }
        )

    async def _user(self, request: web.Request) -> str:
        return authenticated_user(request)

    async def _me(self, request: web.Request) -> Session:
        await self._user(request)
        return get_session(request)

    async def me(self, request: web.Request) -> web.Response:
        username = await self._user(request)
        view = await self.site.directory.channel_view(username)
        return web.json_response({"username": username, "channel": view})

    async def update_channel(self, request: web.Request) -> web.Response:
        username = await self._user(request)
        store = self.site.store
        body = await json_body(
            request,
            {
                "title", "description", "category", "record_broadcasts", "quality_ladder",
                *VISIBILITY_FIELDS,
            },
        )  # fmt: skip
        record, ladder = body.get("record_broadcasts"), body.get("quality_ladder")
        for key, value in (("record_broadcasts", record), ("quality_ladder", ladder)):
            if value is not None and not isinstance(value, bool):
                raise ApiError(422, f"{key} must be true or false")
        if body.get("visibility") is not None or "watch_password" in body:  # who may watch
            await set_visibility(self.site, username, body)
        for key in ("title", "description", "category"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise ApiError(422, f"{key} must be a string")
            if value is not None and not is_text(value):
                raise ApiError(422, f"{key} is not valid Unicode text")
        # A StoreError (unknown category, too long...) answers with its own status.
        info = await store.channels.update(
            username,
            title=body.get("title"),
            description=body.get("description"),
            category_slug=body.get("category"),
            record_broadcasts=record,
            quality_ladder=ladder,
        )
        self.site.directory.info_changed(info)
        self.site.events.changed(info.username)  # open pages show it at once
        view = await self.site.directory.channel_view(username)
        return web.json_response(view)

    async def reset_key(self, request: web.Request) -> web.Response:
        username = await self._user(request)
        key = await self.site.store.channels.reset_stream_key(username)
        log.info("user %s regenerated their stream key (API)", username)
        return web.json_response({"stream_key": key}, headers={"Cache-Control": "no-store"})

    async def health(self, request: web.Request) -> web.Response:
        """The stream's health; once it is over, ``stopped`` says why if an administrator
        stopped it (the dashboard shows it without a reload)."""
        username = await self._user(request)
        health = self.site.directory.health(username)
        if not health["live"]:
            reason = await self.site.store.broadcasts.stop_reason(username)
            health["stopped"] = stop_message(reason) if reason is not None else None
        return web.json_response(health)

    async def following(self, request: web.Request) -> web.Response:
        """Followed channels, live ones first: what the pages poll for go-live toasts.
        ``?last_live=1``: offline ones with their title and last broadcast too (the
        Following page; a query per offline channel, so not for the toasts' polls)."""
        username = await self._user(request)
        last_live = request.query.get("last_live") in ("1", "true")
        channels = await followed_channels(self.site, username, last_live=last_live)
        return web.json_response({"channels": channels}, headers={"Cache-Control": "no-store"})

    async def sessions(self, request: web.Request) -> web.Response:
        """Where the user is logged in (browsers; API tokens are listed on the dashboard)."""
        me = await self._me(request)
        assert me.user_id is not None
        found = await self.site.store.sessions.list(me.user_id)
        return web.json_response(
            {
                "sessions": [
                    {
                        "id": s.id,
                        "created_at": s.created_at.timestamp(),
                        "last_seen_at": s.last_seen_at.timestamp(),
                        "user_agent": s.user_agent,
                        "address": s.address,
                        "current": s.id == me.session_id,
                    }
                    for s in found
                ]
            },
            headers={"Cache-Control": "no-store"},
        )

    async def end_sessions(self, request: web.Request) -> web.Response:
        """Log out everywhere: every session of the user ends, the caller's included."""
        me = await self._me(request)
        assert me.user_id is not None
        ended = await self.site.store.sessions.end_all(me.user_id)
        log.info("user %s logged out everywhere (API, %d sessions)", me.username, ended)
        await logout(request)
        return web.json_response({"ended": ended})

    async def end_session(self, request: web.Request) -> web.Response:
        me = await self._me(request)
        assert me.user_id is not None
        session_id = row_id(request.match_info["id"])
        if session_id is None:
            raise ApiError(404, "no such session")
        if not await self.site.store.sessions.end_one(me.user_id, session_id):
            raise ApiError(404, "no such session")
        if session_id == me.session_id:
            await logout(request)
        return web.json_response({"ended": 1})
