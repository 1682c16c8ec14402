"""The aiohttp application: pages, JSON API, media delivery (WebSocket, LL-HLS), chat,
push ingest and recordings, built from a :class:`~strom.web.site.Site`.

``create_app`` only routes: every service it hands requests to was built by the
composition root (:mod:`strom.server`), and nothing here writes back into it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from strom.delivery import dash
from strom.delivery.answer import respond
from strom.delivery.ladder_master import LadderFollower, LadderMaster
from strom.errors import ApiError
from strom.observe.prometheus import Exposition
from strom.ratelimit import in_networks
from strom.settings import valid_watch_name
from strom.web import chat, cors, ingest, profiles, recordings, whip
from strom.web.admin_api import ADMIN_API, UPLOAD_MAX, AdminApi
from strom.web.api import Api
from strom.web.auth import (
    SESSION_KEY,
    SessionCodec,
    admin_uploads,
    csrf_form_middleware,
    session_middleware,
)
from strom.web.clips import ClipsHttp
from strom.web.connections import body_deadline_middleware
from strom.web.download import Download
from strom.web.errors import error_middleware
from strom.web.events import EventStream
from strom.web.pages import Pages
from strom.web.pages.private import VisibilityPages
from strom.web.paths import site_url
from strom.web.render import render
from strom.web.site import Site
from strom.web.visibility import granted, granted_response, media_grant

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


def _error_page(request: web.Request, status: int, message: str) -> web.StreamResponse | None:
    """The error page for people (once the session middleware has run: it needs one)."""
    if SESSION_KEY not in request:
        return None
    return render(request, "error.html", status=status, message=message)


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    if not valid_watch_name(name):
        raise ApiError(404, "no such channel")
    return name


#: how long a cache or player may keep the redirect of an nginx-rtmp-style playlist URL
_NGINX_STYLE_MAX_AGE = 3600
#: paths that take pictures: larger bodies than the app's 64 KiB
UPLOADS = ((f"{ADMIN_API}/categories", UPLOAD_MAX), ("/admin/categories", UPLOAD_MAX))


async def nginx_style_playlist(request: web.Request) -> web.StreamResponse:
    """``/hls/{name}.m3u8`` (and ``/live/{name}.m3u8``): a permanent redirect to the
    channel's playlist, ``/live/{name}/index.m3u8``, whose media addresses are relative
    to it (so it is not served here as well)."""
    name = _channel(request)
    target = f"/live/{name}/index.m3u8"
    if request.query_string:
        target += "?" + request.query_string
    raise web.HTTPMovedPermanently(
        target, headers={"Cache-Control": f"public, max-age={_NGINX_STYLE_MAX_AGE}"}
    )


def media_routes(app: web.Application, site: Site) -> None:
    """What viewers pull: the WebSocket fMP4 stream, LL-HLS and LL-DASH, and the node's
    numbers (Prometheus reads ``/metrics``, the pages and tools ``/api/v1/stats``)."""
    ws, hls, pulls = site.ws, site.hls, site.pulls
    exposition = Exposition(site.metrics)
    ladder_master = LadderMaster.from_settings(site.registry, site.settings)
    readers = site.settings.metrics_networks
    follower = LadderFollower(
        site.registry,
        lambda: (s.name for s in site.directory.others.streams()),  # the live map's
        pulls.demand.touch,
        site.settings.cluster_heartbeat,
    )

    def numbers_for(request: web.Request) -> None:
        """The node's numbers are public unless ``metrics_allow`` names who may read."""
        if readers and not in_networks(request.remote or "", readers):
            raise ApiError(403, "this node's numbers are not public (metrics_allow)")

    async def live_ws(request: web.Request) -> web.StreamResponse:
        await media_grant(site.access, request, name := _channel(request))
        return await ws.handle(request, name)

    async def playlist(request: web.Request) -> web.StreamResponse:
        grant = await media_grant(site.access, request, name := _channel(request))
        await pulls.demand.touch(name)  # a channel pulled from elsewhere starts here
        return respond(granted(await hls.playlist_answer(request, name), grant))

    async def manifest(request: web.Request) -> web.StreamResponse:
        grant = await media_grant(site.access, request, name := _channel(request))
        await pulls.demand.touch(name)
        await follower.follow(name)  # its ladder, when live on another node
        time_url = site_url(request, site.settings.public_url) + dash.TIME_PATH
        return respond(granted(await site.dash.manifest_answer(request, name, time_url), grant))

    async def master(request: web.Request) -> web.StreamResponse:
        grant = await media_grant(site.access, request, name := _channel(request))
        await pulls.demand.touch(name)
        await follower.follow(name)  # its ladder, when live on another node
        return granted_response(ladder_master.answer(name), grant)  # the source and its ladder

    async def media(request: web.Request) -> web.StreamResponse:
        info = request.match_info
        grant = await media_grant(site.access, request, name := _channel(request))
        answer = await hls.media_answer(request, name, info["rendition"], info["file"])
        return respond(granted(answer, grant))

    async def pull(request: web.Request) -> web.StreamResponse:
        return await pulls.handle(request, _channel(request))

    async def metrics(request: web.Request) -> web.Response:
        numbers_for(request)
        body, content_type = exposition.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def stats(request: web.Request) -> web.Response:
        numbers_for(request)
        return web.json_response(site.metrics())

    app.router.add_get("/live/{channel}/ws", live_ws)
    app.router.add_get("/live/{channel}/index.m3u8", playlist)
    app.router.add_get("/live/{channel}/index.mpd", manifest)
    app.router.add_get("/live/{channel}/master.m3u8", master)
    app.router.add_get(dash.TIME_PATH, dash.server_time)
    app.router.add_get("/live/{channel}/{rendition}/{file}", media)
    # nginx-rtmp's HLS addresses, which the apps Strom grew from play (``hls_path``
    # served at /hls/, or under /live/): the channel's playlist is one redirect away.
    app.router.add_get(r"/hls/{channel:[^/]+}.m3u8", nginx_style_playlist)
    app.router.add_get(r"/live/{channel:[^/]+}.m3u8", nginx_style_playlist)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/stats", stats)
    app.router.add_get("/internal/pull/{channel}", pull)


def create_app(site: Site) -> web.Application:
    settings = site.settings
    codec = SessionCodec(site.secret, max_age=settings.session_days * 86400)
    app = web.Application(
        client_max_size=64 * 1024,
        middlewares=[
            cors.preflight_middleware(),
            error_middleware(_error_page),
            # bodies read in full, in time, before the CSRF check or a handler reads them
            body_deadline_middleware(
                site.http_guard,
                streamed=(ingest.INGEST_PATH, profiles.AVATAR_PATH),
                larger=UPLOADS,
                may_send_larger=admin_uploads(codec, site.store),
            ),
            csrf_form_middleware(),
            session_middleware(codec, site.store, secure_cookies=settings.secure_cookies),
        ],
    )
    cors.install(app)
    media_routes(app, site)
    ingest.routes(app, site)
    whip.routes(app, site)
    app.router.add_static("/static", HERE / "static", append_version=False)
    pages = Pages(site)
    VisibilityPages(site).routes(app)
    pages.routes(app)
    Api(site).routes(app)
    AdminApi(site).routes(app)
    EventStream(site.events, settings).routes(app)
    chat.routes(app, site)
    recordings.routes(app, site)
    ClipsHttp(site).routes(app)
    Download(site).routes(app)
    profiles.ProfilesHttp(site).routes(app)
    pages.channel_routes(app)
    return app
