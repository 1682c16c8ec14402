"""HTTP and WebSocket push against the real server, with hand-made clients: a body that
drops mid-way waits for its publisher, silence and floods are cut off, and the WebSocket
protocol refuses what it should with the close code it promises."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.live.channel import Channel, ChannelState, Subscriber
from strom.live.chunk import Chunk
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, make_media, make_settings
from tests.helpers.watching import until


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1 s of 160x90 H.264 + AAC, ~25 KB."""
    path = tmp_path_factory.mktemp("http") / "small.flv"
    make_media(path, seconds=1.0, size="160x90", gop=15, bitrate="100k")
    return path.read_bytes()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(
        make_settings(
            tmp_path,
            ingest_sniff_timeout=0.5,
            ingest_idle_timeout=1.0,
            ingest_max_bitrate=100_000,  # 5 s of it at once: 62.5 KB
            ingest_ws_max_message=16_384,
        )
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


class Follower(Subscriber):
    def on_live(self, channel: Channel) -> None:
        pass

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_end(self) -> None:
        pass


async def raw_put(
    port: int, chunks: list[bytes]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A chunked PUT sent by hand, left open (the caller ends or drops it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"PUT /ingest/{STREAM_KEY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.write(head.encode())
    for chunk in chunks:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    return reader, writer


async def test_dropped_body_waits_and_a_new_put_resumes(server: StromServer, flv: bytes) -> None:
    channel = server.registry.open(CHANNEL)
    channel.subscribe(Follower())
    _, writer = await raw_put(server.http_port, [flv[: len(flv) // 2]])
    await until(lambda: channel.live)
    broadcast = channel.broadcast_id
    writer.transport.abort()  # the encoder's machine drops off the network
    await until(lambda: channel.state is ChannelState.RECONNECTING)
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http_port}/ingest/{STREAM_KEY}"
        async with http.put(url, data=flv) as resp:
            assert resp.status == 200
            assert (await resp.json())["channel"] == CHANNEL
        assert channel.state is ChannelState.OFFLINE  # a complete body ends it
        assert channel.broadcast_id == broadcast  # ...after resuming the same broadcast
        async with http.get(f"http://127.0.0.1:{server.http_port}/api/v1/stats") as resp:
            metrics = (await resp.json())["push_ingest"]
    assert metrics["lost"] == 1
    assert metrics["completed"] == 1
    assert metrics["started_by_transport"] == {"http": 2}


async def test_silence_and_floods_are_cut_off(server: StromServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.http_port}/ingest/{STREAM_KEY}"
    big = tmp_path / "big.flv"
    make_media(big, seconds=1.0, size="320x180", bitrate="2000k")
    assert big.stat().st_size > 100_000  # at once: past 62.5 KB of burst at 100 kbit/s

    reader, writer = await raw_put(server.http_port, [])  # headers, then nothing
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"sent nothing for" in answer
    async with aiohttp.ClientSession() as http:
        async with http.put(url, data=b"") as resp:
            assert resp.status == 415
            assert (await resp.json())["error"] == "empty stream"
        async with http.put(url, data=big.read_bytes()) as resp:
            assert resp.status == 429
            assert "kbit/s" in (await resp.json())["error"]
    channel = server.registry.get(CHANNEL)
    assert channel is None or channel.state is ChannelState.OFFLINE


async def ws_session(server: StromServer) -> tuple[aiohttp.ClientSession, str]:
    return aiohttp.ClientSession(), f"http://127.0.0.1:{server.http_port}/ingest/ws"


async def refusal(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, int | None]:
    reasons = []
    async with asyncio.timeout(10):
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)
                assert message["type"] in ("ready", "status", "error")
                if message["type"] == "error":
                    reasons.append(message["reason"])
    return (reasons[0] if reasons else ""), ws.close_code


async def test_websocket_refusals(server: StromServer, flv: bytes) -> None:
    http, url = await ws_session(server)
    start = {"type": "start", "mime": "video/x-flv", "key": STREAM_KEY}
    async with http:
        async with http.ws_connect(url) as ws:  # says nothing
            assert await refusal(ws) == ("no start message in time", 1008)
        async with http.ws_connect(url) as ws:
            await ws.send_bytes(flv[:1000])  # bytes before the start message
            reason, code = await refusal(ws)
            assert code == 1008
            assert "start" in reason
        async with http.ws_connect(url) as ws:
            await ws.send_json({**start, "key": "not-a-real-key-999"})
            assert await refusal(ws) == ("unknown stream key", 1008)
        async with http.ws_connect(url) as ws:  # JSON nested deeper than json.loads recurses
            await ws.send_str("[" * 5000)
            reason, code = await refusal(ws)
            assert (code, "start" in reason) == (1008, True)
        async with http.ws_connect(url) as ws:
            await ws.send_json(start)
            await ws.send_bytes(b"<html>" + bytes(5000))
            reason, code = await refusal(ws)
            assert code == 1003
            assert "container" in reason
        async with http.ws_connect(url) as ws:
            await ws.send_json(start)
            await ws.send_bytes(flv[:20_000])  # one message past ingest_ws_max_message
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
            assert ws.close_code == 1009
        async with http.ws_connect(url) as ws:  # goes quiet after it started
            await ws.send_json(start)
            await ws.send_bytes(flv[:10_000])
            reason, code = await refusal(ws)
            assert (reason, code) == ("nothing received for 1 s", 1008)
    assert server.push is not None
    metrics = server.push.metrics()
    assert metrics["active"] == 0
    assert (metrics["refused"], metrics["failed"], metrics["lost"]) == (4, 2, 1)
