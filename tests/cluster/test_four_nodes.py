"""The site of issue 13 in four ``strom serve`` processes: one ingest, one relay (its
``--upstream`` the ingest) and two edges (``--role edge``, their ``--upstream`` the relay),
sharing a PostgreSQL database of this test's own, a Redis key prefix of its own and one
secret key.

People chat on every node and see one room. Viewers on both edges are there before the
streamer goes live: that makes each edge pull the channel from the relay, and the relay
(one pull for the two edges) from the ingest. ffmpeg publishes to the ingest; a WebSocket
viewer on each edge, an LL-HLS viewer on one and an RTMP player on the other get every
frame (decoded by ffmpeg); the directory of every node lists the channel with the viewers
of every node summed; after the end each pull lets go, a linger after its last viewer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import CHANNEL, make_media, publish_args, run_process
from tests.helpers.chat import Person
from tests.helpers.cluster import (
    CHAT_SHARED,
    drop_prefix,
    eventually,
    need_redis,
    postgres_database,
    redis_prefix,
)
from tests.helpers.nodes import Node, all_running
from tests.helpers.watching import collect_ws, decode

# serial: the directory must show the summed viewers while the (10 s) broadcast lasts, on
# four nodes, a publisher and four players: a deadline a crowded machine could miss.
pytestmark = [pytest.mark.e2e, pytest.mark.serial]

HEARTBEAT = 0.5  # --cluster-heartbeat: viewer counts reach the other nodes this often
#: --pull-linger of the edges: longer than an LL-HLS player takes to reload the playlist
#: once more after the end (about a target duration, 2 s), which must not pull again
EDGE_LINGER = 4.0
RELAY_LINGER = 1.0  # the relay's followers are the edges: no player reloads there
WAIT = 15.0  # a bound on waiting for the site to agree, never a timing assertion


@dataclass(frozen=True)
class FourNodes:
    ingest: Node
    relay: Node
    edge1: Node
    edge2: Node

    @property
    def all(self) -> tuple[Node, Node, Node, Node]:
        return (self.ingest, self.relay, self.edge1, self.edge2)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[FourNodes]:
    redis_url = await need_redis()
    prefix = redis_prefix()
    async with postgres_database() as database:
        common = (
            "--database-url", database, "--redis-url", redis_url, "--redis-prefix", prefix,
            "--cluster-heartbeat", str(HEARTBEAT), "--cluster-ttl", str(4 * HEARTBEAT),
        )  # fmt: skip
        ingest = Node(tmp_path / "ingest", *common, "--role", "all")
        relay = Node(
            tmp_path / "relay", *common, "--role", "all", "--upstream", ingest.base,
            "--pull-linger", str(RELAY_LINGER),
        )  # fmt: skip
        # The edges keep every segment of the broadcast in their playlist, so an LL-HLS
        # player can read it from its first frame.
        edge = (
            "--role", "edge", "--upstream", relay.base, "--pull-linger", str(EDGE_LINGER),
            "--hls-window-segments", "30",
        )  # fmt: skip
        edges = [Node(tmp_path / f"edge{i}", *common, *edge) for i in (1, 2)]
        try:
            async with all_running(ingest, relay, *edges):
                for node in (ingest, relay, *edges):
                    await node.until_logged(CHAT_SHARED)
                yield FourNodes(ingest, relay, *edges)
        finally:
            await drop_prefix(prefix)
    for node in (ingest, relay, *edges):
        assert node.returncode == 0, f"{node.name} did not stop cleanly:\n{node.log}"
        assert "Traceback" not in node.log, node.log


async def listed(node: Node) -> list[tuple[str, int]]:
    """The directory of ``node``: (channel, viewers) for each live channel."""
    return [(s["username"], s["viewers"]) for s in (await node.get("/api/v1/streams"))["streams"]]


async def pulls(node: Node) -> dict[str, Any]:
    found: dict[str, Any] = (await node.metrics())["pulls"]
    return found


async def test_ingest_relay_and_two_edges(site: FourNodes, tmp_path: Path, media_dir: Path) -> None:
    media = make_media(media_dir / "four-nodes.flv", seconds=10.0, size="320x240", gop=30)
    ingest, relay, edge1, edge2 = site.all

    # Chat: a guest on edge 1 talks to the guests of every other node, one answers.
    people = [Person(node) for node in site.all]
    try:
        chats = [await person.join(CHANNEL) for person in people]
        await chats[2].say("hello from edge 1")
        for chat in (chats[0], chats[1], chats[3]):
            message = await chat.next("message", text="hello from edge 1")
            assert message["user"] == chats[2].welcome["permissions"]["name"]
        await chats[0].say("hi from the ingest")
        await chats[2].next("message", text="hi from the ingest")
        await chats[3].next("message", text="hi from the ingest")
    finally:
        for person in people:
            await person.close()

    # Viewers on both edges before the broadcast: WebSocket on each, RTMP play on edge 2.
    outs = {edge.name: tmp_path / f"{edge.name}.mp4" for edge in (edge1, edge2)}
    viewers = {
        edge.name: asyncio.create_task(
            collect_ws(f"{edge.base}/live/{CHANNEL}/ws", outs[edge.name], max_seconds=60)
        )
        for edge in (edge1, edge2)
    }
    player = asyncio.create_task(decode(f"rtmp://127.0.0.1:{edge2.rtmp_port}/live/{CHANNEL}"))
    # Each edge pulls from the relay on its first viewer; the relay follows the ingest
    # once, for both.
    for edge in (edge1, edge2):
        found = await eventually(lambda e=edge: _pulling(e), WAIT, f"{edge.name} pulls")
        assert found == {CHANNEL: relay.base}
    assert await eventually(lambda: _pulling(relay), WAIT, "the relay pulls") == {
        CHANNEL: ingest.base
    }
    await eventually(lambda: _feeds(relay, 2), WAIT, "the relay feeds both edges")
    await eventually(lambda: _feeds(ingest, 1), WAIT, "the ingest feeds the relay")

    publisher = asyncio.create_task(run_process(*publish_args(media, ingest.rtmp_port)))
    hls: asyncio.Task[tuple[int, str]] | None = None
    try:
        # An LL-HLS player on edge 1, from the first segment of the playlist to its end.
        playlist = f"{edge1.base}/live/{CHANNEL}/index.m3u8"
        async with aiohttp.ClientSession() as http, http.get(f"{playlist}?_HLS_msn=0") as resp:
            assert resp.status == 200
            assert "#EXT-X-PART:" in await resp.text()
        hls = asyncio.create_task(decode(playlist, "-live_start_index", "0"))

        # Every node's directory: the channel, with the three viewers of the edges summed
        # (the LL-HLS player, the relay's and the edges' pulls are no viewers).
        for node in site.all:
            await eventually(
                lambda n=node: _listed_with(n, 3), WAIT, f"{node.name} lists alice with 3"
            )
        # Still one pull on the relay, however many edges follow it.
        assert (await pulls(relay))["started_total"] == 1
        assert (await relay.metrics())["pull_feeds"] == 2
        assert (await ingest.metrics())["pull_feeds"] == 1

        code, log = await publisher
        assert code == 0, log
        for name, viewer in viewers.items():
            texts = await viewer
            assert texts[1]["type"] == "init", name
            assert texts[-2:] == [{"type": "end"}, {"type": "closed", "code": "1000"}], name
            assert await decode(str(outs[name])) == (media.frames, ""), name
        assert await player == (media.frames, "")
        assert await hls == (media.frames, "")
    finally:
        for task in (publisher, player, hls, *viewers.values()):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            publisher, player, *viewers.values(), *([hls] if hls else []), return_exceptions=True
        )

    # Nobody left: each edge lets its pull go a linger later, then the relay; nobody
    # pulled twice.
    for node in (edge1, edge2, relay):
        await eventually(lambda n=node: _released(n), WAIT, f"{node.name} lets go")
        assert (await pulls(node))["started_total"] == 1, node.name
    assert "no viewer left; stopping" in relay.log
    for node in site.all:
        await eventually(lambda n=node: _listed_with(n, None), WAIT, f"{node.name}: none live")


async def _pulling(node: Node) -> dict[str, str]:
    found: dict[str, str] = (await pulls(node))["channels"]
    return found


async def _feeds(node: Node, count: int) -> bool:
    return bool((await node.metrics())["pull_feeds"] == count)


async def _listed_with(node: Node, viewers: int | None) -> bool:
    """Whether ``node`` lists alice with ``viewers`` (None: lists nothing)."""
    expected = [] if viewers is None else [(CHANNEL, viewers)]
    return await listed(node) == expected


async def _released(node: Node) -> bool:
    return bool((await pulls(node))["active"] == 0)
