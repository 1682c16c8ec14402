"""Server-rendered pages, by family: the directory and channels people browse, accounts
(sign-up, log-in), the streamer's dashboard and Go live page, the administrator's page, the
embeds, the pop-out chat and the chat overlay, the profile settings."""

from __future__ import annotations

from aiohttp import web

from strom.web.pages.accounts import AccountPages
from strom.web.pages.admin import AdminPages
from strom.web.pages.admin_categories import CategoryAdminPages
from strom.web.pages.dashboard import DashboardPages
from strom.web.pages.directory import DirectoryPages
from strom.web.pages.embed import EmbedPages
from strom.web.pages.popout import PopoutPages
from strom.web.pages.profile import ProfilePages
from strom.web.site import Site
from strom.web.throttle import LoginLimits, LoginThrottle

__all__ = ["Pages"]


class Pages:
    """Every page family, routed on one app (``/{username}`` last: it matches any one
    path segment)."""

    def __init__(self, site: Site) -> None:
        throttle = LoginThrottle(LoginLimits.from_settings(site.settings))
        self.directory = DirectoryPages(site)
        self.dashboard = DashboardPages(site, throttle)
        self.accounts = AccountPages(site, throttle, self.dashboard)
        self.admin = AdminPages(site)
        self.category_admin = CategoryAdminPages(site)
        self.embed = EmbedPages(site)
        self.popout = PopoutPages(site)
        self.profile = ProfilePages(site)

    def routes(self, app: web.Application) -> None:
        families = (
            self.directory,
            self.accounts,
            self.dashboard,
            self.admin,
            self.category_admin,
            self.embed,
            self.popout,
            self.profile,
        )
        for family in families:
            family.routes(app)

    def channel_routes(self, app: web.Application) -> None:
        self.directory.channel_routes(app)
