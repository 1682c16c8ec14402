"""Outbound go-live webhooks: when a channel goes live, every follower who set a webhook
URL gets a signed JSON POST.

The request::

    POST <the follower's URL>
    Content-Type: application/json
    User-Agent: Strom/<version> (webhook)
    X-Strom-Event: live
    X-Strom-Delivery: <32 hex digits, the same on the retry>
    X-Strom-Timestamp: <UNIX seconds when this attempt was sent>
    X-Strom-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the follower's secret>

    {"event":"live","channel":"alice","title":"Speedrun","url":"https://site/alice",
     "started_at":"2025-02-15T18:04:05Z"}

A receiver recomputes the HMAC over the raw body bytes with its secret and compares in
constant time; ``started_at`` (signed) tells an old delivery replayed later.

Safety: the follower chooses the URL, so the sender is careful where it connects.
Redirects are not followed; only public addresses are called unless
``allow_private`` (loopback, private, link-local, carrier-grade NAT, multicast and
reserved ranges are refused, for names as well as literal addresses, and the address
checked is the one connected to: the resolver itself filters, so a name cannot resolve to
a public address when checked and a private one when used); short timeouts; at most
``concurrency`` requests at once; one retry (after ``retry_delay``) for a network error,
a timeout, 429 or 5xx. A failure is logged with the URL's scheme and host only (paths
and query strings of webhook URLs often hold tokens), never with the secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from strom import __version__
from strom.settings import Settings, section, setting
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Strom-Signature"
TIMESTAMP_HEADER = "X-Strom-Timestamp"
DELIVERY_HEADER = "X-Strom-Delivery"
EVENT_HEADER = "X-Strom-Event"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookSource(Protocol):
    """Where the sender finds who to call (``Store.webhooks``)."""

    async def for_followers(self, channel: str) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class WebhookLimits:
    timeout: float = setting("webhook_timeout")  # seconds per attempt, connecting included
    concurrency: int = setting("webhook_concurrency")  # requests at once
    allow_private: bool = setting(
        "webhook_allow_private"
    )  # let webhooks reach loopback and private addresses
    retry_delay: float = 1.0  # seconds before the one retry
    cooldown: float = 300.0  # seconds: a channel that goes live again sooner notifies nobody

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookLimits:
        return section(cls, settings)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Strom-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): constant-time comparison."""
    return hmac.compare_digest(sign(secret, body), signature)


def live_body(channel: str, title: str, url: str, started_at: float) -> bytes:
    started = datetime.fromtimestamp(started_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"event": "live", "channel": channel, "title": title, "url": url, "started_at": started}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


#: IPv6 ranges refused outright: IPv4-compatible addresses (``::a.b.c.d``, deprecated by
#: RFC 4291 §2.5.5.1: nothing public lives there, and ``::7f00:1`` is loopback's twin),
#: SIIT's IPv4-translated ``::ffff:0:a.b.c.d`` (RFC 2765) and the local-use NAT64 prefix
#: (RFC 8215), whose translator is the site's own.
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48")
)
#: the well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 destination
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped (``::ffff:a.b.c.d``),
    6to4 (``2002:AABB:CCDD::/48``), Teredo (``2001::/32``: server and client) and NAT64
    (``64:ff9b::/96``)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, shared (100.64/10), multicast, reserved
    and unspecified addresses, and for IPv6 addresses that lead to such an IPv4 address
    (IPv4-mapped, 6to4, Teredo, NAT64) or to an IPv4 address at all by a deprecated or
    local-only translation (IPv4-compatible ``::/96``, SIIT, local-use NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a socket reaches the IPv4 address itself
            return _public(ip.ipv4_mapped)
        if any(ip in net for net in _REFUSED_V6):
            return False
        if not all(_public(v4) for v4 in embedded_ipv4(ip)):
            return False
    return _public(ip)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def safe_url(url: str) -> str:
    """The URL as a log line may show it: scheme and host, no credentials, path or query."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}/…"
    except ValueError:
        return "<unreadable URL>"


class PrivateAddress(OSError):
    """The webhook's host is (or resolves only to) a non-public address."""


class PublicResolver(AbstractResolver):
    """Resolves names to their public addresses only; a name with none is refused."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public_address(r["host"])]
        if not public:
            raise PrivateAddress(f"{host} has no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


class WebhookSender:
    """Sends go-live webhooks from its own tasks; :meth:`stop` ends them."""

    def __init__(
        self,
        source: WebhookSource,
        limits: WebhookLimits | None = None,
        *,
        public_url: str = "http://localhost:8080",
    ) -> None:
        self.source = source
        self.limits = limits or WebhookLimits()
        #: the site's address, for the channel link in the body
        self.public_url = public_url
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks = TaskSet("webhooks")
        self._last_notice: dict[str, float] = {}
        self.sent = 0
        self.failed = 0

    # --- lifecycle -----------------------------------------------------------------------

    def _client(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._slots is None:
            limits = self.limits
            resolver = None if limits.allow_private else PublicResolver()
            connector = aiohttp.TCPConnector(
                limit=limits.concurrency, resolver=resolver, force_close=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=limits.timeout, connect=limits.timeout),
                headers={"User-Agent": f"Strom/{__version__} (webhook)"},
                trust_env=False,  # no proxy from the environment: we check where we connect
                auto_decompress=False,
            )
            self._slots = asyncio.Semaphore(limits.concurrency)
        return self._session, self._slots

    async def stop(self) -> None:
        await self._tasks.close(cancel=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- events --------------------------------------------------------------------------

    def went_live(self, channel: str, title: str, started_at: float) -> None:
        """``channel`` went live: call its followers' webhooks (in the background). A
        channel that went live less than ``cooldown`` seconds ago notifies nobody again
        (a flapping connection must not flood its followers)."""
        now = time.monotonic()
        last = self._last_notice.get(channel.lower())
        if last is not None and now - last < self.limits.cooldown:
            log.info("channel %s: live again within %.0f s: webhooks not called again",
                     channel, self.limits.cooldown)  # fmt: skip
            return
        self._last_notice[channel.lower()] = now
        self._tasks.spawn(self.notify_live(channel, title, started_at))

    async def notify_live(self, channel: str, title: str, started_at: float) -> int:
        """Call every follower's webhook; returns how many answered with success."""
        try:
            hooks = await self.source.for_followers(channel)
        except Exception as exc:
            log.warning("channel %s: webhooks not sent: cannot read them (%s)", channel, exc)
            return 0
        if not hooks:
            return 0
        page = f"{self.public_url.rstrip('/')}/{quote(channel)}"
        body = live_body(channel, title, page, started_at)
        results = await asyncio.gather(
            *(self.deliver(url, secret, body, channel=channel) for url, secret in hooks)
        )
        delivered = sum(results)
        log.info("channel %s: live webhooks: %d of %d delivered", channel, delivered, len(hooks))
        return delivered

    async def deliver(self, url: str, secret: str, body: bytes, *, channel: str = "") -> bool:
        """POST ``body`` to ``url``, signed; one retry for a transient failure."""
        session, slots = self._client()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: "live",
            DELIVERY_HEADER: secrets.token_hex(16),
            SIGNATURE_HEADER: sign(secret, body),
        }
        failure = ""
        for attempt in (1, 2):
            if attempt == 2:
                await asyncio.sleep(self.limits.retry_delay)
            headers[TIMESTAMP_HEADER] = str(int(time.time()))
            async with slots:
                failure, retry = await self._attempt(session, url, body, headers)
            if not failure:
                self.sent += 1
                return True
            if not retry:
                break
            log.debug("webhook %s: %s; retrying once", safe_url(url), failure)
        self.failed += 1
        log.warning("webhook %s (channel %s): %s", safe_url(url), channel, failure)
        return False

    async def _attempt(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[str, bool]:
        """One POST: ``("", False)`` on success, else (what failed, worth a retry)."""
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            return "not a valid URL", False
        if not self.limits.allow_private and _is_ip(host) and not is_public_address(host):
            return f"refused: {host} is not a public address", False
        try:
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except PrivateAddress as exc:
            return f"refused: {exc}", False
        except TimeoutError:
            return f"no answer within {self.limits.timeout:g} s", True
        except aiohttp.InvalidURL:
            return "not a valid URL", False
        except (aiohttp.ClientError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, PrivateAddress) else None
            if cause is not None:
                return f"refused: {cause}", False
            return f"cannot connect: {type(exc).__name__}", True
        if 200 <= status < 300:
            return "", False
        if 300 <= status < 400:
            return f"answered {status}: webhooks do not follow redirects", False
        return f"answered {status}", status in RETRY_STATUSES


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
