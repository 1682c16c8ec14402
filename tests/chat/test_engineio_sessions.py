"""Engine.IO sessions of the Socket.IO door, bounded: a flood of handshakes from one address
against a real ``strom serve`` process is refused past the per-address limit (429 and a
JSON reason) without growing the server's memory, its sessions expire when they never
connect to Socket.IO, and a client from another address connects meanwhile; a long-polling
session whose client stopped polling is closed, while one that keeps polling stays."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from strom.server import StromServer
from tests.helpers import CHANNEL, make_settings
from tests.helpers.chat import WAIT
from tests.helpers.nodes import Node, running

# serial: measures the server's memory and session deadlines (see scripts/test).
pytestmark = pytest.mark.serial

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def alive(http: aiohttp.ClientSession, base: str, sid: str) -> bool:
    """Whether Engine.IO still has session ``sid`` (asked so as not to touch it: a
    WebSocket request without the upgrade is refused, for a reason that tells)."""
    async with http.get(f"{base}/socket.io/?EIO=4&transport=websocket&sid={sid}") as resp:
        text = await resp.text()
    assert "Invalid session" in text or "Invalid transport" in text, text
    return "Invalid transport" in text


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """A real ``strom serve``: (its base URL, its process id)."""
    node = Node(
        tmp_path / "data",
        "--socketio-max-sessions-per-address", "50", "--socketio-connect-timeout", "2",
        stream_keys=(f"{CHANNEL}=demo-key-123456",), socketio_door=True,
    )  # fmt: skip
    async with running(node):
        assert node.proc is not None
        yield node.base, node.proc.pid
    assert "Traceback" not in node.log, node.log
    # The flood is logged in a few lines, not one per handshake.
    assert node.log.count("socket.io 127.0.0.1 refused") <= 10, node.log


async def test_handshake_flood_is_refused_and_its_sessions_expire(
    serve: tuple[str, int],
) -> None:
    base, pid = serve
    statuses: Counter[int] = Counter()
    reasons: set[str] = set()
    sids: list[str] = []
    # 3,000 handshakes, 50 at a time, from one address.
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{base}/api/v1/stats") as resp:
            await resp.read()  # the server's allocator warmed up by one request
        before = rss_mib(pid)
        started = time.monotonic()

        async def handshake() -> None:
            async with http.get(base + HANDSHAKE) as resp:
                statuses[resp.status] += 1
                if resp.status == 200:
                    sids.append(json.loads((await resp.text())[1:])["sid"])
                else:
                    reasons.add((await resp.json())["error"])

        await asyncio.gather(*(handshake() for _ in range(3000)))
        flood_seconds = time.monotonic() - started
        grown = rss_mib(pid) - before
        assert statuses == {200: 50, 429: 2950}, statuses
        assert reasons == {"too many connections from 127.0.0.1 (at most 50)"}
        # Before the limit, 3,000 sessions grew the server by ~21 MiB for a minute.
        assert grown < 8, f"RSS grew {grown:.1f} MiB"
        assert flood_seconds < 30

        # An app from another address connects and joins a room meanwhile.
        app = socketio.AsyncClient(
            reconnection=False,
            http_session=aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            ),
        )
        try:
            await app.connect(base, wait_timeout=WAIT)
            ack = await app.call("join_room", CHANNEL, timeout=WAIT)
            assert ack["ok"] is True

            # The flood's sessions never connected to Socket.IO: gone after 2 s (+ the
            # sweep), and the address may open sessions again.
            assert all([await alive(http, base, sid) for sid in sids[:5]])
            deadline = time.monotonic() + 2 + 3
            while any([await alive(http, base, sid) for sid in sids[::10]]):
                assert time.monotonic() < deadline, "the flood's sessions are still open"
                await asyncio.sleep(0.2)
            async with http.get(f"{base}/api/v1/stats") as resp:
                sessions = (await resp.json())["socketio_sessions"]
            assert sessions["open"] == 1  # the app's
            assert sessions["expired"] >= 50
            async with http.get(base + HANDSHAKE) as resp:
                assert resp.status == 200
            assert app.connected
        finally:
            await app.disconnect()
            await app.eio.http.close()  # type: ignore[union-attr]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path, socketio_poll_timeout=1.0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_a_polling_session_that_stops_polling_is_closed(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    assert server.socketio is not None
    async with aiohttp.ClientSession() as http:
        # By hand: handshake, Socket.IO connect, one poll for the answer; then silence.
        async with http.get(base + HANDSHAKE) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        url = f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(url, data=b"40") as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40")
        assert len(server.socketio.clients) == 1

        # A real client that keeps polling, on long-polling only.
        app = socketio.AsyncClient(reconnection=False)
        events: list[Any] = []
        app.on("viewers", events.append)
        await app.connect(base, transports=["polling"], wait_timeout=WAIT)
        try:
            started = time.monotonic()
            # (asked of the server itself: any request with the sid counts as polling)
            while sid in server.socketio.sio.eio.sockets:
                assert time.monotonic() - started < 1.0 + 3, "the silent session is open"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # past the poll timeout for the live one too
            assert app.connected
            ack = await app.call("join_room", CHANNEL, timeout=WAIT)
            assert ack["ok"] is True
            assert len(server.socketio.clients) == 1  # the silent one left the door
            metrics = server.metrics()["socketio_sessions"]
            assert (metrics["open"], metrics["expired"]) == (1, 1)
        finally:
            await app.disconnect()


async def test_overlapping_polls_of_one_session_are_refused(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + HANDSHAKE) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        url = f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(url, data=b"40") as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40")
        waiting = asyncio.create_task(http.get(url))  # a long poll: nothing to send yet
        await asyncio.sleep(0.3)
        async with http.get(url) as resp:
            assert resp.status == 400
            assert await resp.json() == {"error": "overlapping poll requests in one session"}
        # A send alongside the waiting poll is normal, and answers it.
        async with http.post(url, data=b'42["join_room","alice"]') as resp:
            assert resp.status == 200
        async with asyncio.timeout(WAIT):
            answer = await waiting
        assert answer.status == 200
        assert "viewers" in await answer.text()
        answer.release()
