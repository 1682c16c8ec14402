"""The streamer's pages: the dashboard (stream key, OBS and ffmpeg settings, API tokens,
sessions, password, log out everywhere) and the browser's Go live page."""

from __future__ import annotations

import asyncio
import logging
import math

from aiohttp import web

from strom.channels.control import stop_message
from strom.store import StoreError
from strom.web.auth import get_session, login, logout
from strom.web.pages.common import error_page, require_user, sentence
from strom.web.pages.embed import site_origin
from strom.web.pages.popout import chat_urls
from strom.web.paths import ffmpeg_command, row_id, rtmp_url
from strom.web.render import render
from strom.web.site import Site
from strom.web.throttle import LoginThrottle

log = logging.getLogger(__name__)


def _client(request: web.Request) -> str:
    return request.remote or "?"


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class DashboardPages:
    def __init__(self, site: Site, throttle: LoginThrottle) -> None:
        self.site = site
        self.throttle = throttle

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/dashboard", self.dashboard)
        r.add_get("/golive", self.golive)
        r.add_post("/dashboard/stream-key", self.regenerate_key)
        r.add_post("/dashboard/tokens", self.create_token)
        r.add_post("/dashboard/tokens/{id}/revoke", self.revoke_token)
        r.add_post("/dashboard/password", self.change_password)
        r.add_post("/dashboard/sessions/{id}/end", self.end_session)
        r.add_post("/dashboard/logout-everywhere", self.logout_everywhere)

    async def dashboard(self, request: web.Request) -> web.Response:
        return await self.render(request)

    async def render(
        self,
        request: web.Request,
        *,
        new_stream_key: str | None = None,
        new_api_token: str | None = None,
        status: int = 200,
        account_error: str | None = None,
        notice: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        username = require_user(request)
        session = get_session(request)
        store = self.site.store
        view = await self.site.directory.channel_view(username)
        if view is None:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        rtmp = rtmp_url(request, self.site.rtmp_port)
        rtmps_port = self.site.rtmps_port
        tokens = await store.tokens.list(username)
        info = await store.channels.get(username)
        key_by_admin = None if new_stream_key else await store.channels.take_pending_key(username)
        last = info.last_broadcast if info is not None else None
        sessions = await store.sessions.list(session.user_id) if session.user_id else []
        response = render(
            request,
            "dashboard.html",
            status=status,
            notice=notice,
            account_error=account_error,
            sessions=[
                {
                    "id": s.id,
                    "created_at": s.created_at.timestamp(),
                    "last_seen_at": s.last_seen_at.timestamp(),
                    "user_agent": s.user_agent,
                    "address": s.address,
                    "current": s.id == session.session_id,
                }
                for s in sessions
            ],
            channel=view,
            categories=[
                {"slug": c.slug, "name": c.name} for c in await store.channels.categories()
            ],
            new_stream_key=new_stream_key or key_by_admin,
            key_by_admin=key_by_admin is not None,
            stopped=(
                stop_message(last.stop_reason)
                if last is not None and last.stop_reason is not None and not view.get("live")
                else None
            ),
            rtmp_url=rtmp,
            rtmps_url=rtmp_url(request, rtmps_port, "rtmps") if rtmps_port else None,
            obs={"server": rtmp, "key_hint": "the key shown once when you created it"},
            whip_url=site_origin(self.site, request) + "/whip",
            ffmpeg_command=ffmpeg_command(rtmp, new_stream_key or key_by_admin),
            tokens=[
                {
                    "id": t.id,
                    "name": t.name,
                    "created_at": t.created_at.timestamp(),
                    "last_used_at": t.last_used_at.timestamp() if t.last_used_at else None,
                }
                for t in tokens
            ],
            new_api_token=new_api_token,
            record_broadcasts=info.record_broadcasts if info is not None else True,
            site_records=self.site.settings.record,
            quality_ladder=info.quality_ladder if info is not None else False,
            site_ladder=self.site.settings.ladder,
            chat_urls=chat_urls(
                site_origin(self.site, request),
                username,
                await self.site.access.chat_token(username),
            ),
            # who can watch (strom.web.pages.private), and the preview's media token
            access=await store.access.get(username),
            media_token=await self.site.access.media_token(username),
        )
        response.headers.update(headers or {})
        return response

    async def golive(self, request: web.Request) -> web.Response:
        """Stream from the browser: static/golive.js captures, records and uploads to
        ``/ingest/ws`` as the logged-in user."""
        username = require_user(request)
        view = await self.site.directory.channel_view(username)
        if view is None:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        return render(
            request,
            "golive.html",
            channel=view,
            reconnect_grace=self.site.settings.reconnect_grace,
        )

    async def regenerate_key(self, request: web.Request) -> web.Response:
        username = require_user(request)
        key = await self.site.store.channels.reset_stream_key(username)
        log.info("user %s regenerated their stream key", username)
        return await self.render(request, new_stream_key=key)

    async def create_token(self, request: web.Request) -> web.Response:
        username = require_user(request)
        form = await request.post()
        name = str(form.get("name", "")).strip()[:64] or "strom stream"
        token = await self.site.store.tokens.create(username, name)
        return await self.render(request, new_api_token=token)

    async def revoke_token(self, request: web.Request) -> web.StreamResponse:
        username = require_user(request)
        token_id = row_id(request.match_info["id"])
        if token_id is None:
            return error_page(request, 404, "No such token.")
        await self.site.store.tokens.revoke(username, token_id)
        raise web.HTTPSeeOther("/dashboard")

    async def change_password(self, request: web.Request) -> web.StreamResponse:
        """The current password, then the new one twice. Every session of the account
        ends, this browser gets a fresh one (Django's ``update_session_auth_hash``)."""
        username = require_user(request)
        store = self.site.store
        form = await request.post()
        current = str(form.get("current_password", ""))[:1024]
        new = str(form.get("new_password", ""))[:1024]
        confirm = str(form.get("new_password_confirm", ""))[:1024]
        address = _client(request)
        loop = asyncio.get_running_loop()
        # A stolen session must not become a way to guess the password: the same limits
        # as the log-in form.
        verdict = self.throttle.check_login(username, address, loop.time())
        if verdict.retry_after:
            wait = max(1, math.ceil(verdict.retry_after))
            return await self.render(
                request,
                status=429,
                account_error=f"Too many attempts. Wait {wait} seconds and try again.",
                headers=_retry_after(verdict.retry_after),
            )
        await asyncio.sleep(verdict.delay)
        if await store.users.authenticate(username, current) is None:
            self.throttle.failed(username, address, loop.time())
            return await self.render(
                request, status=422, account_error="Your current password is not right."
            )
        self.throttle.succeeded(username, address, loop.time())
        if new != confirm:
            return await self.render(
                request, status=422, account_error="The new passwords do not match."
            )
        try:
            await store.users.set_password(username, new)
        except StoreError as exc:
            return await self.render(
                request, status=exc.http_status, account_error=sentence(str(exc))
            )
        user = await store.users.get(username)
        assert user is not None
        if not get_session(request).via_token:  # (an API token keeps working; no cookie)
            await login(request, user)  # the old session ended with the others
        return await self.render(
            request, notice="Password changed. You were logged out everywhere else."
        )

    async def end_session(self, request: web.Request) -> web.StreamResponse:
        """End one of your sessions (the list on the dashboard)."""
        require_user(request)
        session = get_session(request)
        store = self.site.store
        assert session.user_id is not None
        session_id = row_id(request.match_info["id"])
        if session_id is None:
            return error_page(request, 404, "No such session.")
        await store.sessions.end_one(session.user_id, session_id)
        if session_id == session.session_id:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        raise web.HTTPSeeOther("/dashboard#sessions-title")

    async def logout_everywhere(self, request: web.Request) -> web.StreamResponse:
        """End every session of this account, this browser's included."""
        username = require_user(request)
        session = get_session(request)
        store = self.site.store
        assert session.user_id is not None
        ended = await store.sessions.end_all(session.user_id)
        log.info("user %s logged out everywhere (%d sessions)", username, ended)
        await logout(request)
        raise web.HTTPSeeOther("/login")
