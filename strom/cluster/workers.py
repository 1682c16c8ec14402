"""``strom serve --workers N``: one supervisor, N worker processes on the same ports.

The process the operator started becomes the supervisor: it prepares what the workers
share (the database schema, the secret, the node id, the recordings a crash left open:
done once, so N processes never race for them), then starts

- a private coordinator: a ``redis-server`` listening only on a Unix socket in a
  directory of its own (mode 0700), no TCP port, nothing saved to disk;
- N workers: ``strom serve`` again with the operator's own arguments plus
  ``--worker I`` and ``--redis-url unix://...`` of the coordinator.

Each worker is an ordinary node of a site (see :mod:`strom.cluster.live_map`): it
listens on the public HTTP, RTMP and TCP-ingest ports with SO_REUSEPORT (the kernel
spreads connections across the workers) and on a private ``127.0.0.1`` port, its node URL,
where the others pull the channels it ingests. The coordinator is a real Redis so that
the live map and the chat bus have one implementation each, whether the site spans
machines or cores; the operator runs no Redis (with ``--redis-url`` the workers use that
one instead, and join that site).

The supervisor forwards SIGINT and SIGTERM to its children, restarts one that dies (a
log line, then a backoff that doubles up to :data:`BACKOFF_MAX`, back to the start once
a child has run :data:`STEADY` seconds), and returns when every child has stopped. A
child that cannot start at all (it exits within :data:`FAILED_START` seconds,
:data:`MAX_FAILED_STARTS` times in a row: a port taken, a bad setting, a database that
refuses) is not restarted forever: the supervisor stops everything and exits with 1, as
systemd's start limit does, so the operator sees the failure instead of a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strom.errors import StromError

log = logging.getLogger(__name__)

BACKOFF_START = 0.5  # seconds before restarting a child that died
BACKOFF_MAX = 30.0
STEADY = 30.0  # seconds a child must run for its backoff to start over
STOP_GRACE = 20.0  # seconds children get to stop (viewers told, recordings closed)
COORDINATOR_READY = 10.0  # seconds the coordinator gets to answer
FAILED_START = 10.0  # a child that exits sooner than this after its start failed to start
MAX_FAILED_STARTS = 5  # failed starts in a row before the supervisor gives up


def worker_count(raw: str) -> int:
    """``--workers``: a number, or ``auto`` (the cores this process may run on)."""
    if raw == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return int(raw)


@dataclass(eq=False)
class Child:
    """One process the supervisor keeps running."""

    name: str
    argv: list[str]
    #: its output is not the operator's (the coordinator's banner and notices)
    quiet: bool = False
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    #: starts in a row that ended within FAILED_START seconds
    failed_starts: int = 0
    backoff: float = BACKOFF_START
    started_at: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Runs the coordinator and the workers until :meth:`stop`."""

    def __init__(
        self, count: int, serve_argv: Sequence[str], *, redis_url: str = "", tls: bool = False
    ) -> None:
        self.count = count
        #: the workers reload their certificate on SIGHUP: the supervisor passes it on
        self.tls = tls
        self.serve_argv = list(serve_argv)
        #: the operator's Redis, if any: then no coordinator is started
        self.redis_url = redis_url
        self.children: list[Child] = []
        self._stopping = asyncio.Event()
        self._socket_dir: Path | None = None
        #: why the supervisor gave up, if it did (then :meth:`run` returns 1)
        self.gave_up: str | None = None

    async def run(self) -> int:
        """Start everything, keep it running, stop it when told; 0 on a clean stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stop)
        if self.tls:
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGHUP, self._reload_workers)
        try:
            extra: list[str] = []
            if not self.redis_url:
                url = await self._start_coordinator()
                extra = ["--redis-url", url]
            for i in range(1, self.count + 1):
                argv = [*self._strom(), *self.serve_argv, "--workers", "1", "--worker", str(i)]
                worker = Child(f"worker {i}", [*argv, *extra])
                self.children.append(worker)
                await self._spawn(worker)
            log.info("supervisor (pid %d): %d workers started", os.getpid(), self.count)
            await self._stopping.wait()
        finally:
            await self._stop_all()
        if self.gave_up is not None:
            log.error("supervisor: %s; stopped", self.gave_up)
            return 1
        return 0

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("supervisor: stopping the workers")
        self._stopping.set()

    def _reload_workers(self) -> None:
        """``SIGHUP``: every worker reads its certificate again."""
        for child in self.children:
            if child.name != "coordinator" and child.process and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGHUP)

    # -- children ---------------------------------------------------------------------------

    @staticmethod
    def _strom() -> list[str]:
        return [sys.executable, "-m", "strom", "serve"]

    async def _spawn(self, child: Child) -> None:
        loop = asyncio.get_running_loop()
        out = asyncio.subprocess.DEVNULL if child.quiet else None
        child.process = await asyncio.create_subprocess_exec(*child.argv, stdout=out)
        child.started_at = loop.time()
        child.task = loop.create_task(self._watch(child), name=f"watch {child.name}")

    async def _watch(self, child: Child) -> None:
        assert child.process is not None
        code = await child.process.wait()
        if self._stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        ran = loop.time() - child.started_at
        if ran >= STEADY:
            child.backoff = BACKOFF_START
        how = f"signal {-code}" if code < 0 else f"code {code}"
        child.failed_starts = child.failed_starts + 1 if ran < FAILED_START else 0
        if child.failed_starts >= MAX_FAILED_STARTS:
            self.gave_up = (
                f"{child.name} exited with {how} within {FAILED_START:g} s of its start "
                f"{child.failed_starts} times in a row (see its log lines above)"
            )
            self.stop()
            return
        log.warning(
            "supervisor: %s (pid %d) exited with %s; restarting in %g s",
            child.name,
            child.process.pid,
            how,
            child.backoff,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(child.backoff):
                await self._stopping.wait()
        if self._stopping.is_set():
            return
        child.backoff = min(child.backoff * 2, BACKOFF_MAX)
        child.restarts += 1
        await self._spawn(child)

    async def _stop_all(self) -> None:
        """Workers first (their ingest ends, their viewers are told), the coordinator last."""
        self._stopping.set()
        workers = [c for c in self.children if c.name != "coordinator"]
        coordinator = [c for c in self.children if c.name == "coordinator"]
        for group in (workers, coordinator):
            await self._terminate(group)
        for child in self.children:
            if child.task is not None:
                child.task.cancel()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    @staticmethod
    async def _terminate(children: Sequence[Child]) -> None:
        running = [c.process for c in children if c.process and c.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=STOP_GRACE)
        for process in running:
            if process.returncode is None:
                log.warning("supervisor: pid %d did not stop in time; killed", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late)

    # -- the coordinator --------------------------------------------------------------------

    async def _start_coordinator(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise StromError(
                "--workers needs redis-server installed (the workers' private coordinator; "
                "apt install redis-server), or --redis-url of a Redis to share"
            )
        # Not in the data dir: a Unix socket path is limited to ~100 bytes.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="strom-workers-"))
        sock = self._socket_dir / "redis.sock"
        argv = [
            server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--loglevel", "warning",
        ]  # fmt: skip
        child = Child("coordinator", argv, quiet=True)
        self.children.append(child)
        await self._spawn(child)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COORDINATOR_READY
        while not await _answers(sock):
            if loop.time() > deadline or child.process is None or child.process.returncode:
                raise StromError(f"the workers' coordinator (redis-server) did not start: {sock}")
            await asyncio.sleep(0.05)
        return f"unix://{sock}"


async def _answers(sock: Path) -> bool:
    """Does a Redis answer PING on ``sock``?"""
    try:
        reader, writer = await asyncio.open_unix_connection(str(sock))
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        async with asyncio.timeout(1.0):
            return (await reader.readline()).startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
