"""Media WebSocket viewers per client address, against the real server on loopback: past
``ws_max_viewers_per_address`` one more viewer from that address is closed with 1013 and
the reason, while a viewer from another address watches, and a freed place is reused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, make_settings

WAIT = 5.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path, ws_max_viewers_per_address=3))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def watch(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A viewer that was let in: the channel is not live, so it is told "offline"."""
    ws = await http.ws_connect(url)
    assert await ws.receive_json(timeout=WAIT) == {"type": "offline"}
    return ws


async def test_viewers_per_address_are_capped(server: StromServer) -> None:
    url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws"
    async with aiohttp.ClientSession() as http:
        viewers = [await watch(http, url) for _ in range(3)]
        extra = await http.ws_connect(url)
        msg = await extra.receive(timeout=WAIT)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (extra.close_code, msg.extra) == (
            1013,
            "too many connections from 127.0.0.1 (at most 3)",
        )
        # Another address (all of 127/8 reaches loopback on Linux) watches meanwhile.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            ws = await watch(other, url)
            assert server.ws_delivery is not None
            assert server.ws_delivery.viewers == 4
            await ws.close()
        # One leaves: the next one from 127.0.0.1 gets its place.
        await viewers.pop().close()
        viewers.append(await watch(http, url))
        for ws in viewers:
            await ws.close()
