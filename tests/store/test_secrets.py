"""Stream keys and API tokens: shown once, stored only as a hash, refused after a reset or
a revocation, refused for suspended users."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import InvalidInput, Store, TooManyTokens, UnknownUser
from strom.store.models import ChannelRow, UserRow
from strom.store.tokens import MAX_API_TOKENS_PER_USER

from .conftest import dump_rows

PASSWORD = "correct horse battery"


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


async def test_secrets_are_stored_only_as_hashes(store: Store) -> None:
    _, key = await store.users.create("Alice", PASSWORD)
    token = await store.tokens.create("Alice", "obs plugin")
    dump = await dump_rows(store)
    assert "Alice" in dump  # the dump does show the rows
    for secret in (key, token, PASSWORD):
        assert secret not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    info = await store.channels.get("alice")
    assert key not in repr(info)


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


async def test_api_tokens(store: Store) -> None:
    alice, _ = await store.users.create("Alice", PASSWORD)
    await store.users.create("bob", PASSWORD)
    token = await store.tokens.create("alice", "  streaming   client ")
    assert token.startswith("strom_")
    user = await store.tokens.resolve(token)
    assert user is not None
    assert user.id == alice.id
    assert await store.tokens.resolve(token + "x") is None
    assert await store.tokens.resolve("") is None
    (listed,) = await store.tokens.list("Alice")
    assert listed.name == "streaming client"
    assert listed.last_used_at is not None  # set by the resolve above
    assert token not in repr(listed)
    # Only the owner revokes.
    assert not await store.tokens.revoke("bob", listed.id)
    assert await store.tokens.resolve(token) is not None
    assert await store.tokens.revoke("Alice", listed.id)
    assert await store.tokens.resolve(token) is None
    assert await store.tokens.list("Alice") == []
    assert not await store.tokens.revoke("Alice", listed.id)


async def test_api_tokens_of_suspended_users_are_refused(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    token = await store.tokens.create("Alice", "cli")
    await store.users.set_suspended("Alice", True)
    assert await store.tokens.resolve(token) is None
    await store.users.set_suspended("Alice", False)
    assert await store.tokens.resolve(token) is not None


async def test_api_token_limits(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    for bad in ("", "   ", "x" * 65, "tab\x00name"):
        with pytest.raises(InvalidInput) as exc:
            await store.tokens.create("Alice", bad)
        assert exc.value.http_status == 422
    for i in range(MAX_API_TOKENS_PER_USER):
        await store.tokens.create("Alice", f"token {i}")
    with pytest.raises(TooManyTokens) as too_many:
        await store.tokens.create("Alice", "one more")
    assert too_many.value.http_status == 409
    with pytest.raises(UnknownUser):
        await store.tokens.create("nobody", "x")
