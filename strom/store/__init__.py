"""Strom's database: accounts, channels, stream keys, categories, broadcasts, follows,
API tokens, webhooks, log-in sessions and chat.

:class:`Store` opens it and hands out one repository per aggregate (``store.users``,
``store.channels``...: :mod:`strom.store.store`). SQLAlchemy 2 (async) over SQLite
(default), MariaDB/MySQL or PostgreSQL; the schema is managed by the Alembic migrations
shipped in ``strom/store/migrations``.
"""

from strom.store.engine import default_url, redact
from strom.store.errors import (
    CategoryExists,
    Conflict,
    DatabaseUnavailable,
    InvalidCategory,
    InvalidChannel,
    InvalidInput,
    InvalidUsername,
    LastAdmin,
    NotFound,
    SchemaOutOfDate,
    StoreError,
    TooManyTokens,
    UnknownCategory,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from strom.store.security import Argon2Params
from strom.store.store import Store
from strom.store.views import (
    ApiTokenInfo,
    BroadcastInfo,
    CategoryInfo,
    ChannelInfo,
    SchemaStatus,
    User,
)

__all__ = [
    "ApiTokenInfo",
    "Argon2Params",
    "BroadcastInfo",
    "CategoryExists",
    "CategoryInfo",
    "ChannelInfo",
    "Conflict",
    "DatabaseUnavailable",
    "InvalidCategory",
    "InvalidChannel",
    "InvalidInput",
    "InvalidUsername",
    "LastAdmin",
    "NotFound",
    "SchemaOutOfDate",
    "SchemaStatus",
    "Store",
    "StoreError",
    "TooManyTokens",
    "UnknownCategory",
    "UnknownUser",
    "User",
    "UsernameTaken",
    "WeakPassword",
    "default_url",
    "redact",
]
