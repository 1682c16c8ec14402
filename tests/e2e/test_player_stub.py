"""The watch page's player against a stub server: real ffmpeg media, real Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.e2e.browser import (
    H264_AAC,
    PageLog,
    player_state,
    screenshot,
    video_info,
    wait_for_player_state,
)
from tests.e2e.stub_server import (
    STATIC,
    FragmentedStream,
    StubServer,
    make_fragmented_mp4,
    make_hls,
    parse_fragmented_mp4,
)

pytestmark = pytest.mark.e2e

CHANNEL = "alice"


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> FragmentedStream:
    directory = tmp_path_factory.mktemp("fmp4")
    return parse_fragmented_mp4(make_fragmented_mp4(directory).read_bytes())


@pytest.fixture(scope="module")
def hls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hls(tmp_path_factory.mktemp("hls")).parent


@pytest.fixture
async def server(stream: FragmentedStream, hls_dir: Path) -> AsyncIterator[StubServer]:
    async with StubServer(stream, hls_dir=hls_dir, offline_seconds=1.0) as stub:
        yield stub


def test_stub_media_matches_the_server_contract(stream: FragmentedStream) -> None:
    assert stream.mime == H264_AAC
    assert stream.init.startswith(b"\0\0\0\x1cftyp") or stream.init[4:8] == b"ftyp"
    assert all(chunk.data[4:8] == b"moof" for chunk in stream.chunks)
    assert stream.chunks[-1].decode_seconds > 5.5


async def test_websocket_player_goes_from_offline_to_live_to_ended(
    page: Page, page_log: PageLog, server: StubServer
) -> None:
    assert await page.evaluate(f"() => MediaSource.isTypeSupported('{H264_AAC}')")

    await page.goto(server.url(f"/live/{CHANNEL}?transport=ws"))

    # The stub says "offline" for a second: the offline card shows, not the video.
    await wait_for_player_state(page, "offline", timeout_ms=5_000)
    card = page.locator(".card-offline")
    assert await card.is_visible()
    assert f"{CHANNEL} is offline" in await card.inner_text()

    # Then the stream starts by itself, muted (autoplay policy) with an unmute button.
    await wait_for_player_state(page, "playing", timeout_ms=5_000)
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 0.2", timeout=5_000
    )
    assert not await card.is_visible()
    assert await page.locator(".unmute-button").is_visible()

    before = await video_info(page)
    await asyncio.sleep(2.0)
    after = await video_info(page)
    assert after["transport"] == "WebSocket"
    assert not after["paused"]
    assert after["currentTime"] - before["currentTime"] > 1.5
    assert (after["videoWidth"], after["videoHeight"]) == (640, 360)
    assert after["latency"] is not None
    assert after["latency"] < 1.5

    # Keyboard: i shows the stats overlay, m unmutes.
    await page.keyboard.press("i")
    stats = page.locator('[data-role="stats"]')
    assert await stats.is_visible()
    await page.wait_for_function(
        "() => document.querySelector('[data-stat=\"resolution\"]').textContent.includes('640')",
        timeout=2_000,
    )
    assert "WebSocket" in await stats.inner_text()
    await page.keyboard.press("m")
    assert (await video_info(page))["muted"] is False
    assert not await page.locator(".unmute-button").is_visible()

    shot = await screenshot(page, "player-stub")
    assert shot.stat().st_size > 10_000

    # The stub sends "end" after its 6 s of media.
    await wait_for_player_state(page, "ended", timeout_ms=8_000)
    assert await page.locator(".card-ended").is_visible()
    assert page_log.errors == []


async def test_late_joiner_starts_at_the_live_edge_and_survives_a_new_init(
    page: Page, page_log: PageLog, stream: FragmentedStream
) -> None:
    # Joining 3.5 s into a broadcast: the burst starts at the keyframe near 3 s, so the
    # buffer does not start at 0. Then the publisher "reconnects": a new init, a new
    # timeline starting at 0 again, on the same socket.
    async with StubServer(stream, offline_seconds=0, join_at_seconds=3.5, broadcasts=2) as server:
        await page.goto(server.url(f"/live/{CHANNEL}"))
        # (a bound on waiting, not a speed claim: CI's loaded box took over 5 s once)
        await page.wait_for_function(
            "() => document.querySelector('#player video').currentTime > 3.1", timeout=10_000
        )
        start = await page.evaluate("() => window.stromPlayer.video.buffered.start(0)")
        assert start > 2.5
        info = await video_info(page)
        assert info["transport"] == "WebSocket"
        assert info["latency"] < 1.0

        # The second broadcast's timeline restarts: playback follows it.
        await page.wait_for_function(
            """() => {
                const v = document.querySelector('#player video');
                return window.stromPlayer.state === 'playing' && v.currentTime > 0.8
                    && v.currentTime < 2.5 && !v.paused;
            }""",
            timeout=6_000,
        )
        assert (await video_info(page))["videoWidth"] == 640
        assert server.ws_connections == 1
    assert page_log.errors == []


async def test_dropped_viewer_reconnects_and_plays_again(
    page: Page, page_log: PageLog, stream: FragmentedStream
) -> None:
    async with StubServer(stream, offline_seconds=0, drop_first_after=1.5) as server:
        await page.goto(server.url(f"/live/{CHANNEL}"))
        await page.wait_for_function(
            "() => window.stromPlayer.history.includes('reconnecting')", timeout=6_000
        )
        await page.wait_for_function(
            """() => window.stromPlayer.state === 'playing'
                && document.querySelector('#player video').currentTime > 1.0""",
            timeout=6_000,
        )
        history = await page.evaluate("() => window.stromPlayer.history")
        assert history[-2:] == ["reconnecting", "playing"]
        assert server.ws_connections == 2
    assert page_log.errors == []


needs_hlsjs = pytest.mark.skipif(
    not (STATIC / "vendor" / "hls.min.js").exists(),
    reason="hls.js is not vendored: run scripts/vendor-frontend",
)


@needs_hlsjs
async def test_forced_hls_plays_through_vendored_hlsjs(
    page: Page, page_log: PageLog, server: StubServer
) -> None:
    await page.goto(server.url(f"/live/{CHANNEL}?transport=hls"))
    await wait_for_player_state(page, "playing", timeout_ms=5_000)
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 1.0", timeout=8_000
    )
    info = await video_info(page)
    assert info["transport"] == "LL-HLS"
    assert info["videoWidth"] == 640
    assert await page.evaluate("() => typeof window.Hls") == "function"
    assert server.ws_connections == 0
    assert page_log.errors == []


@needs_hlsjs
@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"websocket": False}, id="websocket-unreachable"),
        pytest.param({"mime": 'video/mp4; codecs="strom.none"'}, id="codec-unsupported"),
    ],
)
async def test_player_falls_back_to_hlsjs(
    page: Page, stream: FragmentedStream, hls_dir: Path, broken: dict[str, Any]
) -> None:
    async with StubServer(stream, hls_dir=hls_dir, offline_seconds=0, **broken) as server:
        await page.goto(server.url(f"/live/{CHANNEL}"))
        await page.wait_for_function(
            """() => window.stromPlayer.transport === 'LL-HLS'
                && document.querySelector('#player video').currentTime > 0.5""",
            timeout=8_000,
        )
        assert await player_state(page) == "playing"
        assert (await video_info(page))["videoWidth"] == 640
