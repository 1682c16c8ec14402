"""Chat, likes, follows and go-live notices in headless Chromium against a real server:
three people sign up through the /register form (a streamer and two viewers, A and B),
chat under the channel, and the streamer moderates from the chat panel. Then B follows
the channel, the streamer goes live with a real ffmpeg using the key from the dashboard,
and B, on another page, gets the go-live toast."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from strom.server import StromServer
from tests.e2e.browser import screenshot
from tests.e2e.chat_people import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    XSS,
    Person,
    line,
    open_chat,
    say,
    sign_up,
)
from tests.helpers import make_media, publish_args, run_process

pytestmark = pytest.mark.e2e

STREAMER, ANN, BEN = "zoe_live", "ann_a", "ben_b"


async def test_two_viewers_chat_moderation_likes_follow_and_go_live(
    server: StromServer, browser: Browser, media_dir: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    channel_url = f"{base}/{STREAMER}"
    media = make_media(media_dir / "chat.flv", seconds=20.0, size="640x360")

    streamer, ann, ben = await asyncio.gather(
        sign_up(browser, base, STREAMER, DESKTOP),
        sign_up(browser, base, ANN, DESKTOP),
        sign_up(browser, base, BEN, DESKTOP),
    )
    key = await streamer.page.locator('input[data-role="stream-key"]').input_value()
    assert len(key) > 30
    assert server.store is not None
    await server.store.channels.update(STREAMER, title="Blitz & chat")
    await asyncio.gather(*(open_chat(p, channel_url) for p in (streamer, ann, ben)))

    # --- A writes, B reads; their names and A's own line come back at once.
    await say(ann, "hello from ann")
    await ben.page.locator(line(ben, "hello from ann")).wait_for(timeout=WAIT_MS)
    await ann.page.locator(line(ann, "hello from ann")).wait_for(timeout=WAIT_MS)
    ben_line = ben.page.locator(line(ben, "hello from ann"))
    assert await ben_line.locator(".chat-user").inner_text() == ANN
    assert await ben.page.locator(".chat-identity").inner_text() == f"Chatting as {BEN}"

    # --- Hostile text is text: no image, no script, no dialog.
    await say(ann, f"look {XSS} https://example.com/page.")
    xss_line = ben.page.locator(line(ben, "onerror"))
    await xss_line.wait_for(timeout=WAIT_MS)
    assert await xss_line.locator(".chat-text").inner_text() == (
        f"look {XSS} https://example.com/page."
    )
    assert await ben.page.locator("[data-chat] img").count() == 0
    link = xss_line.locator("a.chat-link")
    assert await link.get_attribute("href") == "https://example.com/page"
    assert await link.get_attribute("rel") == "nofollow noopener noreferrer"

    # --- B likes: A sees the counter rise and the like animation run.
    like = ann.page.locator("[data-chat-role=like]")
    bursts = int(await like.get_attribute("data-bursts") or "0")
    await ben.page.locator("[data-chat-role=like]").click()
    await ann.page.wait_for_function(
        "(n) => Number(document.querySelector('[data-chat-role=like]').dataset.bursts) > n",
        arg=bursts,
        timeout=WAIT_MS,
    )
    assert "chat-like-burst" in (await like.get_attribute("class") or "")
    assert await ann.page.locator("[data-chat-role=likes]").inner_text() == "1"

    # --- Slow mode from the streamer's moderation tools: B's second quick message is refused.
    await streamer.page.locator("[data-chat-action=toggle-mod]").click()
    await streamer.page.locator("[data-mode=slow_mode]").fill("30")
    await streamer.page.locator("[data-mode=slow_mode_on]").check()
    await expect(streamer.page.locator("[data-chat-role=mod-status]")).to_have_text(
        "Saved.", timeout=WAIT_MS
    )
    await screenshot(streamer.page, "chat-moderation-panel")
    modes = ben.page.locator("[data-chat-role=modes]")
    await expect(modes).to_have_text("Slow mode: 30 s", timeout=WAIT_MS)
    await say(ben, f"@{ANN} first!")
    await ben.page.locator(line(ben, "first!")).wait_for(timeout=WAIT_MS)
    await say(ben, "second, too quick")
    status = ben.page.locator("[data-chat-role=status]")
    await expect(status).to_have_text(
        # The reason counts down: "Slow mode: wait 29 s."
        re.compile(r"^Slow mode: wait \d+ s\.$"),
        timeout=WAIT_MS,
    )
    assert await ben.page.locator("#chat-input").input_value() == "second, too quick"
    assert await ben.page.locator(".chat-line:has-text('second, too quick')").count() == 0
    # A was mentioned: A's copy of that line stands out.
    mention = ann.page.locator(line(ann, "first!"))
    await mention.wait_for(timeout=WAIT_MS)
    assert "chat-line-mention" in (await mention.get_attribute("class") or "")
    await screenshot(ben.page, "chat-slow-mode-refused")

    # --- The streamer times A out from the message menu: A's lines go, A is refused.
    await streamer.page.locator("[data-chat-action=close-mod]").click()
    owner_line = streamer.page.locator(line(streamer, "hello from ann"))
    await owner_line.hover()
    await owner_line.locator("[data-chat-action=menu]").click()
    menu = streamer.page.locator("[data-chat-role=menu]")
    await expect(menu).to_be_visible()
    await screenshot(streamer.page, "chat-message-menu")
    await menu.locator("[data-chat-action=timeout]").click()
    await expect(ben.page.locator(line(ben, "hello from ann"))).to_have_count(0, timeout=WAIT_MS)
    await expect(ben.page.locator(".chat-line-system").last).to_have_text(
        f"{ANN} was timed out for 10 min.", timeout=WAIT_MS
    )
    ann_status = ann.page.locator("[data-chat-role=status]")
    await expect(ann_status).to_contain_text("You are timed out for", timeout=WAIT_MS)
    await say(ann, "am I still here?")
    await expect(ann_status).to_have_attribute("data-code", "timed_out", timeout=WAIT_MS)
    await expect(ann_status).to_have_text(
        re.compile(r"^You are timed out for (9 min \d+ s|10 min)\.$")
    )
    assert await ann.page.locator(".chat-line:has-text('am I still here?')").count() == 0
    await screenshot(ann.page, "chat-timed-out")

    # --- The streamer makes B a moderator; the moderation log shows who did what.
    await streamer.page.locator("[data-chat-action=toggle-mod]").click()
    mods = streamer.page.locator("[data-chat-role=mods-form]")
    await mods.locator("input").fill(BEN)
    await mods.locator("button[value=mod]").click()
    await expect(ben.page.locator("[data-chat-action=toggle-mod]")).to_be_visible(timeout=WAIT_MS)
    await expect(ben.page.locator(".chat-line-system").last).to_have_text(
        f"{BEN} is now a moderator."
    )
    await streamer.page.locator("[data-chat-action=modlog]").click()
    modlog = streamer.page.locator("[data-chat-role=modlog]")
    await expect(modlog).to_contain_text(f"{STREAMER} timeout {ANN}", timeout=WAIT_MS)
    await expect(modlog).to_contain_text(f"{STREAMER} mod {BEN}")
    await expect(modlog).to_contain_text(f"{STREAMER} modes")

    # --- B follows the channel, and finds it on the Following page.
    follow = ben.page.locator("button[data-follow]")
    await expect(follow).to_have_attribute("aria-pressed", "false")
    await follow.click()
    await expect(follow).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    await expect(ben.page.locator("[data-role=followers]")).to_have_text("1")
    await follow.click()  # unfollow...
    await expect(follow).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
    await expect(ben.page.locator("[data-role=followers]")).to_have_text("0")
    await follow.click()  # ...and follow again
    await expect(follow).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    await screenshot(ben.page, "chat-viewer-desktop")
    following = await ben.context.new_page()
    ben.watch(following)
    await following.goto(f"{base}/following")
    row = following.locator(f".channel-row[data-username={STREAMER}]")
    await expect(row).to_contain_text("Not live yet")
    await following.wait_for_function("() => window.stromNotify !== undefined")
    await following.evaluate("() => window.stromNotify.poll()")  # offline: the baseline

    # --- The streamer goes live (real ffmpeg, the key from the dashboard): B gets a toast.
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port, key)))
    try:
        for _ in range(100):
            channel = server.registry.get(STREAMER)
            if channel is not None and channel.live and STREAMER in server.directory.infos:
                break
            await asyncio.sleep(0.1)
        await following.evaluate("() => window.stromNotify.poll()")
        toast = following.locator(f".toast[data-username={STREAMER}]")
        await expect(toast).to_contain_text(f"{STREAMER} is live: Blitz & chat", timeout=WAIT_MS)
        assert await toast.locator("a").get_attribute("href") == f"/{STREAMER}"
        await toast.evaluate("(t) => Promise.all(t.getAnimations().map((a) => a.finished))")
        await screenshot(following, "chat-go-live-toast")
        await following.reload()
        card = following.locator(f".following-live [data-username={STREAMER}]")
        await expect(card).to_contain_text("Blitz & chat")

        # A guest on a phone: the chat sits under the player, under the guest's name.
        phone_ctx = await browser.new_context(viewport=PHONE)
        phone = Person("guest", phone_ctx, await phone_ctx.new_page())
        phone.watch(phone.page)
        await open_chat(phone, channel_url)
        identity = phone.page.locator(".chat-identity")
        await expect(identity).to_have_text(re.compile(r"^guest-\d{6} · Log in$"))
        await expect(phone.page.locator(line(phone, "first!"))).to_be_visible()
        overflow = await phone.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        await screenshot(phone.page, "chat-phone-guest")
        await phone.page.locator("[data-chat]").scroll_into_view_if_needed()
        await screenshot(phone.page, "chat-phone-guest-chat")
        await phone_ctx.close()
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)

    for person in (streamer, ann, ben):
        assert person.dialogs == [], person.name
        assert person.log.errors == [], person.name
        # The pages keep to the strict Content-Security-Policy (no inline style or script).
        assert not [m for m in person.log.console if "Content Security Policy" in m], person.name
        await person.context.close()
