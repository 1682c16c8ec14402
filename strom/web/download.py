"""``/download``: "Stream with the Strom client", and the client itself.

The page tells streamers how to install ``strom stream`` on Linux, macOS and Windows and
gives them the exact command for this site. The client is this server's own package,
served as a wheel (``/download/strom-VERSION-py3-none-any.whl``) that is built from the
running version at the first request, off the event loop, and kept in the data dir.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from strom import __version__
from strom.web.auth import get_session
from strom.web.paths import rtmp_url, site_url
from strom.web.render import render
from strom.web.site import Site
from strom.web.wheel import build_wheel, wheel_name

log = logging.getLogger(__name__)


class ClientWheel:
    """The wheel of the running version: built once per process, then served from disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = wheel_name(__version__)
        self._path: Path | None = None
        self._lock = asyncio.Lock()

    async def path(self) -> Path:
        async with self._lock:
            # Built again by each process, so a changed checkout with an unchanged
            # version number is never served stale.
            if self._path is None or not self._path.exists():
                self._path = await asyncio.to_thread(build_wheel, self.directory)
                log.info("built the client wheel %s", self._path)
            return self._path


class Download:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.wheel = ClientWheel(site.settings.data_dir / "client")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/download", self.page)
        app.router.add_get("/download/{file}", self.file)

    async def page(self, request: web.Request) -> web.Response:
        site = site_url(request, self.site.settings.public_url)
        session = get_session(request)
        return render(
            request,
            "download.html",
            site=site,
            rtmp_url=rtmp_url(request, self.site.rtmp_port),
            rtmps_url=rtmp_url(request, port, "rtmps") if (port := self.site.rtmps_port) else None,
            wheel_name=self.wheel.name,
            wheel_url=f"{site}/download/{self.wheel.name}",
            logged_in=session.logged_in,
        )

    async def file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["file"] != self.wheel.name:
            raise web.HTTPNotFound()
        try:
            path = await self.wheel.path()
        except OSError:
            log.exception("could not build the client wheel")
            raise web.HTTPServiceUnavailable(text="the client cannot be built right now") from None
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{self.wheel.name}"',
                "Cache-Control": "no-cache",
            },
        )
