"""The original desktop app goes live through the Socket.IO door: python-socketio's own
client sends ``start_stream`` and base64 JPEG frames (made by FFmpeg's mjpeg encoder); a
WebSocket viewer of the channel gets H.264 that real ffmpeg decodes, and a viewer of the
original kind gets the pictures themselves as ``frame`` events."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from strom.live.channel import ChannelState
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, make_settings, need_tool, run_process
from tests.helpers.socketio_app import App
from tests.media.pictures import make_jpeg, make_still

WAIT = 10.0  # seconds: a bound on waiting for an event, never a timing assertion
FPS = 10


class DesktopApp(App):
    """The original desktop client: the app client, keeping what a streamer receives."""

    def __init__(self, server: StromServer) -> None:
        super().__init__(server, events=("viewer_count", "error"), wait=WAIT)

    def seen(self, name: str) -> list[Any]:
        return [data for got, data in self.events if got == name]

    async def send_frames(self, count: int, size: tuple[int, int], start: int = 0) -> None:
        """``count`` JPEG frames at about ``FPS``, as data URLs."""
        for i in range(start, start + count):
            jpeg = base64.b64encode(make_jpeg(*size, index=i)).decode()
            await self.sio.emit("frame", "data:image/jpeg;base64," + jpeg)
            await asyncio.sleep(1 / FPS)


@pytest.fixture
async def apps() -> AsyncIterator[list[DesktopApp]]:
    opened: list[DesktopApp] = []
    yield opened
    for app in opened:
        await app.sio.disconnect()


async def open_app(server: StromServer, apps: list[DesktopApp]) -> DesktopApp:
    app = DesktopApp(server)
    apps.append(app)
    await app.sio.connect(app.url, wait_timeout=WAIT)
    return app


async def watch(url: str, out: Path) -> list[dict[str, Any]]:
    """A browser's player: each init segment starts a new file ``out.N.mp4`` (a new
    picture size is a new init), chunks follow it; returns the text messages."""
    texts: list[dict[str, Any]] = []
    files: list[bytearray] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        async with asyncio.timeout(60):
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    texts.append(json.loads(msg.data))
                    if texts[-1]["type"] == "init":
                        files.append(bytearray())
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    files[-1] += msg.data
    for i, data in enumerate(files):
        out.with_suffix(f".{i}.mp4").write_bytes(data)
    return texts


async def probe(path: Path) -> dict[str, Any]:
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
        "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json",
        str(path),
    )  # fmt: skip
    assert code == 0, out
    stream: dict[str, Any] = json.loads(out)["streams"][0]
    return stream


async def until(ready: Callable[[], bool]) -> None:
    """Wait (bounded) until ``ready()``: a state the server reaches on its own."""
    async with asyncio.timeout(WAIT):
        while True:
            if ready():
                return
            await asyncio.sleep(0.02)


async def frames_in(server: StromServer, count: int) -> None:
    """Wait until the channel has taken ``count`` frames (the encoder works behind)."""
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    await until(lambda: channel.frames_in >= count)


async def test_the_desktop_app_goes_live_with_jpeg_frames(
    server: StromServer, apps: list[DesktopApp], tmp_path: Path
) -> None:
    app = await open_app(server, apps)
    ack = await app.call("start_stream", STREAM_KEY)
    assert ack == {"ok": True, "roomKey": CHANNEL}
    assert (await app.next("viewer_count")) == {"roomKey": CHANNEL, "count": 0}

    viewer = asyncio.create_task(watch(f"{app.url}/live/{CHANNEL}/ws", tmp_path / "ws"))
    # The viewer is counted, and the app is told (on change, within a second or so).
    assert (await app.next("viewer_count", count=1))["roomKey"] == CHANNEL
    await app.send_frames(15, (160, 96))

    # Bad frames are refused with a reason; the stream goes on.
    await app.sio.emit("frame", "this is not base64!")
    assert "base64" in (await app.next("error", code="bad_request"))["reason"]
    await app.sio.emit("frame", base64.b64encode(b"GIF89a not a jpeg").decode())
    assert "not a picture" in (await app.next("error", code="bad_request"))["reason"]
    await app.sio.emit("frame", "data:image/gif;base64,R0lGODlhAQABAAAAACw=")
    assert "image/gif" in (await app.next("error", code="bad_request"))["reason"]
    # One format per stream: a PNG in this JPEG stream is refused, saying why.
    await app.sio.emit("frame", make_still("png", 160, 96))
    reason = (await app.next("error", code="bad_request"))["reason"]
    assert "pictures are JPEG" in reason
    assert "not PNG" in reason

    # A new picture size: a new track (the player gets a new init segment); binary frames
    # and the stream_frame name work too.
    for i in range(15):
        await app.sio.emit("stream_frame", make_jpeg(128, 64, index=i))
        await asyncio.sleep(1 / FPS)
    await frames_in(server, 30)
    assert (await app.call("stop_stream", None)) == {"ok": True}
    texts = await viewer

    assert [t["type"] for t in texts] == ["offline", "init", "init", "end"]
    assert texts[1]["mime"].startswith('video/mp4; codecs="avc1.')
    first, second = await probe(tmp_path / "ws.0.mp4"), await probe(tmp_path / "ws.1.mp4")
    assert first == {"codec_name": "h264", "width": 160, "height": 96, "nb_read_frames": "15"}
    assert second == {"codec_name": "h264", "width": 128, "height": 64, "nb_read_frames": "15"}
    assert server.registry.get(CHANNEL) is None  # ended and forgotten
    assert len(app.seen("error")) == 0


@pytest.mark.parametrize(("codec", "as_data_url"), [("png", True), ("libwebp", False)])
async def test_png_and_webp_frames_go_live_too(
    server: StromServer, apps: list[DesktopApp], tmp_path: Path, codec: str, as_data_url: bool
) -> None:
    """The original app's ``last_frame`` was a PNG: PNG pictures (as data URLs) and WebP
    (bare base64) are taken like JPEG, and a viewer decodes every frame as H.264."""
    app = await open_app(server, apps)
    assert (await app.call("start_stream", STREAM_KEY))["ok"] is True
    viewer = asyncio.create_task(watch(f"{app.url}/live/{CHANNEL}/ws", tmp_path / "ws"))
    await app.next("viewer_count", count=1)
    media_type = "image/png" if codec == "png" else "image/webp"
    for i in range(12):
        text = base64.b64encode(make_still(codec, 160, 96, index=i)).decode()
        await app.sio.emit("frame", f"data:{media_type};base64,{text}" if as_data_url else text)
        await asyncio.sleep(1 / FPS)
    await frames_in(server, 12)
    assert (await app.call("stop_stream", None)) == {"ok": True}
    texts = await viewer
    assert [t["type"] for t in texts] == ["offline", "init", "end"]
    found = await probe(tmp_path / "ws.0.mp4")
    assert found == {"codec_name": "h264", "width": 160, "height": 96, "nb_read_frames": "12"}
    assert app.seen("error") == []


async def test_a_picture_under_an_unknown_event_name_gets_an_error_naming_the_right_ones(
    server: StromServer, apps: list[DesktopApp]
) -> None:
    app = await open_app(server, apps)
    assert (await app.call("start_stream", STREAM_KEY))["ok"] is True
    await app.sio.emit("video_frame", {"image": make_still("png", 32, 32)})
    reason = (await app.next("error", code="bad_request"))["reason"]
    assert reason == "'video_frame' is not a frame event: send pictures as 'frame', 'stream_frame'"
    await app.sio.emit("hello", {"text": "not a picture"})  # other unknown events: ignored
    await app.call("stop_stream", None)
    assert app.seen("error") == []


async def test_a_wrong_key_puts_nothing_live(
    server: StromServer, apps: list[DesktopApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = await open_app(server, apps)
    ack = await app.call("start_stream", {"key": "not-the-key-123456"})
    assert ack["ok"] is False
    error = await app.next("error", code="not_allowed")
    assert error["reason"] == "wrong stream key"
    await app.sio.emit("frame", base64.b64encode(make_jpeg(64, 64)).decode())
    assert (await app.next("error", code="not_found"))["reason"] == "start_stream first"
    assert server.registry.live() == []
    assert "not-the-key-123456" not in caplog.text
    assert app.seen("viewer_count") == []


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[StromServer]:
    settings = make_settings(tmp_path, jpeg_stream_max_fps=5.0, jpeg_stream_max_bytes=20_000)
    srv = StromServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_limits_busy_channel_and_reconnect(
    small_server: StromServer, apps: list[DesktopApp], caplog: pytest.LogCaptureFixture
) -> None:
    server = small_server
    app = await open_app(server, apps)
    assert (await app.call("start_stream", {"key": STREAM_KEY}))["ok"]
    await app.next("viewer_count", count=0)

    # Frames faster than 5 fps are dropped (counted), the others go live.
    for i in range(12):
        await app.sio.emit("frame", base64.b64encode(make_jpeg(64, 48, index=i)).decode())
    await frames_in(server, 1)
    assert server.socketio is not None
    streams = server.socketio.streams
    assert streams is not None
    await until(lambda: streams.metrics()["dropped"] + streams.metrics()["frames"] == 12)
    metrics = streams.metrics()
    assert metrics["dropped"] > 0
    assert metrics["frames"] < 12
    # Too large a frame, and too large a picture: refused with a reason. (Each after a
    # pause, to be under the rate limit again.)
    await asyncio.sleep(0.5)
    await app.sio.emit("frame", b"\xff\xd8" + bytes(20_000))
    error = await app.next("error", code="bad_request")
    assert "exceeds the limit of 20000 bytes" in error["reason"]
    huge = bytearray(make_jpeg(64, 48))
    sof = huge.index(b"\xff\xc0")
    huge[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"  # 65535 x 65535 in a tiny file
    await asyncio.sleep(0.5)
    await app.sio.emit("frame", bytes(huge))
    error = await app.next("error", code="bad_request")
    assert "65535x65535 exceeds the limit" in error["reason"]

    # The channel is busy for anyone else.
    other = await open_app(server, apps)
    refused = await other.call("start_stream", STREAM_KEY)
    assert refused["ok"] is False
    assert "already live" in (await other.next("error", code="not_allowed"))["reason"]

    # A disconnect without stop_stream: the broadcast waits for the app to come back.
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    await until(lambda: channel.live)
    await app.sio.disconnect()
    await until(lambda: channel.state is ChannelState.RECONNECTING)
    assert (await other.call("start_stream", STREAM_KEY))["ok"]
    before = channel.frames_in
    await other.send_frames(3, (64, 48))
    await until(lambda: channel.frames_in > before and channel.live)
    assert server.registry.get(CHANNEL) is channel  # the same broadcast, resumed

    # An administrator stops the broadcast: the app is told why, the channel goes offline.
    assert channel.publisher is not None
    channel.publisher.disconnect("stopped by a site administrator")
    error = await other.next("error", code="not_allowed")
    assert error["reason"] == "stopped by a site administrator"
    assert channel.state is ChannelState.OFFLINE
    await until(lambda: not other.sio.connected)
    assert STREAM_KEY not in caplog.text


async def test_an_edge_node_refuses_the_desktop_app(tmp_path: Path, apps: list[DesktopApp]) -> None:
    server = StromServer(make_settings(tmp_path, role="edge"))
    await server.start()
    try:
        app = await open_app(server, apps)
        ack = await app.call("start_stream", {"key": STREAM_KEY})
        assert ack["ok"] is False
        error = await app.next("error", code="not_allowed")
        assert "this node only serves viewers (role edge)" in error["reason"]
        assert server.registry.get(CHANNEL) is None
    finally:
        for app in apps:
            await app.sio.disconnect()
        await server.stop()


@pytest.mark.parametrize("codec", ["mjpeg", "png"])
async def test_the_original_viewers_get_the_pictures_as_jpeg_frame_events(
    server: StromServer, apps: list[DesktopApp], codec: str
) -> None:
    """An HTML5 viewer of the original app asks for the pictures (``watch_frames``) and
    gets ``frame`` events: JPEG pictures in the form the streamer sent (data URLs here),
    thinned to ``--jpeg-relay-fps`` (10); a PNG stream's pictures are made JPEG first.
    A socket that did not ask gets none."""
    app = await open_app(server, apps)
    watcher = await open_app(server, apps)
    bystander = await open_app(server, apps)
    pictures: list[Any] = []
    arrived = asyncio.Event()

    def got(data: Any) -> None:
        pictures.append(data)
        arrived.set()

    watcher.sio.on("frame", got)
    bystander.sio.on("frame", functools.partial(bystander._got, "frame"))
    assert (await watcher.call("watch_frames", CHANNEL)) == {
        "ok": True, "roomKey": CHANNEL, "fps": 10.0,
    }  # fmt: skip
    assert (await app.call("start_stream", STREAM_KEY))["ok"] is True
    media_type = "image/jpeg" if codec == "mjpeg" else "image/png"
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(30):  # 30 pictures at about 30 fps: a second, or more on a busy box
        picture = make_jpeg(160, 96, index=i) if codec == "mjpeg" else make_still("png", 160, 96, i)
        text = base64.b64encode(picture).decode()
        await app.sio.emit("frame", f"data:{media_type};base64,{text}")
        await asyncio.sleep(1 / 30)
    sending = loop.time() - started
    async with asyncio.timeout(WAIT):
        while len(pictures) < 5:
            arrived.clear()
            await arrived.wait()
    await asyncio.sleep(0.3)
    assert (await app.call("stop_stream", None)) == {"ok": True}
    # Ten a second at most (the first at once), not one per picture sent.
    assert 5 <= len(pictures) <= int(sending * 10) + 2
    assert len(pictures) < 30
    for data in pictures:
        assert data.startswith("data:image/jpeg;base64,")
        jpeg = base64.b64decode(data.partition(",")[2])
        with av.open(io.BytesIO(jpeg)) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (160, 96)
    assert bystander.seen("frame") == []
