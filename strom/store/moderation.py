"""Chat moderation: each room's moderators, its bans and timeouts, and the moderation log.
Reached as ``Store.moderation``; rooms are named as in :mod:`.chat` (:func:`chat_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from strom.store.chat import MAX_PAGE, chat_key
from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import (
    CHAT_ACTION_MAX,
    CHAT_DETAIL_MAX,
    CHAT_NAME_MAX,
    CHAT_TARGET_MAX,
    ChatBanRow,
    ChatModerationLogRow,
    ChatModeratorRow,
    UserRow,
)


@dataclass(frozen=True)
class ChatBanInfo:
    """A ban (``until`` None) or a timeout of ``target`` (``u:<id>`` or ``g:<guest>``)."""

    target: str
    user_id: int | None
    target_name: str
    until: datetime | None
    reason: str
    by: str
    created_at: datetime


@dataclass(frozen=True)
class ModerationLogEntry:
    id: int
    actor: str
    action: str
    target: str | None
    detail: str
    created_at: datetime


class ModerationStore:
    """The ``chat_moderators``, ``chat_bans`` and ``chat_moderation_log`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- moderators --------------------------------------------------------------------

    async def moderators(self, channel: str) -> dict[int, str]:
        """The room's moderators: user id -> username."""
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(UserRow.id, UserRow.username)
                .join(ChatModeratorRow, ChatModeratorRow.user_id == UserRow.id)
                .where(ChatModeratorRow.channel == chat_key(channel))
            )
            return {int(uid): str(name) for uid, name in rows}

    async def add_moderator(self, channel: str, user_id: int) -> bool:
        """``False`` if they already were one."""
        key = chat_key(channel)
        try:
            async with self._db.transaction() as s:
                if await s.get(ChatModeratorRow, (key, user_id)) is not None:
                    return False
                s.add(ChatModeratorRow(channel=key, user_id=user_id, created_at=self._db.now()))
                await s.flush()
                return True
        except IntegrityError:  # the same appointment at the same moment
            return False

    async def remove_moderator(self, channel: str, user_id: int) -> bool:
        async with self._db.transaction() as s:
            result = await s.execute(
                delete(ChatModeratorRow).where(
                    ChatModeratorRow.channel == chat_key(channel),
                    ChatModeratorRow.user_id == user_id,
                )
            )
            return bool(getattr(result, "rowcount", 0))

    # --- bans and timeouts -------------------------------------------------------------

    async def bans(self, channel: str) -> list[ChatBanInfo]:
        """The bans and the timeouts not yet over."""
        now = self._db.now()
        async with self._db.transaction() as s:
            rows = await s.scalars(
                select(ChatBanRow).where(
                    ChatBanRow.channel == chat_key(channel),
                    ChatBanRow.until.is_(None) | (ChatBanRow.until > now),
                )
            )
            return [_ban_view(r) for r in rows]

    async def ban(
        self,
        channel: str,
        target: str,
        *,
        user_id: int | None,
        target_name: str,
        until: datetime | None,
        reason: str,
        by: str,
    ) -> ChatBanInfo:
        """Ban (``until`` None) or time out ``target``, replacing what was there."""
        if not 0 < len(target) <= CHAT_TARGET_MAX:
            raise InvalidInput("bad ban target", "target")
        key = chat_key(channel)
        row = ChatBanRow(
            channel=key,
            target=target,
            user_id=user_id,
            target_name=target_name[:CHAT_NAME_MAX],
            until=until,
            reason=reason[:CHAT_DETAIL_MAX],
            by=by[:CHAT_NAME_MAX],
            created_at=self._db.now(),
        )
        for attempt in range(2):
            try:
                async with self._db.transaction() as s:
                    await s.execute(
                        delete(ChatBanRow).where(
                            ChatBanRow.channel == key, ChatBanRow.target == target
                        )
                    )
                    s.add(row)
                    await s.flush()
                break
            except IntegrityError:  # another node banned the same target at this moment
                if attempt:
                    raise
                row = ChatBanRow(**{c: getattr(row, c) for c in _BAN_COLUMNS})
        return _ban_view(row)

    async def unban(self, channel: str, target: str) -> bool:
        """Lift a ban or timeout; ``False`` if there was none."""
        async with self._db.transaction() as s:
            result = await s.execute(
                delete(ChatBanRow).where(
                    ChatBanRow.channel == chat_key(channel), ChatBanRow.target == target
                )
            )
            return bool(getattr(result, "rowcount", 0))

    # --- moderation log ----------------------------------------------------------------

    async def log(
        self, channel: str, actor: str, action: str, target: str | None, detail: str = ""
    ) -> ModerationLogEntry:
        row = ChatModerationLogRow(
            channel=chat_key(channel),
            actor=actor[:CHAT_NAME_MAX],
            action=action[:CHAT_ACTION_MAX],
            target=target[:CHAT_NAME_MAX] if target is not None else None,
            detail=detail[:CHAT_DETAIL_MAX],
            created_at=self._db.now(),
        )
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
        return _log_view(row)

    async def log_entries(self, channel: str, limit: int = 100) -> list[ModerationLogEntry]:
        """The newest ``limit`` entries, newest first."""
        limit = max(1, min(int(limit), MAX_PAGE))
        async with self._db.transaction() as s:
            rows = await s.scalars(
                select(ChatModerationLogRow)
                .where(ChatModerationLogRow.channel == chat_key(channel))
                .order_by(ChatModerationLogRow.id.desc())
                .limit(limit)
            )
            return [_log_view(r) for r in rows]


_BAN_COLUMNS = (
    "channel",
    "target",
    "user_id",
    "target_name",
    "until",
    "reason",
    "by",
    "created_at",
)


def _ban_view(row: ChatBanRow) -> ChatBanInfo:
    return ChatBanInfo(
        target=row.target,
        user_id=row.user_id,
        target_name=row.target_name,
        until=row.until,
        reason=row.reason,
        by=row.by,
        created_at=row.created_at,
    )


def _log_view(row: ChatModerationLogRow) -> ModerationLogEntry:
    return ModerationLogEntry(
        id=row.id,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=row.detail,
        created_at=row.created_at,
    )
