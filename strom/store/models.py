"""The tables, as SQLAlchemy 2 typed declarative models.

These are the store's private vocabulary: callers get the frozen views of
:mod:`strom.store.views` from :class:`strom.store.Store`, never these rows (so nothing
outside the store can trigger a lazy load or an accidental write).

The schema itself is created by the Alembic migrations in ``migrations/versions``; keep
them in step with this module (``tests/store/test_schema.py`` compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from strom.store.categories import CATEGORY_NAME_MAX, CATEGORY_SLUG_MAX
from strom.store.security import USERNAME_MAX

TITLE_MAX = 140
DESCRIPTION_MAX = 2000
TOKEN_NAME_MAX = 64
HASH_LENGTH = 64  # hex SHA-256
PASSWORD_HASH_MAX = 255  # an argon2id PHC string is ~100 characters

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
