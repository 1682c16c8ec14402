"""The platform end to end in headless Chromium with a real ffmpeg publisher:
sign up → dashboard → copy the key → go live → a second browser finds the channel in the
directory (thumbnail, 1 viewer while watching) → the streamer edits the title → the viewer
sees it without reloading → a wrong key is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser

from strom.server import StromServer
from tests.e2e.browser import screenshot, wait_for_player_state
from tests.helpers import make_media, publish_args, run_process

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"


async def test_sign_up_go_live_and_be_found(
    server: StromServer, browser: Browser, media_dir: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    media = make_media(media_dir / "platform.flv", seconds=40.0, size="640x360")

    # The streamer signs up and copies the key from the dashboard.
    streamer_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    await streamer_ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    streamer = await streamer_ctx.new_page()
    await streamer.goto(f"{base}/register")
    form = streamer.locator('form[action="/register"]')
    await form.locator('input[name="username"]').fill("Zoe_Streams")
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('input[name="password_confirm"]').fill(PASSWORD)
    await form.locator("button").click()
    await streamer.wait_for_url(f"{base}/register")  # the dashboard, rendered once
    await streamer.locator('button[data-copy="stream-key"]').click()
    key = await streamer.evaluate("() => navigator.clipboard.readText()")
    assert len(key) > 30
    await screenshot(streamer, "platform-dashboard-new-key")

    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port, key)))
    try:
        # A wrong key is refused while the right one streams.
        code, _ = await run_process(*publish_args(media, server.rtmp_port, "wrong-key-123"))
        assert code != 0

        # A viewer finds the channel in the directory, with a thumbnail.
        viewer_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
        viewer = await viewer_ctx.new_page()
        await viewer.goto(base)
        card = viewer.locator('[data-username="Zoe_Streams"]')
        for _ in range(40):
            await viewer.evaluate("() => window.stromPage && window.stromPage.refresh()")
            thumbnail = card.locator("img[data-role=thumbnail]")
            if await card.count() and await thumbnail.count():
                src = await thumbnail.get_attribute("src")
                if src and "thumbnails" in src:
                    break
            await asyncio.sleep(0.5)
        img = card.locator("img[data-role=thumbnail]")
        assert await img.evaluate("(i) => i.complete && i.naturalWidth") == 320
        await screenshot(viewer, "platform-directory")

        # Watching counts as one viewer (the streamer's own preview does not).
        await card.locator("a").first.click()
        await viewer.wait_for_url(f"{base}/Zoe_Streams")
        await wait_for_player_state(viewer, "playing", timeout_ms=20_000)
        await viewer.goto(base)
        for _ in range(20):
            await viewer.evaluate("() => window.stromPage && window.stromPage.refresh()")
            count = await card.locator('[data-role="viewers"]').text_content()
            if count == "0":
                break
            await asyncio.sleep(0.3)
        watcher = await viewer_ctx.new_page()
        await watcher.goto(f"{base}/Zoe_Streams")
        await wait_for_player_state(watcher, "playing", timeout_ms=20_000)
        await streamer.goto(f"{base}/dashboard")  # its preview is not an audience
        await wait_for_player_state(streamer, "playing", timeout_ms=20_000)
        for _ in range(20):
            await viewer.evaluate("() => window.stromPage && window.stromPage.refresh()")
            count = await card.locator('[data-role="viewers"]').text_content()
            if count == "1":
                break
            await asyncio.sleep(0.3)
        assert count == "1"

        # The streamer retitles; the viewer's channel page follows without reloading.
        await streamer.locator('input[name="title"]').fill("Speedrunning <b>any%</b>")
        await streamer.locator('form[data-role="stream-info-form"] button[type="submit"]').click()
        await streamer.locator('[data-role="save-status"]', has_text="Saved").wait_for()
        await watcher.evaluate("() => window.stromPage && window.stromPage.refresh()")
        title = watcher.locator('[data-role="title"]')
        await title.filter(has_text="Speedrunning <b>any%</b>").wait_for(timeout=10_000)
        await screenshot(watcher, "platform-channel-page")
        health = await streamer.locator('[data-health="resolution"]').text_content()
        assert health is not None
        assert "640" in health
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)


async def test_regenerating_the_key_keeps_the_live_broadcast(
    server: StromServer, media_dir: Path
) -> None:
    assert server.store is not None
    _, key = await server.store.users.create("Yuki", "a long enough password")
    media = make_media(media_dir / "regen.flv", seconds=6.0, size="320x180")
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port, key)))
    for _ in range(100):
        channel = server.registry.get("Yuki")
        if channel is not None and channel.live:
            break
        await asyncio.sleep(0.1)
    new_key = await server.store.channels.reset_stream_key("Yuki")
    # The old key no longer opens the channel...
    code, _ = await run_process(*publish_args(media, server.rtmp_port, key))
    assert code != 0
    # ...but the broadcast that started with it runs to its end.
    code, log = await publisher
    assert code == 0, log
    assert await server.keys.resolve(new_key) == "Yuki"
    for _ in range(50):  # the end is recorded right after the publisher leaves
        broadcasts = await server.store.broadcasts.list("Yuki")
        if broadcasts and broadcasts[0].ended_at is not None:
            break
        await asyncio.sleep(0.1)
    assert len(broadcasts) == 1  # one broadcast, not cut by the new key
    assert broadcasts[0].ended_at is not None
