"""Stores on the configured test databases (see ``tests/store/conftest.py``): opening,
wiping, taking turns on a shared database, and dumping rows."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
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


def configured_urls() -> list[str]:
    raw = os.environ.get("STROM_TEST_DATABASE_URLS", "")
    return [url.strip() for url in raw.split(",") if url.strip()]


def param_ids(urls: list[str]) -> list[str]:
    names: list[str] = []
    for url in urls:
        name = "sqlite" if url == "sqlite" else make_url(url).get_backend_name()
        names.append(name if name not in names else f"{name}{len(names)}")
    return names


URLS = ["sqlite", *configured_urls()]


@contextlib.contextmanager
def exclusive(url: str) -> Iterator[None]:
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


async def fresh_schema(url: str) -> None:
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


async def clear_rows(store: Store) -> None:
    """Delete what tests write; keep the seeded categories."""
    seeded = [c.slug for c in INITIAL_CATEGORIES]
    async with store.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "categories":
                await conn.execute(table.delete())
        await conn.execute(delete(CategoryRow).where(CategoryRow.slug.not_in(seeded)))


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
