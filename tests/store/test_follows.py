"""Follows: who follows which channel and since when, counted and listed, never twice,
never oneself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strom.store import InvalidInput, Store, UnknownUser

PASSWORD = "correct horse battery"


async def test_follows(store: Store) -> None:
    for name in ("Alice", "bob", "carol"):
        await store.users.create(name, PASSWORD)
    assert await store.follows.follow("bob", "alice")
    assert not await store.follows.follow("BOB", "Alice")  # already following
    assert await store.follows.follow("carol", "Alice")
    assert await store.follows.follow("carol", "bob")
    assert await store.follows.is_following("bob", "Alice")
    assert not await store.follows.is_following("Alice", "bob")
    assert await store.follows.follower_count("alice") == 2
    assert await store.follows.follower_count("carol") == 0
    assert await store.follows.followed_channels("carol") == ["Alice", "bob"]
    assert await store.follows.unfollow("carol", "alice")
    assert not await store.follows.unfollow("carol", "alice")
    assert await store.follows.follower_count("Alice") == 1
    assert await store.follows.followed_channels("carol") == ["bob"]
    with pytest.raises(InvalidInput):
        await store.follows.follow("Alice", "alice")
    with pytest.raises(UnknownUser):
        await store.follows.follow("bob", "nobody")
    with pytest.raises(UnknownUser):
        await store.follows.follow("nobody", "bob")


async def test_follow_age(store: Store) -> None:
    await store.users.create("streamer", PASSWORD)
    fan, _ = await store.users.create("fan", PASSWORD)
    assert await store.follows.followed_at(fan.id, "streamer") is None
    await store.follows.follow("fan", "streamer")
    since = await store.follows.followed_at(fan.id, "STREAMER")
    assert since is not None
    assert abs((datetime.now(UTC) - since).total_seconds()) < 60
