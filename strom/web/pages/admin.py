"""The site administrator's pages: live streams on every node of the site (stop one,
with a reason the streamer sees), recordings' disk use and retention (``/admin``);
accounts (``/admin/users``). The categories are :mod:`strom.web.pages.admin_categories`.
Forms post with the CSRF field; what they do is :class:`~strom.web.admin_actions.SiteAdmin`,
as the admin API's."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from strom.errors import StromError
from strom.record import storage
from strom.store.models import STOP_REASON_MAX
from strom.web.admin_actions import SiteAdmin
from strom.web.pages.common import require_admin, sentence
from strom.web.render import render
from strom.web.site import Site

log = logging.getLogger(__name__)

#: users per page of /admin/users
USERS_PER_PAGE = 50


async def form_text(request: web.Request, name: str, limit: int) -> str:
    value = (await request.post()).get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


class AdminPages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.admin = SiteAdmin(site)

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/admin", self.streams)
        r.add_post("/admin/streams/{username}/stop", self.stop)
        r.add_get("/admin/users", self.users)
        r.add_post("/admin/users/{username}/{action}", self.user_action)

    async def streams(self, request: web.Request) -> web.Response:
        require_admin(request)
        streams = self.site.directory.broadcasts()  # every node's
        recorder = self.site.recorder
        disk = await asyncio.to_thread(storage.disk_report, recorder.root)
        return render(
            request,
            "admin.html",
            streams=streams,
            disk=disk,
            recordings=recorder.metrics(),
            retention={
                "days": self.site.settings.recordings_keep_days,
                "gb": self.site.settings.recordings_max_gb_per_channel,
            },
            reason_max=STOP_REASON_MAX,
        )

    async def stop(self, request: web.Request) -> web.StreamResponse:
        me = require_admin(request)
        reason = await form_text(request, "reason", STOP_REASON_MAX)
        await self.admin.stop(request.match_info["username"], reason, by=me)
        raise web.HTTPSeeOther("/admin")

    async def users(
        self,
        request: web.Request,
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
        password: dict[str, str] | None = None,
    ) -> web.Response:
        me = require_admin(request)
        q = request.query.get("q", "").strip()[:64]
        raw = request.query.get("page", "1")
        page = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
        found, total = await self.site.store.users.search(
            q, offset=(page - 1) * USERS_PER_PAGE, limit=USERS_PER_PAGE
        )
        pages = max(1, -(-total // USERS_PER_PAGE))

        def page_url(n: int) -> str:
            return "/admin/users?" + urlencode({"q": q, "page": n} if q else {"page": n})

        return render(
            request,
            "admin_users.html",
            status=status,
            me=me,
            users=[
                {
                    "username": u.username,
                    "is_admin": u.is_admin,
                    "suspended": u.suspended,
                    "created": u.created_at.strftime("%Y-%m-%d"),
                    "last_online": (
                        u.last_online_at.strftime("%Y-%m-%d %H:%M") if u.last_online_at else None
                    ),
                    "live": self.site.directory.live_card(u.username) is not None,
                }
                for u in found
            ],
            q=q,
            total=total,
            page=page,
            pages=pages,
            prev_url=page_url(page - 1) if page > 1 else None,
            next_url=page_url(page + 1) if page < pages else None,
            back=request.path_qs,
            notice=notice,
            error=error,
            password=password,
        )

    async def user_action(self, request: web.Request) -> web.StreamResponse:
        me = require_admin(request)
        name, action = request.match_info["username"], request.match_info["action"]
        done: dict[str, Any] = {}
        try:
            if action in ("suspend", "reinstate"):
                user = await self.admin.set_suspended(name, action == "suspend", by=me)
                state = "suspended" if user.suspended else "reinstated"
                done["notice"] = f"{user.username} is {state}."
            elif action in ("make-admin", "unmake-admin"):
                user = await self.admin.set_admin(name, action == "make-admin", by=me)
                now = "now" if user.is_admin else "no longer"
                done["notice"] = f"{user.username} is {now} an administrator."
            elif action == "stream-key":
                await self.admin.reset_key(name, by=me)
                done["notice"] = (
                    f"{name}'s stream key was reset: the old one no longer works, and their "
                    "dashboard shows them the new one."
                )
            elif action == "password":
                password = await self.admin.set_temporary_password(name, by=me)
                done["password"] = {"username": name, "password": password}
            elif action == "delete":
                confirm = await form_text(request, "confirm", 64)
                count = await self.admin.delete_user(name, confirm, by=me)
                done["notice"] = f"{name} was deleted, with {count} recordings."
            else:
                raise web.HTTPNotFound(text="No such action.")
        except StromError as exc:
            return await self.users(request, status=exc.http_status, error=sentence(str(exc)))
        return await self.users(request, **done)
