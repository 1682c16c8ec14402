"""Profiles: display name, bio and links (checked), the avatar and its version, "last
seen" written at most once a minute, and the channel search (offline channels too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from strom.store import InvalidInput, Store

PASSWORD = "correct horse battery"
MakeStore = Callable[..., Awaitable[Store]]


async def test_profile_round_trip_and_checks(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    empty = await store.profiles.get("alice")
    assert empty is not None
    assert (empty.display_name, empty.bio, empty.links, empty.avatar_etag) == ("", "", (), None)
    assert await store.profiles.get("nobody") is None

    saved = await store.profiles.update(
        "alice",
        display_name="  Alice   W. ",
        bio="Speedruns.\nMostly.",
        links=["https://example.com/a", "", "http://example.org"],
    )
    assert saved.display_name == "Alice W."
    assert saved.bio == "Speedruns.\nMostly."
    assert saved.links == ("https://example.com/a", "http://example.org")

    for bad in (["javascript:alert(1)"], ["https://"], ["ftp://x.org"], ["https://a.b/ c"]):
        with pytest.raises(InvalidInput, match="http"):
            await store.profiles.update("alice", display_name="", bio="", links=bad)
    with pytest.raises(InvalidInput, match="at most"):
        await store.profiles.update("alice", display_name="", bio="", links=["https://a.b"] * 6)
    with pytest.raises(InvalidInput, match="longer"):
        await store.profiles.update("alice", display_name="x" * 41, bio="", links=[])
    assert (await store.profiles.get("alice")) == saved  # nothing changed by the refusals


async def test_avatar_versions(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    big, small = b"\xff\xd8" + b"a" * 70_000, b"\xff\xd8small"  # > 64 KiB: MEDIUMBLOB on MySQL
    etag = await store.profiles.set_avatar("alice", big, small)
    found = await store.profiles.avatar("ALICE", small=False)
    assert found is not None
    assert (found.jpeg, found.etag) == (big, etag)
    assert (await store.profiles.avatar("alice", small=True)).jpeg == small  # type: ignore[union-attr]
    assert await store.profiles.avatars(["alice", "bob"]) == {"alice": etag}
    await store.profiles.remove_avatar("alice")
    assert await store.profiles.avatar("alice", small=True) is None


async def test_what_cards_and_chat_lines_show_of_a_user(store: Store) -> None:
    """The channel's info carries the avatar's version (directory cards); ``names`` gives
    each user's name, display name and avatar version in one query (chat lines)."""
    alice, _ = await store.users.create("Alice", PASSWORD)
    bob, _ = await store.users.create("bob", PASSWORD)
    info = await store.channels.get("alice")
    assert info is not None
    assert info.avatar_etag is None
    etag = await store.profiles.set_avatar("alice", b"\xff\xd8big", b"\xff\xd8small")
    await store.profiles.update("alice", display_name="Alice W.", bio="", links=[])
    assert (await store.channels.get("alice")).avatar_etag == etag  # type: ignore[union-attr]
    assert await store.profiles.names([alice.id, bob.id, alice.id, 10_000]) == {
        alice.id: ("Alice", "Alice W.", etag),
        bob.id: ("bob", "", None),
    }
    assert await store.profiles.names([]) == {}


async def test_seen_writes_at_most_once_a_minute(make_store: MakeStore) -> None:
    now = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]
    store = await make_store(clock=lambda: now[0])
    user, _ = await store.users.create("Alice", PASSWORD)
    assert await store.profiles.seen(user.id)
    assert not await store.profiles.seen(user.id)
    other_node = await make_store(clock=lambda: now[0])
    assert not await other_node.profiles.seen(user.id)  # the database's row says "just now"
    now[0] += timedelta(seconds=61)
    assert await store.profiles.seen(user.id)
    found = await store.profiles.get("alice")
    assert found is not None
    assert found.last_online_at == now[0]


async def test_search_finds_offline_channels_by_name_title_and_display_name(
    store: Store,
) -> None:
    for name in ("alice", "Malik", "bob", "carol"):
        await store.users.create(name, PASSWORD)
    await store.channels.update("bob", title="Talking with Ali")
    await store.profiles.update("carol", display_name="Alison", bio="", links=[])
    found = [m.username for m in await store.profiles.search("ALI")]
    assert found == ["alice", "bob", "carol", "Malik"]  # names starting with it first
    assert await store.profiles.search("%") == []  # LIKE's wildcards are plain text
    assert await store.profiles.search("   ") == []
    assert len(await store.profiles.search("a", limit=2)) == 2
