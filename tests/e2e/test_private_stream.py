"""A private stream in real Chromium: the streamer signs up, makes the channel private with
a password on the dashboard and goes live with ffmpeg; a stranger's browser gets "This
stream is private", types the password and watches, over WebSocket and over LL-HLS
(hls.js, whose playlists carry the token in every URI)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot, video_info, wait_for_player_state
from tests.e2e.chat_people import sign_up
from tests.helpers import make_media, publish_args, run_process

pytestmark = pytest.mark.e2e

STREAMER = "dana_live"
STREAM_PASSWORD = "friends only 42"


async def make_private(page: Page) -> str:
    """The streamer's part, on the dashboard the sign-up opened: "Who can watch":
    private, with a password. Returns the stream key the sign-up showed."""
    key = await page.locator('input[data-role="stream-key"]').input_value(timeout=10_000)
    panel = page.locator('form[data-role="visibility-form"]')
    await panel.locator('input[name="visibility"][value="private"]').check()
    await panel.locator('input[name="watch_password"]').fill(STREAM_PASSWORD)
    await panel.locator('button[type="submit"]').click()
    await page.wait_for_url("**/dashboard#visibility", timeout=10_000)
    assert await page.locator('[data-role="visibility-now"]').inner_text() == "Now: private"
    return key


async def plays(page: Page) -> None:
    await wait_for_player_state(page, "playing", timeout_ms=20_000)
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 1.0", timeout=20_000
    )


async def test_a_stranger_gives_the_password_and_watches(
    server: StromServer, browser: Browser, media_dir: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    streamer = await sign_up(browser, base, STREAMER, {"width": 1280, "height": 720})
    key = await make_private(streamer.page)
    media = make_media(media_dir / "private.flv", seconds=4.0)
    publisher = asyncio.create_task(
        run_process(*publish_args(media, server.rtmp_port, key, loop=True), timeout=120)
    )
    stranger = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        viewer = await stranger.new_page()
        viewer_log = PageLog()
        viewer_log.attach(viewer)
        await viewer.goto(f"{base}/live/{STREAMER}")
        assert await viewer.get_by_role("heading", name="This stream is private").is_visible()
        assert await viewer.locator("#player").count() == 0
        await screenshot(viewer, "private-stream-password")
        await viewer.locator('input[name="password"]').fill("not the password")
        await viewer.get_by_role("button", name="Watch").click()
        assert await viewer.get_by_text("That password is not right.").is_visible()
        await viewer.locator('input[name="password"]').fill(STREAM_PASSWORD)
        await viewer.get_by_role("button", name="Watch").click()
        await plays(viewer)
        info = await video_info(viewer)
        assert info["transport"] == "WebSocket"
        assert (info["videoWidth"], info["videoHeight"]) == (media.width, media.height)
        await screenshot(viewer, "private-stream-playing")
        # LL-HLS through hls.js: every part and segment it asks for carries the token.
        await viewer.goto(f"{base}/live/{STREAMER}?transport=hls")
        await plays(viewer)
        assert (await video_info(viewer))["transport"] != "WebSocket"
        assert viewer_log.errors == []
    finally:
        await stranger.close()
        await streamer.context.close()
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
