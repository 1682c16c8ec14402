"""Log-in sessions in the store, on every configured database: made, found, ended (one,
all, by a password change, by a suspension), expired, bounded per user, stored hashed; and
the per-node cache, which the node that ends a session forgets at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from strom.store import InvalidUsername, Store
from strom.store.sessions import SessionLimits
from tests.helpers.store import dump_rows

PASSWORD = "a long enough password"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

MakeStore = Callable[..., Awaitable[Store]]


async def test_a_session_is_found_by_its_token_and_ends(store: Store) -> None:
    user, _ = await store.users.create("Alice", PASSWORD)
    token, info = await store.sessions.create(user.id, user_agent="Firefox\x00", address="::1")
    found = await store.sessions.resolve(token)
    assert found is not None
    assert found.user.username == "Alice"
    assert found.session.id == info.id
    assert (found.session.user_agent, found.session.address) == ("Firefox", "::1")
    assert await store.sessions.resolve(token + "x") is None
    assert await store.sessions.resolve("") is None
    assert await store.sessions.resolve("x" * 10_000) is None
    await store.sessions.end(token)
    assert await store.sessions.resolve(token) is None
    await store.sessions.end(token)  # twice: nothing happens


async def test_tokens_are_stored_hashed(store: Store) -> None:
    user, _ = await store.users.create("alice", PASSWORD)
    token, _ = await store.sessions.create(user.id)
    assert token not in await dump_rows(store)


async def test_end_all_and_end_one_touch_only_that_user(store: Store) -> None:
    alice, _ = await store.users.create("alice", PASSWORD)
    bob, _ = await store.users.create("bob_b", PASSWORD)
    a1, _ = await store.sessions.create(alice.id)
    a2, info2 = await store.sessions.create(alice.id)
    b1, b_info = await store.sessions.create(bob.id)
    assert not await store.sessions.end_one(alice.id, b_info.id)  # not hers
    assert await store.sessions.resolve(b1) is not None
    assert await store.sessions.end_one(alice.id, info2.id)
    assert await store.sessions.resolve(a2) is None
    assert [s.id for s in await store.sessions.list(alice.id)] != []
    assert await store.sessions.end_all(alice.id) == 1
    assert await store.sessions.resolve(a1) is None
    assert await store.sessions.list(alice.id) == []
    assert await store.sessions.resolve(b1) is not None


async def test_password_change_and_suspension_end_every_session(store: Store) -> None:
    user, _ = await store.users.create("alice", PASSWORD)
    ended: list[tuple[int, str]] = []
    store.sessions.listeners.append(lambda user_id, why: ended.append((user_id, why)))
    token, _ = await store.sessions.create(user.id)
    await store.users.set_password("alice", "another long password")
    assert await store.sessions.resolve(token) is None
    token, _ = await store.sessions.create(user.id)
    await store.users.set_admin("alice", True)  # other changes keep sessions, seen at once
    found = await store.sessions.resolve(token)
    assert found is not None
    assert found.user.is_admin
    await store.users.set_suspended("alice", True)
    assert await store.sessions.resolve(token) is None
    await store.users.set_suspended("alice", False)
    assert await store.sessions.resolve(token) is None  # reinstating brings none back
    assert ended == [(user.id, "password changed"), (user.id, "account suspended")]


async def test_sessions_expire(make_store: MakeStore) -> None:
    now = [T0]
    store = await make_store(clock=lambda: now[0], sessions=SessionLimits(max_age=3600.0))
    user, _ = await store.users.create("alice", PASSWORD)
    token, _ = await store.sessions.create(user.id)
    now[0] = T0 + timedelta(minutes=59)
    store.sessions.cache.forget_user(user.id)
    assert await store.sessions.resolve(token) is not None
    now[0] = T0 + timedelta(minutes=61)
    store.sessions.cache.forget_user(user.id)
    assert await store.sessions.resolve(token) is None
    assert await store.sessions.list(user.id) == []
    await store.sessions.create(user.id)  # purges the expired row
    assert len(await store.sessions.list(user.id)) == 1


async def test_last_seen_is_written_at_most_every_few_minutes(make_store: MakeStore) -> None:
    now = [T0]
    store = await make_store(
        clock=lambda: now[0], sessions=SessionLimits(cache_seconds=0, touch_interval=300.0)
    )
    user, _ = await store.users.create("alice", PASSWORD)
    token, _ = await store.sessions.create(user.id)
    now[0] = T0 + timedelta(minutes=2)
    await store.sessions.resolve(token)
    assert (await store.sessions.list(user.id))[0].last_seen_at == T0
    now[0] = T0 + timedelta(minutes=6)
    await store.sessions.resolve(token)
    assert (await store.sessions.list(user.id))[0].last_seen_at == now[0]


async def test_one_user_holds_a_bounded_number_of_sessions(make_store: MakeStore) -> None:
    now = [T0]
    store = await make_store(clock=lambda: now[0], sessions=SessionLimits(max_per_user=3))
    user, _ = await store.users.create("alice", PASSWORD)
    tokens = []
    for n in range(5):
        now[0] = T0 + timedelta(seconds=n)
        tokens.append((await store.sessions.create(user.id))[0])
    assert len(await store.sessions.list(user.id)) == 3
    assert await store.sessions.resolve(tokens[0]) is None  # the least recently used went
    assert await store.sessions.resolve(tokens[4]) is not None


async def test_another_node_sees_an_end_within_its_cache_time(
    store: Store, make_store: MakeStore
) -> None:
    other = await make_store(sessions=SessionLimits(cache_seconds=0.3))
    user, _ = await store.users.create("alice", PASSWORD)
    token, _ = await store.sessions.create(user.id)
    assert await other.sessions.resolve(token) is not None  # cached there now
    await store.sessions.end(token)
    assert await store.sessions.resolve(token) is None  # at once here
    assert await other.sessions.resolve(token) is not None  # there: until the cache ends
    await asyncio.sleep(0.35)
    assert await other.sessions.resolve(token) is None


async def test_reserved_names_are_refused_in_any_case(store: Store) -> None:
    store.users.reserve_names(["demo", "Live-Cam"])
    for name in ("demo", "DEMO", "Demo"):
        with pytest.raises(InvalidUsername, match="belongs to a channel"):
            await store.users.create(name, PASSWORD)
    await store.users.create("demo2", PASSWORD)
