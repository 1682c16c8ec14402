"""Accounts: username and password rules, case-insensitive uniqueness, argon2 hashes,
log-in (wrong password, unknown user, suspended), and registration races."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import (
    Argon2Params,
    InvalidUsername,
    Store,
    UnknownUser,
    User,
    UsernameTaken,
    WeakPassword,
)
from strom.store.models import ChannelRow, UserRow

PASSWORD = "correct horse battery"


async def _password_hash(store: Store, username: str) -> str:
    async with AsyncSession(store.engine) as s:
        found = await s.scalar(
            select(UserRow.password_hash).where(UserRow.username_key == username.lower())
        )
    assert found is not None
    return found


async def test_create_user_makes_a_user_and_a_channel(store: Store) -> None:
    user, key = await store.users.create("Alice", PASSWORD)
    assert user.username == "Alice"
    assert not user.is_admin
    assert not user.suspended
    assert user.last_online_at is None
    assert len(key) >= 43
    channel = await store.channels.get("Alice")
    assert channel is not None
    assert channel.username == "Alice"
    assert channel.title == ""
    assert channel.category is None
    assert channel.last_broadcast is None
    admin, _ = await store.users.create("root_op", PASSWORD, admin=True)
    assert admin.is_admin


async def test_usernames_are_unique_ignoring_case(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    for twin in ("alice", "ALICE", "aLiCe"):
        with pytest.raises(UsernameTaken) as exc:
            await store.users.create(twin, PASSWORD)
        assert exc.value.http_status == 409
    found = await store.users.get("aLICE")
    assert found is not None
    assert found.username == "Alice"  # displayed as registered
    assert await store.users.get("bob") is None
    assert await store.users.get("not a name!") is None


async def test_username_rules(store: Store) -> None:
    bad = ["ab", "a" * 26, "al ice", "alice!", "al-ice", "ålice", "", "admin", "Live", "API"]
    for name in bad:
        with pytest.raises(InvalidUsername) as exc:
            await store.users.create(name, PASSWORD)
        assert exc.value.http_status == 422
        assert exc.value.field == "username"
    for name in ("abc", "a" * 25, "under_score_9", "9lives"):
        user, _ = await store.users.create(name, PASSWORD)
        assert user.username == name
    async with AsyncSession(store.engine) as s:
        assert await s.scalar(select(func.count()).select_from(UserRow)) == 4


async def test_password_rules(store: Store) -> None:
    for password in (
        "short",
        "",
        "Alice123",
        "alice123",
        "password123",
        "aaaaaaaaaaaa",
        "x" * 1025,
    ):
        with pytest.raises(WeakPassword) as exc:
            await store.users.create("Alice123", password)
        assert exc.value.http_status == 422
        assert exc.value.field == "password"
    assert await store.users.get("Alice123") is None


async def test_passwords_are_stored_as_argon2id(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    stored = await _password_hash(store, "alice")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_default_argon2_cost_is_rfc9106() -> None:
    assert Argon2Params() == Argon2Params(time_cost=3, memory_cost=65536, parallelism=4)


async def test_authenticate(store: Store) -> None:
    created, _ = await store.users.create("Alice", PASSWORD)
    user = await store.users.authenticate("alice", PASSWORD)  # any case
    assert user is not None
    assert user.id == created.id
    assert user.username == "Alice"
    assert user.last_online_at is not None
    assert await store.users.authenticate("Alice", PASSWORD + "!") is None
    assert await store.users.authenticate("Alice", "") is None
    assert await store.users.authenticate("nobody", PASSWORD) is None
    assert await store.users.authenticate("no such name!", PASSWORD) is None
    assert await store.users.authenticate("Alice", "x" * 100_000) is None


async def test_suspended_users_cannot_log_in(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    await store.users.set_suspended("alice", True)
    user = await store.users.get("Alice")
    assert user is not None
    assert user.suspended
    assert await store.users.authenticate("Alice", PASSWORD) is None
    await store.users.set_suspended("alice", False)
    assert await store.users.authenticate("Alice", PASSWORD) is not None
    with pytest.raises(UnknownUser) as exc:
        await store.users.set_suspended("nobody", True)
    assert exc.value.http_status == 404


async def test_hash_is_upgraded_when_the_cost_changes(
    store: Store, make_store: Callable[..., Awaitable[Store]]
) -> None:
    await store.users.create("Alice", PASSWORD)
    before = await _password_hash(store, "alice")
    assert "t=1," in before
    stronger = await make_store(argon2=Argon2Params(time_cost=2, memory_cost=16, parallelism=1))
    assert await stronger.users.authenticate("Alice", PASSWORD) is not None
    after = await _password_hash(store, "alice")
    assert after != before
    assert "t=2," in after
    assert await store.users.authenticate("Alice", PASSWORD) is not None  # still verifies
    assert await stronger.users.authenticate("Alice", "wrong password") is None


async def test_set_password(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    await store.users.set_password("alice", "a new long passphrase")
    assert await store.users.authenticate("Alice", PASSWORD) is None
    assert await store.users.authenticate("Alice", "a new long passphrase") is not None
    with pytest.raises(WeakPassword):
        await store.users.set_password("alice", "short")


async def test_concurrent_registrations_of_one_name(store: Store) -> None:
    names = ["Racer", "racer", "RACER", "rAcEr"]
    results = await asyncio.gather(
        *(store.users.create(name, PASSWORD) for name in names), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, UsernameTaken)]
    assert len(created) == 1, results
    assert len(refused) == len(names) - 1, results
    user, key = created[0]
    assert isinstance(user, User)
    assert await store.channels.resolve(key) == user.username
    async with AsyncSession(store.engine) as s:
        assert await s.scalar(select(func.count()).select_from(UserRow)) == 1
        assert await s.scalar(select(func.count()).select_from(ChannelRow)) == 1


async def test_one_channel_per_user(store: Store) -> None:
    user, _ = await store.users.create("Alice", PASSWORD)
    channel = await store.channels.get("Alice")
    assert channel is not None
    async with AsyncSession(store.engine) as s:
        s.add(
            ChannelRow(
                user_id=user.id,
                title="second",
                description="",
                stream_key_hash="0" * 64,
                stream_key_created_at=channel.stream_key_created_at,
            )
        )
        with pytest.raises(IntegrityError):
            await s.commit()


async def test_touch_last_online(store: Store) -> None:
    user, _ = await store.users.create("Alice", PASSWORD)
    await store.users.touch_last_online(user.id)
    found = await store.users.get("alice")
    assert found is not None
    assert found.last_online_at is not None
    assert found.last_online_at >= user.created_at


async def test_the_unique_key_decides_a_race_the_early_check_misses(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def nobody(username: str) -> None:
        return None

    # Both registrations pass the look-up before hashing; the database must refuse one.
    monkeypatch.setattr(store.users, "_row", nobody)
    results = await asyncio.gather(
        store.users.create("Racer", PASSWORD),
        store.users.create("racer", PASSWORD),
        return_exceptions=True,
    )
    assert sum(isinstance(r, tuple) for r in results) == 1, results
    assert sum(isinstance(r, UsernameTaken) for r in results) == 1, results
