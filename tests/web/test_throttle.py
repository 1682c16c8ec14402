"""The log-in throttle's rules, with time passed in: tight per (account, address), loose
per address, and per account only a growing delay that a known address skips."""

from __future__ import annotations

from strom.web.throttle import FIRST_DELAY, WINDOW, LoginLimits, LoginThrottle

LIMITS = LoginLimits(
    per_address_per_minute=10,
    failures_per_account_address=5,
    account_delay_after=10,
    account_delay_max=10.0,
)


def fail(throttle: LoginThrottle, account: str, address: str, now: float, times: int) -> None:
    for _ in range(times):
        verdict = throttle.check_login(account, address, now)
        assert not verdict.retry_after
        throttle.failed(account, address, now)


def test_one_address_guessing_one_account_waits_the_others_do_not() -> None:
    throttle = LoginThrottle(LIMITS)
    fail(throttle, "alice", "10.0.0.1", 0.0, 5)
    refused = throttle.check_login("Alice", "10.0.0.1", 1.0)  # any case: one account
    assert refused.retry_after > 0
    assert "wrong passwords" in refused.reason
    # Neither another address nor another account is held back.
    assert not throttle.check_login("alice", "10.0.0.2", 1.0).retry_after
    assert not throttle.check_login("bob", "10.0.0.1", 1.0).retry_after
    # One more try comes back every WINDOW / 5 seconds.
    assert not throttle.check_login("alice", "10.0.0.1", WINDOW / 5 + 1).retry_after


def test_the_right_password_forgives_that_address() -> None:
    throttle = LoginThrottle(LIMITS)
    fail(throttle, "alice", "10.0.0.1", 0.0, 4)
    throttle.succeeded("alice", "10.0.0.1", 0.0)
    fail(throttle, "alice", "10.0.0.1", 0.0, 5)


def test_one_address_is_limited_across_accounts() -> None:
    throttle = LoginThrottle(LIMITS)
    for n in range(10):
        assert not throttle.check_login(f"user{n}", "10.0.0.1", 0.0).retry_after
    assert throttle.check_login("user10", "10.0.0.1", 0.0).retry_after == 6.0  # 10 a minute
    assert not throttle.check_login("user10", "10.0.0.2", 0.0).retry_after


def test_an_account_under_attack_gets_growing_delays_never_a_refusal() -> None:
    throttle = LoginThrottle(LIMITS)
    throttle.succeeded("alice", "192.0.2.1", 0.0)  # her usual address
    for n in range(10):  # a botnet: one guess from each of many addresses
        fail(throttle, "alice", f"10.0.{n}.1", 1.0, 1)
    delays = []
    for n in range(10, 16):
        verdict = throttle.check_login("alice", f"10.0.{n}.1", 1.0)
        assert not verdict.retry_after
        delays.append(verdict.delay)
        throttle.failed("alice", f"10.0.{n}.1", 1.0)
    assert delays[0] == FIRST_DELAY
    assert delays == sorted(delays)
    assert delays[-1] == LIMITS.account_delay_max
    # Her own address: no delay. A fresh one: delayed, not refused.
    assert throttle.check_login("alice", "192.0.2.1", 1.0).delay == 0.0
    fresh = throttle.check_login("alice", "198.51.100.7", 1.0)
    assert (fresh.retry_after, fresh.delay) == (0.0, LIMITS.account_delay_max)
    # Other accounts are not slowed, and the count drains with time.
    assert throttle.check_login("bob", "198.51.100.8", 1.0).delay == 0.0
    assert throttle.check_login("alice", "198.51.100.9", 1.0 + 2 * WINDOW).delay == 0.0


def test_ipv6_addresses_count_per_64() -> None:
    throttle = LoginThrottle(LIMITS)
    fail(throttle, "alice", "2001:db8:1:2::1", 0.0, 5)
    assert throttle.check_login("alice", "2001:db8:1:2::ffff", 0.0).retry_after
    assert not throttle.check_login("alice", "2001:db8:1:3::1", 0.0).retry_after
