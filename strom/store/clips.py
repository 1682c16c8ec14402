"""Clips: a viewer's cut of a broadcast's recording. Reached as ``Store.clips``.

A row names the clip (an unguessable slug), its channel, broadcast and creator, its
title and where in the recording it was cut; the MP4 itself is a file in the data dir
(:mod:`strom.record.clips`), which the web layer deletes with the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import aliased

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import NotFound
from strom.store.models import TITLE_MAX, BroadcastRow, ChannelRow, ClipRow, UserRow


@dataclass(frozen=True)
class ClipInfo:
    slug: str
    #: the channel's username
    channel: str
    broadcast_id: int | None
    #: who cut it (None: that account is gone)
    creator: str | None
    title: str
    recording: str
    #: seconds from the recording's start, and the clip's length
    start: float
    duration: float
    bytes: int
    created_at: datetime
    views: int


_Creator = aliased(UserRow)


def _query() -> Any:
    return (
        select(ClipRow, UserRow.username, _Creator.username)
        .join(ChannelRow, ChannelRow.id == ClipRow.channel_id)
        .join(UserRow, UserRow.id == ChannelRow.user_id)
        .outerjoin(_Creator, _Creator.id == ClipRow.creator_id)
    )


def _view(row: ClipRow, channel: str, creator: str | None) -> ClipInfo:
    return ClipInfo(
        slug=row.slug,
        channel=channel,
        broadcast_id=row.broadcast_id,
        creator=creator,
        title=row.title,
        recording=row.recording,
        start=row.start,
        duration=row.duration,
        bytes=row.bytes,
        created_at=row.created_at,
        views=row.views,
    )


class ClipStore:
    """The ``clips`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        slug: str,
        channel: str,
        creator: str,
        broadcast_id: int | None,
        title: str,
        recording: str,
        start: float,
        duration: float,
        size: int,
    ) -> ClipInfo:
        title = q.clean_text(title, TITLE_MAX, "title", multiline=False)
        async with self._db.transaction() as s:
            channel_id = await q.channel_id(s, channel)
            creator_id = await q.user_id(s, creator)
            if broadcast_id is not None:
                owner = await s.scalar(
                    select(BroadcastRow.channel_id).where(BroadcastRow.id == broadcast_id)
                )
                if owner != channel_id:  # another site's id, or a broadcast deleted since
                    broadcast_id = None
            s.add(
                ClipRow(
                    slug=slug,
                    channel_id=channel_id,
                    broadcast_id=broadcast_id,
                    creator_id=creator_id,
                    title=title,
                    recording=recording,
                    start=start,
                    duration=duration,
                    bytes=size,
                    created_at=self._db.now(),
                    views=0,
                )
            )
            await s.flush()
        found = await self.get(slug)
        assert found is not None
        return found

    async def get(self, slug: str) -> ClipInfo | None:
        async with self._db.transaction() as s:
            row = (await s.execute(_query().where(ClipRow.slug == slug))).first()
            return _view(*row) if row is not None else None

    async def channel_clips(self, channel: str, limit: int = 50) -> list[ClipInfo]:
        """``channel``'s clips, newest first."""
        async with self._db.transaction() as s:
            rows = await s.execute(
                _query()
                .where(ClipRow.channel_id == q.channel_id_select(channel).scalar_subquery())
                .order_by(ClipRow.created_at.desc(), ClipRow.id.desc())
                .limit(limit)
            )
            return [_view(*row) for row in rows]

    async def rename(self, slug: str, title: str) -> ClipInfo:
        title = q.clean_text(title, TITLE_MAX, "title", multiline=False)
        async with self._db.transaction() as s:
            result = await s.execute(
                update(ClipRow).where(ClipRow.slug == slug).values(title=title)
            )
            if not getattr(result, "rowcount", 0):
                raise NotFound("no such clip")
        found = await self.get(slug)
        assert found is not None
        return found

    async def delete(self, slug: str) -> bool:
        async with self._db.transaction() as s:
            result = await s.execute(delete(ClipRow).where(ClipRow.slug == slug))
            return bool(getattr(result, "rowcount", 0))

    async def viewed(self, slug: str) -> None:
        async with self._db.transaction() as s:
            await s.execute(
                update(ClipRow).where(ClipRow.slug == slug).values(views=ClipRow.views + 1)
            )

    async def oldest(self, limit: int) -> list[ClipInfo]:
        """The site's oldest clips first (what retention deletes)."""
        async with self._db.transaction() as s:
            rows = await s.execute(_query().order_by(ClipRow.created_at, ClipRow.id).limit(limit))
            return [_view(*row) for row in rows]

    async def usage(self) -> tuple[int, int]:
        """How many clips the site holds, and their bytes."""
        async with self._db.transaction() as s:
            row = (await s.execute(select(func.count(), func.sum(ClipRow.bytes)))).one()
            return int(row[0] or 0), int(row[1] or 0)
