"""Channels: what a channel says about itself, its stream key, and the categories a
channel is filed under. Reached as ``Store.channels``.

Every user has exactly one channel, named by the username (any case). The stream key is
kept as a hash only: :meth:`ChannelStore.reset_stream_key` returns the new key once and
:meth:`ChannelStore.resolve` finds a channel by it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from strom.store import queries as q
from strom.store.categories import category_name
from strom.store.engine import Database
from strom.store.errors import CategoryExists, UnknownUser
from strom.store.models import DESCRIPTION_MAX, TITLE_MAX, CategoryRow, ChannelRow, UserRow
from strom.store.security import (
    SECRET_MAX,
    new_stream_key,
    same_hash,
    secret_hash,
)
from strom.store.views import CategoryInfo, ChannelInfo
from strom.usernames import looks_like_username

log = logging.getLogger(__name__)


class ChannelStore:
    """The ``channels`` and ``categories`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- channels and stream keys ------------------------------------------------------

    async def get(self, username: str) -> ChannelInfo | None:
        if not looks_like_username(username):
            return None
        async with self._db.transaction() as s:
            return await q.channel_info(s, username)

    async def update(
        self,
        username: str,
        *,
        title: str | None = None,
        description: str | None = None,
        category_slug: str | None = None,
        require_account_for_chat: bool | None = None,
        record_broadcasts: bool | None = None,
        quality_ladder: bool | None = None,
    ) -> ChannelInfo:
        """Change what is given (``None``: leave as is; ``category_slug=""``: no
        category). Raises :class:`InvalidChannel`/:class:`UnknownCategory` (422)."""
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = q.clean_text(title, TITLE_MAX, "title", multiline=False)
        if description is not None:
            values["description"] = q.clean_text(
                description, DESCRIPTION_MAX, "description", multiline=True
            )
        if require_account_for_chat is not None:
            values["require_account_for_chat"] = bool(require_account_for_chat)
        if record_broadcasts is not None:
            values["record_broadcasts"] = bool(record_broadcasts)
        if quality_ladder is not None:
            values["quality_ladder"] = bool(quality_ladder)
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            if category_slug is not None:
                values["category_id"] = await q.category_id(s, category_slug)
            if values:
                await s.execute(
                    update(ChannelRow).where(ChannelRow.user_id == user_id).values(**values)
                )
            info = await q.channel_info(s, username)
        if info is None:  # pragma: no cover - q.user_id found the user in this transaction
            raise UnknownUser(username)
        return info

    async def reset_stream_key(self, username: str, *, for_streamer: bool = False) -> str:
        """A new key, returned once; the old one is refused from now on (a broadcast
        already running with it goes on). ``for_streamer`` (an administrator reset it):
        the key is also kept for the streamer's dashboard to show once
        (:meth:`take_pending_key`)."""
        key = new_stream_key()
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            await s.execute(
                update(ChannelRow)
                .where(ChannelRow.user_id == user_id)
                .values(
                    stream_key_hash=secret_hash(key),
                    stream_key_created_at=self._db.now(),
                    pending_stream_key=key if for_streamer else None,
                )
            )
        log.info("stream key of %s reset%s", username, " by an admin" if for_streamer else "")
        return key

    async def take_pending_key(self, username: str) -> str | None:
        """The key an administrator made for ``username``, once: it is forgotten here."""
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            key = await s.scalar(
                select(ChannelRow.pending_stream_key).where(ChannelRow.user_id == user_id)
            )
            if key is not None:
                await s.execute(
                    update(ChannelRow)
                    .where(ChannelRow.user_id == user_id)
                    .values(pending_stream_key=None)
                )
            return key

    async def resolve(self, key: str) -> str | None:
        """:class:`~strom.live.registry.StreamKeyResolver`: the username (channel name)
        whose stream key this is; ``None`` for unknown keys and suspended users."""
        if not key or len(key) > SECRET_MAX:
            return None
        digest = secret_hash(key)
        async with self._db.transaction() as s:
            row = (
                await s.execute(
                    select(ChannelRow.stream_key_hash, UserRow.username, UserRow.suspended)
                    .join(UserRow, UserRow.id == ChannelRow.user_id)
                    .where(ChannelRow.stream_key_hash == digest)
                )
            ).one_or_none()
        if row is None or not same_hash(row.stream_key_hash, digest) or row.suspended:
            return None
        return str(row.username)

    # --- categories --------------------------------------------------------------------

    async def categories(self) -> list[CategoryInfo]:
        async with self._db.transaction() as s:
            rows = await s.scalars(select(CategoryRow))
            # Sorted here, not by the database: collations differ between databases.
            return sorted((q.category_view(r) for r in rows), key=lambda c: c.name.casefold())

    async def category(self, slug: str) -> CategoryInfo | None:
        async with self._db.transaction() as s:
            row = await s.scalar(select(CategoryRow).where(CategoryRow.slug == slug))
            return q.category_view(row) if row is not None else None

    async def add_category(self, name: str, *, is_game: bool) -> CategoryInfo:
        name, slug = category_name(name)
        if await self.category(slug) is not None:
            raise CategoryExists(f"there is already a category {slug!r}")
        try:
            async with self._db.transaction() as s:
                row = CategoryRow(slug=slug, name=name, is_game=is_game, created_at=self._db.now())
                s.add(row)
                await s.flush()
                return q.category_view(row)
        except IntegrityError:
            raise CategoryExists(f"there is already a category {slug!r}") from None
