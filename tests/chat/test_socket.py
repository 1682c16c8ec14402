"""The chat socket through the real server: joining, posting, batching, every refusal a
sender can meet, guests, likes, viewer counts, close codes, isolation between rooms, and
history that survives a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import MediaFile, make_settings, publish_args, run_process
from tests.helpers.chat import People
from tests.helpers.watching import wait_live


async def test_join_post_and_see_it_everywhere(
    server: StromServer, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    streamer = await people.account("Streamer")
    viewer = await people.account("viewer_one")
    guest = people.guest()

    owner_chat = await streamer.join("streamer")  # any case finds the channel
    welcome = owner_chat.welcome
    assert welcome["room"] == "Streamer"
    assert welcome["history"] == []
    assert welcome["permissions"]["is_owner"]
    assert welcome["permissions"]["can_moderate"]
    assert welcome["modes"]["slow_mode"] == 0
    assert welcome["limits"]["max_chars"] == 500

    viewer_chat = await viewer.join("Streamer")
    assert not viewer_chat.welcome["permissions"]["can_moderate"]
    guest_chat = await guest.join("Streamer")
    you = guest_chat.welcome["permissions"]
    assert you["guest"]
    assert you["name"].startswith("guest-")
    assert you["can_chat"]

    await viewer_chat.say("hello <b>@Streamer</b> & @nobody", nonce="v1")
    for chat in (owner_chat, viewer_chat, guest_chat):
        message = await chat.next("message")
        assert message["user"] == "viewer_one"
        assert message["text"] == "hello <b>@Streamer</b> & @nobody"  # plain text, as sent
        assert message["mentions"] == ["Streamer", "nobody"]
        assert message["badges"] == []
        assert not message["guest"]
    assert message["nonce"] == "v1"

    await guest_chat.say("hi from a guest")
    message = await owner_chat.next("message")
    assert message["user"] == you["name"]
    assert message["guest"]
    await owner_chat.say("welcome all")
    assert (await viewer_chat.next("message", text="welcome all"))["badges"] == ["owner"]

    # A second socket of the same browser is the same guest.
    again = await guest.join("Streamer")
    assert again.welcome["permissions"]["name"] == you["name"]
    assert [m["text"] for m in again.welcome["history"]] == [
        "hello <b>@Streamer</b> & @nobody",
        "hi from a guest",
        "welcome all",
    ]
    await viewer_chat.close()
    await asyncio.sleep(0.2)
    assert "disconnected" in caplog.text
    assert "hello <b>" not in caplog.text  # message text never reaches the log at info


async def test_messages_in_one_tick_arrive_as_one_frame(
    server: StromServer, people: People
) -> None:
    writer = await people.account("writer")
    reader = people.guest()
    writer_chat = await writer.join("alice")
    reader_chat = await reader.join("alice")
    for i in range(4):
        await writer_chat.say(f"burst {i}")
    for i in range(4):
        await reader_chat.next("message", text=f"burst {i}")
    batches = [f for f in reader_chat.frames if f["type"] == "batch"]
    sizes = [sum(e["type"] == "message" for e in f["events"]) for f in batches]
    assert max(sizes) >= 2, f"four quick messages came in {sizes}: not batched"


async def test_refusals_go_to_the_sender_only(server: StromServer, people: People) -> None:
    sender = await people.account("chatty")
    other = people.guest()
    chat = await sender.join("alice")
    watcher = await other.join("alice")

    await chat.say("x" * 501, nonce="long")
    error = await chat.error("too_long")
    assert error["nonce"] == "long"
    assert "500" in error["reason"]
    await chat.say("   ")
    await chat.error("empty")

    await chat.say("same thing")
    await chat.next("message", text="same thing")
    await chat.say("Same   THING")
    error = await chat.error("duplicate")
    assert error["reason"]

    for i in range(6):
        await chat.say(f"flood {i}")
    error = await chat.error("rate_limited")
    assert error["retry_after"] > 0

    await chat.send("dance")
    await chat.error("unsupported")
    await chat.send("delete", id="seven", nonce="bad")
    assert (await chat.error("bad_request"))["nonce"] == "bad"

    await watcher.sync()
    assert watcher.seen("error") == []
    assert chat.closed is None  # refusals never close the socket


async def test_nothing_one_sender_does_affects_other_rooms(
    server: StromServer, people: People
) -> None:
    busy = await people.account("busy_one")
    in_alice = await busy.join("alice")
    in_bob = await busy.join("bob")
    for i in range(7):
        await in_alice.say(f"spam {i}")
    await in_alice.error("rate_limited")
    await in_bob.say("still fine here")
    await in_bob.next("message", text="still fine here")
    await in_bob.sync()
    assert not any("spam" in e.get("text", "") for e in in_bob.events)


async def test_guests_and_require_account(server: StromServer, people: People) -> None:
    owner = await people.account("host")
    guest = people.guest()
    owner_chat = await owner.join("host")
    guest_chat = await guest.join("host")
    await guest_chat.say("guests welcome?")
    await owner_chat.next("message", text="guests welcome?")

    await owner_chat.send("set_modes", require_account=True)
    modes = await guest_chat.next("modes")
    assert modes["require_account"]
    permissions = await guest_chat.next("permissions")
    assert not permissions["can_chat"]
    assert permissions["cannot_chat"] == "account_required"
    await guest_chat.say("and now?")
    error = await guest_chat.error("account_required")
    assert "log in" in error["reason"]
    # Stored on the channel: a new guest is told at once.
    store = server.store
    assert store is not None
    info = await store.channels.get("host")
    assert info is not None
    assert info.require_account_for_chat
    late = await people.guest().join("host")
    assert late.welcome["modes"]["require_account"]
    assert not late.welcome["permissions"]["can_chat"]

    # Changed elsewhere (the dashboard, say) and reloaded: the room follows.
    await store.channels.update("host", require_account_for_chat=False)
    assert server.chat is not None
    await server.chat.reload_room("Host")
    await guest_chat.next("modes", require_account=False)
    assert (await guest_chat.next("permissions"))["can_chat"]
    await guest_chat.say("thanks")
    await owner_chat.next("message", text="thanks")


async def test_likes_are_aggregated(server: StromServer, people: People) -> None:
    fan = people.guest()
    other = people.guest()
    fan_chat = await fan.join("alice")
    other_chat = await other.join("alice")
    for _ in range(3):
        await fan_chat.send("like")
    likes = await other_chat.next("likes")
    assert likes["count"] == 3
    assert likes["total"] == 3
    assert (await fan_chat.next("likes"))["count"] == 3

    for _ in range(40):  # far beyond the like rate: the excess is dropped silently
        await other_chat.send("like")
    total = 3
    while total < 13:
        likes = await fan_chat.next("likes")
        total = likes["total"]
    await other_chat.sync()
    await fan_chat.sync()
    assert fan_chat.seen("likes") == []  # no more arrived than the burst
    assert total < 3 + 40
    late = await people.guest().join("alice")
    assert late.welcome["likes"] == total


async def test_viewer_count_follows_media_viewers(
    server: StromServer, people: People, av_media: MediaFile
) -> None:
    chat = await people.guest().join("alice")
    assert chat.welcome["viewers"] == 0
    publisher = asyncio.create_task(run_process(*publish_args(av_media, server.rtmp_port)))
    try:
        await wait_live(server, "alice")
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{base}/live/alice/ws") as media:
                assert (await media.receive_json())["type"] == "init"
                await chat.next("viewers", count=1)
                # Chat sockets are not viewers.
                await people.guest().join("alice")
            await chat.next("viewers", count=0)
    finally:
        await publisher


async def test_close_codes(server: StromServer, people: People) -> None:
    person = people.guest()
    chat = await person.join("alice")
    await chat.ws.send_str("this is not json")
    closed = await chat.closing()
    assert closed.code == 1003
    assert "JSON" in closed.reason

    chat = await person.join("alice")
    await chat.ws.send_bytes(b"\x00\x01")
    closed = await chat.closing()
    assert closed.code == 1003
    assert "binary" in closed.reason

    chat = await person.join("alice")
    await chat.say("x" * 9000)
    closed = await chat.closing()
    assert closed.code == 1009
    assert closed.reason == "frame too large"

    chat = await person.join("alice")
    for _ in range(60):  # faster than any person types: a flood
        await chat.send("ping")
    closed = await chat.closing()
    assert closed.code == 1008

    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(f"{base}/chat/nobody_here/ws")
        assert exc.value.status == 404


async def test_history_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = StromServer(settings)
    await first.start()
    try:
        people = People(first)
        writer = await people.account("keeper")
        chat = await writer.join("keeper")
        await chat.say("remember me")
        await chat.say("and me")
        await chat.next("message", text="and me")
        doomed = await people.guest().join("keeper")
        await doomed.say("delete me")
        deleted = await chat.next("message", text="delete me")
        await chat.send("delete", id=deleted["id"])
        await chat.next("delete", id=deleted["id"])
        for person in people.all:
            await person.close()
    finally:
        await first.stop()

    second = StromServer(settings)
    await second.start()
    try:
        people = People(second)
        chat = await people.guest().join("keeper")
        history = chat.welcome["history"]
        assert [m["text"] for m in history] == ["remember me", "and me"]
        assert history[0]["badges"] == ["owner"]
        for person in people.all:
            await person.close()
    finally:
        await second.stop()
