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
from strom.store.store import MAX_API_TOKENS_PER_USER

from .conftest import dump_rows

PASSWORD = "correct horse battery"


async def test_stream_key_resolves_to_the_channel(store: Store) -> None:
    _, key = await store.create_user("Alice", PASSWORD)
    _, other = await store.create_user("bob", PASSWORD)
    assert key != other
    assert await store.resolve(key) == "Alice"
    assert await store.resolve(other) == "bob"
    assert await store.resolve(key.upper()) is None
    assert await store.resolve(key[:-1]) is None
    assert await store.resolve("") is None
    assert await store.resolve("k" * 100_000) is None


async def test_secrets_are_stored_only_as_hashes(store: Store) -> None:
    _, key = await store.create_user("Alice", PASSWORD)
    token = await store.create_api_token("Alice", "obs plugin")
    dump = await dump_rows(store)
    assert "Alice" in dump  # the dump does show the rows
    for secret in (key, token, PASSWORD):
        assert secret not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    info = await store.channel("alice")
    assert key not in repr(info)


async def test_reset_key_refuses_the_old_one(store: Store) -> None:
    _, old = await store.create_user("Alice", PASSWORD)
    before = await store.channel("Alice")
    new = await store.reset_stream_key("alice")
    assert new != old
    assert await store.resolve(old) is None
    assert await store.resolve(new) == "Alice"
    after = await store.channel("Alice")
    assert before is not None
    assert after is not None
    assert after.stream_key_created_at >= before.stream_key_created_at
    assert new not in await dump_rows(store)
    with pytest.raises(UnknownUser):
        await store.reset_stream_key("nobody")


async def test_suspended_users_cannot_publish(store: Store) -> None:
    _, key = await store.create_user("Alice", PASSWORD)
    await store.set_suspended("Alice", True)
    assert await store.resolve(key) is None
    await store.set_suspended("Alice", False)
    assert await store.resolve(key) == "Alice"


async def test_stream_key_hashes_are_unique(store: Store) -> None:
    await store.create_user("Alice", PASSWORD)
    await store.create_user("bob", PASSWORD)
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
    alice, _ = await store.create_user("Alice", PASSWORD)
    await store.create_user("bob", PASSWORD)
    token = await store.create_api_token("alice", "  streaming   client ")
    assert token.startswith("strom_")
    user = await store.resolve_api_token(token)
    assert user is not None
    assert user.id == alice.id
    assert await store.resolve_api_token(token + "x") is None
    assert await store.resolve_api_token("") is None
    (listed,) = await store.api_tokens("Alice")
    assert listed.name == "streaming client"
    assert listed.last_used_at is not None  # set by the resolve above
    assert token not in repr(listed)
    # Only the owner revokes.
    assert not await store.revoke_api_token("bob", listed.id)
    assert await store.resolve_api_token(token) is not None
    assert await store.revoke_api_token("Alice", listed.id)
    assert await store.resolve_api_token(token) is None
    assert await store.api_tokens("Alice") == []
    assert not await store.revoke_api_token("Alice", listed.id)


async def test_api_tokens_of_suspended_users_are_refused(store: Store) -> None:
    await store.create_user("Alice", PASSWORD)
    token = await store.create_api_token("Alice", "cli")
    await store.set_suspended("Alice", True)
    assert await store.resolve_api_token(token) is None
    await store.set_suspended("Alice", False)
    assert await store.resolve_api_token(token) is not None


async def test_api_token_limits(store: Store) -> None:
    await store.create_user("Alice", PASSWORD)
    for bad in ("", "   ", "x" * 65, "tab\x00name"):
        with pytest.raises(InvalidInput) as exc:
            await store.create_api_token("Alice", bad)
        assert exc.value.http_status == 422
    for i in range(MAX_API_TOKENS_PER_USER):
        await store.create_api_token("Alice", f"token {i}")
    with pytest.raises(TooManyTokens) as too_many:
        await store.create_api_token("Alice", "one more")
    assert too_many.value.http_status == 409
    with pytest.raises(UnknownUser):
        await store.create_api_token("nobody", "x")
