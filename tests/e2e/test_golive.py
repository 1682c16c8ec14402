"""The "Go live" page end to end: a logged-in streamer goes live from headless Chromium
(fake camera, microphone and screen), a second browser context watches and its video
plays, a WebSocket reader of /live/{channel}/ws records what viewers get and real ffmpeg
decodes it without an error. The H.264 path (the default: the browser's H.264 as sent),
VP9 (as sent), VP8 (converted to H.264 by the server) and MP4 are each recorded; a
network blip (every connection through a proxy cut) resumes the same broadcast; Stop
ends it for the viewers; refused devices and a browser without a usable codec say so.

One Chromium for the module (contexts are cheap, launches are not); a fresh server per
test on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, async_playwright

from strom.server import StromServer
from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PageLog,
    require_chromium,
    screenshot,
    wait_for_player_state,
)
from tests.e2e.golive import (
    FAKE_MEDIA,
    PASSWORD,
    STREAMER,
    golive_state,
    log_in,
    video_advances,
    wait_golive,
    watch,
)
from tests.helpers import make_settings, need_tool, run_process

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + FAKE_MEDIA, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path))
    await srv.start()
    try:
        assert srv.store is not None
        await srv.store.users.create(STREAMER, PASSWORD)
        yield srv
    finally:
        await srv.stop()


# --- helpers -------------------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy in front of the server's HTTP port whose connections can all be cut
    at once: a network blip, as the browser sees one (its socket just dies)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def cut(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


@dataclass
class Watcher:
    """What a viewer's /live/{channel}/ws delivers: the text messages, and the media
    written to one file per init segment (a new init starts a new file)."""

    url: str
    out: Path
    texts: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    chunks: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, max_seconds: float = 60) -> None:
        current = None
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(self.url) as ws:
                async with asyncio.timeout(max_seconds):
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT:
                            self.texts.append(json.loads(msg.data))
                            if self.texts[-1]["type"] == "init":
                                if current is not None:
                                    current.close()
                                path = self.out.with_suffix(f".{len(self.files)}.mp4")
                                self.files.append(path)
                                current = path.open("wb")
                        elif msg.type is aiohttp.WSMsgType.BINARY and current is not None:
                            current.write(msg.data)
                            self.chunks += 1
                            self.more.set()
        finally:
            if current is not None:
                current.close()

    def kinds(self) -> list[str]:
        return [t["type"] for t in self.texts]

    async def wait_chunks(self, count: int, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while self.chunks < count:
                self.more.clear()
                await self.more.wait()


async def decodes_cleanly(watcher: Watcher) -> int:
    """Every file the viewer socket produced decodes (video and sound) with no error
    from real ffmpeg; the video frames in all. A camera's frame times jitter (two frames
    can be 16 ms apart at 20 fps), so the null output keeps the input's fine time base
    instead of one made from the frame rate, where such frames would collide."""
    total = 0
    for path in watcher.files:
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", str(path), "-map", "0",
            "-fps_mode", "passthrough", "-enc_time_base:v", "1/90000",
            "-f", "null", "-", "-progress", "pipe:1", "-nostats", timeout=90,
        )  # fmt: skip
        assert code == 0, out
        errors = [line for line in out.splitlines() if line and "=" not in line.split(" ")[0]]
        assert errors == [], f"{path.name}: {errors}"
        total += int(re.findall(r"^frame=(\d+)", out, re.M)[-1])
    return total


# --- tests ---------------------------------------------------------------------------


async def test_one_click_camera_broadcast_survives_a_blip_and_stops(
    server: StromServer, browser: Browser, tmp_path: Path
) -> None:
    need_tool("ffmpeg")
    proxy = CuttableProxy(server.http_port)
    await proxy.start()
    watcher = Watcher(f"http://127.0.0.1:{server.http_port}/live/{STREAMER}/ws", tmp_path / "w")
    watching = asyncio.create_task(watcher.run())
    viewer_ctx: BrowserContext | None = None
    streamer = await log_in(browser, f"http://127.0.0.1:{proxy.port}")
    log = PageLog()
    log.attach(streamer)
    try:
        # The dashboard leads to the page with one obvious button; one click goes live.
        await streamer.locator('[data-role="go-live"]').click()
        await streamer.wait_for_url("**/golive")
        await streamer.locator('[data-action="go-live"]').click()
        await wait_golive(streamer, "live")
        assert await streamer.evaluate("() => window.stromGoLive.format()") == (
            "video/webm;codecs=h264,opus"
        )
        # With the permission given, the pickers name the devices.
        cameras = await streamer.locator('select[name="camera"] option').all_inner_texts()
        assert len(cameras) >= 2  # "Default camera" and the fake one, by name
        assert all(cameras)
        await watcher.wait_chunks(20)
        init = next(t for t in watcher.texts if t["type"] == "init")
        assert "avc1" in init["mime"]  # as the browser sent it
        assert "opus" in init["mime"]

        # A viewer in another browser context sees the picture move.
        viewer_ctx, viewer = await watch(browser, f"http://127.0.0.1:{server.http_port}")
        await wait_for_player_state(viewer, "playing", timeout_ms=20_000)
        await video_advances(viewer)

        # The streamer sees the audience, the time on air and the upload.
        await streamer.wait_for_function(
            "() => Number(document.querySelector('[data-stat=viewers]').textContent) >= 1",
            timeout=10_000,
        )
        assert await streamer.locator('[data-role="status-line"]').inner_text() == "You are live"
        assert "kb/s" in await streamer.locator('[data-stat="bitrate"]').inner_text()
        await screenshot(streamer, "golive-live")
        status = await streamer.evaluate("() => window.stromGoLive.status()")
        broadcast = status["broadcast"]
        assert broadcast is not None

        # A network blip: the upload socket dies; the page reconnects by itself and the
        # server carries on with the same broadcast.
        proxy.cut()
        await streamer.wait_for_function(
            "() => window.stromGoLive.connections() >= 2 && window.stromGoLive.state() === 'live'",
            timeout=20_000,
        )
        await streamer.wait_for_function(
            "(id) => window.stromGoLive.status()?.broadcast === id && "
            "window.stromGoLive.status()?.state === 'live'",
            arg=broadcast,
            timeout=10_000,
        )
        before = watcher.chunks
        await watcher.wait_chunks(before + 15)
        await video_advances(viewer)
        assert "end" not in watcher.kinds()

        # Stop ends the broadcast at once, for every viewer.
        await streamer.locator('[data-action="stop"]').click()
        await wait_golive(streamer, "idle")
        async with asyncio.timeout(10):
            await watching
        assert watcher.kinds()[-1] == "end"
        await wait_for_player_state(viewer, "ended", timeout_ms=10_000)
        assert await streamer.evaluate("() => window.stromGoLive.capture()") is None  # camera off
        assert server.store is not None
        broadcasts = await server.store.broadcasts.list(STREAMER)
        assert [b.id for b in broadcasts] == [broadcast]
        assert await decodes_cleanly(watcher) > 30
        assert log.errors == []
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        if viewer_ctx is not None:
            await viewer_ctx.close()
        await streamer.context.close()
        await proxy.stop()


FORMATS = [
    # (source, forced MIME type, what the viewers' init announces)
    pytest.param("screen", "video/webm;codecs=vp9,opus", "vp09", id="screen-vp9-as-sent"),
    pytest.param("pip", "video/webm;codecs=vp8,opus", "avc1", id="pip-vp8-converted"),
    pytest.param("camera", "video/mp4;codecs=avc1.42E01F,opus", "avc1", id="camera-mp4-h264"),
]


@pytest.mark.parametrize(("mode", "mime", "codec"), FORMATS)
async def test_each_source_and_format_reaches_viewers(
    server: StromServer, browser: Browser, tmp_path: Path, mode: str, mime: str, codec: str
) -> None:
    need_tool("ffmpeg")
    base = f"http://127.0.0.1:{server.http_port}"
    watcher = Watcher(f"{base}/live/{STREAMER}/ws", tmp_path / "w")
    watching = asyncio.create_task(watcher.run())
    streamer = await log_in(browser, base, "/golive")
    viewer_ctx: BrowserContext | None = None
    try:
        await streamer.goto(f"{base}/golive?mime={mime}")
        await streamer.locator(f'input[name="mode"][value="{mode}"]').check(force=True)
        await streamer.locator('select[name="height"]').select_option("360")
        await streamer.locator('[data-action="go-live"]').click()
        await wait_golive(streamer, "live")
        assert await streamer.evaluate("() => window.stromGoLive.format()") == mime
        await watcher.wait_chunks(30)
        init = next(t for t in watcher.texts if t["type"] == "init")
        assert codec in init["mime"]
        viewer_ctx, viewer = await watch(browser, base)
        await wait_for_player_state(viewer, "playing", timeout_ms=20_000)
        info = await video_advances(viewer)
        # 360p was chosen: the screen fits in it; the composed picture is exactly that.
        assert info["videoWidth"] <= 640
        assert info["videoHeight"] <= 360
        if mode == "pip":
            assert (info["videoWidth"], info["videoHeight"]) == (640, 360)
            await screenshot(streamer, "golive-live-screen-and-camera")
        await streamer.locator('[data-action="stop"]').click()
        async with asyncio.timeout(10):
            await watching
        assert watcher.kinds()[-1] == "end"
        assert await decodes_cleanly(watcher) > 20
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        if viewer_ctx is not None:
            await viewer_ctx.close()
        await streamer.context.close()


REFUSE_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""
NO_CODECS = "MediaRecorder.isTypeSupported = () => false;"


async def test_refusals_are_explained_and_nothing_is_sent(
    server: StromServer, browser: Browser
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    streamer = await log_in(browser, base, "/golive")
    try:
        # The browser refuses the camera: the page says what to do, and stays offline.
        await streamer.context.add_init_script(REFUSE_CAMERA)
        await streamer.reload()
        await streamer.locator('[data-action="go-live"]').click()
        error = streamer.locator('[data-role="error"]')
        await error.wait_for(state="visible")
        assert "blocked the camera" in await error.inner_text()
        assert await golive_state(streamer) == "idle"
        assert await streamer.locator('[data-action="go-live"]').is_visible()

        # The screen share is cancelled (the same refusal, from the screen picker).
        await streamer.context.add_init_script(
            REFUSE_CAMERA.replace("getUserMedia", "getDisplayMedia")
        )
        await streamer.reload()
        await streamer.locator('input[name="mode"][value="screen"]').check(force=True)
        await streamer.locator('[data-action="go-live"]').click()
        await streamer.wait_for_function(
            "() => /Screen sharing was cancelled/.test("
            "document.querySelector('[data-role=error]').textContent)"
        )

        # A browser that records no usable format: said on arrival, and Go live stays off.
        await streamer.context.add_init_script(NO_CODECS)
        await streamer.reload()
        await error.wait_for(state="visible")
        assert "cannot record video" in await error.inner_text()
        await streamer.locator('[data-action="go-live"]').click()
        assert await golive_state(streamer) == "idle"
        # Not one upload was attempted in all of this.
        assert server.push is not None
        metrics = server.push.metrics()
        assert (metrics["started"], metrics["refused"], metrics["active"]) == (0, 0, 0)
    finally:
        await streamer.context.close()
