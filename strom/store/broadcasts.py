"""Broadcasts: one row per time a channel went live, with the title and category it had
then and its peak audience. Reached as ``Store.broadcasts``.

Across a crash: while a broadcast runs, the live node's heartbeat (:meth:`BroadcastStore.seen`)
marks it on air; at the next start, :meth:`BroadcastStore.close_unfinished` ends the
broadcasts a killed process left open at the last moment they are known to have been on
air, never at the restart.

Across nodes (a site sharing this database): an open row is the site's memory of a
broadcast whose publisher may come back. :meth:`BroadcastStore.carry_on_or_start` lets the
node that takes the publisher within the reconnect grace continue that row (the same id,
now its ``node``), whoever ran it before and whether or not that process still lives; a
row past the grace is ended when it was last on air. The ``node`` column is the row's
owner: a node ends or marks on air only its own rows, so a node that lost a broadcast to
another never ends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import UnknownUser
from strom.store.models import STOP_REASON_MAX, BroadcastRow, CategoryRow, ChannelRow, UserRow
from strom.store.security import username_key
from strom.store.views import BroadcastInfo

#: most broadcasts :meth:`BroadcastStore.list` returns at once
MAX_LISTED = 100


class BroadcastStore:
    """The ``broadcasts`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, username: str, node: str | None = None) -> int:
        """Record that ``username`` went live on ``node``; remembers the title and category
        now. The broadcast counts as seen on air now (see :meth:`seen`)."""
        now = self._db.now()
        async with self._db.transaction() as s:
            channel = await self._channel(s, username)
            row = BroadcastRow(
                channel_id=channel.id,
                started_at=now,
                last_seen_at=now,
                node=node,
                title=channel.title,
                category_id=channel.category_id,
                peak_viewers=0,
            )
            s.add(row)
            await s.flush()
            return row.id

    @staticmethod
    async def _channel(s: AsyncSession, username: str) -> ChannelRow:
        channel = await s.scalar(
            select(ChannelRow)
            .join(UserRow, UserRow.id == ChannelRow.user_id)
            .where(UserRow.username_key == username_key(username))
        )
        if channel is None:
            raise UnknownUser(username)
        return channel

    async def carry_on_or_start(
        self, username: str, node: str, *, within: timedelta
    ) -> tuple[int, bool]:
        """``username`` went live on ``node``, in a site of several nodes: the broadcast
        goes on if one is open and was on air ``within`` (the reconnect grace and a
        heartbeat's slack) ago -- its publisher reconnected, here or to another node,
        after a dropped connection or a crash -- and ``node`` owns it from now on.
        Otherwise a new broadcast starts (:meth:`start`), and any open one is ended when
        it was last on air: nobody carried it on in time. Returns (id, carried on)."""
        now = self._db.now()
        async with self._db.transaction() as s:
            channel = await self._channel(s, username)
            open_rows = (
                await s.scalars(
                    select(BroadcastRow)
                    .where(BroadcastRow.channel_id == channel.id, BroadcastRow.ended_at.is_(None))
                    .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
                    .with_for_update()
                )
            ).all()
            carried: int | None = None
            for row in open_rows:
                seen = row.last_seen_at or row.started_at
                if carried is None and seen >= now - within:
                    row.node, row.last_seen_at, carried = node, now, row.id
                else:
                    row.ended_at = min(max(row.started_at, seen), now)
            if carried is not None:
                return carried, True
        return await self.start(username, node), False

    async def end(self, broadcast_id: int, peak_viewers: int, *, node: str | None = None) -> None:
        """End the broadcast now; with ``node``, only if that node still owns it (another
        node may have carried it on)."""
        where = [BroadcastRow.id == broadcast_id, BroadcastRow.ended_at.is_(None)]
        if node is not None:
            where.append(BroadcastRow.node == node)
        async with self._db.transaction() as s:
            await s.execute(
                update(BroadcastRow)
                .where(*where)
                .values(ended_at=self._db.now(), peak_viewers=q.raised_peak(peak_viewers))
            )

    async def update_peak(self, broadcast_id: int, viewers: int) -> None:
        """Raise the broadcast's peak to ``viewers`` if that is higher (never lowers)."""
        async with self._db.transaction() as s:
            await s.execute(
                update(BroadcastRow)
                .where(BroadcastRow.id == broadcast_id, BroadcastRow.peak_viewers < viewers)
                .values(peak_viewers=viewers)
            )

    async def seen(self, peaks: Mapping[int, int], *, node: str | None = None) -> None:
        """The live node's heartbeat (broadcast id -> peak viewers so far): each of these
        broadcasts still open (and, with ``node``, still that node's) is marked on air now
        and its peak raised (never lowered), in one transaction. What a crash leaves
        behind is then at most one heartbeat old."""
        if not peaks:
            return
        now = self._db.now()
        async with self._db.transaction() as s:
            # Rows in id order: one lock order for every node.
            for broadcast_id, peak in sorted(peaks.items()):
                where = [BroadcastRow.id == broadcast_id, BroadcastRow.ended_at.is_(None)]
                if node is not None:
                    where.append(BroadcastRow.node == node)
                await s.execute(
                    update(BroadcastRow)
                    .where(*where)
                    .values(last_seen_at=now, peak_viewers=q.raised_peak(peak))
                )

    async def close_unfinished(
        self,
        node: str | None = None,
        *,
        last_media: Mapping[int, datetime] | None = None,
        stale_after: timedelta | None = None,
        spare_within: timedelta | None = None,
    ) -> dict[int, datetime]:
        """At start-up: end the broadcasts a previous run left open (it crashed or was
        killed), each at the last moment it is known to have been on air, never at the
        restart: the later of its heartbeat (``last_seen_at``) and the last media its
        recording wrote (``last_media``: broadcast id -> time), at most now. Returns when
        each broadcast closed ended (id -> ended_at).

        ``node``: only this node's broadcasts (and those without a node, from before
        migration 0006); another node's only once its heartbeat is older than
        ``stale_after`` (that node is gone), so a restart never ends a broadcast another
        node is still running. ``None``: every open broadcast."""
        now = self._db.now()
        last_media = last_media or {}
        where: list[ColumnElement[bool]] = [BroadcastRow.ended_at.is_(None)]
        if node is not None:
            seen = func.coalesce(BroadcastRow.last_seen_at, BroadcastRow.started_at)
            where.append(
                or_(
                    BroadcastRow.node == node,
                    BroadcastRow.node.is_(None),
                    *([seen < now - stale_after] if stale_after is not None else []),
                )
            )
        if spare_within is not None:
            seen_at = func.coalesce(BroadcastRow.last_seen_at, BroadcastRow.started_at)
            where.append(seen_at < now - spare_within)
        closed: dict[int, datetime] = {}
        async with self._db.transaction() as s:
            for row in (await s.scalars(select(BroadcastRow).where(*where))).all():
                known = [t for t in (row.last_seen_at, last_media.get(row.id)) if t is not None]
                row.ended_at = closed[row.id] = min(max([row.started_at, *known]), now)
        return closed

    async def list(self, username: str, limit: int = 20) -> list[BroadcastInfo]:
        """The channel's broadcasts, newest first (at most ``limit``, capped at 100)."""
        limit = max(1, min(int(limit), MAX_LISTED))
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(BroadcastRow, UserRow.username, CategoryRow)
                .join(ChannelRow, ChannelRow.id == BroadcastRow.channel_id)
                .join(UserRow, UserRow.id == ChannelRow.user_id)
                .outerjoin(CategoryRow, CategoryRow.id == BroadcastRow.category_id)
                .where(UserRow.username_key == username_key(username))
                .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
                .limit(limit)
            )
            return [q.broadcast_view(b, c, name) for b, name, c in rows]

    async def stop_reason(self, username: str) -> str | None:
        """Why an administrator stopped ``username``'s newest broadcast (None: they did
        not, or there is none)."""
        async with self._db.transaction() as s:
            return await s.scalar(
                select(BroadcastRow.stop_reason)
                .join(ChannelRow, ChannelRow.id == BroadcastRow.channel_id)
                .join(UserRow, UserRow.id == ChannelRow.user_id)
                .where(UserRow.username_key == username_key(username))
                .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
                .limit(1)
            )

    async def stopped_by_admin(self, username: str, reason: str) -> None:
        """An administrator stopped ``username``'s broadcast saying ``reason`` (cut to
        fit): noted on their newest broadcast, for their dashboard."""
        reason = " ".join(q.CONTROL_CHARS.sub(" ", reason).split())[:STOP_REASON_MAX]
        async with self._db.transaction() as s:
            newest = await s.scalar(
                select(BroadcastRow.id)
                .where(BroadcastRow.channel_id == await q.channel_id(s, username))
                .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
                .limit(1)
            )
            if newest is not None:
                await s.execute(
                    update(BroadcastRow).where(BroadcastRow.id == newest).values(stop_reason=reason)
                )
