"""`strom serve` as a real process on loopback: the one home of "a node in its own
process" for every test that needs one (several nodes of a site, workers, a crash).

A :class:`Node` has its ports from the start (fresh random ones, or those given), so a
node can name another as its upstream before that one is up. It starts with one shared
secret and stream key unless told otherwise, without the ``STROM_*`` settings of the
environment running the tests; ``start()`` returns once the node says it is up, and
``start()`` again after ``stop()`` or ``kill()`` brings it back on the same ports and data
dir. Its output (stdout and stderr, one stream) is kept for the test to read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers.servers import CHANNEL, STREAM_KEY, free_port, seed_data_dir

ROOT = Path(__file__).resolve().parents[2]
#: every node of a test site shares it (the internal pull key is derived from it)
SITE_SECRET = "a-test-site-secret-shared-by-every-node"
START_WAIT = 60.0  # seconds for a node to start (imports, database, Redis; a busy machine)
STOP_WAIT = 20.0  # seconds for a node to stop after SIGTERM before it gets SIGKILL
#: what a node logs once it serves (every listener open, the live map joined)
UP = "is up: http"  # http:// or https://


def strom_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``strom`` command: this one without its ``STROM_*`` settings
    (a developer's own would leak into the test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    env.update(extra or {})
    return env


class Node:
    """One ``strom serve`` process. ``args`` add to its command line; ``secret_key`` and
    ``stream_keys`` are the site's (``stream_keys=()``: none on the command line).
    ``secret_key=None, seed=False``: as an operator's first run (the node makes its own
    secret, and its embedded database from nothing)."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        name: str = "",
        http_port: int = 0,
        rtmp_port: int = 0,
        secret_key: str | None = SITE_SECRET,
        stream_keys: Sequence[str] = (f"{CHANNEL}={STREAM_KEY}",),
        socketio_door: bool = False,
        seed: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = seed_data_dir(data_dir) if seed else data_dir
        self.name = name or data_dir.name
        self.args = args
        self.http_port = http_port or free_port()
        self.rtmp_port = rtmp_port or free_port()
        self.secret_key = secret_key
        self.stream_keys = tuple(stream_keys)
        self.socketio_door = socketio_door
        self.env = dict(env or {})
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.proc: asyncio.subprocess.Process | None = None
        #: everything it printed, every run, line by line
        self.lines: list[str] = []
        self._printed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        keys = [arg for key in self.stream_keys for arg in ("--stream-key", key)]
        secret = ["--secret-key", self.secret_key] if self.secret_key is not None else []
        return [
            sys.executable, "-m", "strom", "serve", "--host", "127.0.0.1",
            "--http-port", str(self.http_port), "--rtmp-port", str(self.rtmp_port),
            "--data-dir", str(self.data_dir), *secret, *keys,
            "--socketio-door", str(self.socketio_door).lower(), *self.args,
        ]  # fmt: skip

    async def start(self) -> None:
        """Start it (again, after a stop or a kill) and wait until it is up."""
        assert self.returncode is not None or self.proc is None, f"{self.name} is running"
        since = len(self.lines)
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(), cwd=ROOT, env=strom_env(self.env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read(self.proc))
        try:
            await self.until_logged(UP, START_WAIT, since=since)
        except (AssertionError, TimeoutError):
            await self.stop()
            pytest.fail(f"strom serve {self.name} did not come up:\n{self.log}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._printed.set()
        await proc.wait()
        self._printed.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    @property
    def secret(self) -> bytes:
        """The key its sessions are signed with (a chat client's cookie needs it)."""
        assert self.secret_key is not None, f"{self.name} made its own secret"
        return self.secret_key.encode()

    @property
    def store(self) -> None:
        """No store in this process: a chat client of a node is given its token."""
        return None

    async def until_logged(self, text: str, timeout: float = START_WAIT, since: int = 0) -> str:
        """The first line (from line ``since`` on) containing ``text``, once it is printed;
        fails if the node exits first."""
        async with asyncio.timeout(timeout):
            while True:
                self._printed.clear()
                finished = self._reader is None or self._reader.done()  # every line is in
                for line in self.lines[since:]:
                    if text in line:
                        return line
                since = len(self.lines)
                if finished:
                    raise AssertionError(f"{self.name} exited before logging {text!r}")
                await self._printed.wait()

    async def get(self, path: str) -> Any:
        """``GET path`` on it: the JSON answer (200 asserted)."""
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as resp:
            assert resp.status == 200, f"{self.name} {path}: {resp.status}"
            return await resp.json()

    async def metrics(self) -> dict[str, Any]:
        found: dict[str, Any] = await self.get("/api/v1/stats")
        return found

    def kill(self) -> None:
        """SIGKILL: it dies without a word to anyone."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> int | None:
        """SIGTERM (if still running) and wait for it (SIGKILL after ``STOP_WAIT``): its
        exit code, None if it never started."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
        try:
            async with asyncio.timeout(STOP_WAIT):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
            self._reader = None
        return self.proc.returncode


@contextlib.asynccontextmanager
async def running(node: Node) -> AsyncIterator[Node]:
    """``node`` started, stopped on the way out."""
    try:
        await node.start()
        yield node
    finally:
        await node.stop()


@contextlib.asynccontextmanager
async def all_running(*nodes: Node) -> AsyncIterator[tuple[Node, ...]]:
    """Several nodes started side by side (their ports are known up front, so one may
    be another's upstream), all stopped on the way out."""
    try:
        started = await asyncio.gather(*(n.start() for n in nodes), return_exceptions=True)
        for result in started:
            if isinstance(result, BaseException):
                raise result
        yield nodes
    finally:
        await asyncio.gather(*(n.stop() for n in nodes))


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
                    async with fresh.get(f"{node.base}/api/v1/stats") as resp:
                        data = await resp.json()
                        # A busy worker may refuse (a JSON error, not its numbers): ask again.
                        if resp.status == 200 and data["worker"] is not None:
                            found[data["worker"]] = f"http://127.0.0.1:{data['private_port']}"
                        elif resp.status != 200:
                            refusals.append(f"{resp.status} {data}")
            await asyncio.sleep(0.05)
        for base in found.values():  # each answers on its own port too
            async with http.get(f"{base}/api/v1/stats") as resp:
                assert resp.status == 200
    return found


async def metrics_of(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/stats") as resp:
        assert resp.status == 200
        found: dict[str, Any] = await resp.json()
        return found
