"""Server-rendered pages: directory, categories, channel, following, sign-up/log-in, dashboard,
admin."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from strom.record import storage
from strom.settings import valid_channel_name
from strom.store import StoreError
from strom.web.auth import get_session, login, logout
from strom.web.follows import followed_channels
from strom.web.render import render
from strom.web.safe_redirect import safe_next
from strom.web.throttle import LoginLimits, LoginThrottle, Verdict

if TYPE_CHECKING:
    from strom.server import StromServer

log = logging.getLogger(__name__)

#: first path segments that are not usernames
RESERVED = frozenset(
    {
        "admin", "api", "categories", "dashboard", "live", "login", "logout", "metrics",
        "register", "search", "static", "thumbnails", "settings", "help", "about", "following",
        "ingest", "chat", "download", "directory", "strom", "favicon.ico", "robots.txt", "golive",
    }
)  # fmt: skip


#: how many past broadcasts the channel page lists
PAST_BROADCASTS = 20


async def past_broadcasts(server: StromServer, name: str, title: str) -> list[dict[str, Any]]:
    """The channel's finished recordings for its page, newest first: id, title (as it was
    when the broadcast started, else the channel's), started (epoch s), duration (s), peak
    viewers (None when unknown) and the VOD playlist URL."""
    recorder = getattr(server, "recorder", None)
    root = recorder.root if recorder is not None else server.settings.data_dir / "recordings"
    try:
        found = await asyncio.to_thread(storage.list_recordings, root, name)
    except OSError:
        log.exception("channel %s: could not list the recordings", name)
        return []
    found = [r for r in found if r.finished and r.segments][:PAST_BROADCASTS]
    known: dict[int, tuple[str, int]] = {}
    store = server.store
    if store is not None and any(r.broadcast_id is not None for r in found):
        try:
            for b in await store.broadcasts(name, limit=100):
                known[b.id] = (b.title, b.peak_viewers)
        except StoreError:
            log.exception("channel %s: could not read the broadcasts", name)
    items = []
    for r in found:
        then = known.get(r.broadcast_id) if r.broadcast_id is not None else None
        items.append(
            {
                "id": r.id,
                "title": (then[0] if then else "") or title,
                "started": r.started,
                "duration": r.duration,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r.started)),
                "length": clock_text(r.duration),
                "peak_viewers": then[1] if then else None,
                "playlist_url": r.json()["playlist_url"],
                "thumbnail_url": r.json()["thumbnail_url"],
            }
        )
    return items


def clock_text(seconds: float) -> str:
    """1:02:03, 2:03, 0:05."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rtmp_url(request: web.Request, server: StromServer) -> str:
    host = request.url.host or "localhost"
    return f"rtmp://{host}:{server.rtmp_port}/live"


def ffmpeg_command(rtmp: str, key: str | None) -> str:
    return (
        "ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -tune zerolatency -g 60 "
        f"-c:a aac -b:a 128k -f flv {rtmp}/{key or 'YOUR_STREAM_KEY'}"
    )


def _client(request: web.Request) -> str:
    return request.remote or "?"


def row_id(text: str) -> int | None:
    """A row id from a URL: a positive number that fits an INTEGER column everywhere."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value < 2**31 else None


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class Pages:
    def __init__(self, server: StromServer) -> None:
        self.server = server
        self.platform = server.platform
        self.throttle = LoginThrottle(LoginLimits.from_settings(server.settings))

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.directory)
        r.add_get("/search", self.directory)
        r.add_get("/categories", self.categories)
        r.add_get("/categories/{slug}", self.directory)
        r.add_get("/login", self.login_form)
        r.add_post("/login", self.login)
        r.add_get("/register", self.register_form)
        r.add_post("/register", self.register)
        r.add_post("/logout", self.logout)
        r.add_get("/dashboard", self.dashboard)
        r.add_get("/golive", self.golive)
        r.add_post("/dashboard/stream-key", self.regenerate_key)
        r.add_post("/dashboard/tokens", self.create_token)
        r.add_post("/dashboard/tokens/{id}/revoke", self.revoke_token)
        r.add_post("/dashboard/password", self.change_password)
        r.add_post("/dashboard/sessions/{id}/end", self.end_session)
        r.add_post("/dashboard/logout-everywhere", self.logout_everywhere)
        r.add_get("/following", self.following)
        r.add_get("/admin", self.admin)
        r.add_post("/admin/streams/{username}/stop", self.admin_stop)
        r.add_get("/live/{channel}", self.watch)
        r.add_get("/thumbnails/{file}", self.thumbnail)

    def channel_routes(self, app: web.Application) -> None:
        """``/{username}`` last: it matches any single path segment."""
        app.router.add_get("/{username}", self.channel)

    # -- directory -------------------------------------------------------------------------

    async def directory(self, request: web.Request) -> web.Response:
        store = self.server.store
        slug = request.match_info.get("slug")
        category = None
        categories = await store.categories() if store is not None else []
        if slug is not None:
            category = next((c for c in categories if c.slug == slug), None)
            if category is None:
                return self.error(request, 404, "No such category.")
        sort = request.query.get("sort", "viewers")
        q = request.query.get("q", "").strip()[:100] or None
        streams = self.platform.streams(sort=sort, category=slug, query=q)
        counts = self.platform.live_counts()
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
            category={"slug": category.slug, "name": category.name} if category else None,
            q=q,
            rtmp_url=rtmp_url(request, self.server),
            http_base=f"{request.scheme}://{request.host}",
        )

    async def categories(self, request: web.Request) -> web.Response:
        store = self.server.store
        counts = self.platform.live_counts()
        cats = await store.categories() if store is not None else []
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
                    }
                    for c in cats
                ),
                key=lambda c: (-c["live_count"], c["name"]),
            ),
        )

    # -- channel ---------------------------------------------------------------------------

    async def channel(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        if name.lower() in RESERVED or not valid_channel_name(name):
            return self.error(request, 404, "No such page.")
        view = await self.server.channel_view(name)
        if view is None:
            return self.error(request, 404, f"There is no channel called {name}.")
        if view["username"] != name:
            raise web.HTTPFound(f"/{view['username']}")
        session = get_session(request)
        store = self.server.store
        following = (
            session.logged_in
            and session.username is not None
            and store is not None
            and session.username.lower() != name.lower()
            and await store.is_following(session.username, name)
        )
        broadcasts = await past_broadcasts(self.server, name, view.get("title") or "")
        return render(
            request, "channel.html", channel=view, following=following, recordings=broadcasts
        )

    async def following(self, request: web.Request) -> web.Response:
        username = await self._require_user(request)
        channels = await followed_channels(self.server, username, last_live=True)
        return render(
            request,
            "following.html",
            live=[c for c in channels if c["live"]],
            offline=[c for c in channels if not c["live"]],
        )

    async def watch(self, request: web.Request) -> web.Response:
        name = request.match_info["channel"]
        if not valid_channel_name(name):
            return self.error(request, 404, "No such channel.")
        return render(request, "watch.html", channel=name)

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"].removesuffix(".jpg")
        worker = self.platform.thumbnails
        thumb = worker.get(name) if worker is not None and valid_channel_name(name) else None
        if thumb is None:
            return web.json_response({"error": "no thumbnail"}, status=404)
        if request.headers.get("If-None-Match") == thumb.etag:
            return web.Response(status=304, headers={"ETag": thumb.etag})
        return web.Response(
            body=thumb.jpeg,
            content_type="image/jpeg",
            headers={"ETag": thumb.etag, "Cache-Control": "public, max-age=20"},
        )

    # -- accounts --------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        wanted = request.query.get("next")
        next_url = safe_next(wanted, "") if wanted else None
        return render(request, "login.html", error=None, username="", next=next_url or None)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        next_url = safe_next(str(form.get("next", "")) or None)
        store = self.server.store
        address = _client(request)
        loop = asyncio.get_running_loop()
        verdict = self.throttle.check_login(username, address, loop.time())
        if verdict.retry_after:
            return self._throttled(request, "login.html", verdict, username=username, next=next_url)
        if verdict.delay:
            log.info("login for %r from %s: delayed %.1f s (many wrong passwords for it)",
                     username, address, verdict.delay)  # fmt: skip
            await asyncio.sleep(verdict.delay)
        user = await store.authenticate(username, password) if store is not None else None
        if user is None:
            self.throttle.failed(username, address, loop.time())
            # Not the name typed: people type their password in that box too.
            log.info("login failed from %s", address)
            return render(
                request,
                "login.html",
                status=401,
                error="Wrong username or password.",
                username=username,
                next=next_url,
            )
        self.throttle.succeeded(username, address, loop.time())
        await login(request, user)
        log.info("user %s logged in from %s", user.username, address)
        raise web.HTTPSeeOther(next_url)

    def _throttled(
        self, request: web.Request, template: str, verdict: Verdict, **context: Any
    ) -> web.Response:
        log.warning("%s from %s refused: %s", request.path, _client(request), verdict.reason)
        wait = max(1, math.ceil(verdict.retry_after))
        when = f"{wait} seconds" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
        response = render(
            request,
            template,
            status=429,
            error=f"Too many attempts. Wait {when} and try again.",
            **context,
        )
        response.headers.update(_retry_after(verdict.retry_after))
        return response

    async def register_form(self, request: web.Request) -> web.Response:
        return render(request, "register.html", error=None, username="")

    async def register(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        username = str(form.get("username", ""))[:64].strip()
        password = str(form.get("password", ""))[:1024]
        confirm = str(form.get("password_confirm", ""))[:1024]
        store = self.server.store
        if store is None:
            return self.error(request, 404, "Accounts are not enabled on this server.")
        if get_session(request).via_token:
            return self.error(request, 400, "Sign up from a browser, without an API token.")
        verdict = self.throttle.check_address(_client(request), asyncio.get_running_loop().time())
        if verdict.retry_after:
            return self._throttled(request, "register.html", verdict, username=username)
        error = None
        if username.lower() in RESERVED:
            error = "That name is reserved. Choose another."
        elif password != confirm:
            error = "The passwords do not match."
        if error is None:
            try:
                user, key = await store.create_user(username, password)
            except StoreError as exc:
                error = str(exc)
        if error is not None:
            return render(request, "register.html", status=422, error=error, username=username)
        log.info("new user %s", user.username)
        await login(request, user)
        return await self._dashboard(request, new_stream_key=key)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await logout(request)
        raise web.HTTPSeeOther("/")

    async def change_password(self, request: web.Request) -> web.StreamResponse:
        """The current password, then the new one twice. Every session of the account
        ends, this browser gets a fresh one (Django's ``update_session_auth_hash``)."""
        username = await self._require_user(request)
        store = self.server.store
        assert store is not None
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
            return await self._dashboard(
                request,
                status=429,
                account_error=f"Too many attempts. Wait {wait} seconds and try again.",
                headers=_retry_after(verdict.retry_after),
            )
        await asyncio.sleep(verdict.delay)
        if await store.authenticate(username, current) is None:
            self.throttle.failed(username, address, loop.time())
            return await self._dashboard(
                request, status=422, account_error="Your current password is not right."
            )
        self.throttle.succeeded(username, address, loop.time())
        if new != confirm:
            return await self._dashboard(
                request, status=422, account_error="The new passwords do not match."
            )
        try:
            await store.set_password(username, new)
        except StoreError as exc:
            return await self._dashboard(request, status=exc.status, account_error=str(exc))
        user = await store.get_user(username)
        assert user is not None
        if not get_session(request).via_token:  # (an API token keeps working; no cookie)
            await login(request, user)  # the old session ended with the others
        return await self._dashboard(
            request, notice="Password changed. You were logged out everywhere else."
        )

    async def end_session(self, request: web.Request) -> web.StreamResponse:
        """End one of your sessions (the list on the dashboard)."""
        await self._require_user(request)
        session = get_session(request)
        store = self.server.store
        assert store is not None
        assert session.user_id is not None
        session_id = row_id(request.match_info["id"])
        if session_id is None:
            return self.error(request, 404, "No such session.")
        await store.sessions.end_one(session.user_id, session_id)
        if session_id == session.session_id:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        raise web.HTTPSeeOther("/dashboard#sessions-title")

    async def logout_everywhere(self, request: web.Request) -> web.StreamResponse:
        """End every session of this account, this browser's included."""
        username = await self._require_user(request)
        session = get_session(request)
        store = self.server.store
        assert store is not None
        assert session.user_id is not None
        ended = await store.sessions.end_all(session.user_id)
        log.info("user %s logged out everywhere (%d sessions)", username, ended)
        await logout(request)
        raise web.HTTPSeeOther("/login")

    # -- dashboard ---------------------------------------------------------------------------

    async def _require_user(self, request: web.Request) -> str:
        """The logged-in user's name (the session middleware found the session valid: a
        suspended account has none left)."""
        session = get_session(request)
        if not session.logged_in or session.username is None:
            raise web.HTTPSeeOther(f"/login?next={quote(request.path)}")
        return session.username

    async def dashboard(self, request: web.Request) -> web.Response:
        return await self._dashboard(request)

    async def _dashboard(
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
        username = await self._require_user(request)
        session = get_session(request)
        store = self.server.store
        assert store is not None
        view = await self.server.channel_view(username)
        if view is None:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        rtmp = rtmp_url(request, self.server)
        tokens = await store.api_tokens(username)
        info = await store.channel(username)
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
            categories=[{"slug": c.slug, "name": c.name} for c in await store.categories()],
            new_stream_key=new_stream_key,
            rtmp_url=rtmp,
            obs={"server": rtmp, "key_hint": "the key shown once when you created it"},
            ffmpeg_command=ffmpeg_command(rtmp, new_stream_key),
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
            site_records=self.server.settings.record,
        )
        response.headers.update(headers or {})
        return response

    async def golive(self, request: web.Request) -> web.Response:
        """Stream from the browser: static/golive.js captures, records and uploads to
        ``/ingest/ws`` as the logged-in user."""
        username = await self._require_user(request)
        view = await self.server.channel_view(username)
        if view is None:
            await logout(request)
            raise web.HTTPSeeOther("/login")
        return render(
            request,
            "golive.html",
            channel=view,
            reconnect_grace=self.server.settings.reconnect_grace,
        )

    async def regenerate_key(self, request: web.Request) -> web.Response:
        username = await self._require_user(request)
        assert self.server.store is not None
        key = await self.server.store.reset_stream_key(username)
        log.info("user %s regenerated their stream key", username)
        return await self._dashboard(request, new_stream_key=key)

    async def create_token(self, request: web.Request) -> web.Response:
        username = await self._require_user(request)
        form = await request.post()
        name = str(form.get("name", "")).strip()[:64] or "strom stream"
        assert self.server.store is not None
        token = await self.server.store.create_api_token(username, name)
        return await self._dashboard(request, new_api_token=token)

    async def revoke_token(self, request: web.Request) -> web.StreamResponse:
        username = await self._require_user(request)
        assert self.server.store is not None
        token_id = row_id(request.match_info["id"])
        if token_id is None:
            return self.error(request, 404, "No such token.")
        await self.server.store.revoke_api_token(username, token_id)
        raise web.HTTPSeeOther("/dashboard")

    # -- admin -------------------------------------------------------------------------------

    async def _require_admin(self, request: web.Request) -> None:
        await self._require_user(request)
        if not get_session(request).is_admin:
            raise web.HTTPForbidden(text="Only site administrators can do this.")

    async def admin(self, request: web.Request) -> web.Response:
        await self._require_admin(request)
        streams = []
        for channel in self.server.registry.live():
            card = self.platform.stream_card(channel)
            card["bitrate_kbps"] = round(channel.stats.bitrate / 1000)
            streams.append(card)
        recorder = self.server.recorder
        disk = None
        if recorder is not None:
            disk = await asyncio.to_thread(storage.disk_report, recorder.root)
        return render(
            request,
            "admin.html",
            streams=streams,
            disk=disk,
            recordings=recorder.metrics() if recorder is not None else None,
            retention={
                "days": self.server.settings.recordings_keep_days,
                "gb": self.server.settings.recordings_max_gb_per_channel,
            },
        )

    async def admin_stop(self, request: web.Request) -> web.StreamResponse:
        await self._require_admin(request)
        name = request.match_info["username"]
        channel = self.server.registry.get(name)
        if channel is not None and channel.publisher is not None:
            log.warning("admin %s stopped the broadcast of %s", get_session(request).username, name)
            channel.publisher.disconnect("stopped by a site administrator")
        raise web.HTTPSeeOther("/admin")

    # -- errors -----------------------------------------------------------------------------

    @staticmethod
    def error(request: web.Request, status: int, message: str) -> web.Response:
        return render(request, "error.html", status=status, message=message)
