"""Three real ``strom serve`` processes as one site: they share a PostgreSQL database of
this test's own, a Redis key prefix of its own and one secret key. Node A and node B
ingest (``--role all``), node E only serves viewers (``--role edge``). ffmpeg publishes to
A; B and E list the channel with the viewers of every node summed; an edge and a second
publisher elsewhere are refused with the reason; when A dies (SIGKILL) its channel leaves
the directory within the TTL and can be published on B."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import MediaFile, publish_args, run_process
from tests.helpers.chat import ChatClient
from tests.helpers.cluster import (
    drop_prefix,
    eventually,
    need_redis,
    postgres_database,
    redis_prefix,
)
from tests.helpers.nodes import Node, all_running

HEARTBEAT = 0.5
TTL = 2.0


@contextlib.asynccontextmanager
async def site(tmp_path: Path) -> AsyncIterator[dict[str, Node]]:
    redis_url = await need_redis()
    prefix = redis_prefix()
    secret = secrets.token_hex(32)
    async with postgres_database() as database:
        common = (
            "--database-url", database, "--redis-url", redis_url, "--redis-prefix", prefix,
            "--cluster-heartbeat", str(HEARTBEAT), "--cluster-ttl", str(TTL),
        )  # fmt: skip
        nodes = [
            Node(tmp_path / name, *common, "--role", role, secret_key=secret, socketio_door=True)
            for name, role in (("a", "all"), ("b", "all"), ("e", "edge"))
        ]
        try:
            async with all_running(*nodes):
                yield {node.name: node for node in nodes}
        finally:
            await drop_prefix(prefix)
        codes = {node.name: node.returncode for node in nodes}
        assert all(code in (0, -9) for code in codes.values()), codes


async def streams(node: Node) -> list[dict[str, Any]]:
    return list((await node.get("/api/v1/streams"))["streams"])


async def viewers_on(node: Node, count: int) -> bool:
    found = await streams(node)
    return bool(found) and found[0]["viewers"] == count


async def hold_viewer(http: aiohttp.ClientSession, node: Node) -> Any:
    """A WebSocket viewer of alice on ``node`` (a counted viewer slot there)."""
    return await http.ws_connect(f"ws://127.0.0.1:{node.http_port}/live/alice/ws")


async def test_three_nodes_are_one_site(tmp_path: Path, av_media: MediaFile) -> None:
    async with site(tmp_path) as nodes, aiohttp.ClientSession() as http:
        a, b, e = nodes["a"], nodes["b"], nodes["e"]
        publisher = await asyncio.create_subprocess_exec(
            *publish_args(av_media, a.rtmp_port, loop=True),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # Every node lists the channel live on A.
            for node in (a, b, e):
                await eventually(lambda n=node: streams(n), 20, f"{node.name} lists alice")
            [card] = await streams(e)
            assert card["username"] == "alice"
            assert card["width"] == av_media.width
            page = await b.get("/api/v1/channels/alice")
            assert page["live"]
            async with http.get(e.base + "/") as resp:  # the home page of the edge
                assert 'data-username="alice"' in await resp.text()

            # A viewer on each of A, B and E: every node shows three.
            held = [await hold_viewer(http, node) for node in (a, b, e)]
            for node in (a, b, e):
                await eventually(lambda n=node: viewers_on(n, 3), 10, f"3 viewers on {node.name}")
            # The chat room shows the same figure, on a node that does not ingest alice.
            async with http.ws_connect(f"ws://127.0.0.1:{b.http_port}/chat/alice/ws") as ws:
                chat = ChatClient(ws)
                if (await chat.next("welcome"))["viewers"] != 3:
                    await chat.next("viewers", count=3)
            # The edge's viewer gets the media, pulled from A (located through the map).
            async with asyncio.timeout(20):
                while (await held[2].receive()).type is not aiohttp.WSMsgType.BINARY:
                    pass
            await held.pop().close()
            for node in (a, b, e):
                await eventually(lambda n=node: viewers_on(n, 2), 10, f"2 viewers on {node.name}")

            # The edge refuses a publisher and says where to go live.
            code, out = await run_process(*publish_args(av_media, e.rtmp_port), timeout=30)
            assert code != 0
            assert "role edge): publish to rtmp://" in out, out
            for node in (a, b):  # the ingest nodes, both named
                assert f"rtmp://127.0.0.1:{node.rtmp_port}/live" in out
            assert "role edge" in out

            # A second publisher of alice on B while A has it: refused, naming A.
            code, out = await run_process(*publish_args(av_media, b.rtmp_port), timeout=30)
            assert code != 0
            assert f"already live on {a.base}" in out, out
            metrics = await a.get("/api/v1/stats")
            cluster = metrics["cluster"]
            assert cluster["role"] == "all"
            assert cluster["node_url"] == a.base
            assert [x["channel"] for x in cluster["entries"]] == ["alice"]
            assert (await e.get("/api/v1/stats"))["cluster"]["role"] == "edge"

            # A dies without a word: alice leaves the directory of B and E within the TTL
            # (and a heartbeat), and B can take it.
            a.kill()
            for node in (b, e):
                await eventually(
                    lambda n=node: _empty(n),
                    TTL + 3 * HEARTBEAT + 2,
                    f"alice gone from {node.name}",
                )
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()
        for ws in held:
            await ws.close()

        republisher = await asyncio.create_subprocess_exec(
            *publish_args(av_media, b.rtmp_port, loop=True),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for node in (b, e):
                await eventually(lambda n=node: streams(n), 20, f"alice on B, seen on {node.name}")
            assert (await e.get("/api/v1/stats"))["cluster"]["other_nodes"] == [b.base]
        finally:
            republisher.kill()
            await republisher.wait()


async def _empty(node: Node) -> bool:
    return not await streams(node)


async def test_recordings_and_pictures_are_served_by_every_node(
    tmp_path: Path, av_media: MediaFile
) -> None:
    """A records and pictures alice (it ingests her); B and the edge list the recording
    and answer its playlist and segments, and the live picture, byte for byte as A does
    (asked of A for them)."""
    async with site(tmp_path) as nodes, aiohttp.ClientSession() as http:
        a, b, e = nodes["a"], nodes["b"], nodes["e"]
        publisher = await asyncio.create_subprocess_exec(
            *publish_args(av_media, a.rtmp_port, loop=True),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # The live picture: B's card names it, the edge answers it.
            async def pictured() -> str | None:
                found = await streams(b)
                return found[0]["thumbnail_url"] if found else None

            picture = await eventually(pictured, 30, "a picture of alice on B's card")
            bodies = []
            for node in (a, e):
                async with http.get(node.base + picture) as resp:
                    assert resp.status == 200, node.name
                    assert resp.content_type == "image/jpeg"
                    bodies.append(await resp.read())
            assert bodies[0] == bodies[1]
            assert bodies[1].startswith(b"\xff\xd8")

            # The recording under way: listed by every node, played from any.
            async def recorded(node: Node) -> list[dict[str, Any]]:
                found = await node.get("/api/v1/channels/alice/recordings")
                return list(found["recordings"])

            [recording] = await eventually(lambda: recorded(e), 20, "the recording on E")
            [on_b] = await recorded(b)  # read a moment later: it may have grown since

            def steady(r: dict[str, Any]) -> dict[str, Any]:
                return {k: v for k, v in r.items() if k not in ("duration", "bytes")}

            assert steady(on_b) == steady(recording)
            assert on_b["duration"] >= recording["duration"]
            assert on_b["bytes"] >= recording["bytes"]
            [on_a] = await recorded(a)  # read later still: as long at least
            assert steady(on_a) == steady(recording)
            assert on_a["duration"] >= recording["duration"]
            assert on_a["bytes"] >= recording["bytes"]

            async def playlist(node: Node) -> str:
                async with http.get(node.base + recording["playlist_url"]) as resp:
                    assert resp.status == 200, node.name
                    return await resp.text()

            async def has_segment() -> str | None:
                text = await playlist(e)
                return next((x for x in text.splitlines() if x.endswith(".m4s")), None)

            segment = await eventually(has_segment, 30, "a segment in the edge's playlist")
            base = recording["playlist_url"].rsplit("/", 1)[0]
            media = []
            for node in (a, b, e):
                async with http.get(f"{node.base}{base}/{segment}") as resp:
                    assert resp.status == 200, node.name
                    media.append(await resp.read())
            assert media[0] == media[1] == media[2]
            assert len(media[0]) > 1000
            async with http.get(f"{e.base}/vod/alice/20000101-000000/index.m3u8") as resp:
                assert resp.status == 404  # nobody has it: asked around, then refused
            assert (await e.get("/api/v1/stats"))["elsewhere"]["forwarded"] >= 3
        finally:
            publisher.kill()
            await publisher.wait()
