"""Signing up, logging in and out: forms, throttled against guessing (per address and
per account and address, growing delays for an account under attack, never a lock-out)."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from aiohttp import web

from strom.store import StoreError
from strom.store.errors import UsernameTaken
from strom.web.auth import get_session, login, logout
from strom.web.pages.common import RESERVED, error_page, sentence
from strom.web.pages.dashboard import DashboardPages
from strom.web.render import render
from strom.web.safe_redirect import safe_next
from strom.web.site import Site
from strom.web.throttle import LoginThrottle, Verdict

log = logging.getLogger(__name__)


def client_address(request: web.Request) -> str:
    return request.remote or "?"


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class AccountPages:
    def __init__(self, site: Site, throttle: LoginThrottle, dashboard: DashboardPages) -> None:
        self.site = site
        self.throttle = throttle
        self.dashboard = dashboard

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/login", self.login_form)
        r.add_post("/login", self.login)
        r.add_get("/register", self.register_form)
        r.add_post("/register", self.register)
        r.add_post("/logout", self.logout)

    async def login_form(self, request: web.Request) -> web.Response:
        wanted = request.query.get("next")
        next_url = safe_next(wanted, "") if wanted else None
        return render(request, "login.html", error=None, username="", next=next_url or None)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        next_url = safe_next(str(form.get("next", "")) or None)
        store = self.site.store
        address = client_address(request)
        loop = asyncio.get_running_loop()
        verdict = self.throttle.check_login(username, address, loop.time())
        if verdict.retry_after:
            return self._throttled(request, "login.html", verdict, username=username, next=next_url)
        if verdict.delay:
            log.info("login for %r from %s: delayed %.1f s (many wrong passwords for it)",
                     username, address, verdict.delay)  # fmt: skip
            await asyncio.sleep(verdict.delay)
        user = await store.users.authenticate(username, password)
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
        log.warning("%s from %s refused: %s", request.path, client_address(request), verdict.reason)
        wait = max(1, math.ceil(verdict.retry_after))
        when = f"{wait} seconds" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
        response = render(
            request,
            template,
            status=429,
            error=f"Too many attempts. Wait {when} and try again.",
            **context,
        )
        response.headers.update(retry_after(verdict.retry_after))
        return response

    async def register_form(self, request: web.Request) -> web.Response:
        return render(request, "register.html", error=None, username="")

    async def register(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        username = str(form.get("username", ""))[:64].strip()
        password = str(form.get("password", ""))[:1024]
        confirm = str(form.get("password_confirm", ""))[:1024]
        store = self.site.store
        if get_session(request).via_token:
            return error_page(request, 400, "Sign up from a browser, without an API token.")
        verdict = self.throttle.check_address(
            client_address(request), asyncio.get_running_loop().time()
        )
        if verdict.retry_after:
            return self._throttled(request, "register.html", verdict, username=username)
        error = None
        if username.lower() in RESERVED:
            error = "That name is reserved. Choose another."
        elif password != confirm:
            error = "The passwords do not match."
        if error is None:
            try:
                user, key = await store.users.create(username, password)
            except UsernameTaken:
                error = "That username is taken."
            except StoreError as exc:
                error = sentence(str(exc))
        if error is not None:
            return render(request, "register.html", status=422, error=error, username=username)
        log.info("new user %s", user.username)
        await login(request, user)
        return await self.dashboard.render(request, new_stream_key=key)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await logout(request)
        raise web.HTTPSeeOther("/")
