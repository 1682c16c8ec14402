"""The tables' column types: timestamps come back as the same aware UTC instants on every
database, and a naive one is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import Store
from strom.store.models import CategoryRow
from tests.helpers.store import fixed_clock

PASSWORD = "correct horse battery"


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
