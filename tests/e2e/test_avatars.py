"""Avatars where people meet, in headless Chromium against a real server and real ffmpeg
publishers: a streamer with an avatar goes live beside one without; the home page's cards
show the first one's 64x64 avatar and the second one's letter tile (no broken picture),
drawn by the server and again by the directory's script; in chat, the first one's
messages start with their avatar and display name (their username after it), the
second one's with their username alone."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot
from tests.helpers import MediaFile, publish_args
from tests.helpers.pictures import png
from tests.helpers.watching import until, wait_live
from tests.helpers.web import Browser as HttpClient

pytestmark = pytest.mark.e2e

PAINTER, PLAIN = "ada_paints", "bo_plain"
PASSWORD = "a long enough password"
DISPLAY = "Ada <b>Lovelace</b>"  # shown as text
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
WAIT_MS = 10_000  # a bound on waiting for something to show, never a timing assertion

#: what each card's avatar shows: the picture (its src and decoded width) or the letter
CARD_AVATARS = """() => Object.fromEntries(
  [...document.querySelectorAll('[data-role=streams] > li')].map((li) => {
    const img = li.querySelector('.stream-meta img[data-role=avatar-image]');
    const letter = li.querySelector('.stream-meta [data-role=avatar]');
    return [li.dataset.username, {
      picture: img && !img.hidden ? img.getAttribute('src') : null,
      width: img && !img.hidden && img.complete ? img.naturalWidth : 0,
      letter: letter && !letter.hidden ? letter.textContent : null,
    }];
  }))"""


async def publish(media: MediaFile, port: int, key: str) -> Any:
    return await asyncio.create_subprocess_exec(
        *publish_args(media, port, key, loop=True),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def log_in(browser: Browser, base: str, name: str, log: PageLog) -> Page:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    log.attach(page)
    await page.goto(f"{base}/login?next=/{PLAIN}")
    form = page.locator('form[action="/login"]')
    await form.locator('input[name="username"]').fill(name)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator("button").click()
    await page.wait_for_url(f"{base}/{PLAIN}")
    await page.wait_for_function("() => window.stromChat?.state === 'open'", timeout=WAIT_MS)
    return page


async def say(page: Page, text: str) -> None:
    await page.locator("#chat-input").fill(text)
    await page.locator("#chat-input").press("Enter")
    await page.locator(f".chat-line[data-id]:has-text({text!r})").wait_for(timeout=WAIT_MS)


async def cards_show_avatars(page: Page, picture: str) -> None:
    """The painter's card shows their avatar, decoded at 64x64; the plain one's the letter."""
    await page.wait_for_function(
        f"() => ({CARD_AVATARS})()[{PAINTER!r}]?.width === 64", timeout=WAIT_MS
    )
    assert await page.evaluate(CARD_AVATARS) == {
        PAINTER: {"picture": picture, "width": 64, "letter": None},
        PLAIN: {"picture": None, "width": 0, "letter": "B"},
    }


async def test_avatars_on_directory_cards_and_in_chat(
    server: StromServer, browser: Browser, av_media: MediaFile
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    painter, plain = HttpClient(server, "127.0.0.2"), HttpClient(server, "127.0.0.3")
    publishers = []
    log = PageLog()
    try:
        painter_key = await painter.register(PAINTER, PASSWORD)
        plain_key = await plain.register(PLAIN, PASSWORD)
        status, answer = await painter.api(
            "POST",
            "/api/v1/me/avatar",
            data=png(300, 200, noise=True),
            headers={"Content-Type": "image/png"},
        )
        assert status == 200, answer
        assert isinstance(answer, dict)
        picture = answer["avatar_small_url"]
        assert picture.startswith(f"/avatars/{PAINTER}/64.jpg?v=")
        status, _ = await painter.api(
            "PUT", "/api/v1/me/profile", json={"display_name": DISPLAY, "bio": "", "links": []}
        )
        assert status == 200
        for key in (painter_key, plain_key):
            publishers.append(await publish(av_media, server.rtmp_port, key))
        await wait_live(server, PAINTER)
        await wait_live(server, PLAIN)
        # ... and their channels' info read (title, category, avatar: a moment after)
        await until(lambda: {PAINTER, PLAIN} <= set(server.directory.infos))

        # The API's cards say where each avatar is (none: null).
        async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/streams") as r:
            streams = (await r.json())["streams"]
        assert {s["username"]: s["avatar_url"] for s in streams} == {
            PAINTER: picture,
            PLAIN: None,
        }

        # The home page as the server draws it, then as the directory's script draws it
        # (every card made afresh from the template by a refresh).
        context = await browser.new_context(viewport=DESKTOP)
        home = await context.new_page()
        log.attach(home)
        await home.goto(base + "/")
        await cards_show_avatars(home, picture)
        await screenshot(home, "avatars-home-desktop")
        await home.evaluate(
            """() => {
              for (const li of document.querySelectorAll('[data-role=streams] > li')) li.remove();
              return window.stromPage.refresh();
            }"""
        )
        await expect(home.locator("[data-role=streams] > li")).to_have_count(2, timeout=WAIT_MS)
        await cards_show_avatars(home, picture)
        phone = await (await browser.new_context(viewport=PHONE)).new_page()
        log.attach(phone)
        await phone.goto(base + "/")
        await cards_show_avatars(phone, picture)
        await screenshot(phone, "avatars-home-phone")

        # Chat: the painter's line starts with the avatar and the display name (as text),
        # the username after it; the plain user's has neither picture nor display name.
        ada = await log_in(browser, base, PAINTER, log)
        await say(ada, "hello from ada")
        bo = await log_in(browser, base, PLAIN, log)  # sees ada's line in the history
        await say(bo, "hi from bo")
        for page in (ada, bo):
            ada_line = page.locator(".chat-line[data-id]:has-text('hello from ada')")
            await ada_line.wait_for(timeout=WAIT_MS)
            avatar = ada_line.locator("img.chat-avatar")
            await expect(avatar).to_have_attribute("src", picture)
            await page.wait_for_function(
                "(el) => el.complete && el.naturalWidth === 64",
                arg=await avatar.element_handle(),
                timeout=WAIT_MS,
            )
            box = await avatar.bounding_box()
            assert box is not None
            assert (box["width"], box["height"]) == (20, 20)
            assert await ada_line.locator(".chat-display").inner_text() == DISPLAY
            assert await ada_line.locator(".chat-user").inner_text() == PAINTER
            assert await ada_line.locator("b").count() == 0
            bo_line = page.locator(".chat-line[data-id]:has-text('hi from bo')")
            await bo_line.wait_for(timeout=WAIT_MS)
            assert await bo_line.locator("img").count() == 0
            assert await bo_line.locator(".chat-display").count() == 0
            assert await bo_line.locator(".chat-user").inner_text() == PLAIN
        await screenshot(bo, "avatars-chat-desktop")
    finally:
        for proc in publishers:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await proc.wait()
        await painter.close()
        await plain.close()
    assert log.errors == []
