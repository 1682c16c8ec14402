"""The real watch page in headless Chromium, against the real server and a real ffmpeg
publisher: the video really plays, over WebSocket/MSE, over LL-HLS (hls.js) and over
LL-DASH (dash.js); and when a player script is missing the page says so."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from playwright.async_api import Page, Route

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot, video_info, wait_for_player_state
from tests.helpers import CHANNEL, make_media, publish_args, run_process
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e


async def assert_plays(page: Page, width: int, height: int) -> dict[str, object]:
    await wait_for_player_state(page, "playing", timeout_ms=20_000)
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 0.2", timeout=15_000
    )
    first = await video_info(page)
    await page.wait_for_function(
        "(t) => document.querySelector('#player video').currentTime > t + 1.0",
        arg=first["currentTime"],
        timeout=15_000,
    )
    info = await video_info(page)
    assert (info["videoWidth"], info["videoHeight"]) == (width, height)
    assert info["paused"] is False
    return info


async def test_watch_page_plays_over_websocket(
    server: StromServer, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "watch.flv", seconds=8.0)
    # The viewer opens the page first: an offline card, then the video by itself.
    await page.goto(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}")
    await wait_for_player_state(page, "offline")
    assert await page.get_by_text("offline").first.is_visible()
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    info = await assert_plays(page, media.width, media.height)
    assert info["transport"] == "WebSocket"
    assert info["latency"] is not None
    assert info["latency"] < 1.5  # type: ignore[operator]
    await screenshot(page, "watch-websocket")
    code, log = await publisher
    assert code == 0, log
    await wait_for_player_state(page, "ended")
    assert page_log.errors == []


async def test_watch_page_plays_llhls_with_hlsjs(
    server: StromServer, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "watch-hls.flv", seconds=14.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    await page.goto(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}?transport=hls")
    info = await assert_plays(page, media.width, media.height)
    assert info["transport"] == "LL-HLS"
    await screenshot(page, "watch-llhls")
    code, log = await publisher
    assert code == 0, log
    assert page_log.errors == []


async def test_watch_page_plays_lldash_with_dashjs(
    server: StromServer, page: Page, page_log: PageLog, media_dir: Path
) -> None:
    media = make_media(media_dir / "watch-dash.flv", seconds=8.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    await page.goto(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}?transport=dash")
    info = await assert_plays(page, media.width, media.height)
    assert info["transport"] == "LL-DASH"
    assert info["latency"] is not None
    assert info["latency"] < 3.0  # type: ignore[operator]
    await screenshot(page, "watch-lldash")
    publisher.cancel()  # seen enough: no need to wait for the end of the file
    with contextlib.suppress(asyncio.CancelledError):
        await publisher
    assert page_log.errors == []


@pytest.mark.parametrize(
    ("transport", "script", "message"),
    [
        ("hls", "hls.min.js", "The HLS player (hls.js) is missing from this server"),
        ("dash", "dash.all.min.js", "The MPEG-DASH player (dash.js) is missing from this server"),
    ],
)
async def test_the_page_says_when_a_player_script_is_missing(
    server: StromServer, page: Page, transport: str, script: str, message: str
) -> None:
    async def not_installed(route: Route) -> None:
        await route.fulfill(status=404, body="no such file")

    await page.route(f"**/static/vendor/{script}", not_installed)
    await page.goto(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}?transport={transport}")
    await wait_for_player_state(page, "error")
    alert = page.locator("#player .card-error")
    assert await alert.is_visible()
    text = await alert.inner_text()
    assert message in text
    assert "ask its operator to reinstall Strom" in text
