"""From a database URL to a checked :class:`~sqlalchemy.ext.asyncio.AsyncEngine`, with
the settings each kind of database wants, and the :class:`Database` every repository of
the store runs its transactions through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from strom.store.errors import DatabaseUnavailable

CONNECT_TIMEOUT = 10.0  # seconds for the first connection
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite writer waits for another's lock
POOL_RECYCLE = 3600  # seconds: below MySQL's wait_timeout, which drops idle connections


def default_url(data_dir: Path) -> str:
    """The embedded database: a SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{data_dir / 'strom.db'}"


def redact(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as its scheme only
        return url.split(":", 1)[0] + ":…"


async def connect(url: str, *, create_dirs: bool = True) -> AsyncEngine:
    """An engine for ``url`` whose first connection worked (else
    :class:`DatabaseUnavailable`, naming the URL without its password).

    SQLite: the file's directory is created if ``create_dirs``; every connection gets WAL
    journaling (readers do not block the writer), foreign keys and a busy timeout.
    Servers: connections are checked before use and recycled, so a restarted database or
    a dropped idle connection costs a retry, not an error."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)}: {exc}") from None
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if create_dirs and database and database != ":memory:" and "mode=" not in url:
            await asyncio.to_thread(_make_parent_dir, database)
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    else:
        options["pool_pre_ping"] = True
        options["pool_recycle"] = POOL_RECYCLE
    try:
        engine = create_async_engine(parsed, **options)
    except Exception as exc:  # unknown dialect, driver not installed, bad option
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT), engine.connect():
            pass
    except (DBAPIError, OSError, TimeoutError) as exc:
        await engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseUnavailable(
            f"cannot connect to the database {redact(url)}: {reason}"
        ) from None
    return engine


def _make_parent_dir(database: str) -> None:
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync at checkpoints
    cursor.close()


class Database:
    """What every repository of the store shares: the engine, one short transaction at
    a time, and the time (UTC, from the clock given).

    A lost or refused database becomes :class:`DatabaseUnavailable` (503) here, at this
    one boundary, for every repository."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = clock or (lambda: datetime.now(UTC))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One short transaction (an ORM session), committed when the block ends."""
        try:
            async with self._sessions.begin() as session:
                yield session
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(f"database error: {exc.orig}") from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on a bare connection (the migrations run on it)."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(f"database error: {exc.orig}") from exc

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)
