"""Moderation through the real server: moderators appointed by the owner, deletes,
timeouts, bans, clear, slow mode, followers-only, blocked words, links, site admins in
any room, the moderation log, and follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from strom.server import StromServer
from strom.store.models import FollowRow
from tests.helpers import make_settings
from tests.helpers.chat import People


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    """A server whose rate limit leaves room for a moderation scenario's many messages
    (the limit itself is tested in test_socket.py)."""
    srv = StromServer(make_settings(tmp_path, chat_burst=50))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_moderators_delete_timeout_ban_unban(server: StromServer, people: People) -> None:
    owner = await people.account("caster")
    mod = await people.account("helper")
    troll = await people.account("troll")
    owner_chat = await owner.join("caster")
    mod_chat = await mod.join("caster")
    troll_chat = await troll.join("caster")

    # Only the owner appoints; everyone sees the new moderator.
    await troll_chat.send("mod", user="troll")
    await troll_chat.error("not_allowed")
    await owner_chat.send("mod", user="helper")
    assert (await troll_chat.next("moderator"))["user"] == "helper"
    permissions = await mod_chat.next("permissions")
    assert permissions["is_moderator"]
    assert permissions["can_moderate"]
    await mod_chat.send("mod", user="troll")
    await mod_chat.error("not_allowed")  # moderators do not appoint

    # A delete reaches everyone.
    await troll_chat.say("something rude")
    rude = await owner_chat.next("message", text="something rude")
    await mod_chat.send("delete", id=rude["id"])
    for chat in (owner_chat, mod_chat, troll_chat):
        await chat.next("delete", id=rude["id"])
    await mod_chat.send("delete", id=rude["id"])
    await mod_chat.error("not_found")

    # Moderators cannot touch the owner.
    await owner_chat.say("owner speaking")
    own = await mod_chat.next("message", text="owner speaking")
    await mod_chat.send("delete", id=own["id"])
    await mod_chat.error("not_allowed")
    await mod_chat.send("ban", user="caster")
    await mod_chat.error("not_allowed")

    # Timeout: everyone is told, the troll's messages go, its next message is refused.
    await troll_chat.say("more")
    await owner_chat.next("message", text="more")
    await mod_chat.send("timeout", user="troll", seconds=600, reason="cool down")
    timeout = await owner_chat.next("timeout", user="troll")
    permissions = await troll_chat.next("permissions")
    assert not permissions["can_chat"]
    assert permissions["muted_until"] == timeout["until"]
    assert permissions["restriction_reason"] == "cool down"
    await troll_chat.say("am I muted?", nonce="m")
    error = await troll_chat.error("timed_out")
    assert error["until"] == timeout["until"]
    assert error["nonce"] == "m"
    assert "10 min" in error["reason"]
    late = await people.guest().join("caster")
    assert "more" not in [m["text"] for m in late.welcome["history"]]

    # Unban lifts the timeout; ban is for good.
    await mod_chat.send("unban", user="troll")
    await owner_chat.next("unban", user="troll")
    assert (await troll_chat.next("permissions"))["can_chat"]
    await troll_chat.say("sorry")
    await owner_chat.next("message", text="sorry")
    await owner_chat.send("ban", user="troll", reason="again")
    await mod_chat.next("ban", user="troll")
    await troll_chat.say("let me in")
    await troll_chat.error("banned")
    await owner_chat.send("unban", user="nobody_at_all")
    await owner_chat.error("not_found")

    # The chatter list: the owner first, then moderators, then the others; guests counted.
    await troll_chat.send("chatters")
    chatters = await troll_chat.next("chatters")
    assert chatters["users"] == [
        {"name": "caster", "badges": ["owner"]},
        {"name": "helper", "badges": ["moderator"]},
        {"name": "troll", "badges": []},
    ]
    assert (chatters["guests"], chatters["total"], chatters["truncated"]) == (1, 4, False)

    # Removing the moderator takes their powers.
    await owner_chat.send("unmod", user="helper")
    await mod_chat.next("moderator", user="helper", added=False)
    await mod_chat.send("clear")
    await mod_chat.error("not_allowed")


async def test_guests_can_be_timed_out_and_chat_cleared(
    server: StromServer, people: People
) -> None:
    owner = await people.account("quiet")
    guest = people.guest()
    owner_chat = await owner.join("quiet")
    guest_chat = await guest.join("quiet")
    name = guest_chat.welcome["permissions"]["name"]
    await guest_chat.say("guest noise")
    await owner_chat.next("message", text="guest noise")
    await owner_chat.send("timeout", user=name, seconds=30)
    await guest_chat.next("timeout", user=name)
    await guest_chat.say("again")
    await guest_chat.error("timed_out")
    # The same browser reconnecting is the same guest, still timed out.
    again = await guest.join("quiet")
    assert again.welcome["permissions"]["cannot_chat"] == "timed_out"

    await owner_chat.say("a message to clear")
    await guest_chat.next("message", text="a message to clear")
    await owner_chat.send("clear")
    await guest_chat.next("clear")
    late = await people.guest().join("quiet")
    assert late.welcome["history"] == []


async def test_slow_mode(server: StromServer, people: People) -> None:
    owner = await people.account("slowpoke")
    viewer = await people.account("hasty")
    owner_chat = await owner.join("slowpoke")
    viewer_chat = await viewer.join("slowpoke")
    await owner_chat.send("set_modes", slow_mode=30)
    modes = await viewer_chat.next("modes")
    assert modes["slow_mode"] == 30
    await viewer_chat.say("first")
    await owner_chat.next("message", text="first")
    await viewer_chat.say("second")
    error = await viewer_chat.error("slow_mode")
    assert 25 < error["retry_after"] <= 30
    assert "30 s" in error["reason"]
    await owner_chat.say("owners are not slowed")
    await owner_chat.say("not at all")
    await viewer_chat.next("message", text="not at all")
    late = await people.guest().join("slowpoke")
    assert late.welcome["modes"]["slow_mode"] == 30


async def test_followers_only_with_minimum_age(server: StromServer, people: People) -> None:
    owner = await people.account("famous")
    fan = await people.account("new_fan")
    owner_chat = await owner.join("famous")
    await owner_chat.send("set_modes", followers_only=True, followers_min_minutes=10)
    fan_chat = await fan.join("famous")
    assert fan_chat.welcome["modes"]["followers_only"]
    await fan_chat.say("hi")
    error = await fan_chat.error("followers_only")
    assert "10 min" in error["reason"]

    status, body = await fan.api("POST", "/api/v1/channels/famous/follow")
    assert status == 200
    assert body == {"following": True, "followers": 1}
    permissions = await fan_chat.next("permissions")
    assert permissions["followed_at"] is not None
    await fan_chat.say("followed now")
    error = await fan_chat.error("followers_only")
    assert 500 < error["retry_after"] <= 600  # ten minutes to go

    # Ten minutes later (the follow is made older in the database), a new socket writes.
    store = server.store
    assert store is not None
    async with store.engine.begin() as conn:
        await conn.execute(
            update(FollowRow).values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    fan_chat = await fan.join("famous")
    await fan_chat.say("long-time fan")
    await owner_chat.next("message", text="long-time fan")

    status, body = await fan.api("DELETE", "/api/v1/channels/famous/follow")
    assert (status, body) == (200, {"following": False, "followers": 0})
    await fan_chat.say("unfollowed")
    await fan_chat.error("followers_only")
    await owner_chat.send("set_modes", followers_only=False)
    await fan_chat.next("modes", followers_only=False)
    await fan_chat.say("open again")
    await owner_chat.next("message", text="open again")


async def test_blocked_words_and_links(server: StromServer, people: People) -> None:
    owner = await people.account("tidy")
    viewer = await people.account("typist")
    owner_chat = await owner.join("tidy")
    viewer_chat = await viewer.join("tidy")
    await owner_chat.send("set_blocked_words", words=["Darn", "dang it"])
    assert (await owner_chat.next("blocked_words"))["words"] == ["darn", "dang it"]
    await viewer_chat.say("oh DARN it")
    error = await viewer_chat.error("blocked_word")
    assert "darn" not in error["reason"].lower()  # the list is not revealed
    await viewer_chat.say("dang   it!")
    await viewer_chat.error("blocked_word")
    await viewer_chat.say("darning socks")
    await owner_chat.next("message", text="darning socks")
    assert "darn" not in str(viewer_chat.welcome)  # viewers never see the list

    await viewer_chat.say("see example.com")
    await owner_chat.next("message", text="see example.com")
    await owner_chat.send("set_modes", block_links=True)
    await viewer_chat.next("modes", block_links=True)
    for text in ("visit https://spam.example/x", "go to www.spam", "cheap.xyz deals"):
        await viewer_chat.say(text)
        await viewer_chat.error("link_blocked")
    await owner_chat.say("mods may link: strom.tv")
    await viewer_chat.next("message", text="mods may link: strom.tv")
    late = await owner.join("tidy")
    assert late.welcome["blocked_words"] == ["darn", "dang it"]
    assert late.welcome["modes"]["block_links"]


async def test_site_admin_acts_in_any_room(server: StromServer, people: People) -> None:
    admin = await people.account("operator", admin=True)
    owner = await people.account("someone")
    spammer = people.guest()
    owner_chat = await owner.join("someone")
    spam_chat = await spammer.join("someone")
    admin_chat = await admin.join("someone")
    you = admin_chat.welcome["permissions"]
    assert you["is_admin"]
    assert you["can_moderate"]
    assert not you["is_owner"]

    await spam_chat.say("buy followers")
    spam = await admin_chat.next("message", text="buy followers")
    await admin_chat.send("delete", id=spam["id"])
    await owner_chat.next("delete", id=spam["id"])
    name = spam_chat.welcome["permissions"]["name"]
    await admin_chat.send("ban", user=name)
    await owner_chat.next("ban", user=name)
    await admin_chat.send("mod", user="operator")
    await admin_chat.next("moderator", user="operator")
    await admin_chat.send("ban", user="someone")
    await admin_chat.error("not_allowed")  # not even an admin bans the owner in their room
    await admin_chat.say("admin here")
    assert (await owner_chat.next("message", text="admin here"))["badges"] == [
        "moderator",
        "admin",
    ]
    # A suspended account's open sockets are closed (the admin pages call this).
    store = server.store
    chat = server.chat
    assert store is not None
    assert chat is not None
    await store.users.set_suspended("someone", True)  # ends their sessions, closes their sockets
    closed = await owner_chat.closing()
    assert (closed.code, closed.reason) == (1008, "account suspended")
    assert chat.disconnect_user(owner.user.id if owner.user else 0, "account suspended") == 0
    # Their cookie's session ended: it opens a guest's socket now, not theirs.
    again = await owner.join("someone")
    assert again.welcome["permissions"]["guest"] is True
    assert again.welcome["permissions"]["is_owner"] is False

    # In a static channel (no owner account) the admin moderates too.
    static = await admin.join("alice")
    await static.send("set_modes", slow_mode=5)
    await static.next("modes", slow_mode=5)
    await static.send("set_modes")
    await static.error("bad_request")
    await static.send("set_modes", require_account=True)
    await static.error("bad_request")  # nowhere to keep it: static channels admit guests


async def test_moderation_log(server: StromServer, people: People) -> None:
    owner = await people.account("logger")
    viewer = await people.account("watched")
    owner_chat = await owner.join("logger")
    viewer_chat = await viewer.join("logger")
    await owner_chat.send("timeout", user="watched", seconds=60, reason="calm")
    await viewer_chat.next("timeout", user="watched")
    await owner_chat.send("set_modes", slow_mode=10)
    await viewer_chat.next("modes", slow_mode=10)

    await owner_chat.send("modlog", nonce="log")
    log = await owner_chat.next("modlog", nonce="log")
    actions = [(e["actor"], e["action"], e["target"]) for e in log["entries"]]
    assert actions == [("logger", "modes", None), ("logger", "timeout", "watched")]
    assert "calm" in log["entries"][1]["detail"]
    await viewer_chat.send("modlog")
    await viewer_chat.error("not_allowed")

    status, body = await owner.api("GET", "/api/v1/channels/logger/chat/modlog?limit=1")
    assert status == 200
    assert [e["action"] for e in body["entries"]] == ["modes"]
    status, body = await viewer.api("GET", "/api/v1/channels/logger/chat/modlog")
    assert status == 403
    status, _ = await people.guest().api("GET", "/api/v1/channels/logger/chat/modlog")
    assert status == 401


async def test_follow_endpoints(server: StromServer, people: People) -> None:
    streamer = await people.account("popular")
    fan = await people.account("fan_one")
    status, body = await fan.api("GET", "/api/v1/channels/popular/follow")
    assert (status, body) == (200, {"following": False, "followers": 0})
    status, body = await fan.api("POST", "/api/v1/channels/POPULAR/follow")
    assert (status, body) == (200, {"following": True, "followers": 1})
    status, body = await fan.api("POST", "/api/v1/channels/popular/follow")  # idempotent
    assert (status, body) == (200, {"following": True, "followers": 1})
    status, body = await fan.api("GET", "/api/v1/channels/popular/follow")
    assert body == {"following": True, "followers": 1}

    fan.csrf, real = "forged", fan.csrf
    status, body = await fan.api("DELETE", "/api/v1/channels/popular/follow")
    assert status == 403  # the session's CSRF token is required
    fan.csrf = real
    status, body = await fan.api("DELETE", "/api/v1/channels/popular/follow")
    assert (status, body) == (200, {"following": False, "followers": 0})

    status, body = await streamer.api("POST", "/api/v1/channels/popular/follow")
    assert status == 422
    status, body = await people.guest().api("POST", "/api/v1/channels/popular/follow")
    assert status == 401
    status, body = await fan.api("POST", "/api/v1/channels/no_such_one/follow")
    assert status == 404
