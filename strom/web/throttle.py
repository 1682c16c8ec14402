"""Password guessing, slowed without letting a stranger lock an account.

Three limits, after OWASP's authentication cheat sheet and django-axes' lock-out by
(username, address):

* **per (account, address)**, tight: a few wrong passwords for one account from one
  address, then that address waits (429 with ``Retry-After``) and gets one more try every
  few minutes. This is what stops one machine guessing one account.
* **per address**, loose: log-ins and sign-ups from one address, any account; it bounds
  one machine trying many accounts (credential stuffing) without troubling a household
  or an office behind one NAT address.
* **per account**, never a refusal: after many wrong passwords for one account from
  anywhere, log-ins for it from addresses it has not logged in from are *delayed*
  (growing, up to a cap) before the password is checked. A refusal per account would be
  a lock-out anyone can cause (eleven wrong passwords, then one every few seconds, kept
  the real owner out); a delay costs a guesser spread over many addresses time and
  costs the owner a few seconds once. Addresses the account logged in from recently skip
  it. The delay comes before the check, so its length says nothing about the password.

Counts live in this process (one node): several nodes each count on their own, which
multiplies the per-address allowance by the number of nodes, not the per-account delay's
effect on one guesser. Time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from strom.ratelimit import KeyedBuckets, LeakyCounts, address_key
from strom.settings import Settings, section, setting

#: seconds over which the per-(account, address) allowance comes back, and over which an
#: account's count of wrong passwords drains by its threshold
WINDOW = 15 * 60.0
#: the first delay once an account is past its threshold; it doubles with each failure
FIRST_DELAY = 0.5
#: how long a successful log-in makes its address "known" for that account
KNOWN_FOR = 30 * 86400.0
MAX_KEYS = 100_000


@dataclass(frozen=True)
class LoginLimits:
    #: attempts (log-ins and sign-ups) from one address per minute, any account
    per_address_per_minute: int = setting("login_attempts_per_minute")
    #: wrong passwords for one account from one address before it must wait; one more
    #: comes back every ``WINDOW / failures_per_account_address`` seconds (3 minutes)
    failures_per_account_address: int = setting("login_failures_per_account_address")
    #: wrong passwords for one account (any address, draining over ``WINDOW``) before its
    #: log-ins from unknown addresses are delayed
    account_delay_after: int = setting("login_delay_after_failures")
    #: longest delay (seconds)
    account_delay_max: float = setting("login_delay_max")

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return section(cls, settings)


@dataclass(frozen=True)
class Verdict:
    #: > 0: refuse now (429), the client may retry after this many seconds
    retry_after: float = 0.0
    #: seconds to wait before checking the password (the per-account slow-down)
    delay: float = 0.0
    #: for the log line when refused
    reason: str = ""


class LoginThrottle:
    def __init__(self, limits: LoginLimits | None = None) -> None:
        self.limits = limits = limits or LoginLimits()
        self._per_address = KeyedBuckets(
            rate=limits.per_address_per_minute / 60.0,
            burst=limits.per_address_per_minute,
            max_keys=MAX_KEYS,
        )
        self._per_pair = KeyedBuckets(
            rate=limits.failures_per_account_address / WINDOW,
            burst=limits.failures_per_account_address,
            max_keys=MAX_KEYS,
        )
        self._per_account = LeakyCounts(rate=limits.account_delay_after / WINDOW, max_keys=MAX_KEYS)
        self._known: OrderedDict[str, float] = OrderedDict()

    def check_address(self, address: str, now: float) -> Verdict:
        """One attempt from ``address`` (a sign-up, or the first step of a log-in)."""
        wait = self._per_address.take(address_key(address), now)
        if wait:
            return Verdict(retry_after=wait, reason="too many attempts from this address")
        return Verdict()

    def check_login(self, account: str, address: str, now: float) -> Verdict:
        """Before checking a password for ``account`` from ``address``."""
        pair = _pair(account, address)
        wait = self._per_pair.wait(pair, now)
        if wait:
            return Verdict(retry_after=wait, reason="too many wrong passwords for this account")
        verdict = self.check_address(address, now)
        if verdict.retry_after or self._is_known(pair, now):
            return verdict
        excess = self._per_account.level(_account(account), now) - self.limits.account_delay_after
        if excess < 0:
            return verdict
        delay = min(self.limits.account_delay_max, FIRST_DELAY * 2.0 ** min(excess, 32.0))
        return Verdict(delay=delay)

    def failed(self, account: str, address: str, now: float) -> None:
        """A wrong password (or no such account) for ``account`` from ``address``."""
        self._per_pair.take(_pair(account, address), now)
        self._per_account.add(_account(account), now)

    def succeeded(self, account: str, address: str, now: float) -> None:
        """The right password: this address is known for the account from now on, and its
        wrong passwords so far are forgiven (django-axes' reset on success)."""
        pair = _pair(account, address)
        self._per_pair.forget(pair)
        self._known.pop(pair, None)
        self._known[pair] = now
        while len(self._known) > MAX_KEYS:
            self._known.popitem(last=False)

    def _is_known(self, pair: str, now: float) -> bool:
        since = self._known.get(pair)
        return since is not None and now - since < KNOWN_FOR


def _account(account: str) -> str:
    return account.lower()


def _pair(account: str, address: str) -> str:
    return f"{account.lower()}\0{address_key(address)}"
