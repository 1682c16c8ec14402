"""Rate and connection limits: one home for token buckets and per-address slots.

Nothing here reads a clock or touches a socket: callers pass ``now`` in (the event loop's
``loop.time()`` or ``time.monotonic()``), so every limit is testable with a fake time.

* :class:`TokenBucket` — ``burst`` actions at once, refilled at ``rate`` per second.
* :class:`KeyedBuckets` — one bucket per key (address, user), bounded in memory.
* :class:`LeakyCounts` — a count per key that drains at a steady rate (recent failures
  of an account, say), never refusing anything itself.
* :class:`AddressSlots` — at most N open connections per client address (IPv4 exact,
  IPv6 per /64: one subscriber usually holds a whole /64), plus networks an operator
  exempts (a reverse proxy, a load generator).
* :class:`RefusalLog` — log lines about refused clients, rate-limited per kind.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; one per action."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 if there were enough, else the seconds until there
        will be (nothing is taken then)."""
        wait = self.wait(now, cost)
        if wait == 0.0:
            self._tokens -= cost
        return wait

    def wait(self, now: float, cost: float = 1.0) -> float:
        """The seconds until ``cost`` tokens are there (0.0: now), taking none."""
        if now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._tokens >= cost:
            return 0.0
        return (cost - self._tokens) / self.rate

    def spend(self, now: float, cost: float) -> bool:
        """Spend ``cost`` tokens even past empty (for a size known once it has arrived,
        like bytes read): False while the bucket is in debt."""
        if now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
        self._tokens -= cost
        return self._tokens >= 0


class KeyedBuckets:
    """A :class:`TokenBucket` per key, the least recently used forgotten past ``max_keys``
    (forgetting one hands its key a full bucket: a bounded, never-locking error)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """0.0 if ``key`` may act now, else the seconds it must wait."""
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst, now)
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return bucket.take(now, cost)

    def allow(self, key: str, now: float) -> bool:
        return self.take(key, now) == 0.0

    def wait(self, key: str, now: float, cost: float = 1.0) -> float:
        """The seconds ``key`` must wait for ``cost`` tokens (0.0: none), taking none."""
        bucket = self._buckets.get(key)
        return bucket.wait(now, cost) if bucket is not None else 0.0

    def forget(self, key: str) -> None:
        """Give ``key`` a full bucket again."""
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


class LeakyCounts:
    """A count per key that drains at ``rate`` per second down to zero; the least
    recently touched keys are forgotten past ``max_keys`` (their count back to zero)."""

    def __init__(self, rate: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self._max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def level(self, key: str, now: float) -> float:
        found = self._counts.get(key)
        if found is None:
            return 0.0
        count, last = found
        return max(0.0, count - max(0.0, now - last) * self.rate)

    def add(self, key: str, now: float, amount: float = 1.0) -> float:
        """Add ``amount`` to ``key``'s count; returns the new count."""
        count = self.level(key, now) + amount
        self._counts.pop(key, None)
        self._counts[key] = (count, now)
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
        return count

    def __len__(self) -> int:
        return len(self._counts)


def address_key(host: str) -> str:
    """The key a client address is counted under: IPv4 (and IPv4-mapped IPv6) exactly,
    other IPv6 by its /64; anything unparsable (a Unix socket) as itself."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def parse_networks(raw: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (``127.0.0.0/8``, ``::1``) to networks; ValueError on a bad one."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in raw if item.strip())


def in_networks(host: str, networks: tuple[IPNetwork, ...]) -> bool:
    if not networks:
        return False
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


@dataclass(frozen=True)
class SlotLimits:
    #: connections open at once from one address (0: no per-address limit)
    per_address: int
    #: connections open at once in all (0: no limit)
    total: int = 0
    #: addresses not counted per address (still counted in the total)
    exempt: tuple[IPNetwork, ...] = ()


class AddressSlots:
    """Open connections counted per client address.

    ``acquire(host)`` returns None when the connection may proceed (the caller must
    ``release(host)`` exactly once when it closes), else the reason it is refused.
    """

    def __init__(self, limits: SlotLimits) -> None:
        self.limits = limits
        self._open: dict[str, int] = {}
        self.total = 0
        self.refused = 0

    def acquire(self, host: str) -> str | None:
        limits = self.limits
        if limits.total and self.total >= limits.total:
            self.refused += 1
            return "too many connections"
        key = address_key(host)
        count = self._open.get(key, 0)
        limited = limits.per_address and count >= limits.per_address
        if limited and not in_networks(host, limits.exempt):
            self.refused += 1
            return f"too many connections from {key} (at most {limits.per_address})"
        self._open[key] = count + 1
        self.total += 1
        return None

    def release(self, host: str) -> None:
        key = address_key(host)
        count = self._open.get(key, 0)
        if count <= 1:
            self._open.pop(key, None)
        else:
            self._open[key] = count - 1
        if count:
            self.total -= 1

    def count(self, host: str) -> int:
        return self._open.get(address_key(host), 0)

    def __len__(self) -> int:
        """How many addresses hold a connection now."""
        return len(self._open)


class RefusalLog:
    """Log lines for refused clients that a flood cannot multiply: per kind of refusal,
    ``burst`` lines at once and then one per ``interval`` seconds; each line that follows
    a silence says how many refusals went unlogged (time passed in, like the rest)."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, burst: int = 5) -> None:
        self._logger = logger
        self._buckets = KeyedBuckets(1.0 / interval, burst, max_keys=1000)
        self._unlogged: dict[str, int] = {}

    def warning(self, kind: str, now: float, msg: str, *args: object) -> None:
        """Log ``msg % args`` as a warning unless ``kind`` was logged too often lately."""
        if not self._buckets.allow(kind, now):
            if kind in self._unlogged:
                self._unlogged[kind] += 1
            elif len(self._unlogged) < 1000:
                self._unlogged[kind] = 1
                self._logger.warning("more %s refusals: counted, not logged, for a while", kind)
            return
        unlogged = self._unlogged.pop(kind, 0)
        if unlogged:
            msg += " (%d more %s refusals since the last line, not logged)"
            args = (*args, unlogged, kind)
        self._logger.warning(msg, *args)
