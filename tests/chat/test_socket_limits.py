"""Chat sockets per client address, against the real server on loopback: past
``chat_max_sockets_per_address`` one more socket from that address is closed with 1013 and
a reason the chat panel shows, while a guest from another address chats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, make_settings
from tests.helpers.chat import ChatClient


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path, chat_max_sockets_per_address=2))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def join(http: aiohttp.ClientSession, url: str) -> ChatClient:
    client = ChatClient(await http.ws_connect(url))
    client.welcome = await client.next("welcome")
    return client


async def test_chat_sockets_per_address_are_capped(server: StromServer) -> None:
    url = f"http://127.0.0.1:{server.http_port}/chat/{CHANNEL}/ws"
    async with aiohttp.ClientSession() as http:
        members = [await join(http, url) for _ in range(2)]
        extra = ChatClient(await http.ws_connect(url))
        closed = await extra.closing()
        assert (closed.code, closed.reason) == (
            1013,
            "too many connections from 127.0.0.1 (at most 2)",
        )
        # A guest from another address joins and is heard by the others.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            guest = await join(other, url)
            await guest.say("hello from next door")
            message = await members[0].next("message", text="hello from next door")
            assert message["guest"]
            await guest.close()
        # One leaves: the next socket from 127.0.0.1 is let in.
        await members.pop().close()
        members.append(await join(http, url))
        for member in members:
            await member.close()
