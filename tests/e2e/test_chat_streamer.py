"""The streamer's chat in headless Chromium against a real server: chat on the dashboard
and the Go live page, the pop-out chat and the OBS overlay; slash commands typed by the
streamer and the banner each one leaves on the viewer's page (timeout, lift, ban) without
a reload; timestamps, emotes, the chatter list."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, Page, expect

from strom.server import StromServer
from tests.e2e.browser import ARTIFACTS, screenshot
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

pytestmark = pytest.mark.e2e

STREAMER, ANN, BEN = "cam_caster", "ann_chat", "ben_chat"
DESKTOP_800 = {"width": 1280, "height": 800}


async def chat_open(page: Page) -> None:
    await page.wait_for_function("() => window.stromChat?.state === 'open'", timeout=WAIT_MS)


async def test_streamer_chat_pages_commands_banners_emotes_and_chatters(
    server: StromServer, browser: Browser
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    channel_url = f"{base}/{STREAMER}"
    streamer, ann, ben = await asyncio.gather(
        sign_up(browser, base, STREAMER, DESKTOP),
        sign_up(browser, base, ANN, DESKTOP),
        sign_up(browser, base, BEN, DESKTOP),
    )
    # --- The dashboard has the streamer's chat and the OBS addresses to copy.
    dash = streamer.page
    await dash.set_viewport_size(DESKTOP_800)
    await chat_open(dash)
    assert await dash.locator("[data-chat]").get_attribute("data-channel") == STREAMER
    popout_url = await dash.locator("#chat-popout-url").input_value()
    overlay_url = await dash.locator("#chat-overlay-url").input_value()
    assert popout_url == f"{base}/popout/{STREAMER}/chat"
    assert overlay_url == f"{base}/overlay/{STREAMER}/chat"
    assert await dash.locator("[data-copy=chat-overlay-url]").is_visible()
    golive = await streamer.context.new_page()
    streamer.watch(golive)
    await golive.set_viewport_size(DESKTOP_800)
    await golive.goto(f"{base}/golive")
    await chat_open(golive)
    await asyncio.gather(open_chat(ann, channel_url), open_chat(ben, channel_url))
    assert await ben.page.locator("[data-chat-action=popout]").get_attribute("href") == (
        f"/popout/{STREAMER}/chat"
    )

    # --- The overlay (transparent, read-only) and the pop-out (a phone-sized window).
    obs = await browser.new_context(viewport=DESKTOP_800)
    overlay = Person("obs", obs, await obs.new_page())
    overlay.watch(overlay.page)
    await overlay.page.goto(overlay_url + "?fade=0")
    await overlay.page.wait_for_function(
        "() => window.stromOverlay?.state === 'open'", timeout=WAIT_MS
    )
    backgrounds = await overlay.page.evaluate(
        "() => [document.documentElement, document.body]"
        ".map((el) => getComputedStyle(el).backgroundColor)"
    )
    assert backgrounds == ["rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]
    assert await overlay.page.locator("input, button, form").count() == 0
    phone_ctx = await browser.new_context(viewport=PHONE)
    popout = Person("popout", phone_ctx, await phone_ctx.new_page())
    popout.watch(popout.page)
    await popout.page.goto(popout_url)
    await chat_open(popout.page)
    box = await popout.page.locator("[data-chat]").bounding_box()
    assert box is not None
    assert (box["width"], box["height"]) == (PHONE["width"], PHONE["height"])
    assert await popout.page.locator("[data-chat-action=popout]").count() == 0

    # --- A message with emotes and hostile text, everywhere: emotes as emoji, the rest text.
    await say(ann, f"hello Kappa {XSS} :heart:")
    pages = [dash, golive, ben.page, popout.page]
    for page in pages:
        await page.locator(line(ann, "hello")).wait_for(timeout=WAIT_MS)
    shown = overlay.page.locator(".chat-line", has_text="hello")
    await shown.wait_for(timeout=WAIT_MS)
    ben_line = ben.page.locator(line(ben, "hello"))
    emotes = ben_line.locator(".chat-emote")
    assert await emotes.evaluate_all("(els) => els.map((e) => [e.title, e.textContent])") == [
        ["Kappa", "😏"],
        [":heart:", "❤️"],
    ]
    text = ben_line.locator(".chat-text")
    assert await text.evaluate("(el) => el.textContent") == f"hello 😏 {XSS} ❤️"
    for page in (*pages, overlay.page):
        assert await page.locator(".chat-line img, .overlay-log img").count() == 0
    assert await shown.locator(".chat-emote").count() == 2
    # Every line tells its time: a <time datetime> with the date and time on hover.
    stamp = ben_line.locator("time.chat-time")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", await stamp.get_attribute("datetime") or "")
    assert await stamp.get_attribute("title")
    assert re.fullmatch(r"\d\d:\d\d( [AP]M)?", await stamp.get_attribute("data-time") or "")

    # --- The emote picker puts a word into the box.
    await ben.page.locator("[data-chat-action=emotes]").click()
    await ben.page.locator("[data-emote=PogChamp]").click()
    assert await ben.page.locator("#chat-input").input_value() == "PogChamp "
    await ben.page.locator("#chat-input").fill("")

    # --- The chatter list: the streamer first (one name for two tabs), then the others;
    # the overlay and the pop-out are guests.
    await ben.page.locator("[data-chat-action=toggle-chatters]").click()
    panel = ben.page.locator("[data-chat-role=chatters]")
    await expect(panel.locator("[data-chat-role=chatters-summary]")).to_have_text(
        "5 in chat", timeout=WAIT_MS
    )
    assert await panel.locator("[data-group=owner] li").all_inner_texts() == [STREAMER]
    assert await panel.locator("[data-group=viewer] li").all_inner_texts() == [ANN, BEN]
    assert await panel.locator("[data-chat-role=guests]").inner_text() == "and 2 guests"
    await screenshot(ben.page, "chat-chatters-desktop")
    await panel.locator("[data-chat-action=close-chatters]").click()

    # --- Commands: a viewer may not; bad syntax is said inline; nothing is sent.
    ben_status = ben.page.locator("[data-chat-role=status]")
    await say(ben, f"/ban {STREAMER}")
    await expect(ben_status).to_have_text("Only the streamer and moderators can use /ban.")
    await say(streamer, "/timeout")
    await expect(dash.locator("[data-chat-role=status]")).to_have_text(
        "Usage: /timeout user [seconds] [reason]."
    )

    # --- The streamer times Ann out from the dashboard: Ann's banner counts down, and her
    # message is refused while it does.
    ann_status = ann.page.locator("[data-chat-role=status]")
    await say(streamer, f"/timeout {ANN} 600 cool down")
    await expect(ann_status).to_have_text(
        re.compile(r"^You are timed out for (9 min \d+ s|10 min)\.$"), timeout=WAIT_MS
    )
    await expect(ben.page.locator(".chat-line-system").last).to_have_text(
        f"{ANN} was timed out for 10 min.", timeout=WAIT_MS
    )
    await say(ann, "still here?")
    await expect(ann_status).to_have_attribute("data-code", "timed_out", timeout=WAIT_MS)
    await screenshot(ann.page, "chat-banner-timed-out")

    # --- Lifted: the banner goes at once, the box is on, Ann writes again.
    await say(streamer, f"/unban {ANN}")
    await expect(ann_status).to_be_hidden(timeout=WAIT_MS)
    await expect(ann.page.locator(".chat-line-system").last).to_have_text("You can chat again.")
    await expect(ann.page.locator("#chat-input")).to_be_enabled()
    await say(ann, "thanks, back")
    await ben.page.locator(line(ben, "thanks, back")).wait_for(timeout=WAIT_MS)

    # --- A short timeout counts down and ends by itself, with no event from the server.
    await say(streamer, f"/timeout {ANN} 2")
    await expect(ann_status).to_have_text(
        re.compile(r"^You are timed out for [12] s\.$"), timeout=WAIT_MS
    )
    await expect(ann_status).to_be_hidden(timeout=WAIT_MS)
    await expect(ann.page.locator(".chat-line-system").last).to_have_text("You can chat again.")

    # --- Banned: the banner says banned, like the box; everyone sees it.
    await say(streamer, f"/ban {ANN} spam")
    await expect(ann_status).to_have_text("You are banned from this chat.", timeout=WAIT_MS)
    await expect(ann.page.locator("#chat-input")).to_be_disabled()
    await expect(ann.page.locator("#chat-input")).to_have_attribute(
        "placeholder", "You are banned from this chat."
    )
    await expect(ben.page.locator(".chat-line-system").last).to_have_text(f"{ANN} was banned.")
    await expect(ben.page.locator(line(ben, "thanks, back"))).to_have_count(0)
    await screenshot(ann.page, "chat-banner-banned")

    # --- /mod from the Go live page: Ben gets the moderation tools.
    await golive.locator("#chat-input").fill(f"/mod @{BEN}")
    await golive.locator("#chat-input").press("Enter")
    await expect(ben.page.locator("[data-chat-action=toggle-mod]")).to_be_visible(timeout=WAIT_MS)

    await say(ben, "gg Kappa :fire: see you next stream")
    for page in (dash, golive, popout.page):
        await page.locator(line(ben, "see you next")).wait_for(timeout=WAIT_MS)
    await overlay.page.locator(".chat-line", has_text="see you next").wait_for(timeout=WAIT_MS)
    await screenshot(dash, "chat-dashboard-desktop")
    await screenshot(golive, "chat-golive-desktop")
    await screenshot(popout.page, "chat-popout-phone")
    ARTIFACTS.mkdir(exist_ok=True)
    await overlay.page.screenshot(path=ARTIFACTS / "chat-overlay-desktop.png", omit_background=True)
    await overlay.page.set_viewport_size(PHONE)
    await overlay.page.screenshot(path=ARTIFACTS / "chat-overlay-phone.png", omit_background=True)
    await popout.page.set_viewport_size(DESKTOP_800)
    await screenshot(popout.page, "chat-popout-desktop")
    await golive.set_viewport_size(PHONE)
    await golive.locator("[data-chat]").scroll_into_view_if_needed()
    await screenshot(golive, "chat-golive-phone")
    await dash.set_viewport_size(PHONE)
    await dash.locator("[data-chat]").scroll_into_view_if_needed()
    await screenshot(dash, "chat-dashboard-phone")
    overflow = await dash.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0

    everyone = (streamer, ann, ben, overlay, popout)
    for person in everyone:
        assert person.dialogs == [], person.name
        assert person.log.errors == [], person.name
        assert not [m for m in person.log.console if "Content Security Policy" in m], person.name
        await person.context.close()
