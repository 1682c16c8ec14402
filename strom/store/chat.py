"""Chat persistence: messages and each room's modes. Reached as ``Store.chat`` (the
moderators, bans and moderation log are ``Store.moderation``: :mod:`.moderation`).

Rooms are named by channel (any case: the key is the name in lower case,
:func:`chat_key`), so static channels have rooms too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import (
    CHAT_CHANNEL_MAX,
    CHAT_NAME_MAX,
    ChatMessageRow,
    ChatSettingsRow,
    UserRow,
)

#: longest message the store accepts; the chat's own limit (a setting) is lower
CHAT_TEXT_MAX = 4000
MAX_BLOCKED_WORDS = 500
#: most messages (or moderation log entries) read at once
MAX_PAGE = 500


def chat_key(channel: str) -> str:
    """The room's key in every chat table: the channel name in lower case."""
    key = channel.lower()
    if not 0 < len(key) <= CHAT_CHANNEL_MAX:
        raise InvalidInput(f"a channel name has 1-{CHAT_CHANNEL_MAX} characters", "channel")
    return key


@dataclass(frozen=True)
class ChatMessageInfo:
    id: int
    user_id: int | None  # None: a guest (or an account deleted since)
    author: str
    author_is_admin: bool
    text: str
    created_at: datetime


@dataclass(frozen=True)
class ChatSettingsInfo:
    """A room's modes as stored (the defaults: everything off)."""

    slow_mode_seconds: int = 0
    followers_only: bool = False
    followers_min_minutes: int = 0
    blocked_words: tuple[str, ...] = ()
    block_links: bool = False


class ChatStore:
    """The ``chat_messages`` and ``chat_settings`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- messages ----------------------------------------------------------------------

    async def add_message(
        self, channel: str, user_id: int | None, author: str, text: str
    ) -> ChatMessageInfo:
        """Store a message (already checked by the chat's rules); returns it with its id."""
        if not text or len(text) > CHAT_TEXT_MAX:
            raise InvalidInput(f"a chat message has 1-{CHAT_TEXT_MAX} characters", "text")
        row = ChatMessageRow(
            channel=chat_key(channel),
            user_id=user_id,
            author=author[:CHAT_NAME_MAX],
            text=text,
            created_at=self._db.now(),
            deleted=False,
        )
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
        return ChatMessageInfo(row.id, user_id, row.author, False, text, row.created_at)

    async def recent_messages(self, channel: str, limit: int) -> list[ChatMessageInfo]:
        """The newest ``limit`` messages not deleted, oldest first."""
        limit = max(0, min(int(limit), MAX_PAGE))
        if limit == 0:
            return []
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(ChatMessageRow, UserRow.is_admin)
                .outerjoin(UserRow, UserRow.id == ChatMessageRow.user_id)
                .where(ChatMessageRow.channel == chat_key(channel), ~ChatMessageRow.deleted)
                .order_by(ChatMessageRow.id.desc())
                .limit(limit)
            )
            found = [
                ChatMessageInfo(m.id, m.user_id, m.author, bool(admin), m.text, m.created_at)
                for m, admin in rows
            ]
        found.reverse()
        return found

    async def message(self, channel: str, message_id: int) -> ChatMessageInfo | None:
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(ChatMessageRow, UserRow.is_admin)
                    .outerjoin(UserRow, UserRow.id == ChatMessageRow.user_id)
                    .where(
                        ChatMessageRow.channel == chat_key(channel),
                        ChatMessageRow.id == message_id,
                        ~ChatMessageRow.deleted,
                    )
                )
            ).one_or_none()
        if found is None:
            return None
        m, admin = found
        return ChatMessageInfo(m.id, m.user_id, m.author, bool(admin), m.text, m.created_at)

    async def delete_message(self, channel: str, message_id: int) -> bool:
        """Mark one message deleted; ``False`` if the room has no such (undeleted) message."""
        async with self._db.transaction() as s:
            result = await s.execute(
                update(ChatMessageRow)
                .where(
                    ChatMessageRow.channel == chat_key(channel),
                    ChatMessageRow.id == message_id,
                    ~ChatMessageRow.deleted,
                )
                .values(deleted=True)
            )
            return bool(getattr(result, "rowcount", 0))

    async def delete_messages_by(self, channel: str, user_id: int | None, author: str) -> int:
        """Mark every message of one author deleted (a ban or timeout clears them):
        by account if ``user_id`` is given, else by guest name."""
        who = (
            ChatMessageRow.user_id == user_id
            if user_id is not None
            else (ChatMessageRow.user_id.is_(None) & (ChatMessageRow.author == author))
        )
        async with self._db.transaction() as s:
            result = await s.execute(
                update(ChatMessageRow)
                .where(ChatMessageRow.channel == chat_key(channel), ~ChatMessageRow.deleted, who)
                .values(deleted=True)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def clear(self, channel: str) -> int:
        """Mark every message of the room deleted; returns how many."""
        async with self._db.transaction() as s:
            result = await s.execute(
                update(ChatMessageRow)
                .where(ChatMessageRow.channel == chat_key(channel), ~ChatMessageRow.deleted)
                .values(deleted=True)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # --- modes -------------------------------------------------------------------------

    async def settings(self, channel: str) -> ChatSettingsInfo:
        async with self._db.transaction() as s:
            row = await s.get(ChatSettingsRow, chat_key(channel))
            if row is None:
                return ChatSettingsInfo()
            return ChatSettingsInfo(
                slow_mode_seconds=row.slow_mode_seconds,
                followers_only=row.followers_only,
                followers_min_minutes=row.followers_min_minutes,
                blocked_words=tuple(w for w in row.blocked_words.split("\n") if w),
                block_links=row.block_links,
            )

    async def save_settings(self, channel: str, settings: ChatSettingsInfo) -> None:
        words = [w for w in settings.blocked_words if w and "\n" not in w]
        if len(words) > MAX_BLOCKED_WORDS:
            raise InvalidInput(f"at most {MAX_BLOCKED_WORDS} blocked words", "blocked_words")
        values = {
            "slow_mode_seconds": max(0, int(settings.slow_mode_seconds)),
            "followers_only": bool(settings.followers_only),
            "followers_min_minutes": max(0, int(settings.followers_min_minutes)),
            "blocked_words": "\n".join(words),
            "block_links": bool(settings.block_links),
            "updated_at": self._db.now(),
        }
        key = chat_key(channel)
        for attempt in range(2):
            try:
                async with self._db.transaction() as s:
                    row = await s.get(ChatSettingsRow, key)
                    if row is None:
                        s.add(ChatSettingsRow(channel=key, **values))
                    else:
                        for name, value in values.items():
                            setattr(row, name, value)
                return
            except IntegrityError:  # another node created the row first: update it
                if attempt:
                    raise
