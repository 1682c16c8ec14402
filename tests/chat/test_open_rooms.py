"""Open rooms (``--open-rooms true``): the live-broadcast app's whole flow against a real
server, as the app does it — one made-up room key for the Socket.IO room, the RTMP push
and the RTMP play (real ffmpeg both ways); one upvote event per like; comments echoed
with the app's own fields; the room closed by its broadcaster's ``close_room`` (acked)
and by its disconnect. With open rooms off, each step is refused as before; with them
on, accounts' and static channels' names stay theirs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile, make_media, need_tool, publish_args, run_process
from tests.helpers.chat import PASSWORD
from tests.helpers.servers import serving
from tests.helpers.socketio_app import App
from tests.helpers.watching import wait_live

ROOM = "party-7f3a"


@pytest.fixture
async def open_server(tmp_path: Path) -> AsyncIterator[StromServer]:
    async with serving(tmp_path, open_rooms=True) as server:
        yield server


@pytest.fixture
async def apps() -> AsyncIterator[list[App]]:
    opened: list[App] = []
    yield opened
    for app in opened:
        await app.sio.disconnect()


async def connect(server: StromServer, apps: list[App]) -> App:
    app = App(server)
    apps.append(app)
    return await app.connect()


@pytest.fixture(scope="module")
def room_media(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    return make_media(tmp_path_factory.mktemp("rooms") / "room.flv", seconds=6.0, gop=30)


async def test_the_live_broadcast_apps_flow(
    open_server: StromServer, apps: list[App], room_media: MediaFile, tmp_path: Path
) -> None:
    server = open_server
    broadcaster = await connect(server, apps)
    assert await broadcaster.call("create_room", ROOM) == {"ok": True, "roomKey": ROOM}
    # The broadcaster pushes to live/{roomKey}: the room goes live as a channel.
    publisher = asyncio.create_task(
        run_process(*publish_args(room_media, server.rtmp_port, key=ROOM))
    )
    try:
        await wait_live(server, ROOM)
        viewer = await connect(server, apps)
        joined = await viewer.call("join_room", ROOM)
        assert joined["ok"] is True
        assert joined["roomKey"] == ROOM
        # ...plays at rtmp://HOST/live/{roomKey}, as the app's viewers play it.
        played = tmp_path / "played.flv"
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i",
            f"rtmp://127.0.0.1:{server.rtmp_port}/live/{ROOM}",
            "-t", "2", "-c", "copy", "-y", str(played), timeout=30,
        )  # fmt: skip
        assert code == 0, out
        code, out = await run_process(
            need_tool("ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v",
            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(played),
        )  # fmt: skip
        assert code == 0, out
        assert int(out.strip()) >= 30
        # ...and is listed in the directory as a room.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.http_port}/api/v1/streams") as resp:
                cards = (await resp.json())["streams"]
            assert [(c["username"], c["room"]) for c in cards] == [(ROOM, True)]
            # Its page plays it like any channel's.
            async with http.get(f"http://127.0.0.1:{server.http_port}/live/{ROOM}") as page:
                assert page.status == 200
                html = await page.text()
            assert f'data-channel="{ROOM}"' in html
            # The directory page marks it as a room.
            async with http.get(f"http://127.0.0.1:{server.http_port}/") as page:
                directory = await page.text()
            card = directory[directory.index(f'data-username="{ROOM}"') :]
            badge = re.search(r'<span class="stream-room"[^>]*>', card)
            assert badge is not None
            assert "hidden" not in badge[0]

        # Three upvotes: three upvote events, one heart each.
        for _ in range(3):
            await viewer.sio.emit("upvote", ROOM)
        hearts = [await broadcaster.next("upvote") for _ in range(3)]
        assert [(h["roomKey"], h["count"]) for h in hearts] == [(ROOM, 1)] * 3
        assert [h["total"] for h in hearts] == [1, 2, 3]

        # A comment comes back as the object the app sent, its own fields kept.
        sent = {"roomKey": ROOM, "text": "so <b>cool</b>", "userName": "Ann", "avatar": 3}
        await viewer.sio.emit("comment", sent)
        echo = await broadcaster.next("comment")
        assert {k: echo[k] for k in sent} == sent
        assert {"id", "user", "at"} <= set(echo)

        # close_room, acked; the room's clients are told and leave its chat.
        assert await broadcaster.call("close_room", ROOM) == {"ok": True}
        assert (await viewer.next("close_room")) == {"roomKey": ROOM}
        await viewer.sio.emit("comment", {"roomKey": ROOM, "text": "still here?"})
        await asyncio.sleep(0.3)
        assert not [e for e in broadcaster.events if e[0] == "comment"]
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


async def test_the_apps_javascript_client_plays_the_flow(open_server: StromServer) -> None:
    """socket.io-client 4 (npm), the client the original apps used."""
    script = Path(__file__).parent / "js" / "live_broadcast_app.cjs"
    code, out = await run_process(
        need_tool("node"), str(script), f"http://127.0.0.1:{open_server.http_port}", ROOM,
        timeout=30,
    )  # fmt: skip
    assert code == 0, out
    got = json.loads(out.strip().splitlines()[-1])
    assert [(u["count"], u["total"]) for u in got["upvotes"]] == [(1, 1), (1, 2), (1, 3)]
    assert got["comment"]["userName"] == "Ann"
    assert got["comment"]["color"] == "#f0a"
    assert got["comment"]["text"] == "hello <i>there</i>"
    assert got["comment"]["roomKey"] == ROOM
    assert got["closeAck"] == {"ok": True}
    assert got["closed"] == {"roomKey": ROOM}
    assert got["closedByDisconnect"] == {"roomKey": ROOM}


async def test_a_broadcasters_disconnect_closes_its_room(
    open_server: StromServer, apps: list[App]
) -> None:
    broadcaster = await connect(open_server, apps)
    assert (await broadcaster.call("create_room", {"key": ROOM}))["ok"] is True
    viewer = await connect(open_server, apps)
    assert (await viewer.call("join_room", ROOM))["ok"] is True
    # Another socket cannot take the room over, nor close it.
    other = await connect(open_server, apps)
    assert (await other.call("create_room", ROOM))["ok"] is False
    assert (await other.call("close_room", ROOM))["ok"] is False
    await broadcaster.sio.disconnect()
    assert (await viewer.next("close_room")) == {"roomKey": ROOM}
    # The room is free again: the next broadcaster creates it.
    assert (await other.call("create_room", ROOM))["ok"] is True


async def test_accounts_and_static_channels_keep_their_names(
    open_server: StromServer, apps: list[App], room_media: MediaFile
) -> None:
    store = open_server.store
    assert store is not None
    await store.users.create("carol", PASSWORD)
    app = await connect(open_server, apps)
    for name in ("carol", "CAROL", CHANNEL, "admin"):  # an account, a static one, reserved
        answer = await app.call("create_room", name)
        assert answer == {"ok": False, "error": "wrong stream key"}, name
        code, _ = await run_process(
            *publish_args(room_media, open_server.rtmp_port, key=name), timeout=30
        )
        assert code != 0, name
        channel = open_server.registry.get(name)
        assert channel is None or not channel.live, name


async def test_with_open_rooms_off_the_app_is_refused_as_before(
    server: StromServer, apps: list[App], room_media: MediaFile
) -> None:
    app = await connect(server, apps)
    assert await app.call("create_room", ROOM) == {"ok": False, "error": "wrong stream key"}
    refused = await app.next("error")
    assert refused["reason"] == "wrong stream key"
    assert (await app.call("join_room", ROOM))["ok"] is False
    assert (await app.next("error"))["reason"] == "no such channel"
    code, _ = await run_process(*publish_args(room_media, server.rtmp_port, key=ROOM))
    assert code != 0
    channel = server.registry.get(ROOM)
    assert channel is None or not channel.live
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}/api/v1/streams") as resp,
    ):
        assert json.loads(await resp.text())["streams"] == []
