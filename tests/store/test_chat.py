"""Chat persistence on every configured database: messages and history, deletion, room
modes."""

from __future__ import annotations

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


async def test_settings(store: Store) -> None:
    await store.users.create("streamer", PASSWORD)
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
