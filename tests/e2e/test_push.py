"""Push ingest without RTMP, end to end: real ffmpeg and curl push over HTTP and raw TCP,
a scripted uploader speaks ``/ingest/ws`` like the browser's go-live page; a WebSocket
viewer's output is decoded by real ffmpeg."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from strom.live.channel import ChannelState
from strom.media.containers import ContainerKind, open_demuxer
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, make_media, make_settings, need_tool, run_process
from tests.helpers.watching import Watcher, collect_ws, decode, wait_live
from tests.helpers.web import Browser as FormBrowser

pytestmark = pytest.mark.e2e

BOB_KEY = "bob-secret-key-5678"
SECONDS = 2
FPS = 30
FRAMES = SECONDS * FPS


@dataclass(frozen=True)
class Source:
    path: Path
    video: str  # the codec the viewer's mime type names: avc1, vp09
    audio: str  # mp4a, opus


def need_demuxer(kind: ContainerKind) -> None:
    try:
        open_demuxer(kind)
    except NotImplementedError:
        pytest.skip(f"no {kind.value} demuxer yet")


def encode(path: Path, *codec_args: str) -> Path:
    """2 s of 320x180 at 30 fps, a keyframe a second, with a tone."""
    ffmpeg = need_tool("ffmpeg")
    import subprocess  # noqa: PLC0415

    subprocess.run(
        [
            ffmpeg, "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(SECONDS), "-g", str(FPS), *codec_args, str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """H.264 High with B-frames + AAC (as OBS or ffmpeg would send)."""
    path = tmp_path_factory.mktemp("push") / "h264.flv"
    make_media(path, seconds=SECONDS, size="320x180", fps=FPS, gop=FPS, bitrate="300k")
    return Source(path, "avc1", "mp4a")


@pytest.fixture(scope="module")
def vp9(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """VP9 + Opus WebM written as a live stream (unknown sizes), like a MediaRecorder."""
    path = tmp_path_factory.mktemp("push") / "vp9.webm"
    encode(path, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v",
           "300k", "-c:a", "libopus", "-b:a", "48k", "-live", "1", "-f", "webm")  # fmt: skip
    return Source(path, "vp09", "opus")


@pytest.fixture(scope="module")
def vp8(tmp_path_factory: pytest.TempPathFactory) -> Source:
    path = tmp_path_factory.mktemp("push") / "vp8.webm"
    encode(path, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
           "-b:v", "300k", "-c:a", "libopus", "-b:a", "48k", "-f", "webm")  # fmt: skip
    return Source(path, "avc1", "opus")  # VP8 arrives as H.264 (transcoded)


#: ffmpeg output options per container pushed
FORMATS = {
    ContainerKind.WEBM: ["-f", "webm"],
    ContainerKind.MP4: ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
    ContainerKind.FLV: ["-f", "flv"],
    ContainerKind.MPEGTS: ["-f", "mpegts"],
}


def push_args(source: Source, out: list[str], url: str) -> list[str]:
    return [need_tool("ffmpeg"), "-v", "error", "-re", "-i", str(source.path), "-c", "copy",
            *out, url]  # fmt: skip


def ingest_url(server: StromServer, key: str = STREAM_KEY) -> str:
    return f"http://127.0.0.1:{server.http_port}/ingest/{key}"


def viewer_url(server: StromServer, channel: str = CHANNEL) -> str:
    return f"http://127.0.0.1:{server.http_port}/live/{channel}/ws"


async def watch_push(
    server: StromServer, tmp_path: Path, push: list[str], channel: str = CHANNEL
) -> tuple[list[dict[str, str]], int]:
    """A viewer waits on ``channel``; ``push`` runs; the viewer's recording is decoded."""
    out = tmp_path / f"{channel}.mp4"
    viewer = asyncio.create_task(collect_ws(viewer_url(server, channel), out))
    await asyncio.sleep(0.3)
    code, log = await run_process(*push)
    assert code == 0, log
    texts = await viewer
    frames, errors = await decode(str(out))
    assert errors == ""
    return texts, frames


def assert_whole_broadcast(texts: list[dict[str, str]], source: Source) -> None:
    assert texts[0] == {"type": "offline"}
    assert texts[1]["type"] == "init"
    assert f'codecs="{source.video}' in texts[1]["mime"]
    assert source.audio in texts[1]["mime"]
    assert texts[-2:] == [{"type": "end"}, {"type": "closed", "code": "1000"}]


# -- HTTP PUT ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "out", "fixture"),
    [
        (ContainerKind.WEBM, FORMATS[ContainerKind.WEBM], "vp9"),
        (ContainerKind.WEBM, ["-f", "matroska"], "h264"),
        (ContainerKind.MP4, FORMATS[ContainerKind.MP4], "h264"),
        (ContainerKind.FLV, FORMATS[ContainerKind.FLV], "h264"),
        (ContainerKind.MPEGTS, FORMATS[ContainerKind.MPEGTS], "h264"),
    ],
    ids=["webm-vp9-opus", "mkv-h264-aac", "fmp4-h264-aac", "flv", "mpegts"],
)
async def test_ffmpeg_http_put_reaches_viewers(
    server: StromServer,
    tmp_path: Path,
    kind: ContainerKind,
    out: list[str],
    fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    need_demuxer(kind)
    source: Source = request.getfixturevalue(fixture)
    push = push_args(source, [*out, "-method", "PUT"], ingest_url(server))
    texts, frames = await watch_push(server, tmp_path, push)
    assert_whole_broadcast(texts, source)
    # Joined before the push began: every frame, from the first keyframe, decodes.
    assert frames == FRAMES
    assert server.push is not None
    metrics = server.push.metrics()
    assert metrics["completed"] == 1
    assert metrics["started_by_transport"] == {"http": 1}
    assert metrics["bytes_in"] > 10_000


async def test_vp8_is_transcoded_to_h264(server: StromServer, tmp_path: Path, vp8: Source) -> None:
    need_demuxer(ContainerKind.WEBM)
    push = push_args(vp8, ["-f", "webm", "-method", "POST"], ingest_url(server))
    texts, frames = await watch_push(server, tmp_path, push)
    assert_whole_broadcast(texts, vp8)
    # The transcoder sheds frames by design when the CPU cannot keep up (two shared cores
    # in CI); at 320x180 it normally delivers every one.
    assert FRAMES - 6 <= frames <= FRAMES


async def test_curl_uploads_a_file(server: StromServer, tmp_path: Path, h264: Source) -> None:
    curl = need_tool("curl")
    out = tmp_path / "curl.mp4"
    viewer = asyncio.create_task(collect_ws(viewer_url(server), out))
    await asyncio.sleep(0.3)
    with h264.path.open("rb") as stdin:  # `... | curl -T - URL`: chunked, no -re pacing
        proc = await asyncio.create_subprocess_exec(
            curl, "-sS", "-T", "-", ingest_url(server), stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        body, _ = await proc.communicate()
    assert proc.returncode == 0
    answer = json.loads(body)
    assert answer["channel"] == CHANNEL
    assert answer["bytes"] == h264.path.stat().st_size
    texts = await viewer
    assert_whole_broadcast(texts, h264)
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == FRAMES


# -- raw TCP -------------------------------------------------------------------------------


@pytest.fixture
async def tcp_server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path, tcp_ingest={0: "bob"}))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_ffmpeg_raw_tcp_push(tcp_server: StromServer, tmp_path: Path, h264: Source) -> None:
    need_demuxer(ContainerKind.MPEGTS)
    assert tcp_server.tcp_ingest is not None
    port = tcp_server.tcp_ingest.port("bob")
    push = push_args(h264, FORMATS[ContainerKind.MPEGTS], f"tcp://127.0.0.1:{port}")
    texts, frames = await watch_push(tcp_server, tmp_path, push, channel="bob")
    assert_whole_broadcast(texts, h264)
    assert frames == FRAMES


# -- refusals --------------------------------------------------------------------------------


async def test_refusals_are_clear_and_disturb_nobody(
    tcp_server: StromServer,
    tmp_path: Path,
    h264: Source,
    vp9: Source,
    caplog: pytest.LogCaptureFixture,
) -> None:
    need_demuxer(ContainerKind.WEBM)
    caplog.set_level(logging.INFO)
    server = tcp_server
    out = tmp_path / "alice.mp4"
    viewer = asyncio.create_task(collect_ws(viewer_url(server), out))
    await asyncio.sleep(0.3)
    publisher = asyncio.create_task(
        run_process(*push_args(h264, ["-f", "flv", "-method", "PUT"], ingest_url(server)))
    )
    await wait_live(server)
    async with aiohttp.ClientSession() as http:
        # Not a container we take: 415, whatever the name or the Content-Type claim.
        async with http.put(
            ingest_url(server, BOB_KEY), data=b"<html>hello</html>" * 500,
            headers={"Content-Type": "video/webm"},
        ) as resp:  # fmt: skip
            assert resp.status == 415
            assert "container" in (await resp.json())["error"]
        # A container we take carrying a codec we don't (MP2, ffmpeg's MPEG-TS default):
        # 415 naming it, not 400 "corrupt".
        mp2 = tmp_path / "mp2.ts"
        code, log = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", str(h264.path),
            "-c:v", "copy", "-c:a", "mp2", "-f", "mpegts", str(mp2),
        )  # fmt: skip
        assert code == 0, log
        async with http.put(ingest_url(server, BOB_KEY), data=mp2.read_bytes()) as resp:
            assert resp.status == 415
            assert "MP2" in (await resp.json())["error"]
        # An unknown key: 403, and the key never reaches the log.
        async with http.put(ingest_url(server, "not-a-real-key-999"), data=b"FLV") as resp:
            assert resp.status == 403
            assert await resp.json() == {"error": "unknown stream key"}
        # A second publisher for a live channel: 409, the first one carries on.
        flv = h264.path.read_bytes()
        async with http.post(ingest_url(server), data=flv) as resp:
            assert resp.status == 409
            assert "already live" in (await resp.json())["error"]
        # Another channel's WebM goes corrupt mid-stream: a third of a good stream, then
        # an element ID starting with 0x00 (no EBML variable-size integer does).
        good = vp9.path.read_bytes()
        corrupt = good[: len(good) // 3] + b"\x00" * 64 + good[len(good) // 3 :]

        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(corrupt), 4096):
                yield corrupt[i : i + 4096]
                await asyncio.sleep(0.01)

        async with http.put(ingest_url(server, BOB_KEY), data=body()) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]  # what the demuxer found wrong
    # Raw TCP garbage: closed, with a log line.
    assert server.tcp_ingest is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_ingest.port("bob"))
    writer.write(bytes(range(256)) * 32)
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()

    code, log = await publisher
    assert code == 0, log
    texts = await viewer
    assert_whole_broadcast(texts, h264)
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == FRAMES  # the real streamer's viewer saw every frame
    assert "not-a-real-key-999" not in caplog.text
    assert STREAM_KEY not in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("unknown stream key" in w for w in warnings)
    assert sum("refused" in w for w in warnings) >= 4  # 415, 403, 409, TCP garbage
    assert any("bob: stream error" in w for w in warnings)  # the corrupt WebM
    bob = server.registry.get("bob")
    assert bob is None or bob.state is ChannelState.OFFLINE
    assert server.push is not None
    assert server.push.metrics()["refused"] >= 4


# -- the browser's WebSocket upload ------------------------------------------------------------


class Uploader:
    """What the go-live page does: ``start``, container bytes in timed slices, ``stop``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))

    async def start(self, mime: str, key: str | None = None) -> dict[str, Any]:
        start: dict[str, Any] = {"type": "start", "mime": mime}
        if key is not None:
            start["key"] = key
        await self.ws.send_json(start)
        async with asyncio.timeout(10):
            while True:
                if self.messages:
                    return self.messages[0]
                await asyncio.sleep(0.02)

    async def send(self, data: bytes, slices: int, interval: float) -> None:
        step = -(-len(data) // slices)
        for i in range(0, len(data), step):
            await self.ws.send_bytes(data[i : i + step])
            await asyncio.sleep(interval)

    async def stop(self) -> int | None:
        await self.ws.send_json({"type": "stop"})
        return await self.closed()

    async def closed(self) -> int | None:
        async with asyncio.timeout(10):
            await self._reader
        return self.ws.close_code

    def statuses(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "status"]

    def drop(self) -> None:
        """The network goes away: no close frame, no stop."""
        sock = self.ws.get_extra_info("socket")
        sock.shutdown(socket.SHUT_RDWR)


def ws_url(server: StromServer) -> str:
    return f"http://127.0.0.1:{server.http_port}/ingest/ws"


async def test_scripted_upload_with_key(server: StromServer, tmp_path: Path, vp9: Source) -> None:
    need_demuxer(ContainerKind.WEBM)
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(viewer_url(server), out))
    await asyncio.sleep(0.3)
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(server)) as ws:
        up = Uploader(ws)
        assert await up.start("video/webm;codecs=vp9,opus", key=STREAM_KEY) == {
            "type": "ready",
            "channel": CHANNEL,
        }
        # MediaRecorder.start(200): a slice every ~200 ms, in real time.
        await up.send(vp9.path.read_bytes(), slices=SECONDS * 5, interval=0.2)
        assert await up.stop() == 1000
    statuses = up.statuses()
    assert statuses
    live = [s for s in statuses if s["state"] == "live"]
    assert live, statuses
    assert live[-1]["viewers"] == 1
    assert live[-1]["broadcast"] == 1
    # While it was sending: the upload rate and the frame rate the streamer sees.
    assert max(s["bitrate"] for s in live) > 100_000
    assert max(s["fps"] for s in live) > 15
    assert set(live[-1]) == {"type", "state", "viewers", "bitrate", "fps", "uptime", "broadcast"}
    texts = await viewer
    assert_whole_broadcast(texts, vp9)
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == FRAMES


async def test_session_upload_and_origin_checks(
    server: StromServer, tmp_path: Path, vp9: Source
) -> None:
    need_demuxer(ContainerKind.WEBM)
    base = f"http://127.0.0.1:{server.http_port}"
    browser = FormBrowser(server)
    try:
        await browser.register("Zed_Live")
        http = browser.http
        # Another site's page cannot stream with the visitor's session.
        async with http.ws_connect(ws_url(server), headers={"Origin": "http://evil.example"}) as ws:
            up = Uploader(ws)
            reply = await up.start("video/webm;codecs=vp9,opus")
            assert reply["type"] == "error"
            assert "cross-site" in reply["reason"]
            assert await up.closed() == 1008
        # Without a session or a key: refused.
        async with aiohttp.ClientSession() as anonymous, anonymous.ws_connect(
            ws_url(server), headers={"Origin": base}
        ) as ws:  # fmt: skip
            up = Uploader(ws)
            assert (await up.start("video/webm"))["type"] == "error"
            assert await up.closed() == 1008
        # Something no recorder makes: refused before any byte.
        async with http.ws_connect(ws_url(server), headers={"Origin": base}) as ws:
            up = Uploader(ws)
            assert (await up.start("video/ogg;codecs=theora"))["type"] == "error"
            assert await up.closed() == 1003
        # The logged-in streamer's own page: its own channel.
        out = tmp_path / "zed.mp4"
        viewer = asyncio.create_task(collect_ws(viewer_url(server, "Zed_Live"), out))
        await asyncio.sleep(0.3)
        async with http.ws_connect(ws_url(server), headers={"Origin": base}) as ws:
            up = Uploader(ws)
            assert await up.start("video/webm;codecs=vp9,opus") == {
                "type": "ready",
                "channel": "Zed_Live",
            }
            await up.send(vp9.path.read_bytes(), slices=4, interval=0.05)
            assert await up.stop() == 1000
        texts = await viewer
        assert_whole_broadcast(texts, vp9)
        frames, errors = await decode(str(out))
        assert errors == ""
        assert frames == FRAMES
    finally:
        await browser.close()


async def test_dropped_socket_resumes_the_same_broadcast(
    server: StromServer, tmp_path: Path, vp9: Source
) -> None:
    need_demuxer(ContainerKind.WEBM)
    watcher = Watcher(viewer_url(server), tmp_path / "o.mp4")
    watching = asyncio.create_task(watcher.run())
    async with asyncio.timeout(10):  # the viewer is in before the stream starts
        while not watcher.texts:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    data = vp9.path.read_bytes()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url(server)) as ws:
            first = Uploader(ws)
            await first.start("video/webm", key=STREAM_KEY)
            await first.send(data, slices=SECONDS * 5, interval=0.2)  # with a status or two
            broadcast = first.statuses()[-1]["broadcast"]
            first.drop()
        channel = server.registry.get(CHANNEL)
        assert channel is not None
        async with asyncio.timeout(10):
            while True:
                if channel.state is ChannelState.RECONNECTING:
                    break
                await asyncio.sleep(0.05)
        # The page reconnects on a new socket and restarts its recorder (new header).
        async with http.ws_connect(ws_url(server)) as ws:
            second = Uploader(ws)
            assert (await second.start("video/webm", key=STREAM_KEY))["type"] == "ready"
            await second.send(data, slices=SECONDS * 5, interval=0.2)
            assert second.statuses()[-1]["broadcast"] == broadcast
            assert await second.stop() == 1000
    async with asyncio.timeout(10):
        await watching
    assert watcher.texts[:3] == ["offline", "init", "reconnecting"]
    assert "resumed" in watcher.texts or watcher.texts.count("init") == 2
    assert watcher.texts[-1] == "end"
    assert channel.broadcast_id == broadcast
    frames, errors = await decode(str(watcher.out))
    assert errors == ""
    assert frames == 2 * FRAMES  # both streams, one timeline


async def test_browser_publisher_stopped_by_an_administrator_is_told_why(
    server: StromServer, vp9: Source
) -> None:
    need_demuxer(ContainerKind.WEBM)
    store = server.store
    assert store is not None
    await store.users.create("operator", "a long enough password", admin=True)
    admin = FormBrowser(server)
    try:
        await admin.get("/login")
        await admin.post("/login", {"username": "operator", "password": "a long enough password"})
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(server)) as ws:
            up = Uploader(ws)
            assert (await up.start("video/webm;codecs=vp9,opus", key=STREAM_KEY))["type"] == "ready"
            await up.send(vp9.path.read_bytes()[:40_000], slices=2, interval=0.1)
            # Longer than a close frame holds: the close reason is cut on a character boundary.
            reason = "Too loud, and a name with ünïcödé " * 3
            status, body = await admin.api(
                "POST", f"/api/v1/admin/streams/{CHANNEL}/stop", json={"reason": reason}
            )
            assert (status, body) == (200, {"stopped": True})
            assert await up.closed() == 1008
            said = [m for m in up.messages if m["type"] == "error"]
            words = f"Stopped by an administrator: {reason.strip()}"
            assert said == [{"type": "error", "reason": words}]
    finally:
        await admin.close()
    channel = server.registry.get(CHANNEL)
    assert channel is None or not channel.live
