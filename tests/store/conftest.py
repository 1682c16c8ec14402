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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from strom.store import Store
from tests.helpers.store import URLS, clear_rows, exclusive, fresh_schema, open_store, param_ids

# An external database is shared by the whole run (and by other runs: they take turns on
# a lock), so its tests are `serial`: they run in one process after the parallel phase.
PARAMS = [url if url == "sqlite" else pytest.param(url, marks=pytest.mark.serial) for url in URLS]


@pytest.fixture(scope="session", params=PARAMS, ids=param_ids(URLS))
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database with the current schema, fresh for this run."""
    url = str(request.param)
    if url == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store') / 'strom.db'}"
        asyncio.run(fresh_schema(url))
        yield url
        return
    with exclusive(url):
        asyncio.run(fresh_schema(url))
        yield url


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
