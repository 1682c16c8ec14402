"""A viewer that stops reading is skipped ahead, then disconnected with a reason, while
the other viewers of the same channel get every frame."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from pathlib import Path

import aiohttp
import pytest

from strom.media.flv import FlvDemuxer, FlvReader
from strom.media.model import Track
from strom.media.rtmp import MESSAGE_TYPE_VIDEO
from strom.server import StromServer
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers import STREAM_KEY, MediaFile, make_settings

pytestmark = pytest.mark.e2e

FRAME_BYTES = 100_000
FRAMES = 150  # 5 s at 30 fps: ~15 MB, ~24 Mbit/s
GOP = 15


def video_track(media: MediaFile) -> Track:
    demuxer = FlvDemuxer()
    for tag in FlvReader().feed(media.path.read_bytes()):
        if tag.tag_type == 9:
            for item in demuxer.video(tag.timestamp, tag.payload):
                if isinstance(item, Track):
                    return item
    raise AssertionError("no video sequence header")


class StalledViewer(asyncio.Protocol):
    """A raw WebSocket client that stops reading right after the handshake."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def close_frame(self) -> tuple[int, str] | None:
        """Walk the frames received; return the close frame's code and reason."""
        view, pos = bytes(self.data), self.data.index(b"\r\n\r\n") + 4
        while pos + 2 <= len(view):
            opcode, n = view[pos] & 0x0F, view[pos + 1] & 0x7F
            pos += 2
            if n == 126:
                (n,) = struct.unpack_from("!H", view, pos)
                pos += 2
            elif n == 127:
                (n,) = struct.unpack_from("!Q", view, pos)
                pos += 8
            if opcode == 0x8:
                code = struct.unpack_from("!H", view, pos)[0]
                return code, view[pos + 2 : pos + n].decode()
            pos += n
        return None


async def test_stalled_viewer_is_dropped_others_unaffected(
    tmp_path: Path, av_media: MediaFile
) -> None:
    settings = make_settings(
        tmp_path,
        viewer_skip_bytes=256 << 10,
        viewer_drop_bytes=1 << 20,
        viewer_drop_seconds=2.0,
    )
    server = StromServer(settings)
    await server.start()
    try:
        loop = asyncio.get_running_loop()
        stalled = StalledViewer()
        transport, _ = await loop.create_connection(lambda: stalled, "127.0.0.1", server.http_port)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /live/alice/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await asyncio.sleep(0.3)
        transport.pause_reading()  # from now on this viewer reads nothing

        healthy_chunks = 0
        healthy_done = asyncio.Event()

        async def healthy() -> None:
            nonlocal healthy_chunks
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(
                    f"http://127.0.0.1:{server.http_port}/live/alice/ws", max_msg_size=0
                ) as ws,
            ):
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        healthy_chunks += 1
            healthy_done.set()

        watcher = asyncio.create_task(healthy())
        await asyncio.sleep(0.3)

        publisher = RtmpTestClient(server.rtmp_port)
        await publisher.connect()
        await publisher.publish(STREAM_KEY)
        track = video_track(av_media)
        send = publisher.session.send_media
        send(MESSAGE_TYPE_VIDEO, 0, b"\x17\x00\x00\x00\x00" + track.config)
        for i in range(FRAMES):
            keyframe = i % GOP == 0
            nal = (b"\x65" if keyframe else b"\x41") + os.urandom(FRAME_BYTES)
            head = b"\x17\x01\x00\x00\x00" if keyframe else b"\x27\x01\x00\x00\x00"
            send(MESSAGE_TYPE_VIDEO, i * 33, head + struct.pack(">I", len(nal)) + nal)
            await publisher.flush()
            await asyncio.sleep(1 / 30)
        publisher.session.unpublish()
        await publisher.flush()

        async with asyncio.timeout(20):
            await healthy_done.wait()
        await watcher
        # The healthy viewer got the init segment and every frame, in spite of the other.
        assert healthy_chunks == 1 + FRAMES

        # The stalled viewer was cut off with a close frame saying why.
        transport.resume_reading()
        async with asyncio.timeout(10):
            await stalled.closed
        close = stalled.close_frame()
        assert close is not None
        assert close[0] == 1008
        assert "too slow" in close[1]
        await publisher.aclose()
    finally:
        await server.stop()
