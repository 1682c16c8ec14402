"""The admin page in headless Chromium against the real server and a real ffmpeg
publisher: the Stop dialog opens whole (not clipped by the table), on a phone the Stop
button is on screen, and stopping with a reason ends the broadcast; the streamer's
dashboard, open meanwhile, says why without a reload. Screenshots:
test-artifacts/admin-*.png, dashboard-stopped-live.png."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot
from tests.helpers import make_media, publish_args

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"


async def log_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/dashboard")


async def box_on_screen(page: Page, selector: str) -> dict[str, float]:
    """The element's bounding box, asserted wholly inside the viewport and not covered
    at its centre by anything else (what a user can see and click)."""
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    size = page.viewport_size
    assert size is not None
    assert box["x"] >= 0
    assert box["y"] >= 0
    assert box["x"] + box["width"] <= size["width"]
    assert box["y"] + box["height"] <= size["height"]
    on_top = await page.evaluate(
        "([sel, x, y]) => document.querySelector(sel).contains(document.elementFromPoint(x, y))",
        [selector, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, f"{selector} is covered or clipped"
    return box


async def test_stop_dialog_is_whole_and_stops_with_a_reason(
    server: StromServer, browser: Browser, page_log: PageLog, media_dir: Path
) -> None:
    store = server.store
    assert store is not None
    await store.users.create("operator", PASSWORD, admin=True)
    _, key = await store.users.create("streamer", PASSWORD)
    await store.channels.update("streamer", title="A rather long title " * 5)
    media = make_media(media_dir / "admin.flv", seconds=30.0, size="320x180", bitrate="300k")
    publisher = await asyncio.create_subprocess_exec(
        *publish_args(media, server.rtmp_port, key),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{server.http_port}"
    phone = await browser.new_context(viewport={"width": 390, "height": 844})
    desktop = await browser.new_context(viewport={"width": 1280, "height": 800})
    streamer = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        async with asyncio.timeout(15):
            while (channel := server.registry.get("streamer")) is None or not channel.live:
                assert publisher.returncode is None
                await asyncio.sleep(0.05)

        # A phone: the row's Stop button is on screen, and so is the whole dialog.
        page = await phone.new_page()
        page_log.attach(page)
        await log_in(page, base, "operator")
        await page.goto(f"{base}/admin")
        row = "tr[data-username=streamer]"
        await box_on_screen(page, f"{row} button[data-opens]")
        await screenshot(page, "admin-phone")
        await page.click(f"{row} button[data-opens]")
        dialog = f"{row} [popover]"
        await page.locator(dialog).wait_for(state="visible", timeout=5_000)
        await box_on_screen(page, dialog)
        await box_on_screen(page, f"{dialog} button[type=submit]")
        await screenshot(page, "admin-stop-dialog-phone")
        await page.click(f"{dialog} button[popovertargetaction=hide]")
        await page.locator(dialog).wait_for(state="hidden", timeout=5_000)

        # The streamer watches their dashboard (never reloaded: the mark stays).
        dashboard = await streamer.new_page()
        page_log.attach(dashboard)
        await log_in(dashboard, base, "streamer")
        await dashboard.evaluate("window.stillTheSamePage = true")
        banner = dashboard.locator('[data-role="stopped-by-admin"]')
        assert await banner.is_hidden()

        # Desktop: the dialog is whole (the table's scroll box clipped the old one to a
        # 3 px sliver); the reason typed there ends the broadcast.
        page = await desktop.new_page()
        page_log.attach(page)
        await log_in(page, base, "operator")
        await page.goto(f"{base}/admin")
        await page.click(f"{row} button[data-opens]")
        await page.locator(dialog).wait_for(state="visible", timeout=5_000)
        box = await box_on_screen(page, dialog)
        assert box["height"] > 150
        assert box["width"] > 300
        await page.fill(f"{dialog} input[name=reason]", "Copyrighted music")
        await screenshot(page, "admin-stop-dialog-desktop")
        await page.click(f"{dialog} button[type=submit]")
        await page.get_by_text("Nobody is live").wait_for(timeout=10_000)
        assert await asyncio.wait_for(publisher.wait(), 15) != 0
        await banner.wait_for(state="visible", timeout=10_000)
        assert await banner.text_content() == "Stopped by an administrator: Copyrighted music"
        assert await dashboard.evaluate("window.stillTheSamePage === true")
        await screenshot(dashboard, "dashboard-stopped-live")
        assert page_log.errors == []
    finally:
        await phone.close()
        await desktop.close()
        await streamer.close()
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()
