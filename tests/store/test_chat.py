"""Chat persistence on every configured database: messages and history, deletion,
moderators, bans and timeouts, the moderation log, room modes, follow age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strom.store import InvalidInput, Store
from strom.store.chat import ChatSettingsInfo

PASSWORD = "a long enough password"


async def test_messages_history_and_deletion(store: Store) -> None:
    alice, _ = await store.users.create("Alice", PASSWORD, admin=True)
    chat = store.chat
    first = await chat.add_message("alice", alice.id, "Alice", "hello 🌊 <b>world</b>")
    second = await chat.add_message("ALICE", None, "guest-000123", "hi from a guest")
    third = await chat.add_message("alice", alice.id, "Alice", "third")
    await chat.add_message("bob", None, "guest-000123", "another room")
    assert first.id < second.id < third.id

    history = await chat.recent_messages("Alice", 2)  # the newest two, oldest first
    assert [m.text for m in history] == ["hi from a guest", "third"]
    everything = await chat.recent_messages("alice", 50)
    assert everything[0].text == "hello 🌊 <b>world</b>"  # stored as typed
    assert everything[0].author_is_admin
    assert everything[0].created_at.tzinfo is not None
    assert everything[1].user_id is None

    assert await chat.delete_message("alice", second.id)
    assert not await chat.delete_message("alice", second.id)  # already gone
    assert not await chat.delete_message("bob", first.id)  # not that room's message
    assert await chat.message("alice", second.id) is None
    assert [m.id for m in await chat.recent_messages("alice", 50)] == [first.id, third.id]

    assert await chat.delete_messages_by("alice", alice.id, "Alice") == 2
    assert await chat.recent_messages("alice", 50) == []
    assert [m.text for m in await chat.recent_messages("bob", 50)] == ["another room"]
    assert await chat.clear("bob") == 1
    assert await chat.recent_messages("bob", 50) == []
    with pytest.raises(InvalidInput):
        await chat.add_message("alice", None, "guest-1", "x" * 5000)


async def test_moderators_bans_and_log(store: Store) -> None:
    await store.users.create("owner", PASSWORD)
    mod, _ = await store.users.create("mod_one", PASSWORD)
    chat = store.chat
    assert await chat.add_moderator("owner", mod.id)
    assert not await chat.add_moderator("OWNER", mod.id)
    assert await chat.moderators("owner") == {mod.id: "mod_one"}
    assert await chat.remove_moderator("owner", mod.id)
    assert not await chat.remove_moderator("owner", mod.id)

    now = datetime.now(UTC)
    await chat.ban(
        "owner", f"u:{mod.id}", user_id=mod.id, target_name="mod_one", until=None,
        reason="spam", by="owner",
    )  # fmt: skip
    await chat.ban(
        "owner", "g:guest-000001", user_id=None, target_name="guest-000001",
        until=now + timedelta(minutes=10), reason="", by="owner",
    )  # fmt: skip
    await chat.ban(
        "owner", "g:guest-000002", user_id=None, target_name="guest-000002",
        until=now - timedelta(seconds=1), reason="", by="owner",
    )  # fmt: skip
    # A second ban of the same target replaces the first (a timeout becomes a ban).
    await chat.ban(
        "owner", "g:guest-000001", user_id=None, target_name="guest-000001",
        until=now + timedelta(minutes=20), reason="again", by="owner",
    )  # fmt: skip
    bans = {b.target: b for b in await chat.bans("owner")}
    assert set(bans) == {f"u:{mod.id}", "g:guest-000001"}  # the expired timeout is over
    assert bans[f"u:{mod.id}"].until is None
    assert bans["g:guest-000001"].reason == "again"
    until = bans["g:guest-000001"].until
    assert until is not None
    assert abs((until - (now + timedelta(minutes=20))).total_seconds()) < 1
    assert await chat.unban("owner", f"u:{mod.id}")
    assert not await chat.unban("owner", f"u:{mod.id}")

    await chat.log("owner", "owner", "ban", "mod_one", "spam")
    await chat.log("owner", "owner", "clear", None, "3 messages")
    entries = await chat.moderation_log("owner", 10)
    assert [(e.action, e.target) for e in entries] == [("clear", None), ("ban", "mod_one")]
    assert await chat.moderation_log("someone_else", 10) == []


async def test_settings_and_follow_age(store: Store) -> None:
    await store.users.create("streamer", PASSWORD)
    fan, _ = await store.users.create("fan", PASSWORD)
    chat = store.chat
    assert await chat.settings("streamer") == ChatSettingsInfo()
    wanted = ChatSettingsInfo(
        slow_mode_seconds=30,
        followers_only=True,
        followers_min_minutes=10,
        blocked_words=("badword", "two words"),
        block_links=True,
    )
    await chat.save_settings("Streamer", wanted)
    assert await chat.settings("streamer") == wanted
    await chat.save_settings("streamer", ChatSettingsInfo(slow_mode_seconds=5))
    assert await chat.settings("streamer") == ChatSettingsInfo(slow_mode_seconds=5)

    assert await chat.followed_at(fan.id, "streamer") is None
    await store.follows.follow("fan", "streamer")
    since = await chat.followed_at(fan.id, "STREAMER")
    assert since is not None
    assert abs((datetime.now(UTC) - since).total_seconds()) < 60
