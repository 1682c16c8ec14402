"""Channels (title, description, category), categories, broadcasts and follows, and
timestamps that come back as the same aware UTC instants on every database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import (
    CategoryExists,
    InvalidCategory,
    InvalidChannel,
    InvalidInput,
    Store,
    UnknownCategory,
    UnknownUser,
)
from strom.store.categories import INITIAL_CATEGORIES, slugify
from strom.store.models import CategoryRow

from .conftest import fixed_clock

PASSWORD = "correct horse battery"


async def test_update_channel(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    info = await store.channels.update(
        "alice",
        title="  Speedrun   practice 🎮 ",
        description="Line one\r\nLine two — ünïcödé",
        category_slug="just-chatting",
    )
    assert info.title == "Speedrun practice 🎮"
    assert info.description == "Line one\nLine two — ünïcödé"
    assert info.category is not None
    assert (info.category.slug, info.category.name) == ("just-chatting", "Just Chatting")
    # Only what is given changes.
    info = await store.channels.update("Alice", title="New title")
    assert info.description == "Line one\nLine two — ünïcödé"
    assert info.category is not None
    info = await store.channels.update("Alice", category_slug="")
    assert info.category is None
    assert info.title == "New title"
    assert await store.channels.get("alice") == info
    info = await store.channels.update("Alice", require_account_for_chat=True)
    assert info.require_account_for_chat
    assert await store.channels.get("nobody") is None
    assert await store.channels.get("not a name") is None


async def test_update_channel_validation(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    before = await store.channels.update("Alice", title="ok", description="fine")
    cases = [
        ({"title": "x" * 141}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"description": "x" * 2001}, "description"),
        ({"description": "nul\x00"}, "description"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidChannel) as exc:
            await store.channels.update("Alice", **kwargs)  # type: ignore[arg-type]
        assert (exc.value.http_status, exc.value.field) == (422, field)
    with pytest.raises(UnknownCategory) as unknown:
        await store.channels.update("Alice", title="changed", category_slug="no-such-thing")
    assert unknown.value.http_status == 422
    assert await store.channels.get("Alice") == before  # a refused update changes nothing
    assert (await store.channels.update("Alice", title="x" * 140)).title == "x" * 140
    assert (await store.channels.update("Alice", description="y" * 2000)).description == "y" * 2000
    with pytest.raises(UnknownUser):
        await store.channels.update("nobody", title="x")


async def test_categories_are_seeded(store: Store) -> None:
    categories = await store.channels.categories()
    assert len(categories) >= 30
    by_slug = {c.slug: c for c in categories}
    assert len(by_slug) == len(categories)
    for slug in ("just-chatting", "music", "art", "science-and-technology", "sports",
                 "software-and-game-development", "travel-and-outdoors",
                 "talk-shows-and-podcasts", "minecraft", "league-of-legends"):  # fmt: skip
        assert slug in by_slug, slug
    assert by_slug["just-chatting"].name == "Just Chatting"
    assert not by_slug["just-chatting"].is_game
    assert by_slug["minecraft"].is_game
    names = [c.name.casefold() for c in categories]
    assert names == sorted(names)
    found = await store.channels.category("music")
    assert found is not None
    assert found.name == "Music"
    assert await store.channels.category("nope") is None


def test_seed_list_and_slugs() -> None:
    slugs = [c.slug for c in INITIAL_CATEGORIES]
    assert len(slugs) == len(set(slugs))
    assert all(slugs)
    assert slugify("Science & Technology") == "science-and-technology"
    assert slugify("Tom Clancy's Rainbow Six Siege") == "tom-clancys-rainbow-six-siege"
    assert slugify("Pokémon Trading Card Game Live") == "pokemon-trading-card-game-live"
    assert slugify("Call of Duty: Warzone") == "call-of-duty-warzone"
    assert slugify("Games + Demos") == "games-plus-demos"
    assert slugify("!!!") == ""


async def test_add_category(store: Store) -> None:
    added = await store.channels.add_category("  Retro   Speedruns ", is_game=False)
    assert (added.slug, added.name, added.is_game) == ("retro-speedruns", "Retro Speedruns", False)
    assert added in await store.channels.categories()
    with pytest.raises(CategoryExists) as exc:
        await store.channels.add_category("retro speedruns", is_game=True)
    assert exc.value.http_status == 409
    for bad in ("", "!!!", "x" * 65):
        with pytest.raises(InvalidCategory) as invalid:
            await store.channels.add_category(bad, is_game=True)
        assert invalid.value.http_status == 422


async def test_broadcasts(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    await store.channels.update("Alice", title="First", category_slug="art")
    first = await store.broadcasts.start("alice")
    await store.channels.update("Alice", title="Renamed while live")
    await store.broadcasts.update_peak(first, 7)
    await store.broadcasts.update_peak(first, 3)  # never lowers the peak
    live = await store.channels.get("Alice")
    assert live is not None
    assert live.last_broadcast is not None
    assert live.last_broadcast.id == first
    assert live.last_broadcast.ended_at is None
    await store.broadcasts.end(first, peak_viewers=5)
    await store.broadcasts.end(first, peak_viewers=50)  # already ended: ignored
    second = await store.broadcasts.start("Alice")
    await store.broadcasts.end(second, peak_viewers=12)
    newest, oldest = await store.broadcasts.list("ALICE")
    assert (newest.id, oldest.id) == (second, first)
    assert oldest.title == "First"  # as it was when it started
    assert oldest.category is not None
    assert oldest.category.slug == "art"
    assert oldest.peak_viewers == 7
    assert oldest.ended_at is not None
    assert oldest.ended_at >= oldest.started_at
    assert newest.title == "Renamed while live"
    assert newest.peak_viewers == 12
    assert [b.id for b in await store.broadcasts.list("Alice", limit=1)] == [second]
    info = await store.channels.get("Alice")
    assert info is not None
    assert info.last_broadcast == newest
    assert await store.broadcasts.list("nobody") == []
    with pytest.raises(UnknownUser):
        await store.broadcasts.start("nobody")


async def test_unfinished_broadcasts_are_closed_at_start_up(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    await store.users.create("bob", PASSWORD)
    await store.broadcasts.start("Alice")
    done = await store.broadcasts.start("bob")
    await store.broadcasts.end(done, 1)
    assert len(await store.broadcasts.close_unfinished()) == 1
    assert all(b.ended_at is not None for b in await store.broadcasts.list("Alice"))
    assert await store.broadcasts.close_unfinished() == {}


async def test_a_crashed_broadcast_ends_when_it_was_last_on_air(
    make_store: Callable[..., Awaitable[Store]],
) -> None:
    """The heartbeat (and a recording's last media) say when a broadcast left open by a
    killed process was last on air; the restart time never counts as broadcast time."""
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    now = [t0]
    store = await make_store(clock=lambda: now[0])
    for name in ("Alice", "bob", "carol", "dave"):
        await store.users.create(name, PASSWORD)
    alice = await store.broadcasts.start("Alice", "node-a")
    bob = await store.broadcasts.start("bob", "node-a")
    carol = await store.broadcasts.start("carol", "node-b")  # another node, still live
    dave = await store.broadcasts.start("dave")  # no node: from before migration 0006
    now[0] = t0 + timedelta(seconds=20)
    await store.broadcasts.seen({alice: 7, bob: 2, carol: 4})
    await store.broadcasts.seen({alice: 3})  # a peak is never lowered
    now[0] = t0 + timedelta(seconds=30)
    await store.broadcasts.seen({carol: 4, 999_999: 1})  # an unknown id is ignored
    # node-a is killed at t0 + 25 s and comes back a minute later.
    now[0] = t0 + timedelta(seconds=85)
    closed = await store.broadcasts.close_unfinished(
        "node-a",
        last_media={
            bob: t0 + timedelta(seconds=24.5),  # its recording's last write
            alice: t0 + timedelta(seconds=5),  # older than the heartbeat: the later wins
            dave: t0 + timedelta(hours=1),  # after now (a clock step): capped
        },
        stale_after=timedelta(minutes=5),
    )
    assert closed == {
        alice: t0 + timedelta(seconds=20),
        bob: t0 + timedelta(seconds=24.5),
        dave: t0 + timedelta(seconds=85),
    }
    (a,) = await store.broadcasts.list("alice")
    assert (a.ended_at, a.peak_viewers) == (t0 + timedelta(seconds=20), 7)
    (c,) = await store.broadcasts.list("carol")
    assert (c.ended_at, c.peak_viewers) == (None, 4)  # node-b's live broadcast: left alone
    await store.broadcasts.seen({alice: 50})  # a late heartbeat does not reopen or raise
    assert (await store.broadcasts.list("alice"))[0].peak_viewers == 7
    # node-b never comes back: once its heartbeat is stale, any node closes it.
    now[0] = t0 + timedelta(minutes=10)
    closed = await store.broadcasts.close_unfinished("node-a", stale_after=timedelta(minutes=5))
    assert closed == {carol: t0 + timedelta(seconds=30)}


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


async def test_timestamps_round_trip_as_aware_utc(
    make_store: Callable[..., Awaitable[Store]],
) -> None:
    # An instant given in another zone, with microseconds.
    moment = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    store = await make_store(clock=fixed_clock(moment))
    created, _ = await store.users.create("Alice", PASSWORD)
    broadcast = await store.broadcasts.start("Alice")
    await store.broadcasts.end(broadcast, 1)
    user = await store.users.get("Alice")
    (past,) = await store.broadcasts.list("Alice")
    info = await store.channels.get("Alice")
    assert user is not None
    assert info is not None
    for value in (
        created.created_at,
        user.created_at,
        past.started_at,
        past.ended_at,
        info.stream_key_created_at,
    ):
        assert value == moment
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo is UTC
        assert value.hour == 23  # 01:30 at +02:00 is 23:30 UTC the day before


async def test_naive_datetimes_are_refused(store: Store) -> None:
    async with AsyncSession(store.engine) as s:
        s.add(
            CategoryRow(slug="naive", name="Naive", is_game=False, created_at=datetime(2024, 1, 1))
        )
        with pytest.raises(StatementError, match="naive datetime"):
            await s.flush()
