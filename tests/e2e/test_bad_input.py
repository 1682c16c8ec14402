"""Hostile and broken peers: each is closed with an error it can read where the protocol
allows, logged, and nobody else notices."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import aiohttp
import pytest

from strom.media.rtmp import MESSAGE_TYPE_VIDEO, encode_message
from strom.server import StromServer
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, publish_args, run_process
from tests.helpers.watching import collect_ws, decode

pytestmark = pytest.mark.e2e


async def raw(port: int, data: bytes) -> bytes:
    """Send ``data`` and read whatever comes back until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    try:
        async with asyncio.timeout(10):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionError:
        pass
    writer.close()
    await writer.wait_closed()
    return received


async def test_broken_peers_do_not_disturb_a_live_channel(
    server: StromServer, tmp_path: Path, av_media: MediaFile, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(
        collect_ws(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws", out)
    )
    publisher = asyncio.create_task(run_process(*publish_args(av_media, server.rtmp_port)))
    await asyncio.sleep(1.0)
    port = server.rtmp_port

    # 1. An HTTP request on the RTMP port: not RTMP version 3, closed.
    await raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    # 2. An absurd Set Chunk Size after connecting.
    client = RtmpTestClient(port)
    await client.connect()
    client.writer.write(encode_message(2, 1, 0, 0, struct.pack(">I", 0x7FFFFFFF), 128))
    assert await client.closed_by_server()

    # 3. A message announcing more bytes than the configured maximum.
    client = RtmpTestClient(port)
    await client.connect()
    header = bytes([0x03]) + b"\x00\x00\x00" + (0xFFFFFF).to_bytes(3, "big")
    client.writer.write(header + bytes([20]) + b"\x00\x00\x00\x00")
    assert await client.closed_by_server()

    # 4. Unknown message type and malformed AMF in a command.
    client = RtmpTestClient(port)
    await client.connect()
    client.writer.write(encode_message(3, 0x55, 0, 0, b"junk", 128))
    assert await client.closed_by_server()
    client = RtmpTestClient(port)
    await client.connect()
    client.writer.write(encode_message(3, 20, 0, 0, b"\x02\xff\xffabc", 128))
    assert await client.closed_by_server()

    # 5. A publisher (another channel) that vanishes in the middle of a video message.
    client = RtmpTestClient(port)
    await client.connect()
    status = await client.publish("bob-secret-key-5678")
    assert status.code == "NetStream.Publish.Start"
    stream_id = client.session.stream_id
    assert stream_id is not None
    whole = encode_message(6, MESSAGE_TYPE_VIDEO, stream_id, 0, bytes(10_000), 4096)
    client.writer.write(whole[:5000])
    await client.writer.drain()
    await client.aclose()

    # 6. Garbage FLV: a video message that claims H.264 but is truncated.
    client = RtmpTestClient(port)
    await client.connect()
    await client.publish("bob-secret-key-5678")
    stream_id = client.session.stream_id
    assert stream_id is not None
    client.writer.write(encode_message(6, MESSAGE_TYPE_VIDEO, stream_id, 0, b"\x17", 4096))
    assert await client.closed_by_server()

    code, log = await publisher
    assert code == 0, log
    texts = await viewer
    assert texts[-2:] == [{"type": "end"}, {"type": "closed", "code": "1000"}]
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == av_media.frames  # the real streamer's viewer saw every frame
    assert server.registry.get("bob") is None or not server.registry.get("bob").live  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("protocol error" in w for w in warnings) >= 4
    assert not any(STREAM_KEY in r.getMessage() for r in caplog.records)


async def test_stalled_handshake_is_closed(server: StromServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.rtmp_port)
    writer.write(b"\x03" + bytes(100))  # C0 and a partial C1, then nothing
    async with asyncio.timeout(15):
        assert await reader.read() == b""  # the server hung up on us
    writer.close()
    await writer.wait_closed()


async def test_unknown_key_is_refused_with_the_reason(
    server: StromServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RtmpTestClient(server.rtmp_port)
    await client.connect()
    status = await client.publish("not-a-real-key-999")
    assert status.code == "NetStream.Publish.Rejected"
    assert status.level == "error"
    assert "not-a-real-key-999" not in caplog.text
    assert "unknown stream key" in caplog.text
    await client.aclose()


async def test_http_errors_are_json_for_machines_and_pages_for_people(
    server: StromServer,
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        for url, status in [
            ("/live/nobody/index.m3u8", 404),
            ("/live/alice/seg0.m4s", 404),
            ("/live/bad%20name/ws", 404),
            ("/live/alice/index.m3u8?_HLS_msn=abc", 404),
            ("/api/v1/channels/nobody", 404),
            ("/api/v1/streams?limit=0", 400),
            ("/api/v1/streams?sort=random", 400),
            ("/api/v1/me", 401),
        ]:
            async with http.get(base + url) as resp:
                assert resp.status == status, url
                assert "error" in await resp.json(), url
        for url in ("/nothing/here", "/no-such-user", "/live/bad%20name"):
            async with http.get(base + url) as resp:
                assert resp.status == 404, url
                assert resp.content_type == "text/html", url
