"""The site administrator's page: live streams (stop one), recordings' disk use and
retention."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from strom.record import storage
from strom.web.auth import get_session
from strom.web.pages.common import require_admin
from strom.web.render import render
from strom.web.site import Site

log = logging.getLogger(__name__)


class AdminPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/admin", self.admin)
        app.router.add_post("/admin/streams/{username}/stop", self.admin_stop)

    async def admin(self, request: web.Request) -> web.Response:
        require_admin(request)
        streams = []
        for channel in self.site.registry.live():
            card = self.site.directory.stream_card(channel)
            card["bitrate_kbps"] = round(channel.stats.bitrate / 1000)
            streams.append(card)
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
        )

    async def admin_stop(self, request: web.Request) -> web.StreamResponse:
        require_admin(request)
        name = request.match_info["username"]
        channel = self.site.registry.get(name)
        if channel is not None and channel.publisher is not None:
            log.warning("admin %s stopped the broadcast of %s", get_session(request).username, name)
            channel.publisher.disconnect("stopped by a site administrator")
        raise web.HTTPSeeOther("/admin")
