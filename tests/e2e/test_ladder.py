"""The quality ladder, end to end: a 720p source published by real ffmpeg gets three
lower renditions, encoded in a worker process, listed by the master playlist and decoded
by ffmpeg at their own heights; with the ladder off nothing is encoded; a browser that
cannot play an HEVC source plays its H.264 rendition and says so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot, video_info, wait_for_player_state
from tests.helpers import (
    CHANNEL,
    MediaFile,
    make_media,
    make_settings,
    need_tool,
    publish_args,
    run_process,
)
from tests.helpers.enhanced_rtmp import publish
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"


async def _master(http: aiohttp.ClientSession, url: str, variants: int) -> str:
    """The master playlist once it lists ``variants`` (the renditions start a moment
    after the source: their worker's first keyframe) and each has a whole segment."""
    async with asyncio.timeout(40):
        while True:
            async with http.get(url) as resp:
                text = await resp.text()
            uris = [u for u in text.splitlines() if u.endswith(".m3u8")]
            if resp.status == 200 and len(uris) >= variants:
                ready = 0
                for uri in uris:
                    async with http.get(url.rpartition("/")[0] + "/" + uri) as resp:
                        ready += "#EXTINF" in await resp.text()
                if ready == variants:
                    return text
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def laddered(
    tmp_path: Path, media: MediaFile, rungs: str, variants: int
) -> AsyncIterator[tuple[StromServer, str]]:
    """A node with the ladder on for every channel, ``media`` published to it over and
    over; yields it and the channel's ``/live/`` address once the master playlist lists
    ``variants`` with a segment each."""
    settings = make_settings(
        tmp_path, ladder="all", ladder_renditions=rungs, ladder_preset="ultrafast",
        ladder_max_lag=3.0,  # the machine running the tests is busy with others too
    )  # fmt: skip
    server = StromServer(settings)
    await server.start()
    publisher = asyncio.create_task(
        run_process(*publish_args(media, server.rtmp_port, loop=True), timeout=90)
    )
    try:
        await wait_live(server)
        base = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}"
        async with aiohttp.ClientSession() as http:
            await _master(http, f"{base}/master.m3u8", variants)
        yield server, base
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await server.stop()


async def test_a_720p_source_gets_three_renditions_ffmpeg_decodes(
    tmp_path: Path, media_dir: Path
) -> None:
    # 10 fps and small bitrates: CPU is scarce where the tests run.
    media = make_media(
        media_dir / "ladder-720p.flv", size="1280x720", fps=10, gop=10, seconds=4.0,
        bitrate="1500k",
    )  # fmt: skip
    async with (
        laddered(tmp_path, media, "720p=900k,480p=500k,360p=300k", 4) as (_, base),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"{base}/master.m3u8") as resp:
            master = await resp.text()
        # The source first (passed through), then each rung, each with what a player
        # needs to choose.
        lines = master.splitlines()
        uris = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM")]
        assert uris == [
            "index.m3u8",
            f"../{CHANNEL}~720p/index.m3u8",
            f"../{CHANNEL}~480p/index.m3u8",
            f"../{CHANNEL}~360p/index.m3u8",
        ]
        assert "RESOLUTION=640x360" in master
        assert 'CODECS="avc1.' in master
        assert "mp4a.40.2" in master
        # The directory lists the channel, not its renditions.
        async with http.get(base.replace(f"/live/{CHANNEL}", "/api/v1/streams")) as resp:
            listed = [c["username"] for c in (await resp.json())["streams"]]
        assert listed == [CHANNEL]
        # ffprobe reads every variant through the master playlist: one program each.
        code, out = await run_process(
            need_tool("ffprobe"), "-v", "error", "-of", "json",
            "-show_entries", "stream=codec_type,height", f"{base}/master.m3u8",
            timeout=40,
        )  # fmt: skip
        assert code == 0, out
        heights = sorted(
            s["height"] for s in json.loads(out)["streams"] if s["codec_type"] == "video"
        )
        assert heights == [360, 480, 720, 720], out
        # ffmpeg decodes a second of each rendition's video and its (passed-through) audio.
        for rung, width in (("480p", 854), ("360p", 640)):
            code, out = await run_process(
                need_tool("ffmpeg"), "-v", "error", "-i",
                f"{base}~{rung}/index.m3u8",
                "-map", "0:v", "-map", "0:a", "-t", "1", "-f", "framemd5", "-",
                timeout=30,
            )  # fmt: skip
            assert code == 0, out
            rows = [r.split(",") for r in out.splitlines() if not r.startswith("#")]
            assert sum(r[0].strip() == "0" for r in rows) >= 8, out[-1000:]
            assert sum(r[0].strip() == "1" for r in rows) >= 30, out[-1000:]
            assert f"#dimensions 0: {width}x{rung[:-1]}" in out


async def test_the_live_mpd_lists_the_renditions_ffmpeg_and_dashjs_play_them(
    tmp_path: Path, media_dir: Path, page: Page, page_log: PageLog
) -> None:
    # A 640x360 source at 1.5 Mbit/s, renditions far below: dash.js, starting at its
    # guess of the connection (about 1 Mbit/s), begins on a rendition.
    media = make_media(media_dir / "ladder-dash.flv", fps=15, gop=15, seconds=4.0, bitrate="1500k")
    async with laddered(tmp_path, media, "240p=200k,180p=100k", 3) as (_, base):
        # The renditions' video are more Representations of the video; one audio.
        code, out = await run_process(
            need_tool("ffprobe"), "-v", "error", "-of", "json",
            "-show_entries", "stream=codec_type,height", f"{base}/index.mpd",
            timeout=40,
        )  # fmt: skip
        assert code == 0, out
        streams = json.loads(out)["streams"]
        assert sorted(s["height"] for s in streams if s["codec_type"] == "video") == [
            180, 240, 360,
        ], out  # fmt: skip
        assert [s["codec_type"] for s in streams].count("audio") == 1, out
        # ffmpeg decodes a rendition's pictures from the MPD, at its own height.
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", f"{base}/index.mpd",
            "-map", "0:v:1", "-frames:v", "8", "-f", "framemd5", "-",
            timeout=40,
        )  # fmt: skip
        assert code == 0, out
        assert sum(not r.startswith("#") for r in out.splitlines()) >= 8, out[-1000:]
        assert re.search(r"#dimensions 0: \d+x(240|180)\b", out), out[:1000]
        # dash.js plays the channel and fetches a rendition's segments.
        rendition_media: list[str] = []
        page.on(
            "request",
            lambda r: rendition_media.append(r.url) if f"/{CHANNEL}~" in r.url else None,
        )
        await page.add_init_script(
            "window.__heights = []; setInterval(() => { const v = document.querySelector("
            "'#player video'); if (v && v.videoHeight) window.__heights.push(v.videoHeight);"
            " }, 50);"
        )
        await page.goto(f"{base}?transport=dash")
        await wait_for_player_state(page, "playing", timeout_ms=20_000)
        await page.wait_for_function(
            "() => document.querySelector('#player video').currentTime > 1.0", timeout=20_000
        )
        assert any(u.endswith(".m4s") for u in rendition_media), rendition_media
        # What the viewer saw first was a rendition's picture (dash.js chose it).
        heights_seen = await page.evaluate("window.__heights")
        assert min(heights_seen) < 360, heights_seen
        assert page_log.errors == []


async def test_with_the_ladder_off_nothing_is_encoded(server: StromServer, media_dir: Path) -> None:
    media = make_media(media_dir / "ladder-off.flv", seconds=2.0, gop=15)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    try:
        await wait_live(server)
        await asyncio.sleep(1.0)
        names = {c.name for c in server.registry}
        assert names == {CHANNEL}  # no rendition channel, so no worker
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/master.m3u8"
            async with http.get(url) as resp:
                assert resp.status == 200
                master = await resp.text()
        assert master.count("#EXT-X-STREAM-INF") == 1  # the source alone
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


async def test_the_player_switches_down_when_its_connection_is_throttled(
    tmp_path: Path, media_dir: Path, page: Page, page_log: PageLog
) -> None:
    # A 640x360 source at 1.5 Mbit/s, renditions 240p and 180p well below it; the
    # viewer's connection then carries ~500 kbit/s: the source stalls, a rendition fits.
    media = make_media(
        media_dir / "ladder-switch.flv", fps=15, gop=15, seconds=4.0, bitrate="1500k"
    )
    async with laddered(tmp_path, media, "240p=200k,180p=100k", 3) as (_, base):
        await page.goto(base)
        await wait_for_player_state(page, "playing", timeout_ms=20_000)
        # The menu offers Auto, the source and both renditions.
        menu = page.locator('#player [data-role="quality"]')
        await menu.wait_for(state="visible", timeout=20_000)
        assert await menu.locator("option").all_text_contents() == [
            "Auto", "Source", "240p", "180p",
        ]  # fmt: skip
        assert await page.get_attribute("#player", "data-quality") == "Source"
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 40,
                "downloadThroughput": 500_000 / 8,
                "uploadThroughput": 500_000 / 8,
            },
        )
        # Stalls pile up on the source: the player goes down to a rendition by itself,
        # and it plays there (its own init, a smaller picture).
        await page.wait_for_function(
            "() => document.querySelector('#player').dataset.quality !== 'Source'",
            timeout=40_000,
        )
        await page.wait_for_function(
            "() => document.querySelector('#player video').videoHeight < 360",
            timeout=30_000,
        )
        assert await page.get_attribute("#player", "data-quality-mode") == "auto"
        # The viewer picks the source again from the menu: it reconnects to it.
        await cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        await menu.select_option(label="Source")
        await page.wait_for_function(
            "() => document.querySelector('#player video').videoHeight === 360",
            timeout=20_000,
        )
        assert await page.get_attribute("#player", "data-quality") == "Source"
        assert page_log.errors == []


async def test_with_the_site_on_only_a_streamer_who_switched_it_on_gets_a_ladder(
    tmp_path: Path, media_dir: Path
) -> None:
    media = make_media(media_dir / "ladder-switch-on.flv", seconds=3.0, gop=15, fps=15)
    settings = make_settings(tmp_path, ladder="on", ladder_renditions="180p=100k")
    server = StromServer(settings)
    await server.start()
    try:
        store = server.store
        assert store is not None
        _, key = await store.users.create("erin", PASSWORD)
        token = await store.tokens.create("erin", "t")
        auth = {"Authorization": f"Bearer {token}"}
        api = f"http://127.0.0.1:{server.http_port}/api/v1"
        seen: list[str] = []
        server.registry.listeners.append(lambda c: seen.append(c.name) if c.live else None)
        # Off by default: the broadcast has no rendition.
        code, out = await run_process(*publish_args(media, server.rtmp_port, key))
        assert code == 0, out
        assert seen
        assert set(seen) == {"erin"}
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.patch(f"{api}/me/channel", json={"quality_ladder": "yes"}) as resp:
                assert resp.status == 422
            async with http.patch(f"{api}/me/channel", json={"quality_ladder": True}) as resp:
                assert resp.status == 200
            async with http.get(f"{api}/channels/erin") as resp:
                assert (await resp.json())["quality_ladder"] is True
        # Switched on: the next broadcast has its rendition, which is not recorded.
        code, out = await run_process(*publish_args(media, server.rtmp_port, key))
        assert code == 0, out
        assert "erin~180p" in seen
        assert not (settings.data_dir / "recordings" / "erin~180p").exists()
    finally:
        await server.stop()


async def test_a_browser_that_cannot_play_hevc_plays_a_rendition_and_says_so(
    tmp_path: Path, page: Page, page_log: PageLog
) -> None:
    hevc = 'video/mp4; codecs="hvc1.1.6.L60.90"'
    await page.goto("about:blank")
    if await page.evaluate("(t) => MediaSource.isTypeSupported(t)", hevc):
        pytest.skip("this Chromium plays HEVC: the source plays as it is")
    settings = make_settings(
        tmp_path, ladder="all", ladder_renditions="180p=150k", ladder_preset="ultrafast",
        ladder_max_lag=3.0,
    )  # fmt: skip
    server = StromServer(settings)
    await server.start()
    publisher = None
    try:
        url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}"
        await page.goto(url)
        await wait_for_player_state(page, "offline")
        # PyAV's FFmpeg publishes HEVC over Enhanced RTMP; the ladder decodes it.
        publisher = publish(server, "libx265", "libopus", seconds=20)
        await page.wait_for_function(
            "() => document.querySelector('#player').dataset.quality === '180p'", timeout=30_000
        )
        await wait_for_player_state(page, "playing", timeout_ms=15_000)
        # The rendition plays: time runs, at the rendition's size.
        start = (await video_info(page))["currentTime"]
        await page.wait_for_function(
            "(t) => document.querySelector('#player video').currentTime > t + 1",
            arg=start,
            timeout=20_000,
        )
        info = await video_info(page)
        assert (info["videoWidth"], info["videoHeight"]) == (240, 180)
        # A visible line says why, and the menu does not offer the source as playable.
        notice = page.locator('#player [data-role="quality-notice"]')
        assert await notice.is_visible()
        assert await notice.text_content() == (
            "This stream is HEVC (H.265); your browser cannot play it. Playing 180p instead."
        )
        menu = page.locator('#player [data-role="quality"] option')
        assert await menu.all_text_contents() == ["Auto", "Source (cannot play here)", "180p"]
        assert await menu.nth(1).is_disabled()
        await screenshot(page, "ladder-hevc-fallback")
        assert page_log.errors == []
    finally:
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        await server.stop()
