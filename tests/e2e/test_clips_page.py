"""A signed-in viewer presses Clip under a live channel's player in Chromium, gets the
clip's link, and the clip page's own player plays the MP4 (its time advances); under a
channel that is not recorded the button says clips need the recording on."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from strom.server import StromServer
from tests.e2e.chat_people import DESKTOP, WAIT_MS, sign_up
from tests.helpers import MediaFile
from tests.helpers.recorded import go_live, long_media, recorded

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    return long_media(tmp_path_factory.mktemp("clips") / "long.flv")


async def test_a_viewer_clips_a_live_channel_and_plays_the_clip(
    server: StromServer, browser: Browser, media: MediaFile, av_media: MediaFile
) -> None:
    await server.store.users.create("streamer", "a long enough password")
    await server.store.users.create("quiet", "a long enough password")
    await server.store.channels.update("quiet", record_broadcasts=False)
    go_live(server, "streamer", media)
    go_live(server, "quiet", av_media)
    await recorded(server, "streamer", 35.0)
    base = f"http://127.0.0.1:{server.http_port}"
    viewer = await sign_up(browser, base, "viewer", DESKTOP)
    page = viewer.page
    try:
        await page.goto(f"{base}/streamer")
        bar = page.locator("[data-clip-bar]")
        assert await bar.locator('[data-role="clip-length"]').input_value() == "30"
        await bar.locator('[data-action="clip"]').click()
        link = bar.locator('[data-role="clip-link"]')
        await link.wait_for(timeout=WAIT_MS)
        url = await link.get_attribute("href")
        assert url is not None
        assert url.startswith(f"{base}/clip/")
        # The channel's clips list shows it at once.
        await page.locator('[data-role="clips-list"] a').first.wait_for(timeout=WAIT_MS)

        await page.goto(url)
        copy = page.locator('[data-copy="clip-link"]')
        assert await page.locator("#clip-link").input_value() == url
        await copy.wait_for()
        await page.evaluate(
            "() => { const v = document.querySelector('[data-role=clip-video]');"
            " v.muted = true; return v.play(); }"
        )
        await page.wait_for_function(
            "() => document.querySelector('[data-role=clip-video]').currentTime > 1",
            timeout=WAIT_MS,
        )
        assert not viewer.log.errors, viewer.log.errors

        # A channel that is not recorded: the button says why there is no clip.
        await page.goto(f"{base}/quiet")
        button = page.locator('[data-clip-bar] [data-action="clip"]')
        await button.click()
        await page.wait_for_function(
            "() => document.querySelector('[data-clip-bar] [data-action=clip]')"
            ".textContent === 'Clips need the recording on'",
            timeout=WAIT_MS,
        )
        assert await button.is_disabled()
    finally:
        await viewer.context.close()
