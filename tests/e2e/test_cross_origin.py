"""A player on another site: hls.js and dash.js in Chromium on a page of another origin
(another port) play a live channel's LL-HLS and LL-DASH, which a browser allows only if
Strom's answers say so (CORS)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Frame, Page

from strom.server import StromServer
from tests.e2e.browser import PageLog
from tests.helpers import CHANNEL, make_media, publish_args, run_process
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e

#: the other site's page: Strom's hls.js, low-latency mode, Strom's playlist
PAGE = """<!doctype html><title>another site</title>
<video id="v" muted autoplay playsinline></video>
<script src="{strom}/static/vendor/hls.min.js"></script>
<script>
  window.fatal = null;
  const hls = new Hls({{lowLatencyMode: true}});
  hls.on(Hls.Events.ERROR, (_, data) => {{ if (data.fatal) window.fatal = data.details; }});
  hls.loadSource("{strom}/live/{channel}/index.m3u8");
  hls.attachMedia(document.getElementById("v"));
</script>"""


#: the other site's page: Strom's dash.js (low latency: the MPD says so), Strom's MPD
DASH_PAGE = """<!doctype html><title>another site</title>
<video id="v" muted autoplay playsinline></video>
<script src="{strom}/static/vendor/dash.all.min.js"></script>
<script>
  window.fatal = null;
  const player = dashjs.MediaPlayer().create();
  player.on(dashjs.MediaPlayer.events.ERROR, (e) => {{ window.fatal = JSON.stringify(e.error); }});
  player.initialize(document.getElementById("v"), "{strom}/live/{channel}/index.mpd", true);
  window.player = player;
</script>"""

#: a blog post on another site with the channel page's iframe code (with chat) in it
FRAMED = """<!doctype html><title>a blog</title><p>Watch this:</p>
<iframe src="{strom}/embed/{channel}?chat=1" width="960" height="360" allow="autoplay"></iframe>"""


@pytest.fixture
async def other_site(server: StromServer) -> AsyncIterator[str]:
    strom = f"http://127.0.0.1:{server.http_port}"

    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text=PAGE.format(strom=strom, channel=CHANNEL), content_type="text/html"
        )

    async def blog(request: web.Request) -> web.Response:
        return web.Response(
            text=FRAMED.format(strom=strom, channel=CHANNEL), content_type="text/html"
        )

    async def dash(request: web.Request) -> web.Response:
        return web.Response(
            text=DASH_PAGE.format(strom=strom, channel=CHANNEL), content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/dash", dash)
    app.router.add_get("/blog", blog)
    site = TestServer(app, host="127.0.0.1")
    await site.start_server()
    try:
        yield str(site.make_url("/"))
    finally:
        await site.close()


async def test_hlsjs_on_another_origin_plays(
    server: StromServer, other_site: str, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "cross-origin.flv", seconds=12.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    await page.goto(other_site)
    await page.wait_for_function(
        "() => window.fatal !== null || document.getElementById('v').currentTime > 1.0",
        timeout=20_000,
    )
    assert await page.evaluate("window.fatal") is None
    width = await page.evaluate("document.getElementById('v').videoWidth")
    assert width == media.width
    code, log = await publisher
    assert code == 0, log
    assert not [e for e in page_log.errors if "CORS" in e or "Access-Control" in e]


async def test_dashjs_on_another_origin_plays_low_latency(
    server: StromServer, other_site: str, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "cross-origin-dash.flv", seconds=8.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    await page.goto(other_site + "dash")
    await page.wait_for_function(
        "() => window.fatal !== null || document.getElementById('v').currentTime > 1.0",
        timeout=20_000,
    )
    assert await page.evaluate("window.fatal") is None
    assert await page.evaluate("document.getElementById('v').videoWidth") == media.width
    # dash.js took the MPD's word: low-latency mode (segments fetched as they grow), and
    # its latency, measured on Strom's clock (UTCTiming), is about the MPD's target (1 s)
    # rather than the several seconds of whole segments
    assert await page.evaluate("window.player.getLowLatencyModeEnabled()")
    assert await page.evaluate("window.player.getCurrentLiveLatency()") < 3.0
    publisher.cancel()  # seen enough: no need to wait for the end of the file
    with contextlib.suppress(asyncio.CancelledError):
        await publisher
    assert not [e for e in page_log.errors if "CORS" in e or "Access-Control" in e]


async def test_the_embed_plays_in_an_iframe_on_another_site(
    server: StromServer, other_site: str, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "embedded.flv", seconds=8.0)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    await page.goto(other_site + "blog")
    frame = next(f for f in await _frames(page) if "/embed/" in f.url)
    await frame.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 1.0", timeout=20_000
    )
    width = await frame.evaluate("document.querySelector('#player video').videoWidth")
    assert width == media.width
    # The chat beside it (?chat=1) connects from inside the other site's page.
    await frame.wait_for_function(
        "() => document.querySelector('[data-chat]').dataset.state === 'open'", timeout=10_000
    )
    code, log = await publisher
    assert code == 0, log
    assert page_log.errors == []


async def _frames(page: Page) -> list[Frame]:
    """The page's frames once its iframe has loaded."""
    await page.wait_for_function("() => document.querySelector('iframe') !== null")
    for _ in range(100):
        found = [f for f in page.frames if "/embed/" in f.url]
        if found:
            await found[0].wait_for_load_state()
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no embed frame in {[f.url for f in page.frames]}")
