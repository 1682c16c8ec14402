"""Channel state as viewers see it, in headless Chromium against a real server and a real
ffmpeg publisher: a streamer whose encoder drops shows "reconnecting" in the API, the
channel header and the directory (listed, with its viewers), and the header says LIVE
again as soon as media resumes; a title saved by the streamer and a followed channel going
live reach open pages through the pushed channel events, not a poll."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from strom.live.channel import ChannelState
from strom.server import StromServer
from tests.e2e import chat_people
from tests.e2e.browser import PageLog, screenshot, wait_for_player_state
from tests.helpers import CHANNEL, MediaFile, publish_args
from tests.helpers.watching import wait_live
from tests.helpers.web import Browser as HttpClient

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
WAIT_MS = 10_000  # a bound on waiting for something to show, never a timing assertion
#: pushed changes show well within this; the fallback poll (5 s, 15 s) would not
PUSHED_MS = 3_000


async def publish(media: MediaFile, port: int, key: str | None = None) -> Any:
    args = (
        publish_args(media, port, key, loop=True) if key else publish_args(media, port, loop=True)
    )
    return await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def stop(proc: Any) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)  # no unpublish: the TCP link just drops
    await proc.wait()


async def api(base: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(base + path) as resp:
        assert resp.status == 200
        return await resp.json()


async def until(check: Callable[[], bool]) -> None:
    """Wait (bounded) until ``check()`` holds on the server."""
    for _ in range(WAIT_MS // 50):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not in time")


async def pushed(page: Page) -> None:
    """The page's channel-event socket is open."""
    await page.wait_for_function("() => window.stromEvents?.open === true", timeout=WAIT_MS)


async def test_a_reconnecting_streamer_shows_everywhere_and_live_again_at_once(
    server: StromServer, browser: Browser, av_media: MediaFile
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    log = PageLog()
    context = await browser.new_context(viewport=DESKTOP)
    home = await context.new_page()
    log.attach(home)
    # Nobody is live: the home page offers going live from the browser, besides OBS.
    await home.goto(base + "/")
    golive = home.locator('[data-role="empty"] a[href="/golive"]')
    await expect(golive).to_have_text("Go live from your browser")
    await screenshot(home, "live-state-empty-home-desktop")

    publisher = await publish(av_media, server.rtmp_port)
    try:
        await wait_live(server)
        watch = await context.new_page()
        log.attach(watch)
        await watch.goto(f"{base}/{CHANNEL}")
        header = watch.locator(".channel-stats")
        await expect(header.locator(".badge-live")).to_be_visible(timeout=WAIT_MS)
        await pushed(watch)
        card = home.locator(f'.stream-card[data-username="{CHANNEL}"]')
        await expect(card.locator('[data-role="state-badge"]')).to_have_text(
            "LIVE", timeout=WAIT_MS
        )
        # No title set: the card does not repeat the name as one.
        await expect(card.locator(".stream-title")).to_be_hidden()
        channel = server.registry.get(CHANNEL)
        assert channel is not None
        await until(lambda: channel.viewers >= 1)  # the channel page's player

        # The encoder drops (killed: no unpublish). Within the grace, it is reconnecting.
        await stop(publisher)
        await until(lambda: channel.state is ChannelState.RECONNECTING)
        view = await api(base, f"/api/v1/channels/{CHANNEL}")
        assert (view["state"], view["live"]) == ("reconnecting", True)
        assert view["viewers"] >= 1
        streams = (await api(base, "/api/v1/streams"))["streams"]
        assert [(s["username"], s["state"]) for s in streams] == [(CHANNEL, "reconnecting")]
        assert streams[0]["viewers"] >= 1
        reconnecting = header.locator(".badge-reconnecting")
        await expect(reconnecting).to_be_visible(timeout=PUSHED_MS)
        await expect(reconnecting).to_have_text("RECONNECTING")
        await expect(header.locator(".badge-live")).to_be_hidden()
        await expect(header.locator(".badge-offline")).to_be_hidden()
        await expect(card.locator('[data-role="state-badge"]')).to_have_text(
            "RECONNECTING", timeout=PUSHED_MS
        )
        await expect(home.locator('[data-role="empty"]')).to_be_hidden()
        await expect(card.locator('[data-role="viewers"]')).not_to_have_text("0")
        await screenshot(watch, "live-state-reconnecting-channel-desktop")
        await screenshot(home, "live-state-reconnecting-home-desktop")
        phone_ctx = await browser.new_context(viewport=PHONE)
        phone = await phone_ctx.new_page()
        log.attach(phone)
        await phone.goto(base + "/")
        await expect(phone.locator(".badge-reconnecting")).to_be_visible()
        await screenshot(phone, "live-state-reconnecting-home-phone")
        await phone.goto(f"{base}/{CHANNEL}")
        await expect(phone.locator(".channel-stats .badge-reconnecting")).to_be_visible()
        # A viewer who comes meanwhile sees the stream waiting, not an offline channel.
        await wait_for_player_state(phone, "reconnecting")
        await screenshot(phone, "live-state-reconnecting-channel-phone")

        # The encoder is back: the header says LIVE as soon as media flows again.
        publisher = await publish(av_media, server.rtmp_port)
        await wait_live(server)
        await expect(header.locator(".badge-live")).to_be_visible(timeout=PUSHED_MS)
        await expect(reconnecting).to_be_hidden()
        await expect(card.locator('[data-role="state-badge"]')).to_have_text(
            "LIVE", timeout=PUSHED_MS
        )
        assert (await api(base, f"/api/v1/channels/{CHANNEL}"))["state"] == "live"
        # The viewer who came during the stall plays on with the others.
        await wait_for_player_state(phone, "playing")
        await expect(phone.locator(".channel-stats .badge-live")).to_be_visible()
        await phone_ctx.close()
    finally:
        await stop(publisher)
        await context.close()
    assert log.errors == []


async def sign_up(browser: Browser, base: str, name: str) -> tuple[Page, PageLog]:
    """``name`` signed up through the form (chat_people's sign-up), on a desktop page."""
    person = await chat_people.sign_up(browser, base, name, DESKTOP)
    return person.page, person.log


async def test_titles_and_go_live_toasts_are_pushed(
    server: StromServer, browser: Browser, av_media: MediaFile
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    streamer = HttpClient(server, "127.0.0.2")
    key = await streamer.register("ada_streams")
    fan, log = await sign_up(browser, base, "ben_follows")
    try:
        # Ben follows Ada from her (offline) channel page and keeps it open...
        await fan.goto(f"{base}/ada_streams")
        follow = fan.locator("button[data-follow]")
        await follow.click()
        await expect(follow).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        await pushed(fan)
        # ...and another page of the site, where the go-live toast shows.
        elsewhere = await fan.context.new_page()
        log.attach(elsewhere)
        await elsewhere.goto(f"{base}/following")
        await pushed(elsewhere)
        await elsewhere.evaluate("() => window.stromNotify.poll()")  # offline: the baseline

        # Ada saves a title: Ben's open channel page shows it, as text.
        title = "Speedrun <b>any%</b>"
        status, _ = await streamer.api("PATCH", "/api/v1/me/channel", json={"title": title})
        assert status == 200
        await expect(fan.locator('.channel-info [data-role="title"]')).to_have_text(
            title, timeout=PUSHED_MS
        )
        assert await fan.locator(".channel-info b").count() == 0

        # Ada goes live: the toast comes by itself, and the channel page says LIVE.
        publisher = await publish(av_media, server.rtmp_port, key)
        try:
            await wait_live(server, "ada_streams")
            toast = elsewhere.locator('.toast[data-username="ada_streams"]')
            await expect(toast).to_contain_text(f"ada_streams is live: {title}", timeout=PUSHED_MS)
            await expect(fan.locator(".channel-stats .badge-live")).to_be_visible(timeout=PUSHED_MS)
            await toast.evaluate("(t) => Promise.all(t.getAnimations().map((a) => a.finished))")
            await screenshot(elsewhere, "live-state-pushed-toast-desktop")
            # The health knows the rate ffmpeg said it sends (onMetaData), and gets it.
            status, health = await streamer.api("GET", "/api/v1/me/health")
            assert status == 200
            assert isinstance(health, dict)
            assert health["chosen_fps"] == 30
            assert not [w for w in health["warnings"] if "frames per second" in w]
        finally:
            await stop(publisher)
    finally:
        await streamer.close()
        await fan.context.close()
    assert log.errors == []


async def test_the_following_page_updates_itself(
    server: StromServer, browser: Browser, av_media: MediaFile
) -> None:
    """A followed channel going live, changing its title, reconnecting and ending shows on
    an open /following page as it happens, without a reload."""
    base = f"http://127.0.0.1:{server.http_port}"
    streamer = HttpClient(server, "127.0.0.3")
    key = await streamer.register("cleo_streams")
    fan, log = await sign_up(browser, base, "dan_follows")
    try:
        await fan.goto(f"{base}/cleo_streams")
        follow = fan.locator("button[data-follow]")
        await follow.click()
        await expect(follow).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        await fan.goto(f"{base}/following")
        row = fan.locator('.channel-row[data-username="cleo_streams"]')
        await expect(row).to_contain_text("Not live yet")
        await pushed(fan)
        await fan.evaluate("() => { window.notReloaded = true; }")  # gone on a reload
        card = fan.locator('.following-live .stream-card[data-username="cleo_streams"]')
        counts = fan.locator('.following [data-role="counts"]')

        # Cleo goes live: her card comes, her offline row goes.
        publisher = await publish(av_media, server.rtmp_port, key)
        try:
            await wait_live(server, "cleo_streams")
            await expect(card.locator('[data-role="state-badge"]')).to_have_text(
                "LIVE", timeout=PUSHED_MS
            )
            await expect(row).to_be_hidden()
            await expect(counts).to_contain_text("1 live")
            # A title she saves shows on the card, as text.
            title = "Late <i>night</i> build"
            status, _ = await streamer.api("PATCH", "/api/v1/me/channel", json={"title": title})
            assert status == 200
            await expect(card.locator('[data-role="title"]')).to_have_text(title, timeout=PUSHED_MS)
            assert await card.locator("i").count() == 0
            await screenshot(fan, "following-live-desktop")
            await fan.set_viewport_size(PHONE)
            await screenshot(fan, "following-live-phone")
            await fan.set_viewport_size(DESKTOP)

            # Her encoder drops: reconnecting; it comes back for a last few seconds and
            # ends the stream (unpublish): she is listed offline, last live just now.
            await stop(publisher)
            await expect(card.locator('[data-role="state-badge"]')).to_have_text(
                "RECONNECTING", timeout=PUSHED_MS
            )
            publisher = await asyncio.create_subprocess_exec(
                *publish_args(av_media, server.rtmp_port, key),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await expect(card.locator('[data-role="state-badge"]')).to_have_text(
                "LIVE", timeout=WAIT_MS
            )
            assert await publisher.wait() == 0
            await expect(card).to_have_count(0, timeout=PUSHED_MS)
            await expect(row.locator('[data-role="title"]')).to_have_text(title)
            await expect(row.locator('[data-role="when"]')).to_have_text("Last live just now")
            await expect(counts).to_contain_text("0 live")
        finally:
            await stop(publisher)
        assert await fan.evaluate("() => window.notReloaded") is True
    finally:
        await streamer.close()
        await fan.context.close()
    assert log.errors == []
