"""The pages of unlisted and private channels: what a viewer who may not watch sees ("This
stream is private": a password, or follow to watch), the password form, and the
dashboard's and the API's setting. The rules are :mod:`strom.channels.access`'s.

A private channel's password form is throttled like the log-in form (per channel and
address, then per address; a delay, never a lock-out, per channel:
:class:`~strom.web.throttle.LoginThrottle`). The right password sets a pass cookie for
that channel (``strom_pass_{channel}``, HttpOnly, a month): pages read it, media never
do (they take the media token the page gives).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from aiohttp import web

from strom.channels.access import PASS_SECONDS, Verdict
from strom.errors import ApiError
from strom.settings import valid_channel_name
from strom.store import StoreError
from strom.store.access import PRIVATE, VISIBILITIES
from strom.web.pages.common import error_page, require_user
from strom.web.render import render
from strom.web.safe_redirect import safe_next
from strom.web.site import Site
from strom.web.throttle import LoginLimits, LoginThrottle
from strom.web.visibility import PASS_COOKIE, viewer_of

log = logging.getLogger(__name__)


async def watch_or_refuse(
    site: Site, request: web.Request, channel: str
) -> tuple[web.Response | None, str | None]:
    """A page that plays ``channel``: (None, the media token to play it with: None for a
    channel that is not private), or (the private page, None) for a viewer who may not."""
    access = site.access
    verdict = await access.may_watch(channel, viewer_of(request, channel))
    if verdict is Verdict.WATCH:
        return None, await access.media_token(channel)
    return private_page(request, channel, verdict), None


def private_page(
    request: web.Request,
    channel: str,
    verdict: Verdict,
    *,
    error: str | None = None,
    status: int = 403,
    next_url: str | None = None,
) -> web.Response:
    response = render(
        request,
        "private.html",
        status=status,
        channel=channel,
        ask_password=verdict is Verdict.PASSWORD,
        error=error,
        next=next_url or request.path_qs,  # where the password or a follow leads
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


class VisibilityPages:
    """The password form of a private channel and the dashboard's "Who can watch"."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.throttle = LoginThrottle(LoginLimits.from_settings(site.settings))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/watch/{channel}/password", self.password)
        app.router.add_post("/dashboard/visibility", self.dashboard)
        app.router.add_post("/watch/{channel}/follow", self.follow)

    async def follow(self, request: web.Request) -> web.StreamResponse:
        """ "Follow to watch", without a script: follow, then back to the stream."""
        username = require_user(request)
        channel = request.match_info["channel"]
        form = await request.post()
        if not valid_channel_name(channel):
            return error_page(request, 404, "No such channel.")
        try:
            await self.site.store.follows.follow(username, channel)
        except StoreError as exc:
            return error_page(request, exc.http_status, str(exc))
        raise web.HTTPSeeOther(safe_next(str(form.get("next", "")) or None, f"/{channel}"))

    async def password(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        if not valid_channel_name(channel):
            return error_page(request, 404, "No such channel.")
        form = await request.post()
        password = str(form.get("password", ""))[:1024]
        next_url = safe_next(str(form.get("next", "")) or None, f"/{channel}")
        address = request.remote or "?"
        loop = asyncio.get_running_loop()
        account = f"watch:{channel}"
        verdict = self.throttle.check_login(account, address, loop.time())
        if verdict.retry_after:
            wait = max(1, math.ceil(verdict.retry_after))
            log.warning(
                "stream password of %s from %s refused: %s", channel, address, verdict.reason
            )
            response = private_page(
                request, channel, Verdict.PASSWORD, status=429, next_url=next_url,
                error=f"Too many attempts. Wait {wait} seconds and try again.",
            )  # fmt: skip
            response.headers["Retry-After"] = str(wait)
            return response
        await asyncio.sleep(verdict.delay)
        channel_pass = await self.site.access.check_password(channel, password)
        if channel_pass is None:
            self.throttle.failed(account, address, loop.time())
            log.info("wrong stream password for %s from %s", channel, address)
            return private_page(
                request, channel, Verdict.PASSWORD, status=401, next_url=next_url,
                error="That password is not right.",
            )  # fmt: skip
        self.throttle.succeeded(account, address, loop.time())
        response = web.HTTPSeeOther(next_url)
        response.set_cookie(
            PASS_COOKIE + channel.lower(),
            channel_pass,
            max_age=PASS_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=self.site.settings.secure_cookies,
        )
        raise response

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        username = require_user(request)
        form = await request.post()
        body: dict[str, Any] = {"visibility": str(form.get("visibility", ""))}
        if password := str(form.get("watch_password", ""))[:1024]:
            body["watch_password"] = password
        if form.get("clear_password"):
            body["watch_password"] = None
        try:
            await set_visibility(self.site, username, body)
        except (StoreError, ApiError) as exc:
            return error_page(request, 422, str(exc))
        raise web.HTTPSeeOther("/dashboard#visibility")


async def set_visibility(site: Site, username: str, body: dict[str, Any]) -> None:
    """The streamer sets ``visibility`` (and a private channel's ``watch_password``: a
    string sets it, ``null`` removes it) from the API's or the dashboard's ``body``."""
    visibility = body.get("visibility")
    if visibility is None and (now := await site.store.access.get(username)) is not None:
        visibility = now.visibility  # the password alone changes
    if visibility not in VISIBILITIES:
        raise ApiError(422, f"visibility is one of {', '.join(VISIBILITIES)}")
    password = body.get("watch_password", ...)
    if password is not ... and password is not None and not isinstance(password, str):
        raise ApiError(422, "watch_password must be a string or null")
    access = await site.store.access.set(
        username,
        visibility,
        password=password if isinstance(password, str) else None,
        clear_password=password is None,
    )
    site.access.changed(access)
    if (info := await site.store.channels.get(username)) is not None:
        site.directory.info_changed(info)
    site.events.changed(username)
    if visibility == PRIVATE and not access.has_password:
        log.info("channel %s: private, for its followers", username)
