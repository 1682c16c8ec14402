"""The aiohttp application: pages, JSON API, media delivery (WebSocket, LL-HLS)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from strom.chat import chat_routes
from strom.delivery.hls import HlsDelivery
from strom.delivery.ws import WsDelivery
from strom.ingest.http import INGEST_PATH
from strom.ingest.http import routes as ingest_routes
from strom.ratelimit import SlotLimits
from strom.record.http import routes as recording_routes
from strom.settings import valid_channel_name
from strom.web.api import Api
from strom.web.auth import (
    SESSION_KEY,
    Handler,
    SessionCodec,
    csrf_form_middleware,
    json_error,
    session_middleware,
)
from strom.web.connections import body_deadline_middleware
from strom.web.download import Download
from strom.web.pages import Pages
from strom.web.render import render

if TYPE_CHECKING:
    from strom.server import StromServer

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SERVER_KEY: web.AppKey[StromServer] = web.AppKey("strom_server")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for the API and media paths; never a stack trace for anyone."""
    machine = request.path.startswith(
        ("/api/", "/live/", "/vod/", "/metrics", "/thumbnails/", "/chat/", "/ingest/")
    )
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        if machine:
            return json_error(exc.status, exc.reason.lower())
        if SESSION_KEY in request:
            message = exc.text if exc.status == 403 else "There is nothing here."
            return render(request, "error.html", status=exc.status, message=message)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if machine:
            return json_error(500, "internal server error")
        return web.Response(status=500, text="Internal server error", content_type="text/plain")


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    if not valid_channel_name(name):
        raise web.HTTPNotFound(
            text=json.dumps({"error": "no such channel"}), content_type="application/json"
        )
    return name


def create_app(server: StromServer) -> web.Application:
    assert server.store is not None, "the store opens before the app is built"
    codec = SessionCodec(server.secret, max_age=server.settings.session_days * 86400)
    app = web.Application(
        client_max_size=64 * 1024,
        middlewares=[
            error_middleware,
            # bodies read in full, in time, before the CSRF check or a handler reads them
            body_deadline_middleware(server.http_guard, streamed=(INGEST_PATH,)),
            csrf_form_middleware(),
            session_middleware(codec, server.store, secure_cookies=server.settings.secure_cookies),
        ],
    )
    app[SERVER_KEY] = server
    settings = server.settings
    viewers_per_address = SlotLimits(
        per_address=settings.ws_max_viewers_per_address, exempt=settings.limit_exempt_networks
    )
    ws = WsDelivery(server.registry, server.viewer_limits, viewers_per_address)
    hls = HlsDelivery.from_settings(server.registry, settings)
    server.ws_delivery = ws

    async def live_ws(request: web.Request) -> web.StreamResponse:
        return await ws.handle(request, _channel(request))

    async def playlist(request: web.Request) -> web.StreamResponse:
        return await hls.playlist(request, _channel(request))

    async def media(request: web.Request) -> web.StreamResponse:
        return await hls.media(request, _channel(request), request.match_info["file"])

    async def metrics(request: web.Request) -> web.Response:
        return web.json_response(server.metrics())

    app.router.add_get("/live/{channel}/ws", live_ws)
    app.router.add_get("/live/{channel}/index.m3u8", playlist)
    app.router.add_get("/live/{channel}/{file}", media)
    app.router.add_get("/metrics", metrics)
    ingest_routes(app, server)
    app.router.add_static("/static", HERE / "static", append_version=False)
    pages = Pages(server)
    pages.routes(app)
    Api(server).routes(app)
    chat_routes(app, server)
    recording_routes(app, server)
    Download(server).routes(app)
    pages.channel_routes(app)
    return app
