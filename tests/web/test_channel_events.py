"""The site's channel events (``GET /events/ws``): a title saved by the streamer reaches
every open socket at once, as the channel API shows it; sockets are bounded per address,
and a client that cannot keep up is let go."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from strom.server import StromServer
from strom.web.events import EventClient
from tests.helpers import make_settings
from tests.helpers.web import Browser

WAIT = 5.0  # a bound on waiting for an event, never a timing assertion


async def test_title_changes_are_pushed_and_sockets_are_bounded(tmp_path: Path) -> None:
    server = StromServer(make_settings(tmp_path, events_max_per_address=2))
    await server.start()
    streamer = Browser(server)
    try:
        await streamer.register("ada_streams")
        url = f"http://127.0.0.1:{server.http_port}/events/ws"
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(url)
            second = await http.ws_connect(url)
            status, _ = await streamer.api(
                "PATCH", "/api/v1/me/channel", json={"title": "Speedrun <any%>"}
            )
            assert status == 200
            for ws in (first, second):
                async with asyncio.timeout(WAIT):
                    event = await ws.receive_json()
                assert event["type"] == "channel"
                channel = event["channel"]
                assert channel["username"] == "ada_streams"
                assert channel["title"] == "Speedrun <any%>"
                assert (channel["state"], channel["live"], channel["viewers"]) == (
                    "offline",
                    False,
                    0,
                )
                _, view = await streamer.api("GET", "/api/v1/channels/ada_streams")
                # the channel as the API says it (the profile is the user's, not pushed)
                assert channel == {k: v for k, v in view.items() if k != "profile"}
            # A third socket from the same address: refused with a reason.
            third = await http.ws_connect(url)
            async with asyncio.timeout(WAIT):
                msg = await third.receive()
            assert msg.type is WSMsgType.CLOSE
            assert msg.data == WSCloseCode.TRY_AGAIN_LATER
            assert "too many connections" in msg.extra
            await first.close()
            await second.close()
    finally:
        await streamer.close()
        await server.stop()


def test_a_client_that_falls_behind_is_let_go_not_queued_for() -> None:
    client = EventClient(queue_max=3)
    for i in range(10):
        client.send(f'{{"n":{i}}}')
    assert client.too_slow
    assert len(client.queue) == 0  # nothing more is kept for it
