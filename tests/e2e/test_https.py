"""Built-in HTTPS and RTMPS, as an operator runs them: ``strom serve --tls-cert --tls-key``
(its own process) with a self-signed certificate the suite makes with ``openssl``.

* ffmpeg publishes over ``rtmps://`` and a ``wss://`` viewer (the certificate trusted)
  gets what real ffmpeg decodes frame for frame; so does ``strom stream --server
  https://...``, which publishes over rtmps:// when the site offers it;
* Chromium, at a name that is not loopback (``strom.test``, so only HTTPS makes the page
  a secure context), shows the rtmps:// server on the dashboard, goes live from the Go
  live page (camera upload over wss) and a viewer's watch page plays it (over wss).

A bad certificate is tested in process (tests/test_tls.py).

One node and one Chromium for the module."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from strom.store import Store
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
    log_in,
    video_advances,
    wait_golive,
    watch,
)
from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, publish_args, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.servers import free_port
from tests.helpers.streaming import streaming
from tests.helpers.tls import TLS_NAME, make_certificate
from tests.helpers.watching import collect_ws, decode

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NAME = TLS_NAME


class TlsNode:
    def __init__(self, node: Node, cert: Path, rtmps_port: int) -> None:
        self.node = node
        self.cert = cert
        self.rtmps_port = rtmps_port
        self.trust = ssl.create_default_context(cafile=str(cert))

    @property
    def http_port(self) -> int:
        return self.node.http_port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TlsNode]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = await make_certificate(folder)
    rtmps_port = free_port()
    node = Node(
        folder / "data",
        "--tls-cert", str(cert), "--tls-key", str(key), "--rtmps-port", str(rtmps_port),
    )  # fmt: skip
    store = await Store.open(f"sqlite+aiosqlite:///{node.data_dir / 'strom.db'}")
    try:
        await store.users.create(STREAMER, PASSWORD)
    finally:
        await store.close()
    async with running(node):
        yield TlsNode(node, cert, rtmps_port)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS, *FAKE_MEDIA, "--ignore-certificate-errors",
                f"--host-resolver-rules=MAP {NAME} 127.0.0.1",
            ],
            headless=True,
        )  # fmt: skip
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_ffmpeg_publishes_over_rtmps_and_a_wss_viewer_decodes_it(
    site: TlsNode, av_media: MediaFile, tmp_path: Path
) -> None:
    out = tmp_path / "wss.mp4"
    url = f"wss://127.0.0.1:{site.http_port}/live/{CHANNEL}/ws"
    viewer = asyncio.create_task(collect_ws(url, out, tls=site.trust))
    await asyncio.sleep(0.3)
    args = publish_args(av_media, site.rtmps_port)
    args[-1] = f"rtmps://127.0.0.1:{site.rtmps_port}/live/{STREAM_KEY}"
    code, log = await run_process(*args)
    assert code == 0, log
    texts = await viewer
    assert texts[1]["type"] == "init"
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == av_media.frames
    # The plain RTMP port stays what it was.
    assert "rtmp://" in await site.node.until_logged("go live: OBS server")


async def test_the_strom_client_publishes_over_rtmps_to_an_https_site(
    site: TlsNode, tmp_path: Path
) -> None:
    """``strom stream --server https://...`` sends its stream key over TLS, not in the clear."""
    web = f"https://127.0.0.1:{site.http_port}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{web}/api/v1/ingest", ssl=site.trust) as resp,
    ):
        ingest = await resp.json()
    rtmps = f"rtmps://127.0.0.1:{site.rtmps_port}/live"
    assert ingest["rtmps_url"] == rtmps
    out = tmp_path / "wss.mp4"
    url = f"wss://127.0.0.1:{site.http_port}/live/{CHANNEL}/ws"
    viewer = asyncio.create_task(collect_ws(url, out, tls=site.trust))
    trust = {"SSL_CERT_FILE": str(site.cert)}  # as a certificate from a public CA would be
    args = ("--server", web, "--key", STREAM_KEY, "--source", "test", "--size", "320x240")
    async with streaming(*args, "--fps", "10", "--bitrate", "400", env=trust) as client:
        assert rtmps in await client.wait_for("publishing to ")
        await client.wait_for("● LIVE")
        await asyncio.sleep(2.0)
        assert await client.finish(signal.SIGINT) == 0, client.output
        assert "unencrypted" not in client.output
    texts = await viewer
    assert texts[1]["type"] == "init"
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames >= 10


async def test_browser_goes_live_and_watches_over_https(site: TlsNode, browser: Browser) -> None:
    base = f"https://{NAME}:{site.http_port}"
    streamer = await log_in(browser, base)
    log = PageLog()
    log.attach(streamer)
    viewer_ctx = None
    try:
        # The dashboard gives OBS the encrypted server too.
        rtmps = await streamer.locator('[data-role="obs-server-rtmps"]').input_value()
        assert rtmps == f"rtmps://{NAME}:{site.rtmps_port}/live"
        await screenshot(streamer, "https-dashboard")

        await streamer.goto(f"{base}/golive")
        # Not loopback, yet a secure context: the camera may be asked for.
        assert await streamer.evaluate("() => window.isSecureContext") is True
        assert await streamer.evaluate("() => !!navigator.mediaDevices?.getUserMedia") is True
        await streamer.locator('[data-action="go-live"]').click()
        await wait_golive(streamer, "live")  # the upload socket is wss://

        viewer_ctx, viewer = await watch(browser, base)
        await wait_for_player_state(viewer, "playing", timeout_ms=20_000)
        await video_advances(viewer)  # the media socket is wss:// too
        await screenshot(viewer, "https-watch")

        await streamer.locator('[data-action="stop"]').click()
        await wait_golive(streamer, "idle")
        assert log.errors == []
    finally:
        if viewer_ctx is not None:
            await viewer_ctx.close()
        await streamer.context.close()
