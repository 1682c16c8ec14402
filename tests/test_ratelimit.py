"""strom.ratelimit: token buckets and per-address connection slots, with time passed in."""

from __future__ import annotations

import logging

import pytest

from strom.ratelimit import (
    AddressSlots,
    KeyedBuckets,
    LeakyCounts,
    RefusalLog,
    SlotLimits,
    TokenBucket,
    address_key,
    parse_networks,
)


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 0.5  # one token comes back after half a second
    assert bucket.take(0.5) == 0.0


def test_keyed_buckets_are_independent_and_bounded() -> None:
    buckets = KeyedBuckets(rate=1.0, burst=1, max_keys=2)
    assert buckets.allow("a", 0.0)
    assert not buckets.allow("a", 0.0)
    assert buckets.allow("b", 0.0)
    buckets.allow("c", 0.0)
    assert len(buckets) == 2


def test_wait_peeks_without_taking_and_forget_refills() -> None:
    buckets = KeyedBuckets(rate=0.5, burst=2)
    assert buckets.wait("a", 0.0) == 0.0  # an unknown key waits for nothing...
    assert len(buckets) == 0  # ...and is not remembered for asking
    assert buckets.take("a", 0.0) == buckets.take("a", 0.0) == 0.0
    assert buckets.wait("a", 0.0) == 2.0
    assert buckets.wait("a", 0.0) == 2.0  # asking took nothing
    assert buckets.wait("a", 1.0) == 1.0
    buckets.forget("a")
    assert buckets.wait("a", 1.0) == 0.0


def test_leaky_counts_drain_and_are_bounded() -> None:
    counts = LeakyCounts(rate=1.0, max_keys=2)
    assert counts.add("a", 0.0) == 1.0
    assert counts.add("a", 0.0) == 2.0
    assert counts.level("a", 1.5) == 0.5
    assert counts.level("a", 10.0) == 0.0
    assert counts.add("a", 10.0, 3.0) == 3.0
    counts.add("b", 10.0)
    counts.add("c", 10.0)
    assert len(counts) == 2
    assert counts.level("a", 10.0) == 0.0  # the least recently touched went


def test_address_key_groups_ipv6_by_64_and_unmaps_ipv4() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:3::4") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2:3::4") != address_key("2001:db8:1:3::1")


def test_slots_refuse_past_the_per_address_limit_and_free_on_release() -> None:
    slots = AddressSlots(SlotLimits(per_address=2, total=3))
    assert slots.acquire("10.0.0.1") is None
    assert slots.acquire("10.0.0.1") is None
    reason = slots.acquire("10.0.0.1")
    assert reason is not None
    assert "10.0.0.1" in reason
    assert slots.acquire("10.0.0.2") is None
    assert slots.acquire("10.0.0.3") == "too many connections"  # the total
    slots.release("10.0.0.1")
    assert slots.acquire("10.0.0.1") is None
    assert slots.refused == 2


def test_exempt_networks_are_counted_but_not_limited_per_address() -> None:
    slots = AddressSlots(SlotLimits(per_address=1, exempt=parse_networks(["127.0.0.0/8"])))
    assert slots.acquire("127.0.0.1") is None
    assert slots.acquire("127.0.0.1") is None
    assert slots.count("127.0.0.1") == 2
    assert slots.acquire("10.0.0.1") is None
    assert slots.acquire("10.0.0.1") is not None


def test_refusal_log_writes_a_few_lines_per_flood_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.refusals")
    refusals = RefusalLog(logger, interval=10.0, burst=2)
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for i in range(1000):  # a flood in one instant
            refusals.warning("chat", 0.0, "chat %s refused", i)
        refusals.warning("push", 0.0, "push refused")  # another kind has its own budget
        refusals.warning("chat", 10.0, "chat %s refused", "later")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "chat 0 refused",
        "chat 1 refused",
        "more chat refusals: counted, not logged, for a while",
        "push refused",
        "chat later refused (998 more chat refusals since the last line, not logged)",
    ]


def test_spending_goes_into_debt_and_the_rate_pays_it_back() -> None:
    """Bytes are counted once read: a large read may overdraw, and the bucket says so
    until the rate has paid the debt back."""
    bucket = TokenBucket(rate=100.0, burst=100, now=0.0)
    assert bucket.spend(0.0, 80)
    assert not bucket.spend(0.0, 70)  # 50 in debt
    assert not bucket.spend(0.4, 0)  # -10
    assert bucket.spend(0.6, 0)
