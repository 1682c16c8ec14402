"""A browser goes live over WHIP: headless Chromium with a fake camera and microphone
publishes with ``RTCPeerConnection`` and a ``fetch`` POST of its offer from a page of
another origin, as a streamer's own web page would, and a second browser context watches
on the channel's page; a DELETE of the session's ``Location`` ends the broadcast for that
viewer.

ICE stays on loopback: the server offers 127.0.0.1 only (``whip_ice_addresses``), and
Chromium is allowed loopback candidates and shows its addresses unhidden (no mDNS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from strom.server import StromServer
from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PageLog,
    require_chromium,
    screenshot,
    wait_for_player_state,
)
from tests.e2e.golive import FAKE_MEDIA, video_advances
from tests.helpers import CHANNEL, STREAM_KEY
from tests.helpers.servers import serving
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e

#: WebRTC on loopback, with real addresses in the candidates
LOOPBACK_RTC = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

#: what a streamer's page does: camera and microphone, an offer with H.264 first, every
#: candidate gathered, the offer POSTed with the stream key, the answer applied
PUBLISH = """async ({url, key}) => {
    const stream = await navigator.mediaDevices.getUserMedia(
        {video: {width: 640, height: 360, frameRate: 30}, audio: true});
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) {
        const t = pc.addTransceiver(track, {direction: 'sendonly'});
        if (track.kind === 'video') {
            const all = RTCRtpSender.getCapabilities('video').codecs;
            const h264 = all.filter(c => c.mimeType === 'video/H264');
            t.setCodecPreferences([...h264, ...all.filter(c => c.mimeType !== 'video/H264')]);
        }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(done => {
        if (pc.iceGatheringState === 'complete') return done();
        pc.addEventListener('icegatheringstatechange',
            () => pc.iceGatheringState === 'complete' && done());
    });
    const resp = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
        headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + key}});
    const answer = await resp.text();
    if (resp.status !== 201) return {status: resp.status, answer};
    await pc.setRemoteDescription({type: 'answer', sdp: answer});
    window.whip = {pc, location: new URL(resp.headers.get('Location'), url).href};
    return {status: resp.status, location: window.whip.location};
}"""

STREAMER_PAGE = "<!doctype html><title>my stream</title><p>Going live over WHIP</p>"

STOP = """async () => {
    const resp = await fetch(window.whip.location, {method: 'DELETE'});
    window.whip.pc.close();
    return resp.status;
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS + FAKE_MEDIA + LOOPBACK_RTC,
            headless=True,
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    async with serving(tmp_path, whip_ice_addresses="127.0.0.1") as server:
        yield server


@pytest.fixture
async def streamer_site() -> AsyncIterator[int]:
    """The streamer's own web site (a page with no Content-Security-Policy of Strom's),
    on loopback: its port."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=STREAMER_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_browser_publishes_over_whip_and_another_watches(
    browser: Browser, server: StromServer, streamer_site: int
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    publisher_log, viewer_log = PageLog(), PageLog()
    streamer_ctx = await browser.new_context()
    viewer_ctx = await browser.new_context(viewport={"width": 960, "height": 600})
    try:
        streamer = await streamer_ctx.new_page()
        publisher_log.attach(streamer)
        # the streamer's own page, on another origin than Strom (localhost, a secure
        # context for the camera): the POST and the DELETE pass CORS preflights, and the
        # page reads the Location header
        await streamer.goto(f"http://localhost:{streamer_site}/")
        result: dict[str, Any] = await streamer.evaluate(
            PUBLISH, {"url": f"{base}/whip", "key": STREAM_KEY}
        )
        assert result["status"] == 201, result
        await wait_live(server, timeout=20)
        channel = server.registry.get(CHANNEL)
        assert channel is not None
        assert {t.codec.value for t in channel.tracks.values()} == {"h264", "opus"}

        viewer = await viewer_ctx.new_page()
        viewer_log.attach(viewer)
        await viewer.goto(f"{base}/live/{CHANNEL}")
        await wait_for_player_state(viewer, "playing", timeout_ms=20_000)
        info = await video_advances(viewer)
        assert (info["videoWidth"], info["videoHeight"]) == (640, 360)
        await screenshot(viewer, "whip-browser-viewer")

        assert await streamer.evaluate(STOP) == 200
        await wait_for_player_state(viewer, "ended", timeout_ms=10_000)
    finally:
        await streamer_ctx.close()
        await viewer_ctx.close()
    assert publisher_log.errors == []
    assert viewer_log.errors == []
