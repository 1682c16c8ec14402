"""The chat panel (static/chat.js), the Follow button and the go-live notices in headless
Chromium against the stand-in server (tests/e2e/fake_site.py), whose chat socket the test
drives frame by frame: history, room events, the page's commands, refusals, permissions
and a dropped connection. The real server's side is tests/e2e/test_chat.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import WSCloseCode
from playwright.async_api import Browser, Page

from tests.e2e.browser import PageLog
from tests.e2e.fake_site import PHONE, FakeSite, browser, open_page, page, shoot, site
from tests.web.samples import CSRF, XSS_TEXT, XSS_TITLE

__all__ = ["browser", "page", "site"]  # fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def chat_frame(site: FakeSite, type: str) -> dict[str, Any]:
    """The next frame of ``type`` the page sent on its chat socket."""
    while True:
        frame = await asyncio.wait_for(site.chat_received.get(), 5.0)
        if frame.get("type") == type:
            return frame


async def chat_lines(page: Page) -> list[str]:
    lines: list[str] = await page.evaluate(
        "() => [...document.querySelectorAll('[data-chat-role=log] > li')]"
        ".map((li) => li.textContent.replace(/\u22ef$/, ''))"
    )
    return lines


async def test_chat_panel_draws_room_events(page: Page, page_log: PageLog, site: FakeSite) -> None:
    await open_page(page, site, "channel-live")
    await page.wait_for_function("() => window.stromChat?.state === 'open'", timeout=5_000)
    chat = page.locator("[data-chat]")
    # History as text: hostile strings stay text, links are plain anchors, badges, mentions.
    lines = await chat_lines(page)
    assert lines[1] == f"bob_builds: first {XSS_TEXT}"
    assert lines[6] == f"erin: {XSS_TITLE}"
    assert await chat.locator("img, script").count() == 0
    link = chat.locator("a.chat-link")
    assert await link.get_attribute("href") == "https://example.com/vods"
    assert await link.get_attribute("rel") == "nofollow noopener noreferrer"
    assert await link.get_attribute("target") == "_blank"
    assert await chat.locator("[data-id='1'] .chat-badge").text_content() == "Streamer"
    assert await chat.locator(".chat-line-mention").count() == 1  # carol's, to this guest
    assert await chat.locator(".chat-mention-me").inner_text() == "@guest-048213"
    assert await chat.locator(".chat-identity").inner_text() == "guest-048213 · Log in"
    assert await chat.locator("#chat-input").get_attribute("placeholder") == (
        "Followers-only: log in and follow to chat"
    )
    assert await chat.locator("[data-chat-role=modes]").inner_text() == (
        "Followers-only (10 min)\nNo links"
    )
    assert await chat.locator("[data-chat-role=likes]").inner_text() == "1,204"
    assert not await chat.locator("[data-chat-action=toggle-mod]").is_visible()
    assert not await chat.locator("[data-chat-action=menu]").first.is_visible()
    await shoot(page, "chat-guest-desktop", full_page=False)

    # Room events: a deletion, a timeout, likes for everyone, the viewer count.
    await site.chat_push(
        {
            "type": "batch",
            "events": [
                {"type": "delete", "id": 7},
                {
                    "type": "timeout",
                    "user": "Bob_Builds",
                    "until": int(time.time() * 1000) + 600_000,
                },
                {"type": "likes", "count": 3, "total": 1207},
                {"type": "viewers", "count": 1},
            ],
        }
    )
    await page.wait_for_function(
        "() => document.querySelector('[data-chat-role=likes]').textContent === '1,207'"
    )
    lines = await chat_lines(page)
    assert not [line for line in lines if line.startswith(("erin:", "bob_builds:"))]
    assert lines[-1] == "Bob_Builds was timed out for 10 min."
    like = chat.locator("[data-chat-role=like]")
    assert await like.get_attribute("data-bursts") == "1"
    assert "chat-like-burst" in (await like.get_attribute("class") or "")
    assert await chat.locator("[data-chat-role=viewers]").inner_text() == "1"
    assert await page.locator(".channel-stats [data-role=viewers-label]").inner_text() == "viewer"

    # Sending: a pending line at once, replaced by the server's copy (matched by nonce).
    await page.fill("#chat-input", "gg @carol")
    await page.press("#chat-input", "Enter")
    sent = await chat_frame(site, "send")
    assert sent["text"] == "gg @carol"
    assert await chat.locator(".chat-line-pending").count() == 1
    echo = {"type": "message", "id": 8, "user": "guest-048213", "guest": True, "badges": [],
            "text": "gg @carol", "mentions": ["carol"], "at": 0,
            "nonce": sent["nonce"]}  # fmt: skip
    await site.chat_push({"type": "batch", "events": [echo]})
    await chat.locator(".chat-line[data-id='8']").wait_for()
    assert await chat.locator(".chat-line-pending").count() == 0
    await like.click()
    assert (await chat_frame(site, "like")) == {"type": "like"}

    # A refusal removes the pending line, gives the text back and says why.
    await page.fill("#chat-input", "www.spam.example")
    await page.press("#chat-input", "Enter")
    sent = await chat_frame(site, "send")
    await site.chat_push({"type": "error", "code": "link_blocked", "nonce": sent["nonce"],
                          "reason": "links are not allowed in this chat"})  # fmt: skip
    status = chat.locator("[data-chat-role=status]")
    await status.filter(has_text="Links are not allowed in this chat.").wait_for()
    assert await page.input_value("#chat-input") == "www.spam.example"
    assert await chat.locator(".chat-line-pending").count() == 0

    # Guests refused: the input is off and says why, with a way to log in.
    await site.chat_push({**site.chat_welcome["permissions"], "type": "permissions",
                          "can_chat": False, "cannot_chat": "account_required"})  # fmt: skip
    await page.wait_for_function("() => document.querySelector('#chat-input').disabled")
    assert await page.get_attribute("#chat-input", "placeholder") == (
        "Log in to chat in this channel."
    )
    # (the refusal above still shows for a few seconds; then the standing reason does)
    await site.chat_push({"type": "clear"})  # not a frame type: ignored
    await site.chat_push({"type": "batch", "events": [{"type": "clear"}]})
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-chat-role=log] > li').length === 1"
    )
    assert (await chat_lines(page)) == ["The chat was cleared by a moderator."]

    # The server goes away: the panel says so and comes back by itself.
    await site.chat_sockets[-1].close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"room is full")
    await page.wait_for_function("() => window.stromChat.state === 'reconnecting'")
    assert "room is full" in await chat.locator("[data-chat-role=connection]").inner_text()
    await page.wait_for_function("() => window.stromChat.state === 'open'", timeout=5_000)
    assert len(await chat_lines(page)) == 7  # the welcome's history again
    assert page_log.errors == []


async def test_chat_moderation_tools_send_commands(
    browser: Browser, page_log: PageLog, site: FakeSite
) -> None:
    """The owner's view on a phone: the message menu and the moderation panel send the
    documented commands and show the room's state as the socket reports it."""
    welcome = site.chat_welcome
    welcome["permissions"] |= {"name": "alice", "guest": False, "is_owner": True,
                               "can_moderate": True}  # fmt: skip
    welcome["blocked_words"] = ["darn", "dang it"]
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    page_log.attach(page)
    try:
        await open_page(page, site, "channel-offline")
        await page.wait_for_function("() => window.stromChat?.state === 'open'", timeout=5_000)
        chat = page.locator("[data-chat]")
        # Menus on others' lines, not on the owner's own.
        assert not await chat.locator("[data-id='1'] [data-chat-action=menu]").is_visible()
        menu_button = chat.locator("[data-id='2'] [data-chat-action=menu]")
        await menu_button.click()
        menu = chat.locator("[data-chat-role=menu]")
        assert await menu.locator("[data-chat-role=menu-title]").inner_text() == "bob_builds"
        await shoot(page, "chat-owner-menu-phone", full_page=False)
        await menu.locator("[data-chat-action=delete]").click()
        deleted = await chat_frame(site, "delete")
        assert deleted["id"] == 2
        assert isinstance(deleted["nonce"], str)  # so a refusal can be matched to it
        assert not await menu.is_visible()
        await menu_button.click()
        ban = menu.locator("[data-chat-action=ban]")
        await ban.click()  # asks first
        assert await ban.inner_text() == "Click again to ban bob_builds"
        await ban.click()
        assert (await chat_frame(site, "ban"))["user"] == "bob_builds"

        # The panel shows the room's modes and words; changes are commands.
        await chat.locator("[data-chat-action=toggle-mod]").click()
        panel = chat.locator("[data-chat-role=mod]")
        assert await panel.locator("[data-mode=followers_only]").is_checked()
        assert await panel.locator("[data-mode=followers_min_minutes]").input_value() == "10"
        assert await panel.locator("[data-mode=block_links]").is_checked()
        assert not await panel.locator("[data-mode=slow_mode_on]").is_checked()
        assert await panel.locator("[data-chat-role=words]").input_value() == "darn\ndang it"
        assert (await chat_frame(site, "modlog"))["limit"] == 50  # opening asks for the log
        await site.chat_push({"type": "modlog", "entries": [
            {"at": int(time.time() * 1000), "actor": "helper", "action": "timeout",
             "target": XSS_TEXT, "detail": "600 s"}]})  # fmt: skip
        entry = panel.locator("[data-chat-role=modlog] li")
        await entry.filter(has_text="helper timeout").wait_for()
        assert (await entry.inner_text()).endswith(f"helper timeout {XSS_TEXT} (600 s)")

        await panel.locator("[data-mode=slow_mode_on]").check()
        assert (await chat_frame(site, "set_modes"))["slow_mode"] == 30
        assert await panel.locator("[data-chat-role=mod-status]").inner_text() == "Saving…"
        await site.chat_push({"type": "batch", "events": [
            {**welcome["modes"], "type": "modes", "slow_mode": 30}]})  # fmt: skip
        await panel.locator("[data-chat-role=mod-status]").filter(has_text="Saved.").wait_for()
        assert "Slow mode: 30 s" in await chat.locator("[data-chat-role=modes]").inner_text()

        await panel.locator("[data-chat-role=words]").fill("darn\n  heck  \nDARN\n")
        await panel.locator("[data-chat-role=words-form] button").click()
        assert (await chat_frame(site, "set_blocked_words"))["words"] == ["darn", "heck"]
        await panel.locator("[data-chat-role=mods-form] input").fill("@helper")
        await panel.locator("[data-chat-role=mods-form] button[value=unmod]").click()
        assert (await chat_frame(site, "unmod"))["user"] == "helper"
        await site.chat_push({"type": "error", "code": "not_allowed", "nonce": "m-other",
                              "reason": "you cannot act on helper"})  # fmt: skip
        status = panel.locator("[data-chat-role=mod-status]")
        await status.filter(has_text="You cannot act on helper.").wait_for()
        clear = panel.locator("[data-chat-action=clear]")
        await clear.click()  # asks first
        await clear.click()
        assert (await chat_frame(site, "clear"))["type"] == "clear"
        await panel.locator("[data-chat-role=modlog]").scroll_into_view_if_needed()
        await shoot(page, "chat-owner-panel-phone", full_page=False)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        assert page_log.errors == []
    finally:
        await context.close()


async def test_follow_button_and_following_notices(
    page: Page, page_log: PageLog, site: FakeSite
) -> None:
    await open_page(page, site, "channel-following")
    follow = page.locator("button[data-follow]")
    assert await follow.get_attribute("aria-pressed") == "true"
    await follow.click()
    await page.wait_for_function(
        "() => document.querySelector('[data-follow]').getAttribute('aria-pressed') === 'false'"
    )
    assert await page.locator("[data-role=followers]").inner_text() == "42"
    await follow.click()
    await page.wait_for_function(
        "() => document.querySelector('[data-follow]').getAttribute('aria-pressed') === 'true'"
    )
    assert await page.locator("[data-role=followers]").inner_text() == "43"
    assert site.follows == [("DELETE", CSRF), ("POST", CSRF)]

    # Go-live notices: only for a channel this page saw offline first.
    site.following = [{"username": "alice", "live": True, "title": "on already"},
                      {"username": "dave", "live": False}]  # fmt: skip
    await open_page(page, site, "following")
    await page.evaluate("() => window.stromNotify.poll()")
    site.following = [{"username": "dave", "live": True, "title": XSS_TITLE},
                      {"username": "alice", "live": True, "title": "on already"}]  # fmt: skip
    await page.evaluate("() => window.stromNotify.poll()")
    toast = page.locator(".toast")
    await toast.wait_for()
    assert await toast.count() == 1
    assert await toast.inner_text() == f"D\ndave is live: {XSS_TITLE}\nLIVE\n\u00d7"
    assert await toast.locator("a").get_attribute("href") == "/dave"
    await toast.evaluate("(t) => Promise.all(t.getAnimations().map((a) => a.finished))")
    await shoot(page, "following-toast-desktop", full_page=False)
    await toast.locator("button").click()
    assert await toast.count() == 0
    assert page_log.errors == []
