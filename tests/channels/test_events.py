"""Channel events: the node that ingests a channel announces each change of what viewers
are shown (live, reconnecting, offline) once; a channel followed from another node is
announced by that node, not here; every listener gets the same text."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from strom.channels.directory import Directory
from strom.channels.events import ChannelEvents, EventLimits
from strom.chat.bus import LocalBus
from strom.live.channel import ChannelState
from strom.live.registry import Registry
from strom.record.thumbnails import ThumbnailWorker
from strom.store import ChannelInfo


class Listener:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def send(self, text: str) -> None:
        self.texts.append(text)

    def close(self) -> None:
        pass

    def states(self) -> list[tuple[str, str]]:
        return [
            (c["username"], c["state"])
            for c in (json.loads(t)["channel"] for t in self.texts)
            if "state" in c
        ]


async def no_account(name: str) -> None:
    return None


async def until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not in time")


async def test_each_state_viewers_see_is_announced_once_by_the_ingest_node() -> None:
    registry = Registry()
    store: Any = SimpleNamespace(users=SimpleNamespace(get=no_account))
    directory = Directory(registry, store, ThumbnailWorker(registry), ["alice", "bob"])
    events = ChannelEvents(registry, directory, LocalBus(), EventLimits(viewers_interval=3600))
    first, second = Listener(), Listener()
    events.listeners |= {first, second}
    await events.start()
    try:
        alice = registry.open("alice")
        for state in (
            ChannelState.STARTING,  # not on yet: nothing to say
            ChannelState.LIVE,
            ChannelState.RECONNECTING,
            ChannelState.LIVE,
            ChannelState.OFFLINE,
        ):
            alice._set_state(state)
            await until(lambda: not events._pending)
        bob = registry.open("bob")
        bob.origin = "http://other-node:8080"  # pulled: its ingest node announces it
        bob._set_state(ChannelState.LIVE)
        events.changed("bob")  # a title saved here is announced here, though
        await until(lambda: len(first.texts) == 5)
        assert first.states() == [
            ("alice", "live"),
            ("alice", "reconnecting"),
            ("alice", "live"),
            ("alice", "offline"),
            ("bob", "live"),
        ]
        assert first.texts == second.texts
    finally:
        await events.stop()


async def test_a_new_avatar_reaches_the_card_on_the_node_the_channel_is_live_on() -> None:
    """Alice is live on node B; she uploads an avatar through node A, which announces her:
    B reads her channel again and its card shows the new avatar (A, which announced it,
    reads nothing again)."""
    bus = LocalBus()
    asked: list[str] = []

    def info(etag: str | None) -> ChannelInfo:
        return ChannelInfo(
            username="alice", title="", description="", category=None,
            require_account_for_chat=False, stream_key_created_at=datetime.now(UTC),
            last_broadcast=None, avatar_etag=etag,
        )  # fmt: skip

    async def channel(name: str) -> ChannelInfo:
        asked.append(name)
        return info("v2")

    store: Any = SimpleNamespace(
        users=SimpleNamespace(get=no_account), channels=SimpleNamespace(get=channel)
    )
    nodes = []
    for _ in range(2):
        registry = Registry()
        directory = Directory(registry, store, ThumbnailWorker(registry), ["alice"])
        events = ChannelEvents(registry, directory, bus, EventLimits(viewers_interval=3600))
        await events.start()
        nodes.append((registry, directory, events))
    (_, _, on_a), (registry_b, directory_b, on_b) = nodes
    try:
        alice = registry_b.open("alice")
        directory_b.remember(info(None))
        alice._set_state(ChannelState.LIVE)
        await until(lambda: not on_b._pending)
        assert directory_b.stream_card(alice)["avatar_url"] is None
        assert asked == []  # B's own announcement: nothing to read again

        on_a.changed("alice")
        await until(lambda: directory_b.stream_card(alice)["avatar_url"] is not None)
        assert directory_b.stream_card(alice)["avatar_url"] == "/avatars/alice/64.jpg?v=v2"
        assert asked == ["alice"]
    finally:
        for _, _, events in nodes:
            await events.stop()
