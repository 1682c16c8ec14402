"""The Socket.IO compatibility door through the real server, with python-socketio's own
client (long-polling first, then the upgrade to WebSocket, as the original apps connect):
joining, comments both ways with a WebSocket chat member, upvotes, refusals delivered as
``error`` events, the broadcaster's create_room / close_room by stream key, moderation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strom.server import StromServer
from tests.helpers.chat import PASSWORD, People
from tests.helpers.socketio_app import App


@pytest.fixture
async def apps(server: StromServer) -> AsyncIterator[list[App]]:
    opened: list[App] = []
    yield opened
    for app in opened:
        await app.sio.disconnect()


async def open_app(
    server: StromServer, apps: list[App], transports: list[str] | None = None
) -> App:
    app = App(server, transports)
    apps.append(app)
    return await app.connect()


async def test_comments_both_ways_with_the_websocket_chat(
    server: StromServer, people: People, apps: list[App]
) -> None:
    await people.account("Streamer")
    viewer = await people.account("viewer")
    web = await viewer.join("streamer")
    app = await open_app(server, apps)

    joined = await app.call("join_room", "streamer")
    assert joined["ok"]
    assert joined["roomKey"] == "Streamer"
    assert joined["name"].startswith("guest-")
    assert (await app.next("viewers"))["count"] == 0

    await app.sio.emit("comment", {"roomKey": "streamer", "text": "hello from the app"})
    message = await web.next("message", text="hello from the app")
    assert message["user"] == joined["name"]
    assert message["guest"]
    echo = await app.next("comment", text="hello from the app")
    assert echo["roomKey"] == "Streamer"
    assert echo["id"] == message["id"]

    await web.say("hi <app> & all")
    comment = await app.next("comment", text="hi <app> & all")
    assert comment["user"] == "viewer"
    assert not comment["guest"]
    assert isinstance(comment["at"], int)

    # Upvotes: counted with the WebSocket chat's likes (aggregated per batch there), one
    # upvote event per like for the app.
    await app.sio.emit("upvote", "Streamer")
    likes = await web.next("likes")
    assert likes["count"] == 1
    assert (await app.next("upvote"))["total"] == 1
    await web.send("like")
    assert (await app.next("upvote"))["total"] == 2

    # A comment to a room the app has not joined joins it first (as the original servers
    # relayed such comments).
    other = await viewer.join("alice")
    await app.sio.emit("comment", {"roomKey": "alice", "msg": "old clients send msg"})
    assert (await other.next("message"))["text"] == "old clients send msg"


async def test_refusals_reach_the_app_as_error_events(
    server: StromServer, people: People, apps: list[App]
) -> None:
    streamer = await people.account("Streamer")
    owner = await streamer.join("Streamer")
    # Long-polling only: every event is a POST without a CSRF token, as such apps send.
    app = await open_app(server, apps, ["polling"])
    joined = await app.call("join_room", "Streamer")

    for i in range(6):  # a burst of 5, then the rate applies
        await app.sio.emit("comment", {"roomKey": "Streamer", "text": f"spam {i}"})
    error = await app.next("error", code="rate_limited")
    assert error["roomKey"] == "Streamer"
    assert error["retry_after"] > 0
    assert "reason" in error
    for i in range(5):
        await owner.next("message", text=f"spam {i}")

    await app.sio.emit("comment", {"roomKey": "Streamer", "text": ""})
    await app.sio.emit("comment", {"roomKey": "Streamer"})
    assert (await app.next("error", code="bad_request"))["roomKey"] == "Streamer"
    assert (await app.call("join_room", "no_such_channel"))["ok"] is False
    await app.next("error", code="not_found")

    # Moderation reaches the app: its guest is banned, its comments disappear, it is told.
    await owner.send("ban", user=joined["name"])
    muted = await app.next("user_muted", user=joined["name"])
    assert muted["until"] is None
    assert "banned" in (await app.next("notification"))
    await app.sio.emit("comment", {"roomKey": "Streamer", "text": "let me back"})
    await app.next("error", code="banned")


async def test_broadcaster_opens_and_closes_the_room_with_the_stream_key(
    server: StromServer, people: People, apps: list[App]
) -> None:
    store = server.store
    assert store is not None
    _, key = await store.users.create("Caster", PASSWORD)
    viewer = await people.account("viewer")
    web = await viewer.join("caster")
    watcher = await open_app(server, apps)
    await watcher.call("join_room", "caster")
    broadcaster = await open_app(server, apps)

    refused = await broadcaster.call("create_room", {"key": "not-the-key-at-all"})
    assert refused["ok"] is False
    assert (await broadcaster.next("error", code="not_allowed"))["reason"] == "wrong stream key"
    assert (await broadcaster.call("close_room", "not-the-key-at-all"))["ok"] is False

    assert (await broadcaster.call("join_room", "Caster"))["ok"]  # first as a guest
    created = await broadcaster.call("create_room", {"key": key, "title": "my stream"})
    assert created == {"ok": True, "roomKey": "Caster"}
    # The original apps use the stream key as the room key: it finds the room.
    await broadcaster.sio.emit("comment", {"roomKey": key, "text": "thanks for watching"})
    message = await web.next("message", text="thanks for watching")
    assert message["user"] == "Caster"
    assert message["badges"] == ["owner"]
    assert (await watcher.next("comment", text="thanks for watching"))["user"] == "Caster"
    await web.say("great stream")  # the broadcaster, now the owner, still hears the room
    assert (await broadcaster.next("comment", text="great stream"))["user"] == "viewer"

    assert (await broadcaster.call("close_room", key))["ok"] is True
    closed = await watcher.next("room-closed")
    assert closed == {"room": "Caster", "roomKey": "Caster"}
    assert key not in str(watcher.events)  # the stream key never reaches anyone else
