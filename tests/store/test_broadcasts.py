"""Broadcasts: what a channel was when it went live, its peak audience, and the end a
broadcast left open by a crash is given at the next start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from strom.store import Store, UnknownUser

PASSWORD = "correct horse battery"


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


async def test_a_broadcast_is_carried_on_within_the_grace_and_ended_after_it(
    make_store: Callable[..., Awaitable[Store]],
) -> None:
    """Several nodes: a channel going live carries on its open broadcast if that was on air
    within the grace (its publisher came back, to any node); the node that had it can no
    longer end it; past the grace a new broadcast starts and the old one ends when it was
    last on air."""
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    now = [t0]
    store = await make_store(clock=lambda: now[0])
    await store.users.create("Alice", PASSWORD)
    grace = timedelta(seconds=10)
    first, carried = await store.broadcasts.carry_on_or_start("alice", "node-a", within=grace)
    assert not carried
    # node-a's publisher drops at t0 + 4 s; it comes back to node-b at t0 + 9 s.
    now[0] = t0 + timedelta(seconds=4)
    await store.broadcasts.seen({first: 3}, node="node-a")
    now[0] = t0 + timedelta(seconds=9)
    assert await store.broadcasts.carry_on_or_start("alice", "node-b", within=grace) == (
        first,
        True,
    )
    # node-a's grace runs out later: the broadcast is node-b's, node-a neither ends it nor
    # marks it on air.
    now[0] = t0 + timedelta(seconds=30)
    await store.broadcasts.seen({first: 9}, node="node-a")
    await store.broadcasts.end(first, 9, node="node-a")
    (b,) = await store.broadcasts.list("alice")
    assert (b.ended_at, b.peak_viewers) == (None, 3)
    # node-b dies at t0 + 9 s (its last note); the publisher is back only at t0 + 30 s: a
    # new broadcast, and the old one ended when it was last on air.
    second, carried = await store.broadcasts.carry_on_or_start("alice", "node-a", within=grace)
    assert (second != first, carried) == (True, False)
    newest, oldest = await store.broadcasts.list("alice")
    assert (newest.id, newest.ended_at) == (second, None)
    assert (oldest.id, oldest.ended_at) == (first, t0 + timedelta(seconds=9))


async def test_a_restart_spares_what_may_still_be_carried_on(
    make_store: Callable[..., Awaitable[Store]],
) -> None:
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    now = [t0]
    store = await make_store(clock=lambda: now[0])
    await store.users.create("Alice", PASSWORD)
    await store.users.create("bob", PASSWORD)
    alice = await store.broadcasts.start("Alice", "node-a")
    now[0] = t0 + timedelta(seconds=30)
    bob = await store.broadcasts.start("bob", "node-a")
    now[0] = t0 + timedelta(seconds=35)
    spare = timedelta(seconds=10)
    # bob was on air 5 s ago: its publisher may come back; alice's grace is over.
    closed = await store.broadcasts.close_unfinished("node-a", spare_within=spare)
    assert closed == {alice: t0}
    now[0] = t0 + timedelta(seconds=45)
    assert await store.broadcasts.close_unfinished(spare_within=spare) == {
        bob: t0 + timedelta(seconds=30)
    }
