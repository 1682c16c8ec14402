"""Channels (title, description, category), their stream keys (shown once, refused after a
reset, refused for suspended users) and the categories they are filed under."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import (
    CategoryExists,
    InvalidCategory,
    InvalidChannel,
    Store,
    UnknownCategory,
    UnknownUser,
)
from strom.store.categories import INITIAL_CATEGORIES, slugify
from strom.store.models import ChannelRow, UserRow
from tests.helpers.store import dump_rows

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


async def test_stream_key_resolves_to_the_channel(store: Store) -> None:
    _, key = await store.users.create("Alice", PASSWORD)
    _, other = await store.users.create("bob", PASSWORD)
    assert key != other
    assert await store.channels.resolve(key) == "Alice"
    assert await store.channels.resolve(other) == "bob"
    assert await store.channels.resolve(key.upper()) is None
    assert await store.channels.resolve(key[:-1]) is None
    assert await store.channels.resolve("") is None
    assert await store.channels.resolve("k" * 100_000) is None


async def test_reset_key_refuses_the_old_one(store: Store) -> None:
    _, old = await store.users.create("Alice", PASSWORD)
    before = await store.channels.get("Alice")
    new = await store.channels.reset_stream_key("alice")
    assert new != old
    assert await store.channels.resolve(old) is None
    assert await store.channels.resolve(new) == "Alice"
    after = await store.channels.get("Alice")
    assert before is not None
    assert after is not None
    assert after.stream_key_created_at >= before.stream_key_created_at
    assert new not in await dump_rows(store)
    with pytest.raises(UnknownUser):
        await store.channels.reset_stream_key("nobody")


async def test_suspended_users_cannot_publish(store: Store) -> None:
    _, key = await store.users.create("Alice", PASSWORD)
    await store.users.set_suspended("Alice", True)
    assert await store.channels.resolve(key) is None
    await store.users.set_suspended("Alice", False)
    assert await store.channels.resolve(key) == "Alice"


async def test_stream_key_hashes_are_unique(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    await store.users.create("bob", PASSWORD)
    async with AsyncSession(store.engine) as s:
        alice_hash = await s.scalar(
            select(ChannelRow.stream_key_hash)
            .join(UserRow, UserRow.id == ChannelRow.user_id)
            .where(UserRow.username_key == "alice")
        )
        bob_id = await s.scalar(select(UserRow.id).where(UserRow.username_key == "bob"))
        with pytest.raises(IntegrityError):
            await s.execute(
                update(ChannelRow)
                .where(ChannelRow.user_id == bob_id)
                .values(stream_key_hash=alice_hash)
            )


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
