"""Past broadcasts in Chromium: real ffmpeg publishes to an account's channel; after the
live the channel page lists the recording, which plays in the page's player (hls.js) and
seeks; a viewer watching when the live ends is switched to the recording."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot, video_info, wait_for_player_state
from tests.helpers import MediaFile, make_media, publish_args, run_process
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e

USER = "vodder"
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def six_seconds(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    return make_media(tmp_path_factory.mktemp("vod") / "six.flv", seconds=6.0)


def base(server: StromServer) -> str:
    return f"http://127.0.0.1:{server.http_port}"


async def stream_key(server: StromServer) -> str:
    assert server.store is not None
    _, key = await server.store.users.create(USER, PASSWORD)
    return key


async def wait_finished_recording(page: Page, server: StromServer) -> dict[str, Any]:
    url = f"{base(server)}/api/v1/channels/{USER}/recordings"
    async with asyncio.timeout(15):
        while True:
            resp = await page.request.get(url)
            found = (await resp.json())["recordings"]
            if found and found[0]["status"] != "recording" and found[0]["duration"] > 0:
                return dict(found[0])
            await asyncio.sleep(0.2)


async def wait_advancing(page: Page, at_least: float) -> float:
    """Wait until the video plays past ``at_least`` and its time still moves on."""
    await page.wait_for_function(
        "(t) => document.querySelector('#player video').currentTime > t",
        arg=at_least,
        timeout=10_000,
    )
    first = (await video_info(page))["currentTime"]
    await page.wait_for_function(
        "(t) => document.querySelector('#player video').currentTime > t + 0.3",
        arg=first,
        timeout=10_000,
    )
    return float(first)


async def test_past_broadcast_is_listed_plays_and_seeks(
    server: StromServer, page: Page, page_log: PageLog, six_seconds: MediaFile
) -> None:
    key = await stream_key(server)
    code, out = await run_process(*publish_args(six_seconds, server.rtmp_port, key), timeout=30)
    assert code == 0, out
    recording = await wait_finished_recording(page, server)

    await page.goto(f"{base(server)}/{USER}")
    link = page.locator(f'a[data-vod-id="{recording["id"]}"]')
    await link.wait_for()
    assert (await page.locator(".past-broadcasts #past-title").inner_text()) == "Past broadcasts"
    # The entry's facts: date, length and peak viewers, in the server's one text of them.
    facts = await link.locator("[data-role=vod-facts]").inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC · 0:0[5-7] · \d+ peak viewers?", facts)
    # Download MP4 beside it: the file itself.
    download = page.locator(f'li:has(a[data-vod-id="{recording["id"]}"]) a.vod-download')
    assert await download.inner_text() == "Download MP4"
    got = await page.request.get(f"{base(server)}{await download.get_attribute('href')}")
    assert (got.status, got.headers["content-type"]) == (200, "video/mp4")
    assert (await got.body())[4:8] == b"ftyp"

    # Picked from far down the page: the player comes into view and says what plays.
    await page.set_viewport_size({"width": 1280, "height": 500})
    await page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    assert await page.evaluate(
        "() => document.querySelector('#player').getBoundingClientRect().bottom < 0"
    )
    await link.click()
    await wait_for_player_state(page, "vod")
    await page.wait_for_function(
        """() => { const r = document.querySelector('#player').getBoundingClientRect();
                   return r.top >= -1 && r.top < window.innerHeight / 3; }""",
        timeout=5_000,
    )
    title = await link.locator("[data-role=vod-title]").inner_text()
    now = page.locator("[data-role=vod-now]")
    assert await now.is_visible()
    assert await now.locator(".vod-now-text").inner_text() == (
        f"Watching: {title} · {await link.get_attribute('data-length')}"
    )
    assert await now.locator("[data-role=vod-now-download]").get_attribute("href") == (
        await download.get_attribute("href")
    )
    assert await now.locator("[data-role=vod-now-close]").inner_text() == "Close"  # offline
    assert page.url.endswith(f"/{USER}?vod={recording['id']}")
    await page.set_viewport_size({"width": 1280, "height": 720})
    await wait_advancing(page, 0.5)
    info = await video_info(page)
    assert (info["videoWidth"], info["videoHeight"]) == (six_seconds.width, six_seconds.height)
    assert info["transport"] is None  # the live transport let go of the video

    # Seek to the middle with the seek bar: the time jumps there and keeps going.
    middle = recording["duration"] / 2
    await page.locator("#player").hover()
    await page.locator('[data-vod="seek"]').fill(str(middle))
    after = await wait_advancing(page, middle - 0.5)
    assert after >= middle - 0.5
    await page.locator('[data-vod="speed"]').select_option("2")
    assert (await video_info(page))["playbackRate"] == 2
    await screenshot(page, "vod-playing")

    # /{username}?vod={id} opens the recording directly.
    await page.goto(f"{base(server)}/{USER}?vod={recording['id']}")
    await wait_for_player_state(page, "vod")
    await wait_advancing(page, 0.3)
    assert await page.evaluate("() => window.stromVod.current") == recording["id"]
    assert await page.locator("[data-role=vod-facts]").first.inner_text() == facts  # reloaded
    await page.locator("[data-role=vod-now-close]").click()
    await page.wait_for_function("() => document.querySelector('#player').dataset.state !== 'vod'")
    assert not await now.is_visible()

    # A recording that is not there says so, over the player and under it.
    for bogus in ("bogus", "20200101-000000"):
        await page.goto(f"{base(server)}/{USER}?vod={bogus}")
        missing = page.locator(".card-vod-missing")
        await missing.wait_for(state="visible", timeout=10_000)
        assert await missing.inner_text() == "This recording does not exist or was deleted."
        assert await page.locator("[data-role=vod-missing]").is_visible()
    await screenshot(page, "vod-missing")

    # Search finds the channel, offline now, by part of its name (page and API).
    await page.goto(f"{base(server)}/search?q=odde")
    result = page.locator(f'.channel-results a[href="/{USER}"]')
    assert "Offline" in await result.inner_text()
    found = await (await page.request.get(f"{base(server)}/api/v1/search?q=VODD")).json()
    assert [(c["username"], c["live"]) for c in found["channels"]] == [(USER, False)]
    too_long = await page.request.get(f"{base(server)}/api/v1/search?q={'x' * 51}")
    assert too_long.status == 400
    assert "at most 50" in (await too_long.json())["error"]
    assert not page_log.errors, page_log.errors


async def test_viewer_is_switched_to_the_recording_when_the_live_ends(
    server: StromServer, page: Page, page_log: PageLog, six_seconds: MediaFile
) -> None:
    key = await stream_key(server)
    await page.goto(f"{base(server)}/{USER}")
    await wait_for_player_state(page, "offline")
    publisher = asyncio.create_task(
        run_process(*publish_args(six_seconds, server.rtmp_port, key), timeout=30)
    )
    try:
        await wait_live(server, USER)
        await wait_for_player_state(page, "playing")
        await wait_for_player_state(page, "ended", timeout_ms=15_000)
        offer = page.locator('[data-action="watch-recording"]')
        assert await offer.is_visible()
        await screenshot(page, "vod-ended-offer")
        # Without a click, the recording starts a few seconds later.
        await wait_for_player_state(page, "vod", timeout_ms=15_000)
        await wait_advancing(page, 0.5)
        recording = await wait_finished_recording(page, server)
        assert await page.evaluate("() => window.stromVod.current") == recording["id"]
        assert (await video_info(page))["videoWidth"] == six_seconds.width
        listed = page.locator(f'.past-broadcasts a[data-vod-id="{recording["id"]}"]')
        assert await listed.get_attribute("aria-current") == "true"
        # The entry the page added reads as the server writes it, the same after a reload.
        added = await page.locator("[data-role=vod-facts]").all_inner_texts()
        await screenshot(page, "vod-after-live")
        await page.reload()
        assert await page.locator("[data-role=vod-facts]").all_inner_texts() == added
        assert "peak viewer" in added[0]
    finally:
        code, out = await publisher
    assert code == 0, out
    assert not page_log.errors, page_log.errors


async def test_viewer_rewinds_the_live_and_returns_to_it(
    server: StromServer, page: Page, page_log: PageLog, tmp_path: Path
) -> None:
    """DVR: on the live player "Rewind" plays the broadcast's recording so far, behind the
    live edge with a seek bar; "Back to live" returns to the live player; ← rewinds too."""
    key = await stream_key(server)
    media = make_media(tmp_path / "long.flv", seconds=12.0)
    publisher = asyncio.create_task(
        run_process(*publish_args(media, server.rtmp_port, key), timeout=30)
    )
    try:
        await wait_live(server, USER)
        await page.goto(f"{base(server)}/{USER}")
        await wait_for_player_state(page, "playing")
        rewind = page.locator('[data-action="rewind"]')
        # Shown once the recording holds a segment (a GOP after going live), with the DVR
        # seek bar at the live edge.
        await rewind.wait_for(state="visible", timeout=10_000)
        seek = page.locator('[data-vod="seek"]')
        await seek.wait_for(state="visible", timeout=5_000)
        assert await page.locator('[data-role="vod-time"]').inner_text() == "LIVE"
        await page.wait_for_function(
            "() => document.querySelector('#player video').currentTime > 3", timeout=10_000
        )
        await rewind.click()
        await wait_for_player_state(page, "vod")
        assert await page.locator("#player").get_attribute("data-dvr") == "true"
        assert "vod=" not in page.url  # a rewind is not a past broadcast
        await wait_advancing(page, 0.2)
        behind = page.locator('[data-role="vod-behind"]')
        assert await behind.is_visible()
        assert (await behind.inner_text()).endswith("behind live")
        assert float(await page.locator('[data-vod="seek"]').get_attribute("max") or 0) > 1
        assert (await video_info(page))["transport"] is None  # the live player let go
        # ...and the rewound viewer still counts as one of the channel's viewers.
        channel = server.registry.get(USER)
        assert channel is not None
        for _ in range(50):  # up to 5 s
            if channel.viewers_by_transport() == {"dvr": 1}:
                break
            await asyncio.sleep(0.1)
        assert channel.viewers_by_transport() == {"dvr": 1}
        # Search: the live channel first, then an offline one (that sorts before it).
        assert server.store is not None
        await server.store.users.create("vodd_a", PASSWORD)
        found = await (await page.request.get(f"{base(server)}/api/v1/search?q=vodd")).json()
        assert [(c["username"], c["live"]) for c in found["channels"]] == [
            (USER, True),
            ("vodd_a", False),
        ]
        assert await page.locator(".vod-now-text").inner_text() == (
            "Watching: the live broadcast, rewound"
        )
        await screenshot(page, "dvr-rewound")

        back = page.locator('[data-vod="live"]')
        await back.wait_for(state="visible", timeout=5_000)
        await back.click()
        await wait_for_player_state(page, "playing")
        assert await page.evaluate("() => window.stromVod.current") is None
        assert await page.locator("#player").get_attribute("data-dvr") == "false"

        await page.locator("body").press("ArrowLeft")
        await wait_for_player_state(page, "vod")
        await wait_advancing(page, 0.2)
    finally:
        publisher.cancel()  # run_process kills ffmpeg
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
    assert not page_log.errors, page_log.errors
