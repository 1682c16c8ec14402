"""The site's pages in headless Chromium, against a stand-in server (tests/e2e/fake_site.py):
the templates rendered with sample contexts (tests/web/samples.py), /static, and fake API
endpoints whose answers each test sets. Checks what the page scripts do without a reload
(directory, channel page, dashboard), that no page overflows a phone screen, and saves
screenshots of every page at 1280x720 and 390x844 to test-artifacts/pages-*.png."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.browser import PageLog
from tests.e2e.fake_site import (
    DESKTOP,
    PHONE,
    FakeSite,
    browser,
    open_page,
    page,
    refresh,
    shoot,
    site,
)
from tests.web import samples
from tests.web.samples import CSRF, NEW_KEY, XSS_TEXT, XSS_TITLE

__all__ = ["browser", "page", "site"]  # fixtures

# One Chromium for the whole module (these pages need no fresh browser, only fresh pages).
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def card_texts(page: Page) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-role=streams] > li')]
            .map((li) => [li.dataset.username, {
                title: li.querySelector('[data-role=title]').textContent,
                viewers: li.querySelector('[data-role=viewers]').textContent,
                label: li.querySelector('[data-role=viewers-label]').textContent,
                uptime: li.querySelector('[data-role=uptime]').textContent,
                category: li.querySelector('[data-role=category]').hidden
                    ? '' : li.querySelector('[data-role=category]').textContent,
                thumbnail: li.querySelector('[data-role=thumbnail]').getAttribute('src') ?? '',
                href: li.querySelector('a[data-link]').getAttribute('href'),
                images: String(li.querySelectorAll('img').length),
            }]))"""
    )
    return result


# --- directory -------------------------------------------------------------------------


async def test_directory_updates_in_place(page: Page, page_log: PageLog, site: FakeSite) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    await open_page(page, site, "directory")
    await page.evaluate("() => { window.notReloaded = true; }")
    before = await card_texts(page)
    assert list(before) == [s["username"] for s in samples.STREAMS]
    assert before["bob_builds"]["title"] == XSS_TITLE  # text, not a script
    assert before["alice"]["viewers"] == "1,234"
    # Live since the sample's start (made when the samples were imported: a worker may
    # run this test many minutes later), to the second.
    hours, minutes, seconds = (int(n) for n in before["alice"]["uptime"].split(":"))
    live_for = time.time() - samples.STREAMS[0]["started_at"]
    assert abs(hours * 3600 + minutes * 60 + seconds - live_for) < 5, before["alice"]
    # The thumbnail and the (hidden) avatar: the hostile name made no <img>.
    assert before[XSS_TEXT]["images"] == "2"

    # alice gains viewers, a new title and a thumbnail; bob ends; dave goes live on top.
    alice = site.streams[0]
    alice.update(viewers=2000, title="New title", thumbnail_url="/thumbs/alice.svg?v=2")
    dave = samples.stream("dave", f"dave says {XSS_TEXT}", 5000, category=samples.CHESS)
    dave["started_at"] = time.time() - 1800  # from now: samples.NOW is import time
    site.streams = [dave, alice, *site.streams[2:]]
    await refresh(page)
    await page.wait_for_function(
        "() => document.querySelector('[data-username=alice] img').src.endsWith('v=2')",
        timeout=5_000,
    )
    after = await card_texts(page)
    # (A username that cannot exist is not drawn from API data at all.)
    assert list(after) == ["dave", "alice", "quiet_carol"]
    assert after["alice"]["viewers"] == "2,000"
    assert after["alice"]["title"] == "New title"
    assert after["dave"] == after["dave"] | {
        "title": f"dave says {XSS_TEXT}",
        "viewers": "5,000",
        "label": "viewers",
        "category": "Chess",
        "href": "/dave",
        "thumbnail": site.url("/thumbs/dave.svg"),
    }
    assert after["dave"]["uptime"].startswith("0:30:")  # 30 minutes, ticking
    assert await page.locator("[data-role=total]").inner_text() == "4"  # the API's total
    await page.wait_for_function(  # the uptime ticks by itself
        "(t) => document.querySelector('[data-username=dave] [data-role=uptime]')"
        ".textContent !== t",
        arg=after["dave"]["uptime"],
        timeout=3_000,
    )

    # Everyone ends: the empty state appears; someone starts: the card comes back.
    site.streams = []
    await refresh(page)
    assert await page.locator("[data-role=empty]").is_visible()
    assert await card_texts(page) == {}
    site.streams = [dave]
    await refresh(page)
    assert not await page.locator("[data-role=empty]").is_visible()
    assert list(await card_texts(page)) == ["dave"]
    assert await page.evaluate("() => window.notReloaded") is True
    # (and the go-live notices' poll: this visitor is logged in)
    assert set(requests) == {
        site.url("/api/v1/streams?sort=viewers"),
        site.url("/api/v1/me/following"),
    }
    assert page_log.errors == []


# --- channel page ----------------------------------------------------------------------


async def test_channel_page_updates_without_reload(
    page: Page, page_log: PageLog, site: FakeSite
) -> None:
    await open_page(page, site, "channel-offline")
    await page.wait_for_function("() => window.stromPlayer?.state === 'offline'", timeout=5_000)
    offline = page.locator(".card-offline")
    assert "Last live 3 hours ago" in await offline.inner_text()
    assert await page.locator(".badge-offline").is_visible()
    assert not await page.locator("[data-role=viewers]").is_visible()

    site.channel.update(
        title="Endgame study",
        description=f"New description\nwith {XSS_TEXT}",
        category={"slug": "just-chatting", "name": "Just Chatting"},
        live=True,
        viewers=1,
        started_at=time.time() - 65,
    )
    await refresh(page)
    assert await page.locator("[data-role=title]").inner_text() == "Endgame study"
    assert await page.locator("[data-role=description]").inner_text() == (
        f"New description\nwith {XSS_TEXT}"
    )
    category = page.locator("a[data-role=category]")
    assert await category.inner_text() == "Just Chatting"
    assert await category.get_attribute("href") == "/categories/just-chatting"
    assert await page.locator("[data-role=viewers]").inner_text() == "1"
    assert await page.locator("[data-role=viewers-label]").inner_text() == "viewer"
    assert await page.locator(".badge-live.live-only").is_visible()
    assert (await page.locator(".channel-stats [data-role=uptime]").inner_text()).startswith(
        "0:01:"
    )
    assert await page.title() == "alice \u2013 Endgame study · Strom"
    # The hostile description made no image: the only ones are the recordings' pictures
    # and the avatar.
    assert await page.locator("img:not(.vod-thumb, .avatar img)").count() == 0
    assert page_log.errors == []


# --- dashboard -------------------------------------------------------------------------


async def test_dashboard_saves_stream_info_and_shows_health(
    browser: Browser, site: FakeSite
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    page = await context.new_page()
    log = PageLog()
    log.attach(page)
    try:
        site.health = {
            "live": True, "codec": "avc1.64001f / mp4a.40.2", "width": 1280, "height": 720,
            "fps": 29.97, "bitrate_kbps": 3500, "keyframe_interval": 8.0, "uptime": 3725,
            "viewers": 3, "warnings": ["Keyframe interval is 8 s: set it to 2 s in OBS"],
        }  # fmt: skip
        await open_page(page, site, "dashboard-new-secrets")

        # The key is shown once, and Copy puts it on the clipboard.
        await page.click("button[data-copy=stream-key]")
        await page.wait_for_function(
            "() => document.querySelector('button[data-copy=stream-key]').textContent"
            " === 'Copied!'",
            timeout=3_000,
        )
        assert await page.evaluate("() => navigator.clipboard.readText()") == NEW_KEY

        # Health: values and the warning, prominently.
        warning = page.locator("[data-role=health-warnings] li")
        await warning.wait_for(timeout=5_000)
        assert await warning.inner_text() == "Keyframe interval is 8 s: set it to 2 s in OBS"
        health = page.locator("[data-role=health]")
        assert await health.get_attribute("data-live") == "true"
        values = {
            key: await page.locator(f"[data-health={key}]").inner_text()
            for key in ("codec", "resolution", "fps", "bitrate", "keyframe_interval", "uptime")
        }
        assert values == {
            "codec": "H.264 High 3.1 / AAC-LC", "resolution": "1280\u00d7720", "fps": "30.0 fps",
            "bitrate": "3,500 kb/s", "keyframe_interval": "8.0 s", "uptime": "1:02:05",
        }  # fmt: skip
        assert await page.locator(".health-bad [data-health=keyframe_interval]").count() == 1
        codec = page.locator("[data-health=codec]")
        assert await codec.get_attribute("title") == "avc1.64001f / mp4a.40.2"
        await shoot(page, "dashboard-live-desktop")

        # Save the stream info: PATCH with JSON and the CSRF header; "Saved".
        await page.fill("input[name=title]", "Blitz with viewers")
        await page.select_option("select[name=category]", "just-chatting")
        await page.fill("textarea[name=description]", "Line 1\nLine 2")
        await page.click("#stream-info button[type=submit]")
        status = page.locator("[data-role=save-status]")
        await page.wait_for_function(
            "() => document.querySelector('[data-role=save-status]').textContent === 'Saved'",
            timeout=5_000,
        )
        assert site.patches == [
            (
                {"title": "Blitz with viewers", "description": "Line 1\nLine 2",
                 "category": "just-chatting", "record_broadcasts": True},
                CSRF,
            )
        ]  # fmt: skip

        # The server refuses: its error text is shown.
        site.patch_status, site.patch_error = 422, f"title is not allowed: {XSS_TEXT}"
        await page.click("#stream-info button[type=submit]")
        await page.wait_for_function(
            "() => document.querySelector('[data-role=save-status]').dataset.kind === 'error'",
            timeout=5_000,
        )
        assert await status.inner_text() == f"title is not allowed: {XSS_TEXT}"

        # Regenerating the key asks first.
        confirm = page.get_by_text("Regenerate? OBS will need the new key.")
        assert not await confirm.is_visible()
        await page.get_by_text("Regenerate stream key…").click()
        assert await confirm.is_visible()
        assert await page.locator("button", has_text="Yes, make a new key").is_visible()
        await page.locator("[data-role=save-status]").scroll_into_view_if_needed()
        await shoot(page, "dashboard-confirm-desktop", full_page=False)

        # The encoder was refused: the reason shows, as text.
        reason = f"unsupported video codec 'vp09' {XSS_TEXT}"
        site.health = {"live": False, "warnings": [], "refused": {"reason": reason, "at": 0}}
        await refresh(page)
        refused = page.locator("[data-role=publish-refused]")
        await refused.wait_for(timeout=5_000)
        assert (await refused.inner_text()).endswith(f": {reason}")
        assert (await refused.inner_text()).startswith("Your encoder was refused at ")

        # Offline again: values go back to dashes, no warnings.
        site.health = {"live": False, "warnings": [], "refused": None}
        await refresh(page)
        assert await health.get_attribute("data-live") == "false"
        assert await page.locator("[data-health=codec]").inner_text() == "\u2013"  # a dash
        assert not await page.locator("[data-role=health-warnings]").is_visible()
        assert not await refused.is_visible()
        assert log.errors == []
    finally:
        await context.close()


# --- every page, desktop and phone -----------------------------------------------------

SCREENSHOTS = [
    "directory", "directory-empty", "category-page", "search-no-results", "categories",
    "channel-live", "channel-offline", "channel-following", "following", "following-empty",
    "dashboard", "dashboard-new-secrets", "login", "register", "admin", "error-404",
    "golive", "search", "profile-settings", "admin-users", "admin-categories",
    "dashboard-stopped-by-admin",
]  # fmt: skip


async def shoot_every_page(browser: Browser, site: FakeSite, size: str) -> list[str]:
    """Screenshot every page at one size; return the pages wider than the screen."""
    context = await browser.new_context(viewport=DESKTOP if size == "desktop" else PHONE)
    page = await context.new_page()
    log = PageLog()
    log.attach(page)
    too_wide = []
    try:
        for name in SCREENSHOTS:
            await page.goto(site.url(f"/_pages/{name}"))  # waits for "load"
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 0:
                too_wide.append(f"{name} is {overflow}px too wide at {size} size")
            # The whole page on a phone (where layouts break); what fits the screen on desktop.
            await shoot(page, f"{name}-{size}", full_page=size == "phone")
        assert log.errors == []
        assert [m for m in log.console if m.startswith(("error", "warning"))] == []
    finally:
        await context.close()
    return too_wide


async def test_pages_fit_desktop_and_phone_screens(browser: Browser, site: FakeSite) -> None:
    desktop, phone = await asyncio.gather(
        shoot_every_page(browser, site, "desktop"), shoot_every_page(browser, site, "phone")
    )
    assert desktop + phone == []


# --- the channel page on a phone ------------------------------------------------------


async def test_phone_channel_page_has_chat_under_the_player_and_a_compact_header(
    browser: Browser, site: FakeSite
) -> None:
    """At 390x844, logged in: the header is one row (logo, search, menu), the chat starts
    on the first screen right under the player and the channel's line, and the Chat /
    About / Past broadcasts tabs show one panel at a time (hostile profile text as text)."""
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    log = PageLog()
    log.attach(page)
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    try:
        await open_page(page, site, "channel-offline")
        box = await page.evaluate(
            """() => Object.fromEntries(['.site-header', '#player', '.channel-info', '.chat']
                .map((s) => [s, document.querySelector(s).getBoundingClientRect().toJSON()]))"""
        )
        assert box[".site-header"]["height"] <= 64
        assert box[".chat"]["top"] < 844 - 200  # its head and messages on the first screen
        assert box[".chat"]["top"] - box[".channel-info"]["bottom"] < 80  # only the tabs between
        assert await page.locator("[data-chat]").is_visible()
        assert not await page.locator(".about").is_visible()
        await shoot(page, "channel-phone-chat", full_page=False)

        await page.get_by_role("tab", name="About").click()
        about = page.locator(".about")
        assert await about.is_visible()
        assert not await page.locator("[data-chat]").is_visible()
        assert await about.locator("[data-role=bio]").inner_text() == samples.PROFILE["bio"]
        link = about.locator(".profile-links a")
        assert await link.get_attribute("rel") == "nofollow noopener"
        assert await link.get_attribute("href") == "https://example.com/a?b=<c>"
        assert await page.locator("h1#channel-title").inner_text() == f"{XSS_TITLE} alice"
        assert await page.locator("img[src=x]").count() == 0
        await shoot(page, "channel-phone-about", full_page=False)

        await page.get_by_role("tab", name="Past broadcasts").click()
        assert await page.locator(".past-broadcasts .vod-link").first.is_visible()
        assert not await about.is_visible()
        await shoot(page, "channel-phone-videos", full_page=False)

        # The header: the menu opens the links, the search button the search box.
        assert not await page.get_by_role("button", name="Log out").is_visible()
        await page.locator("[data-header-toggle=menu]").click()
        assert await page.get_by_role("button", name="Log out").is_visible()
        assert await page.locator(".account-nav a[href='/settings/profile']").is_visible()
        await shoot(page, "header-phone-menu", full_page=False)
        await page.locator("[data-header-toggle=search]").click()
        search = page.locator(".site-search input")
        assert await search.is_visible()
        assert await search.evaluate("(el) => el === document.activeElement")
        assert not await page.get_by_role("button", name="Log out").is_visible()
        assert log.errors == []
        assert dialogs == []
    finally:
        await context.close()
