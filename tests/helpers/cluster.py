"""Several nodes as one site: the test Redis (a key prefix of one's own per test) and a
PostgreSQL database of one's own per test; the nodes themselves are
:class:`tests.helpers.nodes.Node` processes.

Redis or PostgreSQL unreachable: the tests fail in CI and are skipped elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.helpers.nodes import ROOT, strom_env

REDIS_URL = os.environ.get("STROM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: a PostgreSQL server where the tests may create and drop databases (trust auth)
POSTGRES = os.environ.get("STROM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: what a node logs once its chat rooms are shared through Redis (``Node.until_logged``)
CHAT_SHARED = "chat rooms are shared with the other nodes"


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


async def need_redis() -> str:
    """The test Redis URL, if it answers."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        _unavailable(f"Redis at {REDIS_URL} is unreachable ({exc}): start redis-server")
    finally:
        await client.aclose()
    return REDIS_URL


def redis_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"strom-test-{secrets.token_hex(4)}"


async def drop_prefix(prefix: str) -> None:
    """Delete what a test left under ``prefix``."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards: its SQLAlchemy URL."""
    name = f"strom_{secrets.token_hex(6)}"
    try:
        admin = await asyncpg.connect(POSTGRES, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"PostgreSQL at {POSTGRES} is unreachable ({exc})")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        code = await (
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "strom",
                "db",
                "upgrade",
                "--database-url",
                url,
                cwd=ROOT,
                env=strom_env(),
                stdout=asyncio.subprocess.DEVNULL,
            )
        ).wait()
        assert code == 0, "strom db upgrade failed"
        yield url
    finally:
        admin = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def eventually(check: Any, timeout: float, what: str) -> Any:
    """Poll the coroutine function ``check`` until it answers something true (that)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                found = await check()
                if found:
                    return found
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:g} s: {what}") from None
