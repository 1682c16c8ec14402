"""The reconnect grace across nodes, with real ``strom serve`` processes sharing a Redis key
prefix, a database and a secret, and real ffmpeg publishers (the node-to-node test shares
PostgreSQL; the others one SQLite file, lighter on a busy machine).

A publisher whose connection drops (ffmpeg killed: no unpublish) and who goes live again
within ``--reconnect-grace`` continues the same broadcast -- on another node (which takes
the channel over from the node that waited for it; a viewer on an edge sees
``reconnecting``, then ``resumed`` and the picture going on), or on the same node after it
was killed or stopped and started again. Past the grace, a new broadcast starts and the
old one is ended at the moment it was last on air."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from strom.store import Store
from tests.helpers import MediaFile, publish_args
from tests.helpers.cluster import (
    drop_prefix,
    eventually,
    need_redis,
    postgres_database,
    redis_prefix,
)
from tests.helpers.nodes import Node
from tests.helpers.watching import Watcher, decode, until

USER = "alice"
PASSWORD = "a long enough password"
HEARTBEAT = 0.5  # --cluster-heartbeat
TTL = 2.0  # --cluster-ttl


class Site:
    """Nodes of one site, started (and restarted) on ports of their own."""

    def __init__(self, tmp_path: Path, common: list[str], store: Store, key: str) -> None:
        self.tmp_path = tmp_path
        self.common = common
        self.store = store
        self.key = key
        self.nodes: dict[str, Node] = {}
        self.exits: list[int | None] = []

    async def start(self, name: str, *extra: str) -> Node:
        """Node ``name`` (again, on the same ports and data dir, if it ran before)."""
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = Node(
                self.tmp_path / name, *self.common, *extra,
                name=name, secret_key=None, stream_keys=(),
            )  # fmt: skip
        await node.start()
        return node

    async def stop(self) -> None:
        for node in self.nodes.values():
            self.exits.append(await node.stop())
            # (shown if the test fails)
            print(f"--- node {node.name} ---", node.log, sep="\n")

    async def last_broadcast(self, node: Node) -> dict[str, Any] | None:
        """What the channel API says of the newest broadcast."""
        found: dict[str, Any] | None = (await node.get(f"/api/v1/channels/{USER}"))[
            "last_broadcast"
        ]
        return found


@contextlib.asynccontextmanager
async def shared_sqlite(tmp_path: Path) -> AsyncIterator[str]:
    """One SQLite file every node of the site opens, migrated."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'site.db'}"
    store = await Store.open(url)
    try:
        await store.migrate()
    finally:
        await store.close()
    yield url


@contextlib.asynccontextmanager
async def site(tmp_path: Path, grace: float, *, postgres: bool = False) -> AsyncIterator[Site]:
    """Nodes sharing a Redis prefix, a secret and a database: PostgreSQL (the multi-node
    database) or, lighter, one SQLite file on this machine."""
    redis_url = await need_redis()
    prefix = redis_prefix()
    database_of = postgres_database() if postgres else shared_sqlite(tmp_path)
    async with database_of as database:
        store = await Store.open(database)
        try:
            _, key = await store.users.create(USER, PASSWORD)
            common = [
                "--database-url", database, "--redis-url", redis_url, "--redis-prefix", prefix,
                "--secret-key", secrets.token_hex(32),
                "--cluster-heartbeat", str(HEARTBEAT), "--cluster-ttl", str(TTL),
                "--reconnect-grace", str(grace), "--broadcast-heartbeat", "1",
            ]  # fmt: skip
            nodes = Site(tmp_path, common, store, key)
            try:
                yield nodes
            finally:
                await nodes.stop()
                await drop_prefix(prefix)
            assert all(code in (0, -9) for code in nodes.exits), nodes.exits
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def publishing(media: MediaFile, node: Node, key: str) -> AsyncIterator[None]:
    """ffmpeg publishing ``media`` over and over to ``node``; killed at the end (SIGKILL:
    its connection drops without an unpublish, as when a streamer's network fails)."""
    ffmpeg = await asyncio.create_subprocess_exec(
        *publish_args(media, node.rtmp_port, key, loop=True),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        if ffmpeg.returncode is None:
            ffmpeg.kill()
        await ffmpeg.wait()


async def live_broadcast(s: Site, node: Node, *, not_id: int | None = None) -> int:
    """The id of the broadcast on air, once the API of ``node`` says it is live (and, with
    ``not_id``, once that is another broadcast: the new row is written a moment after
    the channel goes live, and until then the API may still show the old one open)."""

    async def check() -> int | None:
        view = await node.get(f"/api/v1/channels/{USER}")
        last = view["last_broadcast"]
        on_air = view["live"] and last is not None and last["ended_at"] is None
        return int(last["id"]) if on_air and int(last["id"]) != not_id else None

    found: int = await eventually(check, 60, f"{USER} live on {node.name}")
    return found


async def next_state(events: aiohttp.ClientWebSocketResponse, state: str) -> dict[str, Any]:
    """The next channel event of ``USER`` saying ``state`` (bounded)."""
    async with asyncio.timeout(30):
        while True:
            fields = (await events.receive_json())["channel"]
            if fields["username"] == USER and fields.get("state") == state:
                return dict(fields)


async def test_a_publisher_back_on_another_node_continues_the_broadcast(
    tmp_path: Path, av_media: MediaFile
) -> None:
    async with (
        site(tmp_path, grace=30.0, postgres=True) as s,
        aiohttp.ClientSession() as http,
    ):
        a, b = await s.start("a"), await s.start("b")
        edge = await s.start("e", "--role", "edge")
        # The edge's channel events: each state change, told by the node ingesting it.
        events = await http.ws_connect(f"ws://127.0.0.1:{edge.http_port}/events/ws")
        # A viewer on the edge, and one on B (the node the streamer will come back to).
        watchers = [
            Watcher(
                f"ws://127.0.0.1:{node.http_port}/live/{USER}/ws", tmp_path / f"{node.name}.mp4"
            )
            for node in (edge, b)
        ]
        watching: list[asyncio.Task[None]] = []
        try:
            async with publishing(av_media, a, s.key):
                first = await live_broadcast(s, edge)
                await next_state(events, "live")
                watching = [asyncio.create_task(w.run()) for w in watchers]
                for w in watchers:
                    await until(lambda w=w: w.chunks_by_phase[-1] > 30, timeout=60)
            # The streamer's connection to A dropped; they go live again on B at once.
            for w in watchers:
                await until(lambda w=w: "reconnecting" in w.texts, timeout=30)
            # Every node says so, with the viewers still there (told by A, through Redis).
            told = await next_state(events, "reconnecting")
            assert told["live"] is True
            # (the viewer counts travel with the heartbeats: a moment after the state)
            await eventually(
                lambda: _reconnecting(edge, viewers=2), 10, "edge lists it waiting, 2 viewers"
            )
            async with publishing(av_media, b, s.key):
                assert (await next_state(events, "live"))["started_at"] == told["started_at"]
                for w in watchers:
                    await until(lambda w=w: "resumed" in w.texts, timeout=60)
                    await until(lambda w=w: w.chunks_by_phase[-1] > 60, timeout=60)
                assert await live_broadcast(s, b) == first
                assert await live_broadcast(s, edge) == first
                metrics = await b.get("/api/v1/stats")
                assert metrics["cluster"]["broadcasts_taken_over"] == 1
                assert [e["channel"] for e in metrics["cluster"]["entries"]] == [USER]
                assert metrics["pulls"]["channels"] == {}  # B ingests it: no pull left
                for task in watching:  # before the streamer goes away again
                    task.cancel()
                await asyncio.gather(*watching, return_exceptions=True)
        finally:
            for task in watching:
                task.cancel()
            await asyncio.gather(*watching, return_exceptions=True)
        for w in watchers:
            # (offline first: the node had not pulled the channel yet when the viewer came)
            seen = [text for text in w.texts if text != "offline"]
            assert seen == ["init", "reconnecting", "resumed"], w.texts
            # One init, one timeline: what the viewer got decodes as one stream.
            frames, errors = await decode(str(w.out))
            assert errors == ""
            assert frames >= sum(w.chunks_by_phase) - 5
        # The broadcast is one row, B's now; A handed it over without ending it.
        (row,) = await s.store.broadcasts.list(USER)
        assert row.id == first
        assert "the broadcast went on at" in a.log


@pytest.mark.parametrize("how", ["killed", "stopped"])
async def test_a_publisher_back_on_a_restarted_node_continues_the_broadcast(
    tmp_path: Path, av_media: MediaFile, how: str
) -> None:
    """Killed (SIGKILL: nothing said to Redis or the database), or stopped normally while
    another node of the site runs: A leaves the broadcast open, and its publisher back on
    A after the restart carries it on."""
    async with site(tmp_path, grace=60.0) as s:
        a = await s.start("a")
        if how == "stopped":
            await s.start("b")
            await eventually(lambda: _hears_others(a), 10, "a hears b")
        async with publishing(av_media, a, s.key):
            first = await live_broadcast(s, a)
            if how == "killed":
                a.kill()
                assert await a.stop() == -9
            else:
                assert await a.stop() == 0
                assert f"broadcast {first} left open" in a.log
        a = await s.start("a")  # the same ports and data dir
        async with publishing(av_media, a, s.key):
            assert await live_broadcast(s, a) == first
        (row,) = await s.store.broadcasts.list(USER)
        assert row.id == first


async def _reconnecting(node: Node, viewers: int | None = None) -> dict[str, Any] | None:
    """``USER``'s card in ``node``'s directory while it is reconnecting (with ``viewers``)."""
    for card in (await node.get("/api/v1/streams"))["streams"]:
        if (card["username"], card["state"]) == (USER, "reconnecting") and (
            viewers is None or card["viewers"] == viewers
        ):
            return dict(card)
    return None


async def _hears_others(node: Node) -> bool:
    return bool((await node.get("/api/v1/stats"))["cluster"]["other_nodes"])


async def test_after_the_grace_a_new_broadcast_starts_and_the_old_one_ends(
    tmp_path: Path, av_media: MediaFile
) -> None:
    grace = 2.0
    async with site(tmp_path, grace=grace) as s:
        a, b = await s.start("a"), await s.start("b")
        async with publishing(av_media, a, s.key):
            first = await live_broadcast(s, b)
            a.kill()  # the node dies with the broadcast open in the database
            assert await a.stop() == -9
        # Past the grace (and the slack of a heartbeat), the streamer goes live on B.
        await asyncio.sleep(grace + 2.0)
        async with publishing(av_media, b, s.key):
            second = await live_broadcast(s, b, not_id=first)
        newest, oldest = await s.store.broadcasts.list(USER)
        assert (newest.id, oldest.id) == (second, first)
        assert oldest.ended_at is not None  # ended when it was last on air
        assert oldest.ended_at < newest.started_at
