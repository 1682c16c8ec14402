"""Follows: a user following another user's channel. Reached as ``Store.follows``.

Both sides are named by username (any case); a user cannot follow their own channel.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import ChannelRow, FollowRow, UserRow
from strom.store.security import username_key


class FollowStore:
    """The ``follows`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def follow(self, follower: str, channel: str) -> bool:
        """``follower`` follows ``channel``'s channel; ``False`` if they already did."""
        if username_key(follower) == username_key(channel):
            raise InvalidInput("you cannot follow your own channel", "channel")
        try:
            async with self._db.transaction() as s:
                follower_id = await q.user_id(s, follower)
                channel_id = await q.channel_id(s, channel)
                exists = await s.get(FollowRow, (follower_id, channel_id))
                if exists is not None:
                    return False
                s.add(
                    FollowRow(
                        follower_id=follower_id, channel_id=channel_id, created_at=self._db.now()
                    )
                )
                await s.flush()
                return True
        except IntegrityError:  # the same follow, at the same moment, from another request
            return False

    async def unfollow(self, follower: str, channel: str) -> bool:
        """``False`` if ``follower`` did not follow ``channel``."""
        async with self._db.transaction() as s:
            follower_id = await q.user_id(s, follower)
            channel_id = await q.channel_id(s, channel)
            result = await s.execute(
                delete(FollowRow).where(
                    FollowRow.follower_id == follower_id, FollowRow.channel_id == channel_id
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def is_following(self, follower: str, channel: str) -> bool:
        async with self._db.transaction() as s:
            found = await s.scalar(
                select(FollowRow.channel_id)
                .join(UserRow, UserRow.id == FollowRow.follower_id)
                .where(
                    UserRow.username_key == username_key(follower),
                    FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery(),
                )
            )
            return found is not None

    async def followed_at(self, user_id: int, channel: str) -> datetime | None:
        """Since when ``user_id`` follows ``channel`` (``None``: not a follower): the
        chat's followers-only mode asks this for every message."""
        async with self._db.transaction() as s:
            found: datetime | None = await s.scalar(
                select(FollowRow.created_at).where(
                    FollowRow.follower_id == user_id,
                    FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery(),
                )
            )
            return found

    async def follower_count(self, channel: str) -> int:
        async with self._db.transaction() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(FollowRow)
                .where(FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery())
            )
            return int(count or 0)

    async def followed_channels(self, username: str) -> list[str]:
        """The usernames whose channels ``username`` follows, in alphabetical order."""
        async with self._db.transaction() as s:
            follower = select(UserRow.id).where(UserRow.username_key == username_key(username))
            rows = await s.scalars(
                select(UserRow.username)
                .join(ChannelRow, ChannelRow.user_id == UserRow.id)
                .join(FollowRow, FollowRow.channel_id == ChannelRow.id)
                .where(FollowRow.follower_id == follower.scalar_subquery())
                .order_by(UserRow.username_key)
            )
            return list(rows)
