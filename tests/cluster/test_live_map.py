"""The live map against the real Redis (a key prefix of its own per test): two or three
maps in one process stand for nodes, each with its own hub. A channel is claimed by one
node at a time; what each node has live and its viewers show on the others; a node that
dies without a word (its heartbeat stops) vanishes with its TTL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from strom.channels import Directory
from strom.cluster import LiveMap, ViewersOnly
from strom.errors import PublishRefused
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.record.thumbnails import ThumbnailWorker
from strom.store import Argon2Params, Store
from tests.helpers.cluster import drop_prefix, eventually, need_redis, redis_prefix
from tests.helpers.hub import Publisher, Viewer, feed, read_flv
from tests.helpers.media import MediaFile

HEARTBEAT = 0.2
TTL = 0.8


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    found = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db'}", argon2=Argon2Params.cheap())
    await found.migrate()
    yield found
    await found.close()


@pytest.fixture
async def nodes(store: Store) -> AsyncIterator[Callable[..., object]]:
    url = await need_redis()
    prefix = redis_prefix()
    made: list[LiveMap] = []

    async def make(name: str, role: str = "all", **kwargs: object) -> LiveMap:
        live_map = LiveMap(
            str(kwargs.pop("url", url)), Registry(), store, node_id=name, prefix=prefix,
            role=role, heartbeat=HEARTBEAT, ttl=TTL,
        )  # fmt: skip
        await live_map.start(f"http://{name}.test:8080", 1935)
        made.append(live_map)
        return live_map

    yield make
    for live_map in made:
        await live_map.close()
    await drop_prefix(prefix)


def go_live(node: LiveMap, media: MediaFile, name: str = "alice") -> Channel:
    channel = node.registry.open(name)
    channel.claim(Publisher())
    feed(channel, read_flv(media.path)[:40])
    assert channel.live
    return channel


async def test_one_node_holds_a_channel_and_the_others_see_it(nodes, av_media) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    b: LiveMap = await nodes("b")
    await a.admit("alice")
    with pytest.raises(PublishRefused, match=r"already live on http://a\.test:8080"):
        await b.admit("alice")
    channel = go_live(a, av_media)
    assert await b.locate("alice") == "http://a.test:8080"
    assert await b.locate("bob") is None
    # a writes its entry from the channel's event, a moment later on a loaded machine
    await eventually(lambda: _state_is(b, "alice", "live"), 5, "b sees alice live")
    entry = await b.entry("alice")
    assert entry is not None
    assert entry.broadcast == 1
    assert entry.width == av_media.width

    # Viewers on both nodes: each shows the sum of the others'.
    for _ in range(3):
        channel.subscribe(Viewer())
    b_channel = b.registry.open("alice")
    b_channel.origin = "http://a.test:8080"  # pulled: not b's to claim
    b_channel.subscribe(Viewer())
    await eventually(lambda: _settled(b, lambda: b.viewers("alice") == 3), 5, "b sees a's 3")
    await eventually(lambda: _settled(a, lambda: a.viewers("alice") == 1), 5, "a sees b's 1")
    assert [s.name for s in b.streams()] == ["alice"]
    assert await b.locate("alice") == "http://a.test:8080"  # b's pull claims nothing

    # The broadcast ends: the channel is free for another node at once.
    channel.release(channel.publisher)  # type: ignore[arg-type]
    await eventually(lambda: _free(b, "alice"), 5, "the claim released")
    await eventually(lambda: _settled(b, lambda: not b.streams()), 5, "gone from b's list")


async def test_a_dead_nodes_entries_vanish_with_their_ttl(nodes, av_media) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    b: LiveMap = await nodes("b")
    await a.admit("alice")
    go_live(a, av_media)
    await eventually(lambda: _settled(b, lambda: bool(b.streams())), 5, "b lists alice")
    # Node a stops beating without a word (as SIGKILL would leave it).
    assert a._task is not None
    a._closed = True
    a._task.cancel()
    await eventually(lambda: _free(b, "alice"), 5, "a's claim lapsed")
    await eventually(lambda: _settled(b, lambda: not b.streams() and not b.nodes()), 5, "a gone")


async def test_a_broadcast_waiting_for_its_publisher_keeps_its_claim(nodes, av_media) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    await a.admit("alice")
    channel = go_live(a, av_media)
    channel.publisher_lost(channel.publisher)  # type: ignore[arg-type]
    assert channel.state.value == "reconnecting"
    await a.sync()
    await asyncio.sleep(TTL * 2)  # claims refreshed by a's heartbeat through the grace
    entry = await a.entry("alice")
    assert entry is not None
    assert (entry.node, entry.state) == ("a", "reconnecting")
    assert entry.timeline == channel.timeline > 0  # where a node carrying it on goes on
    channel.close()  # the grace is over: the broadcast ends, the channel is free
    await eventually(lambda: _free(a, "alice"), 5, "released after the grace")


async def test_the_publisher_back_on_another_node_takes_the_broadcast_over(nodes, av_media) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    b: LiveMap = await nodes("b")
    await a.admit("alice")
    channel = go_live(a, av_media)
    await a.sync()  # its entry now (not at the next heartbeat: the admit's claim lapses)
    with pytest.raises(PublishRefused, match=r"already live on http://a\.test:8080"):
        await b.admit("alice")  # live on a: refused
    channel.publisher_lost(channel.publisher)  # type: ignore[arg-type]
    await eventually(lambda: _state_is(b, "alice", "reconnecting"), 5, "a waits for alice")
    # Waiting for its publisher on a, who comes to b: b takes the claim, and the next
    # claim of the channel on b carries the broadcast on (its start, its timeline).
    await b.admit("alice")
    assert b.metrics()["broadcasts_taken_over"] == 1
    there = b.registry.open("alice")
    there.claim(Publisher())
    assert (there.started_at, there.timeline) == (channel.started_at, channel.timeline)
    # a learns it at its next heartbeat: it hands the channel over, ending nothing.
    await eventually(lambda: _settled(a, lambda: channel.origin is not None), 5, "handed over")
    assert (channel.state.value, channel.origin) == ("reconnecting", "http://b.test:8080")
    assert await a.locate("alice") == "http://b.test:8080"
    with pytest.raises(PublishRefused, match=r"already live on http://b\.test:8080"):
        await a.admit("alice")  # b has it now
    channel.close()
    await a.sync()
    entry = await b.entry("alice")
    assert entry is not None
    assert entry.node == "b"  # a's end released nothing of b's


async def test_a_claim_never_used_lapses(nodes) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    b: LiveMap = await nodes("b")
    await a.admit("alice")  # a publish that failed before it claimed the channel
    with pytest.raises(PublishRefused):
        await b.admit("alice")
    await eventually(lambda: _free(b, "alice"), 5, "the unused claim lapsed")


async def test_an_edge_refuses_publishers_and_names_the_ingest_nodes(nodes) -> None:  # type: ignore[no-untyped-def]
    await nodes("a")
    edge: LiveMap = await nodes("e", role="edge")
    await edge.sync()
    with pytest.raises(PublishRefused, match=r"publish to rtmp://a\.test:1935/live") as info:
        await edge.admit("alice")
    assert info.value.http_status == 403
    with pytest.raises(PublishRefused, match="role edge"):
        await ViewersOnly().admit("alice")


async def test_the_directory_lists_and_sums_the_other_nodes(nodes, av_media, store) -> None:  # type: ignore[no-untyped-def]
    a: LiveMap = await nodes("a")
    b: LiveMap = await nodes("b")
    await a.admit("alice")
    channel = go_live(a, av_media)
    channel.subscribe(Viewer())
    # A viewer of alice's 480p rendition (the ladder's, on a) is one of alice's.
    go_live(a, av_media, "alice~480p").subscribe(Viewer())
    directory = Directory(b.registry, store, ThumbnailWorker(b.registry), ("alice",), others=b)
    await eventually(lambda: _settled(b, lambda: bool(directory.streams())), 5, "b lists alice")
    [card] = directory.streams()
    assert card["username"] == "alice"
    assert card["viewers"] == 2
    assert card["width"] == av_media.width
    card = directory.live_card("alice")  # what the followers' go-live notices read
    assert card is not None
    assert card["viewers"] == 2
    assert directory.live_card("bob") is None
    view = await directory.channel_view("alice")
    assert view is not None
    assert view["live"]
    assert view["viewers"] == 2


async def test_without_redis_a_node_keeps_serving_its_own(nodes, av_media, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, "strom.cluster")
    lone: LiveMap = await nodes("lone", url="redis://127.0.0.1:1/0")
    await lone.admit("alice")  # admitted on its own word
    go_live(lone, av_media)
    await lone.sync()
    assert not lone.connected
    assert lone.metrics()["entries"][0]["channel"] == "alice"  # type: ignore[index]
    assert len([r for r in caplog.records if "Redis unreachable" in r.message]) == 1


async def _settled(node: LiveMap, check: Callable[[], bool]) -> bool:
    await node.sync()
    return check()


async def _free(node: LiveMap, name: str) -> bool:
    try:
        await node.admit(name)
    except PublishRefused:
        return False
    return True


async def _state_is(node: LiveMap, name: str, state: str) -> bool:
    entry = await node.entry(name)
    return entry is not None and entry.state == state
