"""Broadcasts across a crash, in the store: the live node's heartbeat and, at the next
start, the broadcasts a killed process left open, ended when they were last on air.

The helpers here run inside a :class:`~strom.store.Store` transaction; the store's methods
``broadcasts_seen`` and ``close_unfinished_broadcasts`` are the public face.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from strom.store import queries as q
from strom.store.models import BroadcastRow


async def mark_seen(s: AsyncSession, peaks: Mapping[int, int], now: datetime) -> None:
    """Each open broadcast of ``peaks`` (id -> peak viewers so far) on air at ``now``,
    its peak raised (never lowered). Rows in id order: one lock order for every node."""
    for broadcast_id, peak in sorted(peaks.items()):
        await s.execute(
            update(BroadcastRow)
            .where(BroadcastRow.id == broadcast_id, BroadcastRow.ended_at.is_(None))
            .values(last_seen_at=now, peak_viewers=q.raised_peak(peak))
        )


async def close_left_open(
    s: AsyncSession,
    now: datetime,
    node: str | None,
    last_media: Mapping[int, datetime],
    stale_after: timedelta | None,
) -> dict[int, datetime]:
    """End the open broadcasts of ``node`` (see ``Store.close_unfinished_broadcasts``),
    each at the later of its heartbeat and its recording's last media, never after now."""
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
    closed: dict[int, datetime] = {}
    for row in (await s.scalars(select(BroadcastRow).where(*where))).all():
        known = [t for t in (row.last_seen_at, last_media.get(row.id)) if t is not None]
        row.ended_at = closed[row.id] = min(max([row.started_at, *known]), now)
    return closed
