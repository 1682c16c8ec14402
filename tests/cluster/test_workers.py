"""``strom serve --workers 2``: one supervisor, two worker processes on the same public
ports (SO_REUSEPORT), real processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.helpers.nodes import Node, find_workers, metrics_of, running
from tests.helpers.watching import until

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    node = Node(tmp_path / "site", "--workers", "2")
    async with running(node):
        workers = await find_workers(node, 2)
        pids = [(await metrics_of(base))["pid"] for base in workers.values()]
        assert len(set(pids)) == 2
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(node.proc.wait(), 30) == 0
    assert not any(alive(pid) for pid in pids)
    assert "supervisor: stopping the workers" in node.log
    assert "[worker 1] strom: shutting down" in node.log
    assert "[worker 2] strom: shutting down" in node.log


async def test_a_killed_worker_is_restarted(tmp_path: Path) -> None:
    node = Node(tmp_path / "site", "--workers", "2")
    async with running(node):
        workers = await find_workers(node, 2)
        victim = (await metrics_of(workers[2]))["pid"]
        os.kill(victim, signal.SIGKILL)
        await until(lambda: f"worker 2 (pid {victim}) exited with signal 9" in node.log)
        # It comes back (a new process, a new private port) and shares the port again.
        again = await find_workers(node, 2)
        assert (await metrics_of(again[2]))["pid"] != victim
        assert (await metrics_of(again[1]))["pid"] == (await metrics_of(workers[1]))["pid"]
