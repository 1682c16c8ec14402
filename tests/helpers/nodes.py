"""`strom serve` nodes as real processes on loopback, for tests of several nodes: fresh
random ports (or the ones given, to restart a node where it was), one shared secret and
stream key, stopped by the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers.servers import CHANNEL, STREAM_KEY, free_port, seed_data_dir

#: every node of a test site shares it (the internal pull key is derived from it)
SITE_SECRET = "a-test-site-secret-shared-by-every-node"


class Node:
    """One `strom serve` process."""

    def __init__(self, data_dir: Path, *extra: str, http_port: int = 0, rtmp_port: int = 0) -> None:
        self.data_dir = seed_data_dir(data_dir)
        self.extra = extra
        self.http_port = http_port or free_port()
        self.rtmp_port = rtmp_port or free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.output = b""
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strom", "serve", "--host", "127.0.0.1",
            "--http-port", str(self.http_port), "--rtmp-port", str(self.rtmp_port),
            "--data-dir", str(self.data_dir), "--secret-key", SITE_SECRET,
            "--stream-key", f"{CHANNEL}={STREAM_KEY}", "--socketio-door", "false",
            *self.extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{self.base}/metrics") as resp:
                        if resp.status == 200:
                            return
                if self.proc.returncode is not None:
                    pytest.fail(f"strom serve exited: {await self.finish()}")
                await asyncio.sleep(0.1)
        pytest.fail("strom serve did not come up")

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output += line

    @property
    def log(self) -> str:
        return self.output.decode(errors="replace")

    async def metrics(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/metrics") as resp:
            assert resp.status == 200
            found: dict[str, Any] = await resp.json()
            return found

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def finish(self) -> str:
        """Stop it (if still running) and return everything it printed."""
        if self.proc is not None:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 20)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
            self._reader = None
        return self.log


@contextlib.asynccontextmanager
async def running(node: Node) -> AsyncIterator[Node]:
    try:
        await node.start()
        yield node
    finally:
        await node.finish()


async def find_workers(node: Node, count: int, timeout: float = 30) -> dict[int, str]:
    """The workers behind ``node`` (``--workers count``), each by index: the base URL of
    its private port. Asks the shared port until every worker has answered (the kernel
    picks which one does)."""
    found: dict[int, str] = {}
    refusals: list[str] = []
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while len(found) < count:
            assert len(refusals) < 20, refusals
            # A new connection each time: SO_REUSEPORT spreads connections, not requests.
            conn = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=conn) as fresh:
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with fresh.get(f"{node.base}/metrics") as resp:
                        data = await resp.json()
                        # A busy worker may refuse (a JSON error, not its numbers): ask again.
                        if resp.status == 200 and data["worker"] is not None:
                            found[data["worker"]] = f"http://127.0.0.1:{data['private_port']}"
                        elif resp.status != 200:
                            refusals.append(f"{resp.status} {data}")
            await asyncio.sleep(0.05)
        for base in found.values():  # each answers on its own port too
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
    return found


async def metrics_of(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        found: dict[str, Any] = await resp.json()
        return found
