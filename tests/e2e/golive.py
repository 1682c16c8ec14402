"""The Go live page's streamer and viewers in Chromium, shared by the browser tests that
go live (tests/e2e/test_golive.py, test_https.py): the fake devices, a streamer logged in
through the form, the page's state, a viewer whose picture moves."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

from tests.e2e.browser import video_info

STREAMER = "sam_streams"
PASSWORD = "a long enough password"
# Chromium's stand-ins for the camera, the microphone and the screen; the permission
# prompts answered "allow" (a refusal is simulated per test with an init script).
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


async def log_in(browser: Browser, base: str, next_path: str = "/dashboard") -> Page:
    """A streamer's page, logged in through the form, at ``next_path``. The page asks
    for the login itself: an anonymous visitor is sent to the login form and back."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}{next_path}")
    assert page.url == f"{base}/login?next={next_path}"
    form = page.locator('form[action="/login"]')
    await form.locator('input[name="username"]').fill(STREAMER)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator("button").click()
    await page.wait_for_url(f"{base}{next_path}")
    return page


async def golive_state(page: Page) -> str:
    state: str = await page.evaluate("() => window.stromGoLive.state()")
    return state


async def wait_golive(page: Page, state: str, timeout_ms: float = 20_000) -> None:
    await page.wait_for_function(
        "(s) => window.stromGoLive?.state() === s", arg=state, timeout=timeout_ms
    )


async def video_advances(page: Page) -> dict[str, Any]:
    """The viewer's picture moves: currentTime goes forward and the video has a size."""
    first = await video_info(page)
    await page.wait_for_function(
        "(t) => document.querySelector('#player video').currentTime > t + 0.5",
        arg=first["currentTime"],
        timeout=15_000,
    )
    info = await video_info(page)
    assert info["videoWidth"] > 0
    assert info["videoHeight"] > 0
    return info


async def watch(browser: Browser, base: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 960, "height": 600})
    page = await context.new_page()
    await page.goto(f"{base}/live/{STREAMER}")
    return context, page
