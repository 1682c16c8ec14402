"""The tables, as SQLAlchemy 2 typed declarative models.

These are the store's private vocabulary: callers get the frozen views of
:mod:`strom.store.views` from :class:`strom.store.Store`, never these rows (so nothing
outside the store can trigger a lazy load or an accidental write).

The schema itself is created by the Alembic migrations in ``migrations/versions``; keep
them in step with this module (``tests/store/test_schema.py`` compares the two).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from strom.store.categories import CATEGORY_NAME_MAX, CATEGORY_SLUG_MAX
from strom.usernames import USERNAME_MAX

TITLE_MAX = 140
DESCRIPTION_MAX = 2000
TOKEN_NAME_MAX = 64
HASH_LENGTH = 64  # hex SHA-256
NODE_ID_MAX = 64
PASSWORD_HASH_MAX = 255  # an argon2id PHC string is ~100 characters
STOP_REASON_MAX = 200  # what an administrator says when stopping a broadcast
ART_VERSION_LENGTH = 16
SECRET_KEY_MAX = 64
VISIBILITY_MAX = 16  # "public", "unlisted", "private"

# Deterministic constraint names on every database, so later migrations can name what
# they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every database.

    PostgreSQL stores ``timestamptz``. SQLite and MySQL/MariaDB have no zone in their
    column types, so the value is stored as naive UTC (MySQL: ``DATETIME(6)``, keeping
    microseconds) and given its ``UTC`` zone back when read. Naive datetimes are refused
    on the way in: their meaning depends on the server's clock settings.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: give the store timezone-aware values")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX))  # as the user typed it
    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)  # lower()
    password_hash: Mapped[str] = mapped_column(String(PASSWORD_HASH_MAX))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_online_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CategoryRow(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(CATEGORY_SLUG_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(CATEGORY_NAME_MAX))
    is_game: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # migration 0008: the box art's version (a hash of its bytes, in its URL), None: none
    art_version: Mapped[str | None] = mapped_column(String(ART_VERSION_LENGTH))


class CategoryArtRow(Base):
    """A category's box art, as served: a JPEG made by :mod:`strom.record.pictures`
    (migration 0008), in base64. In the database, not on one node's disk: every node of a
    site serves it. Text, not a binary column: aiomysql cannot send bytes parameters."""

    __tablename__ = "category_art"

    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )
    # MySQL's TEXT stops at 64 KiB; MEDIUMTEXT holds 16 MiB
    image: Mapped[str] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelRow(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX), default="", server_default="")
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    stream_key_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    stream_key_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    require_account_for_chat: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: the streamer's switch: record this channel's broadcasts (when the site records)
    record_broadcasts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: the streamer's switch: lower renditions for weak connections (when the site allows)
    quality_ladder: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: migration 0008: a key an administrator made, kept until the streamer's dashboard
    #: has shown it once (then NULL); the hash above is what publishing checks
    pending_stream_key: Mapped[str | None] = mapped_column(String(SECRET_KEY_MAX))
    #: who may watch: public, unlisted or private (:mod:`strom.channels.access`)
    visibility: Mapped[str] = mapped_column(
        String(VISIBILITY_MAX), default="public", server_default="public"
    )
    #: argon2id hash of the password that opens a private channel (None: followers only)
    watch_password_hash: Mapped[str | None] = mapped_column(String(PASSWORD_HASH_MAX))


class BroadcastRow(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_channel_id_started_at", "channel_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    title: Mapped[str] = mapped_column(String(TITLE_MAX), default="", server_default="")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    peak_viewers: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # migration 0006: the live node's heartbeat while the broadcast is on air, and which
    # node that is (None: written before 0006, or by a process without a node id)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    node: Mapped[str | None] = mapped_column(String(NODE_ID_MAX))
    #: migration 0008: an administrator stopped it, saying this ("" for no reason given)
    stop_reason: Mapped[str | None] = mapped_column(String(STOP_REASON_MAX))


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(TOKEN_NAME_MAX))
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FollowRow(Base):
    __tablename__ = "follows"

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- chat (migration 0002) -----------------------------------------------------------------
# Rooms are named by channel *key*: the channel name in lower case. A room may belong to a
# static channel (``--stream-key NAME=KEY``) that has no row in ``channels``, so chat rows
# carry the key, not a foreign key to ``channels``.

CHAT_CHANNEL_MAX = 32  # settings.valid_channel_name: 1-32 characters
CHAT_NAME_MAX = 32  # a username (25) or a guest name ("guest-123456")
CHAT_TARGET_MAX = 40  # "u:<user id>" or "g:<guest name>"
CHAT_ACTION_MAX = 24
CHAT_DETAIL_MAX = 200


class ChatMessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_channel_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHAT_CHANNEL_MAX))
    #: the author's account; NULL for guests (and for accounts deleted since)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    #: the name shown: the username as it was, or the guest name
    author: Mapped[str] = mapped_column(String(CHAT_NAME_MAX))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ChatModeratorRow(Base):
    __tablename__ = "chat_moderators"

    channel: Mapped[str] = mapped_column(String(CHAT_CHANNEL_MAX), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatBanRow(Base):
    """A ban (``until`` NULL) or a timeout (``until`` set) of one user or guest in one room."""

    __tablename__ = "chat_bans"

    channel: Mapped[str] = mapped_column(String(CHAT_CHANNEL_MAX), primary_key=True)
    target: Mapped[str] = mapped_column(String(CHAT_TARGET_MAX), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    target_name: Mapped[str] = mapped_column(String(CHAT_NAME_MAX))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(CHAT_DETAIL_MAX), default="", server_default="")
    by: Mapped[str] = mapped_column(String(CHAT_NAME_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatModerationLogRow(Base):
    __tablename__ = "chat_moderation_log"
    __table_args__ = (Index("ix_chat_moderation_log_channel_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHAT_CHANNEL_MAX))
    actor: Mapped[str] = mapped_column(String(CHAT_NAME_MAX))
    action: Mapped[str] = mapped_column(String(CHAT_ACTION_MAX))
    target: Mapped[str | None] = mapped_column(String(CHAT_NAME_MAX))
    detail: Mapped[str] = mapped_column(String(CHAT_DETAIL_MAX), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatSettingsRow(Base):
    """A room's modes; no row means the defaults (everything off). Whether guests may
    write is ``channels.require_account_for_chat``."""

    __tablename__ = "chat_settings"

    channel: Mapped[str] = mapped_column(String(CHAT_CHANNEL_MAX), primary_key=True)
    slow_mode_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    followers_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    followers_min_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: one blocked word or phrase per line (TEXT: no server default on MySQL)
    blocked_words: Mapped[str] = mapped_column(Text, default="")
    block_links: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- go-live webhooks (migration 0003) ------------------------------------------------------

WEBHOOK_URL_MAX = 500
WEBHOOK_SECRET_LENGTH = 64  # hex of 32 random bytes


class UserWebhookRow(Base):
    """A user's go-live webhook: called when a channel they follow goes live, with a JSON
    body signed (HMAC-SHA256) with ``secret``. The secret is kept as is, not hashed: Strom
    needs it to sign."""

    __tablename__ = "user_webhooks"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(WEBHOOK_URL_MAX))
    secret: Mapped[str] = mapped_column(String(WEBHOOK_SECRET_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- log-in sessions (migration 0005) --------------------------------------------------------

SESSION_AGENT_MAX = 200  # the browser's User-Agent, cut to this length
SESSION_ADDRESS_MAX = 64  # an IPv6 address with its zone fits in 46


class UserSessionRow(Base):
    """A logged-in browser: the SHA-256 of the random token its signed cookie carries.
    Deleting the row ends the session on every node (within their cache time)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    #: when the user logged in; the session ends ``session_days`` later (indexed: purges)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_agent: Mapped[str] = mapped_column(
        String(SESSION_AGENT_MAX), default="", server_default=""
    )
    address: Mapped[str] = mapped_column(String(SESSION_ADDRESS_MAX), default="", server_default="")


# --- profiles (migration 0007) ---------------------------------------------------------------

DISPLAY_NAME_MAX = 40
BIO_MAX = 500
#: the links, one URL a line (each at most LINK_MAX characters, at most LINKS_MAX of them)
LINKS_TEXT_MAX = 1100
LINK_MAX = 200
LINKS_MAX = 5
AVATAR_ETAG_MAX = 32


class _Picture(TypeDecorator[bytes]):
    """An image's bytes, kept as base64 text: TEXT, or MEDIUMTEXT on MySQL (TEXT stops at
    64 KiB). Text rather than a BLOB because aiomysql cannot send bytes parameters with
    the PyMySQL it runs on (``escape_bytes_prefixed`` fails)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return self.impl_instance

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> str | None:
        return base64.b64encode(value).decode("ascii") if value is not None else None

    def process_result_value(self, value: str | None, dialect: Dialect) -> bytes | None:
        return base64.b64decode(value) if value is not None else None


class ProfileRow(Base):
    """What a user tells about themselves on their channel page. No row: no profile yet.
    The avatar lives here (a few tens of KiB) so that every node of a site serves it."""

    __tablename__ = "profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str] = mapped_column(
        String(DISPLAY_NAME_MAX), default="", server_default=""
    )
    #: TEXT: no server default on MySQL
    bio: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[str] = mapped_column(Text, default="")
    #: the avatar, large (256x256) and small (64x64) JPEG; None: no avatar
    avatar_large: Mapped[bytes | None] = mapped_column(_Picture())
    avatar_small: Mapped[bytes | None] = mapped_column(_Picture())
    #: the avatar's version: its URLs carry it, so they can be cached for good
    avatar_etag: Mapped[str | None] = mapped_column(String(AVATAR_ETAG_MAX))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- clips (migration 0010) ------------------------------------------------------------------

CLIP_SLUG_LENGTH = 16
RECORDING_ID_MAX = 32


class ClipRow(Base):
    """A viewer's cut of a broadcast's recording; its MP4 lives in the data dir's
    ``clips/`` (:mod:`strom.record.clips`), named by the slug."""

    __tablename__ = "clips"
    __table_args__ = (Index("ix_clips_channel_id_created_at", "channel_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the clip's public name (its page and file): random, unguessable
    slug: Mapped[str] = mapped_column(String(CLIP_SLUG_LENGTH), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    #: who cut it (None: the account was deleted; the clip stays the channel's)
    creator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX), default="", server_default="")
    #: the recording it was cut from, and where in it (seconds from its start)
    recording: Mapped[str] = mapped_column(String(RECORDING_ID_MAX))
    start: Mapped[float] = mapped_column(Float)
    duration: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    views: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
