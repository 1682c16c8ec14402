"""Fixtures for the end-to-end tests (real ffmpeg, real Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.browser import PageLog, launch_chromium, require_chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, launched through Playwright's async API."""
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
async def page(browser: Browser, page_log: PageLog) -> AsyncIterator[Page]:
    """A fresh 1280x720 page whose console output and errors land in ``page_log``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    new_page = await context.new_page()
    page_log.attach(new_page)
    try:
        yield new_page
    finally:
        await context.close()
