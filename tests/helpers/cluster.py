"""Several nodes as one site: the test Redis (a key prefix of one's own per test), a
PostgreSQL database of one's own per test, and real ``strom serve`` processes.

Redis or PostgreSQL unreachable: the tests fail in CI and are skipped elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

REDIS_URL = os.environ.get("STROM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: a PostgreSQL server where the tests may create and drop databases (trust auth)
POSTGRES = os.environ.get("STROM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parents[2]
START_WAIT = 30.0  # seconds for a node to start (imports, database, Redis)


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
                env=_clean_env(),
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


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}


@dataclass
class NodeProcess:
    """One ``strom serve`` process on loopback, its log kept."""

    name: str
    process: asyncio.subprocess.Process
    log: list[str] = field(default_factory=list)
    http_port: int = 0
    rtmp_port: int = 0
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def _read(self, up: asyncio.Future[None]) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if found := re.search(r"is up: http://127\.0\.0\.1:(\d+)/", line):
                self.http_port = int(found.group(1))
                if not up.done():
                    up.set_result(None)
        if not up.done():
            up.set_exception(AssertionError(f"node {self.name} exited:\n" + "\n".join(self.log)))

    async def started(self) -> NodeProcess:
        up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(up))
        async with asyncio.timeout(START_WAIT):
            await up
        return self

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as resp:
            assert resp.status == 200, f"{path}: {resp.status}"
            return await resp.json()

    def kill(self) -> None:
        """SIGKILL: the node dies without a word to Redis."""
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code


async def start_node(name: str, data_dir: Path, *args: str) -> NodeProcess:
    """``strom serve`` on loopback, HTTP on a free port; ``args`` add to the command line
    (``--rtmp-port`` among them: the log does not say which port RTMP got)."""
    command = [
        sys.executable, "-m", "strom", "serve", "--host", "127.0.0.1", "--http-port", "0",
        "--data-dir", str(data_dir), *args,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=_clean_env(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    node = NodeProcess(name, process)
    with contextlib.suppress(ValueError):
        node.rtmp_port = int(args[args.index("--rtmp-port") + 1])
    return await node.started()


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
