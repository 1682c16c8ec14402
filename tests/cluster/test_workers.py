"""``strom serve --workers 2``: one supervisor, two worker processes on the same public
ports (SO_REUSEPORT), real processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from strom.cluster import workers
from strom.cluster.workers import Supervisor
from tests.helpers import CHANNEL, MediaFile, publish_args, run_process
from tests.helpers.cluster import drop_prefix, need_redis, redis_prefix
from tests.helpers.nodes import Node, find_workers, metrics_of, running
from tests.helpers.servers import free_port
from tests.helpers.watching import collect_ws, decode, until

pytestmark = pytest.mark.e2e


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polling another process's answer
            await asyncio.sleep(0.2)


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


async def test_a_channel_published_to_one_worker_plays_from_every_worker(
    tmp_path: Path, av_media: MediaFile
) -> None:
    """The kernel puts the publisher on one worker; a viewer of either worker gets every
    frame (the other worker pulls the channel over its private port), and the directory
    answers the same from both."""
    node = Node(tmp_path / "site", "--workers", "2")
    async with running(node):
        workers = await find_workers(node, 2)
        viewers = {
            index: asyncio.create_task(
                collect_ws(f"{base}/live/{CHANNEL}/ws", tmp_path / f"w{index}.mp4")
            )
            for index, base in workers.items()
        }
        await asyncio.sleep(0.3)
        publisher = asyncio.create_task(run_process(*publish_args(av_media, node.rtmp_port)))

        async def listed(base: str) -> bool:
            async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/streams") as r:
                return CHANNEL in [s["username"] for s in (await r.json())["streams"]]

        for base in workers.values():  # the directory is the same from both
            await until_async(lambda base=base: listed(base), timeout=20)
        code, out = await publisher
        assert code == 0, out
        for index, task in viewers.items():
            texts = await task
            assert [t["type"] for t in texts][-2:] == ["end", "closed"], (index, texts)
            frames, errors = await decode(str(tmp_path / f"w{index}.mp4"))
            assert (frames, errors) == (av_media.frames, ""), index


async def test_workers_of_a_site_spanning_machines_advertise_the_node_url(tmp_path: Path) -> None:
    """With the operator's Redis (a site that may span machines), each worker's node URL is
    the node's own host (``--node-url``) on the worker's private port, not loopback,
    which another machine could not reach."""
    url = await need_redis()
    prefix = redis_prefix()
    http_port = free_port()
    node = Node(
        tmp_path / "site", "--workers", "2", "--redis-url", url, "--redis-prefix", prefix,
        "--node-url", f"http://localhost:{http_port}", http_port=http_port,
    )  # fmt: skip
    try:
        async with running(node):
            workers = await find_workers(node, 2)
            for base in workers.values():
                cluster = (await metrics_of(base))["cluster"]
                private = base.rsplit(":", 1)[1]
                assert cluster["node_url"] == f"http://localhost:{private}"
    finally:
        await drop_prefix(prefix)


class FailingSupervisor(Supervisor):
    """Its "workers" exit at once, as a worker does whose port is taken."""

    @staticmethod
    def _strom() -> list[str]:
        return [sys.executable, "-c", "import sys; print('cannot start'); sys.exit(3)"]


async def test_a_worker_that_cannot_start_stops_the_supervisor(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not restarted forever: after a few failed starts in a row the supervisor stops
    everything and exits with 1, saying why."""
    monkeypatch.setattr(workers, "BACKOFF_START", 0.01)
    supervisor = FailingSupervisor(2, [], redis_url="redis://unused")
    assert await asyncio.wait_for(supervisor.run(), 30) == 1
    assert supervisor.gave_up is not None
    assert "exited with code 3" in supervisor.gave_up
    assert f"{workers.MAX_FAILED_STARTS} times in a row" in caplog.text
