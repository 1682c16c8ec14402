"""A stand-in for the Strom server, for browser tests of the pages alone: the templates
rendered with sample contexts (tests/web/samples.py), /static, and fake API endpoints and
sockets (media, chat) whose answers each test sets. Test modules import the fixtures
(``browser``, one Chromium per module; ``page``; ``site``) and the helpers from here."""

from __future__ import annotations

import asyncio
import copy
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import WSCloseCode, web
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.e2e.browser import ARTIFACTS, PageLog, launch_chromium, require_chromium
from tests.web import samples
from tests.web.samples import PAGES

STATIC = samples.TEMPLATES.parent / "static"
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=720)
HUES = [262, 330, 190, 140, 25, 220]
# The policy the app sends with every page (strom/web/render.py): no inline anything.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def thumbnail_svg(name: str, version: str) -> str:
    """A stand-in video frame: a gradient, a horizon and the channel's name."""
    hue = HUES[sum(map(ord, name + version)) % len(HUES)]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue} 70% 55%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 60) % 360} 60% 20%)"/></linearGradient></defs>'
        '<rect width="320" height="180" fill="url(#g)"/>'
        '<path d="M0 130 L70 90 L120 115 L190 60 L260 105 L320 80 L320 180 L0 180z" '
        'fill="rgb(0 0 0 / 0.35)"/>'
        '<circle cx="250" cy="45" r="18" fill="rgb(255 255 255 / 0.7)"/>'
        "</svg>"
    )


def chat_welcome() -> dict[str, Any]:
    """What the stand-in chat socket says first: a guest in a room with some history."""
    at = int(samples.NOW * 1000)

    def message(id: int, user: str, text: str, **extra: Any) -> dict[str, Any]:
        event = {"type": "message", "id": id, "user": user, "guest": False, "badges": [],
                 "text": text, "mentions": [], "at": at - (20 - id) * 15_000}  # fmt: skip
        return event | extra

    return {
        "type": "welcome", "protocol": 1, "room": "alice",
        "permissions": {
            "name": "guest-048213", "guest": True, "is_owner": False, "is_moderator": False,
            "is_admin": False, "can_moderate": False, "can_chat": True, "cannot_chat": None,
            "muted_until": None, "banned": False, "restriction_reason": "", "followed_at": None,
        },
        "modes": {"slow_mode": 0, "followers_only": True, "followers_min_minutes": 10,
                  "block_links": True, "require_account": False},
        "viewers": 1234, "likes": 1204,
        "limits": {"max_chars": 500, "rate": 1.0, "burst": 5},
        "history": [
            message(1, "alice", "Welcome in! Today: the Sicilian, all of it.",
                    badges=["owner"]),
            message(2, "bob_builds", f"first {samples.XSS_TEXT}"),
            message(3, "guest-311270", "is there a VOD later?", guest=True),
            message(4, "helper", "VODs are at https://example.com/vods, @guest-311270",
                    badges=["moderator"], mentions=["guest-311270"]),
            message(5, "carol", "@guest-048213 hi, new here too?", mentions=["guest-048213"]),
            message(6, "dave", "that knight sacrifice though " * 4),
            message(7, "erin", samples.XSS_TITLE),
        ],
    }  # fmt: skip


@dataclass
class FakeSite:
    """What the stand-in API answers; tests change these between refreshes."""

    streams: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(samples.STREAMS))
    channel: dict[str, Any] = field(default_factory=samples.channel)
    health: dict[str, Any] = field(default_factory=lambda: {"live": False, "warnings": []})
    patch_status: int = 200
    patch_error: str = ""
    patches: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    base_url: str = ""
    following: list[dict[str, Any]] = field(default_factory=list)
    follows: list[tuple[str, str | None]] = field(default_factory=list)  # (method, CSRF)
    chat_welcome: dict[str, Any] = field(default_factory=chat_welcome)
    chat_sockets: list[web.WebSocketResponse] = field(default_factory=list)
    chat_received: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def chat_push(self, frame: dict[str, Any]) -> None:
        """Send a frame to the newest chat socket (the page's)."""
        await self.chat_sockets[-1].send_json(frame)

    def url(self, path: str) -> str:
        return self.base_url + path


async def serve(site: FakeSite) -> AsyncIterator[FakeSite]:
    env = samples.environment()
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in PAGES:
            raise web.HTTPNotFound
        template, context = PAGES[name]
        html = env.get_template(template).render(**context)
        headers = {"Content-Security-Policy": CSP}
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def thumb(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        version = request.query.get("v", "1")
        return web.Response(text=thumbnail_svg(name, version), content_type="image/svg+xml")

    async def streams(request: web.Request) -> web.Response:
        return web.json_response({"streams": site.streams, "total": len(site.streams)})

    async def channel(request: web.Request) -> web.Response:
        return web.json_response(site.channel)

    async def health(request: web.Request) -> web.Response:
        return web.json_response(site.health)

    async def patch_channel(request: web.Request) -> web.Response:
        site.patches.append((await request.json(), request.headers.get("X-CSRF-Token")))
        if site.patch_status != 200:
            return web.json_response({"error": site.patch_error}, status=site.patch_status)
        return web.json_response(site.channel)

    async def live_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        await ws.send_str(json.dumps({"type": "offline"}))
        async for _ in ws:
            pass
        return ws

    async def events_ws(request: web.Request) -> web.WebSocketResponse:
        """The channel events: open, and quiet (these tests change what the API says)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        async for _ in ws:
            pass
        return ws

    async def chat_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        site.chat_sockets.append(ws)
        await ws.send_json(site.chat_welcome)
        async for msg in ws:
            site.chat_received.put_nowait(json.loads(msg.data))
        return ws

    async def following(request: web.Request) -> web.Response:
        return web.json_response({"channels": site.following})

    async def follow(request: web.Request) -> web.Response:
        site.follows.append((request.method, request.headers.get("X-CSRF-Token")))
        followers = site.channel["follower_count"] + (1 if request.method == "POST" else 0)
        return web.json_response({"following": request.method == "POST", "followers": followers})

    async def recordings(request: web.Request) -> web.Response:
        return web.json_response({"recordings": []})

    async def clips(request: web.Request) -> web.Response:
        return web.json_response({"clips": []})

    async def recording_thumb(request: web.Request) -> web.Response:
        svg = thumbnail_svg(request.match_info["channel"], request.match_info["id"])
        return web.Response(text=svg, content_type="image/svg+xml")

    async def close_sockets(_app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    app = web.Application()
    app.router.add_get("/_pages/{name}", page)
    app.router.add_get("/thumbs/{name}.svg", thumb)
    app.router.add_get("/api/v1/streams", streams)
    app.router.add_get("/api/v1/channels/{name}", channel)
    app.router.add_get("/api/v1/channels/{name}/recordings", recordings)
    app.router.add_get("/api/v1/channels/{name}/clips", clips)
    app.router.add_get("/vod/{channel}/{id}/thumbnail.jpg", recording_thumb)
    app.router.add_get("/avatars/{channel}/{id}.jpg", recording_thumb)  # a picture will do
    app.router.add_get("/api/v1/me/health", health)
    app.router.add_patch("/api/v1/me/channel", patch_channel)
    app.router.add_get("/live/{name}/ws", live_ws)
    app.router.add_get("/chat/{name}/ws", chat_ws)
    app.router.add_get("/events/ws", events_ws)
    app.router.add_get("/api/v1/me/following", following)
    app.router.add_post("/api/v1/channels/{name}/follow", follow)
    app.router.add_delete("/api/v1/channels/{name}/follow", follow)
    app.router.add_static("/static", STATIC)
    app.on_shutdown.append(close_sockets)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    site.base_url = f"http://{host}:{port}"
    try:
        yield site
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, page_log: PageLog) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=DESKTOP)
    new_page = await context.new_page()
    page_log.attach(new_page)
    try:
        yield new_page
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def site() -> AsyncIterator[FakeSite]:
    async for running in serve(FakeSite()):
        yield running


async def open_page(page: Page, site: FakeSite, name: str) -> None:
    await page.goto(site.url(f"/_pages/{name}"))
    await page.wait_for_load_state("networkidle")


async def refresh(page: Page) -> None:
    await page.evaluate("() => window.stromPage.refresh()")


async def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"pages-{name}.png"), full_page=full_page)
