"""The profile settings page, ``/settings/profile``: display name, bio and links (a form
post), the avatar (static/profile.js, through :mod:`strom.web.profiles`)."""

from __future__ import annotations

import logging

from aiohttp import web

from strom.record.avatars import AVATAR_MAX_BYTES
from strom.store import StoreError
from strom.web.pages.common import require_user, sentence
from strom.web.profiles import AVATAR_PATH, channel_profile
from strom.web.render import render
from strom.web.site import Site

log = logging.getLogger(__name__)


class ProfilePages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/settings/profile", self.settings_page)
        app.router.add_post("/settings/profile", self.settings_post)

    async def settings_page(
        self, request: web.Request, *, error: str | None = None, notice: str | None = None,
        form: dict[str, str] | None = None, status: int = 200,
    ) -> web.Response:  # fmt: skip
        username = require_user(request)
        view = await channel_profile(self.site, username)
        values = form or {
            "display_name": view["display_name"],
            "bio": view["bio"],
            "links": "\n".join(link["url"] for link in view["links"]),
        }
        return render(
            request, "profile.html", status=status, profile=view, form=values, error=error,
            notice=notice, avatar_api=AVATAR_PATH, avatar_max_mib=AVATAR_MAX_BYTES // 2**20,
        )  # fmt: skip

    async def settings_post(self, request: web.Request) -> web.Response:
        username = require_user(request)
        posted = await request.post()
        form = {key: str(posted.get(key, "")) for key in ("display_name", "bio", "links")}
        try:
            await self.site.store.profiles.update(
                username,
                display_name=form["display_name"],
                bio=form["bio"],
                links=form["links"].splitlines(),
            )
        except StoreError as exc:
            return await self.settings_page(
                request, error=sentence(str(exc)), form=form, status=exc.http_status
            )
        log.info("user %s updated their profile", username)
        return await self.settings_page(request, notice="Profile saved.")
