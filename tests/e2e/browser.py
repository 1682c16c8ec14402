"""Playwright helpers shared by the browser tests.

Chromium is Debian's (``/usr/bin/chromium``): Playwright's own browser builds cannot be
downloaded here. Debian's build plays H.264 High + AAC-LC through Media Source
Extensions (``MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"')``
is true), which is what the WebSocket player needs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, Playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
H264_AAC = 'video/mp4; codecs="avc1.64001f,mp4a.40.2"'


def require_chromium() -> None:
    """Skip when Chromium is missing on a developer's machine; fail in CI."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


@dataclass
class PageLog:
    """What a page said on its console, and the errors it threw."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("Failed to load resource"):  # which one: the console leaves it out
            text += f" ({message.location.get('url', '?')})"
        self.console.append(f"{message.type}: {text}")

    def _on_error(self, error: Error) -> None:
        self.errors.append(str(error))


async def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot to test-artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    await page.screenshot(path=str(path))
    return path


async def player_state(page: Page) -> str | None:
    state: str | None = await page.evaluate("() => window.stromPlayer?.state ?? null")
    return state


async def wait_for_player_state(page: Page, state: str, timeout_ms: float = 10_000) -> None:
    """Wait until window.stromPlayer.state is ``state``."""
    await page.wait_for_function(
        "(state) => window.stromPlayer?.state === state", arg=state, timeout=timeout_ms
    )


async def video_info(page: Page) -> dict[str, Any]:
    """currentTime, size, paused and the player's latency, in one round trip."""
    info: dict[str, Any] = await page.evaluate(
        """() => {
            const v = document.querySelector('#player video');
            return {
                currentTime: v.currentTime,
                videoWidth: v.videoWidth,
                videoHeight: v.videoHeight,
                paused: v.paused,
                muted: v.muted,
                playbackRate: v.playbackRate,
                latency: window.stromPlayer?.latency() ?? null,
                transport: window.stromPlayer?.transport ?? null,
            };
        }"""
    )
    return info
