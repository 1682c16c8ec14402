"""The aiohttp application: pages, media delivery (WebSocket, LL-HLS) and small JSON API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from strom import __version__
from strom.delivery.hls import HlsDelivery, json_error
from strom.delivery.ws import WsDelivery
from strom.settings import valid_channel_name

if TYPE_CHECKING:
    from strom.server import StromServer

HERE = Path(__file__).parent
SERVER_KEY: web.AppKey[StromServer] = web.AppKey("strom_server")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context: Any) -> web.Response:
    html = _templates.get_template(name).render(version=__version__, **context)
    return web.Response(text=html, content_type="text/html")


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    if not valid_channel_name(name):
        raise web.HTTPNotFound(text='{"error": "no such channel"}', content_type="application/json")
    return name


def _channel_info(server: StromServer, name: str) -> dict[str, Any]:
    channel = server.registry.get(name)
    live = channel is not None and channel.live
    info: dict[str, Any] = {"name": name, "live": live}
    if channel is not None and live:
        video = next((t for t in channel.tracks.values() if t.width), None)
        info.update(
            viewers=len(channel.subscribers),
            started_at=channel.started_at,
            uptime=round(time.time() - (channel.started_at or time.time()), 1),
            mime=channel.mime,
            width=video.width if video else None,
            height=video.height if video else None,
        )
    return info


def create_app(server: StromServer) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SERVER_KEY] = server
    ws = WsDelivery(server.registry, server.viewer_limits)
    hls = HlsDelivery(server.registry)
    server.ws_delivery = ws

    async def index(request: web.Request) -> web.Response:
        live = sorted(server.registry.live(), key=lambda c: -len(c.subscribers))
        return render(
            "index.html",
            channels=[_channel_info(server, c.name) for c in live],
            rtmp_port=server.rtmp_port,
            host=request.host.rsplit(":", 1)[0],
        )

    async def watch(request: web.Request) -> web.Response:
        return render("watch.html", channel=_channel(request))

    async def live_ws(request: web.Request) -> web.StreamResponse:
        return await ws.handle(request, _channel(request))

    async def playlist(request: web.Request) -> web.StreamResponse:
        return await hls.playlist(request, _channel(request))

    async def media(request: web.Request) -> web.StreamResponse:
        return await hls.media(request, _channel(request), request.match_info["file"])

    async def api_live(request: web.Request) -> web.Response:
        return web.json_response(
            {"channels": [_channel_info(server, c.name) for c in server.registry.live()]}
        )

    async def api_channel(request: web.Request) -> web.Response:
        return web.json_response(_channel_info(server, _channel(request)))

    async def metrics(request: web.Request) -> web.Response:
        return web.json_response(server.metrics())

    async def not_found(request: web.Request) -> web.Response:
        return json_error(404, "not found")

    app.router.add_get("/", index)
    app.router.add_get("/live/{channel}", watch)
    app.router.add_get("/live/{channel}/ws", live_ws)
    app.router.add_get("/live/{channel}/index.m3u8", playlist)
    app.router.add_get("/live/{channel}/{file}", media)
    app.router.add_get("/api/v1/live", api_live)
    app.router.add_get("/api/v1/channels/{channel}", api_channel)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", HERE / "static", append_version=False)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
