"""Enhanced RTMP end to end: PyAV's FFmpeg 8 publishes AV1 and HEVC to a real Strom
server; Chromium plays AV1 through MSE and says clearly when it cannot play HEVC, ffmpeg
decodes the HEVC; a refused publish (FFmpeg's, a raw client's) hears why before the
connection closes, and the streamer's dashboard can say it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page

from strom.media.rtmp import MESSAGE_TYPE_VIDEO, StatusReceived, encode_message
from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot, video_info, wait_for_player_state
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers import CHANNEL, STREAM_KEY
from tests.helpers.enhanced_rtmp import publish, published
from tests.helpers.watching import collect_ws, decode, wait_live, wait_recording

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 320, 240


async def test_av1_plays_in_chromium(server: StromServer, page: Page, page_log: PageLog) -> None:
    await page.goto(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}")
    await wait_for_player_state(page, "offline")
    publisher = publish(server, "libsvtav1", "libopus", seconds=6)
    await wait_for_player_state(page, "playing", timeout_ms=30_000)
    assert server.registry.get(CHANNEL).tracks[1].codec_string.startswith("av01.")  # type: ignore[union-attr]
    # A decoded picture: time runs and the video has its size.
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 0.5", timeout=30_000
    )
    info = await video_info(page)
    assert (info["videoWidth"], info["videoHeight"]) == (WIDTH, HEIGHT)
    await screenshot(page, "enhanced-rtmp-av1")
    assert await published(publisher) == 180
    assert page_log.errors == []


async def test_hevc_decodes_and_the_page_says_what_it_cannot_play(
    server: StromServer, page: Page, tmp_path: Path
) -> None:
    out = tmp_path / "hevc.mp4"
    url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}"
    viewer = asyncio.create_task(collect_ws(f"{url}/ws", out))
    await page.goto(url)
    publisher = publish(server, "libx265", "libopus", seconds=4)
    await wait_live(server, timeout=30)
    assert server.registry.get(CHANNEL).tracks[1].codec_string.startswith("hvc1.1.6.")  # type: ignore[union-attr]
    playable = await page.evaluate(
        "() => MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L60.90\"')"
    )
    if playable:  # a Chromium with a platform HEVC decoder plays it
        await wait_for_player_state(page, "playing", timeout_ms=15_000)
    else:  # Debian's: a clear sentence rather than a black box
        await wait_for_player_state(page, "error", timeout_ms=15_000)
        detail = page.locator('[data-role="error-detail"]')
        assert await detail.text_content() == (
            "This stream is HEVC (H.265); your browser cannot play it."
        )
        assert await detail.is_visible()
    await screenshot(page, "enhanced-rtmp-hevc")
    assert await published(publisher) == 120
    texts = await viewer
    [init] = [t for t in texts if t["type"] == "init"]
    assert 'codecs="hvc1.1.6.L' in init["mime"]
    frames, errors = await decode(str(out))  # Debian's ffmpeg decodes HEVC in fMP4
    assert errors == ""
    assert frames >= 100  # the viewer joined within the first second
    # The recording, as HLS: every picture.
    async with aiohttp.ClientSession() as http:
        recording = await wait_recording(http, server, finished=True)
    frames, errors = await decode(f"{url.replace('/live/', '/vod/')}/{recording['id']}/index.m3u8")
    assert (frames, errors) == (120, "")


async def test_ffmpeg_hears_why_its_codec_is_refused(server: StromServer) -> None:
    # FFmpeg 8 sends VP9 over Enhanced RTMP; it prints the server's reason, not EPIPE.
    code, out = await publish(server, "libvpx-vp9", "libopus", seconds=3)
    assert code != 0
    assert "Server error: unsupported video codec 'vp09' (VP9, Enhanced RTMP)" in out
    assert "Broken pipe" not in out
    # The streamer's dashboard reads it from the health API.
    health = server.directory.health(CHANNEL)
    assert health["live"] is False
    assert "'vp09'" in health["refused"]["reason"]


async def test_refused_publishes_hear_why_before_the_close(server: StromServer) -> None:
    # A codec Strom does not take (VP9 over Enhanced RTMP), after a good key.
    client = RtmpTestClient(server.rtmp_port)
    await client.connect()
    assert (await client.publish(STREAM_KEY)).code == "NetStream.Publish.Start"
    stream_id = client.session.stream_id
    assert stream_id is not None
    vp9 = b"\x90vp09" + bytes.fromhex("01000000")
    client.writer.write(encode_message(6, MESSAGE_TYPE_VIDEO, stream_id, 0, vp9, 128))
    await client.read_until_closed()
    [refusal] = [e for e in client.events if isinstance(e, StatusReceived) and e.level == "error"]
    assert refusal.code == "NetStream.Publish.Rejected"
    assert "unsupported video codec 'vp09' (VP9" in refusal.description

    # A wrong key: refused with the reason, then the server closes the connection.
    client = RtmpTestClient(server.rtmp_port)
    await client.connect()
    status = await client.publish("not-a-real-key-999")
    assert (status.level, status.code) == ("error", "NetStream.Publish.Rejected")
    assert status.description == "unknown stream key"
    async with asyncio.timeout(10):
        assert await client.reader.read() == b""  # EOF, not a reset
    await client.aclose()
