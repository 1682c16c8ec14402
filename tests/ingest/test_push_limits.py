"""Push connections per client address, against the real server on loopback: past
``ingest_max_connections_per_address`` a push over HTTP is answered 429, over the
WebSocket closed with 1013 and the reason, over raw TCP closed at once, before the stream
key is even looked at, while a publisher from another address goes live."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, make_media, make_settings
from tests.helpers.watching import until

OTHER_KEY = "bob-secret-key-5678"
REFUSAL = "too many connections from 127.0.0.1 (at most 2)"


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("push-limits") / "small.flv"
    make_media(path, seconds=1.0, size="160x90", gop=15, bitrate="100k")
    return path.read_bytes()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(
        make_settings(
            tmp_path,
            ingest_max_connections_per_address=2,
            ingest_sniff_timeout=5.0,
            tcp_ingest={0: CHANNEL},
        )
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_pushes_per_address_are_capped(server: StromServer, flv: bytes) -> None:
    push, tcp_ingest = server.push, server.tcp_ingest
    assert push is not None
    assert tcp_ingest is not None
    port, tcp_port = server.http_port, tcp_ingest.port(CHANNEL)
    base = f"http://127.0.0.1:{port}"
    # Two pushes from 127.0.0.1 that have not sent a byte of media yet: an HTTP PUT whose
    # body has not begun, and a raw TCP connection.
    _, put = await asyncio.open_connection("127.0.0.1", port)
    put.write(
        f"PUT /ingest/{STREAM_KEY} HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    _, tcp = await asyncio.open_connection("127.0.0.1", tcp_port)
    await until(lambda: push.slots.count("127.0.0.1") == 2)
    try:
        async with aiohttp.ClientSession() as http:
            # HTTP: 429 with the reason, whatever the key.
            async with http.put(f"{base}/ingest/not-a-key", data=flv) as resp:
                assert resp.status == 429
                assert await resp.json() == {"error": REFUSAL}
            # WebSocket: the reason, then a close with 1013 (try again later).
            ws = await http.ws_connect(f"{base}/ingest/ws")
            assert await ws.receive_json(timeout=5) == {"type": "error", "reason": REFUSAL}
            msg = await ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert (ws.close_code, msg.extra) == (1013, REFUSAL)
        # Raw TCP: nothing is ever sent back; the connection is closed at once.
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

        # Another address pushes a whole stream meanwhile.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as other,
            other.put(f"{base}/ingest/{OTHER_KEY}", data=flv) as resp,
        ):
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert body["channel"] == "bob"
        assert body["frames"] > 0
        assert server.metrics()["push_ingest"]["refused"] >= 3
    finally:
        put.close()
        tcp.close()
    # Once they hang up, 127.0.0.1 may push again.
    await until(lambda: push.slots.count("127.0.0.1") == 0)
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{base}/ingest/{STREAM_KEY}", data=flv) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert json.loads(await resp.text())["channel"] == CHANNEL
