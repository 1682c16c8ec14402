"""``strom stream`` end to end: the real command in its own process, a real Strom server,
WebSocket viewers whose media real ffmpeg decodes; a real X server (Xvfb) for screen
capture; the server killed and restarted, and the network cut, under a live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import av
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, need_tool, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.streaming import chat_as_guest, streaming, xvfb
from tests.helpers.watching import collect_ws, decode, wait_live

pytestmark = pytest.mark.e2e

#: small and slow: these tests check behaviour, not throughput. 10 fps is a whole number
#: of milliseconds per frame: ffmpeg's checks see exactly regular timestamps.
SMALL = ("--size", "320x240", "--fps", "10", "--bitrate", "400")


async def probe(path: Path) -> dict[str, dict[str, object]]:
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-show_entries", "stream=codec_type,width,height",
        "-of", "json", str(path),
    )  # fmt: skip
    assert code == 0, out
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


async def test_test_source_goes_live_is_watched_and_ctrl_c_ends_it(
    server: StromServer, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", out, max_seconds=25))
    async with streaming(
        "--server", base, "--key", STREAM_KEY, "--source", "test", *SMALL
    ) as client:  # fmt: skip
        # The server tells the client which channel the key is for: no --channel needed.
        live = await client.wait_for("● LIVE")
        assert CHANNEL in live
        await wait_live(server)
        await client.wait_for("1 viewer")  # the WebSocket viewer above
        await chat_as_guest(base, "hello from a viewer")
        line = await client.wait_for("[chat] ")
        assert line.startswith("[chat] guest-")
        assert line.endswith(": hello from a viewer")
        await asyncio.sleep(1.0)
        code = await client.finish(signal.SIGINT)
        assert code == 0, client.output
        assert "stopped: the broadcast has ended" in client.output
        assert "Traceback" not in client.output
    texts = await viewer
    # Ctrl-C unpublished: the broadcast ended at once, no reconnect grace.
    kinds = [t["type"] for t in texts]
    assert "reconnecting" not in kinds
    assert kinds[-2:] == ["end", "closed"]
    assert texts[1]["type"] == "init"
    assert "mp4a.40.2" in texts[1]["mime"]
    assert server.registry.get(CHANNEL) is None or not server.registry.get(CHANNEL).live  # type: ignore[union-attr]
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames >= 20
    streams = await probe(out)
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert "audio" in streams  # the test tone


async def test_screen_capture_under_xvfb_goes_live(server: StromServer, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    out = tmp_path / "screen.mp4"
    async with xvfb() as display:
        viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", out, 25))
        async with streaming(
            "--server", base, "--key", STREAM_KEY, "--screen", "640x480+100+100",
            "--fps", "10", "--bitrate", "300", env={"DISPLAY": display},
        ) as client:  # fmt: skip
            await client.wait_for("● LIVE")
            assert f"screen {display}+100,100 (640x480)" in client.output
            assert "no sound" in client.output
            await asyncio.sleep(2.0)
            assert await client.finish() == 0, client.output
        texts = await viewer
    assert [t["type"] for t in texts][-2:] == ["end", "closed"]
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames >= 10
    streams = await probe(out)
    # The area asked for, at its own size: the capture really is of that part of the screen.
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 480)


async def watch(url: str, seconds: float) -> tuple[list[str], bytes]:
    """A viewer for ``seconds``: its text message types and its media bytes."""
    texts: list[str] = []
    media = bytearray()
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        texts.append(json.loads(msg.data)["type"])
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        media += msg.data
    return texts, bytes(media)


async def test_client_reconnects_after_the_server_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path / "data", "--record", "false")
    # Only the site's address: the client asks it where to publish (/api/v1/ingest).
    args = ("--server", node.base, "--key", STREAM_KEY, "--source", "test", *SMALL)
    async with running(node), streaming(*args) as client:
        await client.wait_for("● LIVE")
        assert f"publishing to rtmp://127.0.0.1:{node.rtmp_port}/live" in client.output
        node.kill()  # no goodbye: the connection just dies
        await node.stop()
        await client.wait_for("connection lost (")
        await client.wait_for("↻ RECONNECTING in")  # the status line, while it is down
        await node.start()  # the same ports and data dir
        await client.wait_for("reconnected: live again")
        texts, media = await watch(f"{node.base}/live/{CHANNEL}/ws", 2.0)
        # (The viewer may be told "offline" first: live starts at the first keyframe.)
        assert "init" in texts
        out = tmp_path / "after.mp4"
        out.write_bytes(media)
        frames, errors = await decode(str(out))
        assert errors == ""
        assert frames >= 10
        assert await client.finish() == 0, client.output


class CuttableProxy:
    """A TCP relay whose connections the test can cut, like a network dropping."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_network_loss_resumes_the_same_broadcast(server: StromServer, tmp_path: Path) -> None:
    proxy = CuttableProxy(server.rtmp_port)
    await proxy.start()
    base = f"http://127.0.0.1:{server.http_port}"
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", out, max_seconds=30))
    try:
        async with streaming(
            "--server", base, "--rtmp", f"rtmp://127.0.0.1:{proxy.port}/live",
            "--key", STREAM_KEY, "--source", "test", *SMALL,
        ) as client:  # fmt: skip
            await client.wait_for("● LIVE")
            await wait_live(server)
            channel = server.registry.get(CHANNEL)
            assert channel is not None
            broadcast = channel.broadcast_id
            await asyncio.sleep(1.5)
            proxy.cut()
            await client.wait_for("connection lost")
            await client.wait_for("reconnected: live again")
            await asyncio.sleep(1.5)
            assert await client.finish() == 0, client.output
        texts = await viewer
    finally:
        await proxy.stop()
    # The viewer saw a stall and the same broadcast go on, on one timeline.
    kinds = [t["type"] for t in texts]
    assert kinds[:3] == ["offline", "init", "reconnecting"]
    assert "resumed" in kinds
    assert kinds[-2:] == ["end", "closed"]
    assert channel.broadcast_id == broadcast
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames >= 25


async def test_preview_without_a_display_is_refused() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "strom", "stream", "--server", "http://127.0.0.1:9",
        "--key", "k", "--source", "test", "--preview",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    text = output.decode()
    assert "--preview needs a display, and there is none here" in text
    assert "Traceback" not in text


async def test_a_wrong_key_stops_with_a_clear_message(server: StromServer) -> None:
    async with streaming(
        "--server", f"http://127.0.0.1:{server.http_port}", "--key", "not-the-key",
        "--source", "test", *SMALL,
    ) as client:  # fmt: skip
        code = await client.finish(sig=None, timeout=45)  # it gives up by itself (~4 s idle)
    assert code == 1
    assert "the server refused the stream: unknown stream key" in client.output
    assert "not-the-key" not in client.output.replace("--key not-the-key", "")
    assert "Traceback" not in client.output


async def test_preview_window_shows_what_is_sent(server: StromServer) -> None:
    async with xvfb() as display:
        async with streaming(
            "--server", f"http://127.0.0.1:{server.http_port}", "--key", STREAM_KEY,
            "--source", "test", *SMALL, "--preview", env={"DISPLAY": display},
        ) as client:  # fmt: skip
            await client.wait_for("● LIVE")
            # The window (no window manager: at the top left) shows the test pattern's
            # colour bars; the rest of the empty X screen is black.
            window, rest = await asyncio.to_thread(screen_brightness, display)
            assert await client.finish() == 0, client.output
        assert "Traceback" not in client.output
    assert window > 60
    assert rest < 5


def screen_brightness(display: str) -> tuple[float, float]:
    """Mean brightness (0-255) of the top left 400x200 of the screen, and of the bottom
    right, once the first is no longer black (or after ten seconds)."""

    def mean(x: int, y: int) -> float:
        options = {"video_size": "400x200"}
        with av.open(f"{display}+{x},{y}", format="x11grab", options=options) as grab:
            frame = next(grab.decode(video=0)).reformat(40, 20, format="gray")
        data = bytes(frame.planes[0])
        row = frame.planes[0].line_size
        pixels = [data[r * row + c] for r in range(20) for c in range(40)]
        return sum(pixels) / len(pixels)

    for _ in range(50):
        window = mean(0, 0)
        if window > 60:
            break
        time.sleep(0.2)
    return window, mean(860, 500)


class SlowLink:
    """A TCP relay that carries at most ``rate`` bytes a second upstream, with small
    buffers: an uplink slower than the encoder."""

    def __init__(self, target_port: int, rate: int) -> None:
        self.target_port, self.rate = target_port, rate
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.server = await asyncio.start_server(self._serve, sock=sock)
        self.port = sock.getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def up() -> None:
            while data := await reader.read(4096):
                up_writer.write(data)
                await up_writer.drain()
                await asyncio.sleep(len(data) / self.rate)
            up_writer.close()

        async def down() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        pair = {asyncio.create_task(up()), asyncio.create_task(down())}
        self.tasks |= pair
        try:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.gather(*pair)
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_slow_uplink_drops_frames_instead_of_falling_behind(
    server: StromServer, tmp_path: Path
) -> None:
    link = SlowLink(server.rtmp_port, rate=100_000)  # 0.8 Mbit/s for a ~1.5 Mbit/s stream
    await link.start()
    base = f"http://127.0.0.1:{server.http_port}"
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", out, max_seconds=40))
    try:
        async with streaming(
            "--server", base, "--rtmp", f"rtmp://127.0.0.1:{link.port}/live",
            "--key", STREAM_KEY, "--source", "test", "--size", "640x360", "--fps", "10",
            "--quality", "1", "--no-chat",
        ) as client:  # fmt: skip
            await client.wait_for("● LIVE")
            # The encoder makes more than the link carries: whole GOPs are left out (and
            # counted) rather than piling up seconds of delay.
            line = await client.wait_for(r"dropped [1-9]", timeout=30, regex=True)
            assert "● LIVE" in line
            # ... and the viewer keeps getting pictures through it (a loaded machine
            # encodes slowly: waited for, within a bound)
            await _until_decoded(out, 10, timeout=30)
            assert await client.finish() == 0, client.output
    finally:
        viewer.cancel()  # (the end is still crossing the slow link: not waited for)
        with contextlib.suppress(asyncio.CancelledError):
            await viewer
        await link.stop()
    frames, errors = await decode(str(out))
    assert errors == ""  # what did arrive starts at keyframes: no broken pictures
    assert frames >= 10


async def _until_decoded(path: Path, frames: int, timeout: float) -> None:
    """Until ``frames`` pictures of the file a viewer is writing decode."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(AssertionError):  # not a whole fragment there yet
                if (await decode(str(path)))[0] >= frames:
                    return
            await asyncio.sleep(0.5)
