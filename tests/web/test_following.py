"""Follows as the pages show them: the Follow button's state on the channel page, the
Following page and ``GET /api/v1/me/following`` (live channels first), against the real
server with a real ffmpeg going live."""

from __future__ import annotations

import asyncio

import aiohttp

from strom.server import StromServer
from tests.helpers import MediaFile, publish_args, run_process
from tests.helpers.web import Browser


async def test_following_page_api_and_follow_button(
    server: StromServer, av_media: MediaFile
) -> None:
    fan, zed, amy = Browser(server), Browser(server), Browser(server)
    try:
        await amy.register("amy_streams")
        zed_key = await zed.register("zed_streams")
        await fan.register("the_fan")

        # Logged out: the page asks to log in first, and the API says 401.
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{fan.base}/following", allow_redirects=False) as resp:
                assert resp.status == 303
                assert resp.headers["Location"] == "/login?next=/following"
            async with anonymous.get(f"{fan.base}/api/v1/me/following") as resp:
                assert resp.status == 401
                assert "error" in await resp.json()

        # Nothing followed yet.
        status, body = await fan.api("GET", "/api/v1/me/following")
        assert (status, body) == (200, {"channels": []})
        status, html = await fan.get("/following")
        assert status == 200
        assert "You don't follow anyone yet" in html

        # The channel page knows whether this visitor follows it.
        _, html = await fan.get("/zed_streams")
        assert 'aria-pressed="false"' in html
        for name in ("zed_streams", "amy_streams"):
            status, _ = await fan.api("POST", f"/api/v1/channels/{name}/follow")
            assert status == 200
        _, html = await fan.get("/zed_streams")
        assert 'aria-pressed="true"' in html
        assert 'data-follow-api="/api/v1/channels/zed_streams/follow"' in html
        _, own = await zed.get("/zed_streams")  # the streamer: no follow button
        assert "data-follow-api" not in own

        # Offline: alphabetical, no last broadcast yet.
        status, body = await fan.api("GET", "/api/v1/me/following")
        assert body == {
            "channels": [
                {"username": "amy_streams", "live": False},
                {"username": "zed_streams", "live": False},
            ]
        }
        _, html = await fan.get("/following")
        assert html.split("<template")[0].count("Not live yet") == 2  # not the blank row
        # What the Following page reads again as channels change: their titles and last
        # broadcasts too.
        await amy.api("PATCH", "/api/v1/me/channel", json={"title": "Knitting <3"})
        status, body = await fan.api("GET", "/api/v1/me/following?last_live=1")
        assert (status, body["channels"][0]) == (  # type: ignore[index]
            200,
            {
                "username": "amy_streams",
                "live": False,
                "title": "Knitting <3",
                "last_live_at": None,
            },
        )

        # zed goes live: first in the list, with what the directory shows.
        publisher = asyncio.create_task(
            run_process(*publish_args(av_media, server.rtmp_port, zed_key))
        )
        try:
            for _ in range(100):
                channel = server.registry.get("zed_streams")
                if channel is not None and channel.live and "zed_streams" in server.directory.infos:
                    break
                await asyncio.sleep(0.05)
            status, body = await fan.api("GET", "/api/v1/me/following")
            assert status == 200
            channels = body["channels"]  # type: ignore[index]
            assert [(c["username"], c["live"]) for c in channels] == [
                ("zed_streams", True),
                ("amy_streams", False),
            ]
            assert channels[0]["title"] == ""  # none set: not the username again
            assert channels[0]["state"] == "live"
            assert channels[0]["viewers"] == 0
            _, html = await fan.get("/following")
            assert html.index("Live now") < html.index("zed_streams") < html.index("Offline")
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
    finally:
        for person in (fan, zed, amy):
            await person.close()
