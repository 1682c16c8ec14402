"""Go-live webhooks: each user may give one URL, called with a signed JSON body when a
channel they follow goes live (the sending is :mod:`strom.notify`'s). Reached as
``Store.webhooks``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import (
    WEBHOOK_URL_MAX,
    FollowRow,
    UserRow,
    UserWebhookRow,
)

#: most webhooks called for one go-live (a channel with more followers who set one
#: notifies the first ones, in the order they set them)
MAX_WEBHOOKS_PER_EVENT = 10_000


@dataclass(frozen=True)
class WebhookInfo:
    """A user's webhook as they may see it again (the secret is shown once, when set)."""

    url: str
    created_at: datetime


def check_webhook_url(url: str) -> str:
    """``url`` if Strom may call it: http or https, a host, at most 500 characters, no
    spaces or control characters. Whether its address is public is checked when it is
    called (addresses change)."""
    if not isinstance(url, str):
        raise InvalidInput("a webhook URL is text", "webhook_url")
    url = url.strip()
    if len(url) > WEBHOOK_URL_MAX:
        raise InvalidInput(f"a webhook URL has at most {WEBHOOK_URL_MAX} characters", "webhook_url")
    if q.CONTROL_CHARS.search(url) or any(c.isspace() for c in url):
        raise InvalidInput("a webhook URL has no spaces or control characters", "webhook_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidInput("that webhook URL cannot be read", "webhook_url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            "a webhook URL starts with https:// (or http://) and names a host", "webhook_url"
        )
    return url


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class WebhookStore:
    """The ``user_webhooks`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set(self, username: str, url: str | None) -> str | None:
        """Set ``username``'s go-live webhook (``None``: remove it). Returns the new signing
        secret, shown to the user this once; :class:`InvalidInput` for a URL Strom will
        not call."""
        checked = check_webhook_url(url) if url is not None else None
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            await s.execute(delete(UserWebhookRow).where(UserWebhookRow.user_id == user_id))
            if checked is None:
                return None
            secret = new_webhook_secret()
            s.add(
                UserWebhookRow(
                    user_id=user_id, url=checked, secret=secret, created_at=self._db.now()
                )
            )
            await s.flush()
            return secret

    async def get(self, username: str) -> WebhookInfo | None:
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            row = await s.get(UserWebhookRow, user_id)
            return WebhookInfo(row.url, row.created_at) if row is not None else None

    async def for_followers(self, channel: str) -> list[tuple[str, str]]:
        """``(url, secret)`` of each follower of ``channel`` with a webhook (suspended
        accounts left out). Carries secrets: for the sender only."""
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(UserWebhookRow.url, UserWebhookRow.secret)
                .join(FollowRow, FollowRow.follower_id == UserWebhookRow.user_id)
                .join(UserRow, UserRow.id == UserWebhookRow.user_id)
                .where(
                    FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery(),
                    UserRow.suspended.is_(False),
                )
                .order_by(UserWebhookRow.created_at, UserWebhookRow.user_id)
                .limit(MAX_WEBHOOKS_PER_EVENT)
            )
            return [(str(url), str(secret)) for url, secret in rows]
