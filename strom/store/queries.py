"""Look-ups and row-to-view conversions shared by the store's repositories. Each async
helper runs inside the caller's session (transaction)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store.errors import InvalidChannel, UnknownCategory, UnknownUser
from strom.store.models import BroadcastRow, CategoryRow, ChannelRow, ProfileRow, UserRow
from strom.store.security import username_key
from strom.store.views import BroadcastInfo, CategoryInfo, ChannelInfo, User

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but \t and \n


def channel_id_select(username: str) -> Select[int]:
    return (
        select(ChannelRow.id)
        .join(UserRow, UserRow.id == ChannelRow.user_id)
        .where(UserRow.username_key == username_key(username))
    )


async def user_id(s: AsyncSession, username: str) -> int:
    user_id = await s.scalar(
        select(UserRow.id).where(UserRow.username_key == username_key(username))
    )
    if user_id is None:
        raise UnknownUser(username)
    return user_id


async def channel_id(s: AsyncSession, username: str) -> int:
    channel_id = await s.scalar(channel_id_select(username))
    if channel_id is None:
        raise UnknownUser(username)
    return channel_id


async def category_id(s: AsyncSession, slug: str) -> int | None:
    if slug == "":
        return None
    category_id = await s.scalar(select(CategoryRow.id).where(CategoryRow.slug == slug))
    if category_id is None:
        raise UnknownCategory(slug)
    return category_id


async def channel_info(s: AsyncSession, username: str) -> ChannelInfo | None:
    found = (
        await s.execute(
            select(ChannelRow, UserRow.username, CategoryRow, ProfileRow.avatar_etag)
            .join(UserRow, UserRow.id == ChannelRow.user_id)
            .outerjoin(CategoryRow, CategoryRow.id == ChannelRow.category_id)
            .outerjoin(ProfileRow, ProfileRow.user_id == ChannelRow.user_id)
            .where(UserRow.username_key == username_key(username))
        )
    ).one_or_none()
    if found is None:
        return None
    channel, name, category, avatar_etag = found
    last = (
        await s.execute(
            select(BroadcastRow, CategoryRow)
            .outerjoin(CategoryRow, CategoryRow.id == BroadcastRow.category_id)
            .where(BroadcastRow.channel_id == channel.id)
            .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
            .limit(1)
        )
    ).one_or_none()
    return ChannelInfo(
        username=name,
        title=channel.title,
        description=channel.description,
        category=category_view(category) if category is not None else None,
        require_account_for_chat=channel.require_account_for_chat,
        stream_key_created_at=channel.stream_key_created_at,
        last_broadcast=broadcast_view(last[0], last[1], name) if last is not None else None,
        record_broadcasts=channel.record_broadcasts,
        quality_ladder=channel.quality_ladder,
        avatar_etag=avatar_etag,
        visibility=channel.visibility,
    )


def raised_peak(viewers: int) -> Any:
    """``peak_viewers`` raised to ``viewers`` if that is higher, in SQL (no read-modify-write
    race between two updates)."""
    return case((BroadcastRow.peak_viewers < viewers, viewers), else_=BroadcastRow.peak_viewers)


def clean_text(value: str, limit: int, field: str, *, multiline: bool) -> str:
    if not isinstance(value, str):
        raise InvalidChannel(f"{field} must be text", field)
    value = value.replace("\r\n", "\n").strip()
    if not multiline:
        value = " ".join(value.split())
    if CONTROL_CHARS.search(value) or (not multiline and "\n" in value):
        raise InvalidChannel(f"{field} contains control characters", field)
    if len(value) > limit:
        raise InvalidChannel(f"{field} is longer than {limit} characters", field)
    return value


def user_view(row: UserRow, **override: Any) -> User:
    values: dict[str, Any] = {
        "id": row.id,
        "username": row.username,
        "is_admin": row.is_admin,
        "suspended": row.suspended,
        "created_at": row.created_at,
        "last_online_at": row.last_online_at,
    }
    values.update(override)
    return User(**values)


def broadcast_view(row: BroadcastRow, category: CategoryRow | None, username: str) -> BroadcastInfo:
    return BroadcastInfo(
        id=row.id,
        username=username,
        title=row.title,
        category=category_view(category) if category is not None else None,
        started_at=row.started_at,
        ended_at=row.ended_at,
        peak_viewers=row.peak_viewers,
        stop_reason=row.stop_reason,
    )


def category_view(row: CategoryRow) -> CategoryInfo:
    return CategoryInfo(
        id=row.id, slug=row.slug, name=row.name, is_game=row.is_game, art=row.art_version
    )
