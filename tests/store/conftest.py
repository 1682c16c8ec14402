"""The ``store`` fixture: one test, one :class:`Store`, on every configured database.

SQLite (a temporary file) always runs. Set ``STROM_TEST_DATABASE_URLS`` to a
comma-separated list of further URLs to run the same tests there too, e.g.::

    STROM_TEST_DATABASE_URLS="mysql+aiomysql://root@127.0.0.1:3306/test,postgresql+asyncpg://postgres@127.0.0.1:5432/test"

**Those databases are scratch**: at the start of a run every table in them is dropped
(``alembic_version`` included) and the migrations are applied from nothing; between tests
every row the tests write is deleted. A configured database that cannot be reached fails
the run, with the reason; it is never skipped. Two runs on one machine take turns on a
shared database (a lock file), so they do not wipe each other's tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, delete, select, text
from sqlalchemy.engine import make_url

from strom.store import Argon2Params, DatabaseUnavailable, Store, redact
from strom.store.categories import INITIAL_CATEGORIES
from strom.store.models import Base, CategoryRow

LOCK_WAIT = 600.0  # seconds to wait for another run using the same database


def _configured_urls() -> list[str]:
    raw = os.environ.get("STROM_TEST_DATABASE_URLS", "")
    return [url.strip() for url in raw.split(",") if url.strip()]


def _ids(urls: list[str]) -> list[str]:
    names: list[str] = []
    for url in urls:
        name = "sqlite" if url == "sqlite" else make_url(url).get_backend_name()
        names.append(name if name not in names else f"{name}{len(names)}")
    return names


URLS = ["sqlite", *_configured_urls()]


@contextlib.contextmanager
def _exclusive(url: str) -> Iterator[None]:
    """Hold a lock named after the database while the session uses it."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"strom-test-db-{digest}.lock"
    with path.open("w") as f:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{redact(url)} stayed busy with another test run", pytrace=False)
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


async def open_store(url: str, **kwargs: Any) -> Store:
    kwargs.setdefault("argon2", Argon2Params.cheap())
    try:
        return await Store.open(url, **kwargs)
    except DatabaseUnavailable as exc:
        reason = str(exc)
    pytest.fail(f"STROM_TEST_DATABASE_URLS: {reason}", pytrace=False)


async def _fresh_schema(url: str) -> None:
    store = await open_store(url)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(_drop_everything)
        await store.migrate()
    finally:
        await store.close()


def _drop_everything(conn: Any) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
    meta = MetaData()
    meta.reflect(conn)
    meta.drop_all(conn)
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


@pytest.fixture(scope="session", params=URLS, ids=_ids(URLS))
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database with the current schema, fresh for this run."""
    url = str(request.param)
    if url == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store') / 'strom.db'}"
        asyncio.run(_fresh_schema(url))
        yield url
        return
    with _exclusive(url):
        asyncio.run(_fresh_schema(url))
        yield url


async def clear_rows(store: Store) -> None:
    """Delete what tests write; keep the seeded categories."""
    seeded = [c.slug for c in INITIAL_CATEGORIES]
    async with store.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "categories":
                await conn.execute(table.delete())
        await conn.execute(delete(CategoryRow).where(CategoryRow.slug.not_in(seeded)))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    await clear_rows(s)
    yield s
    await s.close()


@pytest.fixture
async def make_store(
    database_url: str, store: Store
) -> AsyncIterator[Callable[..., Awaitable[Store]]]:
    """Open more stores on the same (already cleared) database, e.g. with a fixed clock."""
    opened: list[Store] = []

    async def make(**kwargs: Any) -> Store:
        s = await open_store(database_url, **kwargs)
        opened.append(s)
        return s

    yield make
    for s in opened:
        await s.close()


async def dump_rows(store: Store) -> str:
    """Every row of every table, as text: what a database leak would show."""
    async with store.engine.connect() as conn:
        meta = MetaData()
        await conn.run_sync(meta.reflect)
        lines = []
        for table in meta.sorted_tables:
            for row in await conn.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
        return "\n".join(lines)


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment
