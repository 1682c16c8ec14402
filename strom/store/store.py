"""The store: one database, its schema, and a repository per aggregate.

One :class:`~sqlalchemy.ext.asyncio.AsyncEngine` per process. The :class:`Store` opens it,
migrates or checks the schema, and hands out the repositories, which share it through one
:class:`~strom.store.engine.Database` (one short transaction per call, driver errors
translated there, once):

========================  ============================================================
``store.users``           accounts: register, log in, passwords, suspend (:mod:`.users`)
``store.sessions``        log-in sessions (:mod:`.sessions`)
``store.channels``        channel info, stream keys, categories (:mod:`.channels`)
``store.categories``      renaming, box art, merging, deleting categories (:mod:`.catalog`)
``store.broadcasts``      broadcasts, their heartbeat, closing them after a crash
                          (:mod:`.broadcasts`)
``store.follows``         who follows which channel (:mod:`.follows`)
``store.tokens``          API tokens (:mod:`.tokens`)
``store.webhooks``        go-live webhooks (:mod:`.webhooks`)
``store.chat``            chat messages and room modes (:mod:`.chat`)
``store.moderation``      chat moderators, bans and timeouts, moderation log
                          (:mod:`.moderation`)
``store.profiles``        display names, bios, links, avatars, last seen, channel
                          search (:mod:`.profiles`)
``store.clips``           viewers' clips of recordings (:mod:`.clips`)
``store.access``          channels' visibility, private channels' passwords
                          (:mod:`.access`)
========================  ============================================================

Every repository returns frozen views (:mod:`strom.store.views`), never ORM rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from strom.store import schema
from strom.store.access import AccessStore
from strom.store.broadcasts import BroadcastStore
from strom.store.catalog import CategoryStore
from strom.store.channels import ChannelStore
from strom.store.chat import ChatStore
from strom.store.clips import ClipStore
from strom.store.engine import Database, connect
from strom.store.errors import SchemaOutOfDate
from strom.store.follows import FollowStore
from strom.store.moderation import ModerationStore
from strom.store.profiles import ProfileStore
from strom.store.security import Argon2Params, Passwords
from strom.store.sessions import SessionLimits, SessionStore
from strom.store.tokens import ApiTokenStore
from strom.store.users import UserStore
from strom.store.views import SchemaStatus
from strom.store.webhooks import WebhookStore


class Store:
    """Strom's database. Open with :meth:`open`, close with :meth:`close`; the data is
    reached through the repositories (``store.users``, ``store.channels``...)."""

    def __init__(
        self,
        engine: AsyncEngine,
        passwords: Passwords,
        clock: Callable[[], datetime] | None = None,
        sessions: SessionLimits | None = None,
    ) -> None:
        self._db = Database(engine, clock)
        self.sessions = SessionStore(self._db, sessions)
        self.users = UserStore(self._db, passwords, self.sessions)
        self.channels = ChannelStore(self._db)
        self.categories = CategoryStore(self._db)
        self.broadcasts = BroadcastStore(self._db)
        self.follows = FollowStore(self._db)
        self.tokens = ApiTokenStore(self._db)
        self.webhooks = WebhookStore(self._db)
        self.chat = ChatStore(self._db)
        self.moderation = ModerationStore(self._db)
        self.profiles = ProfileStore(self._db)
        self.clips = ClipStore(self._db)
        self.access = AccessStore(self._db, passwords)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        create_dirs: bool = True,
        argon2: Argon2Params | None = None,
        clock: Callable[[], datetime] | None = None,
        sessions: SessionLimits | None = None,
    ) -> Store:
        """Connect to ``url`` (checked at once: :class:`DatabaseUnavailable` if it cannot).

        SQLite: the file's directory is created if ``create_dirs``; every connection gets
        WAL journaling (readers do not block the writer), foreign keys and a busy timeout.
        ``argon2`` sets the password-hash cost (default: RFC 9106 parameters), ``sessions``
        how long log-ins last and how long a node caches them."""
        engine = await connect(url, create_dirs=create_dirs)
        passwords = await asyncio.to_thread(Passwords, argon2)
        return cls(engine, passwords, clock, sessions)

    async def close(self) -> None:
        await self._db.engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._db.engine

    def pool_status(self) -> dict[str, int]:
        """The connection pool: its size, connections in use and idle in it, overflow
        (connections beyond the size, closed when given back). Empty for pools that keep
        none. A connection in use with nothing running is a leak."""
        pool = self._db.engine.pool
        counts = {}
        for name, method in (
            ("size", "size"),
            ("checked_out", "checkedout"),
            ("idle", "checkedin"),
            ("overflow", "overflow"),
        ):
            fn = getattr(pool, method, None)
            if callable(fn):
                counts[name] = int(fn())
        return counts

    @property
    def embedded(self) -> bool:
        """SQLite: the database belongs to this process, so it may migrate it freely."""
        return self._db.engine.dialect.name == "sqlite"

    async def migrate(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision`` (``alembic upgrade``)."""
        async with self._db.connection() as conn:
            await conn.run_sync(schema.upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        """Undo migrations down to ``revision`` (``"base"``: drop every table)."""
        async with self._db.connection() as conn:
            await conn.run_sync(schema.downgrade, revision)

    async def schema_status(self) -> SchemaStatus:
        async with self._db.connection() as conn:
            status: SchemaStatus = await conn.run_sync(schema.status)
            return status

    async def check_schema(self) -> None:
        """Raise :class:`SchemaOutOfDate` (with what to do) unless the schema is current."""
        status = await self.schema_status()
        if not status.up_to_date:
            raise SchemaOutOfDate(status.describe())
