"""Several nodes: two real ``strom serve`` processes share one database (an SQLite file in
WAL mode, which several processes may open) and one Redis (the server on this machine,
127.0.0.1:6379), with a key prefix of their own per test so runs do not collide. People
chat on either node and see one room; a ban on one node applies on the other. Then the bus
itself: viewer counts summed over nodes, and reconnection after Redis drops it.

Redis unreachable: the tests fail in CI and are skipped elsewhere, saying why."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from strom.chat.events import LikesAdded, RoomEvent, ViewerCount
from strom.chat.redis_bus import RedisBus
from strom.store import Argon2Params, Store, User
from tests.helpers.chat import PASSWORD, WAIT, Person
from tests.helpers.cluster import CHAT_SHARED, need_redis, redis_prefix
from tests.helpers.nodes import Node, all_running


@pytest.fixture
async def redis_url() -> str:
    """The test Redis, if it answers (CI: it must)."""
    return await need_redis()


@dataclass
class Site:
    a: Node
    b: Node
    users: dict[str, User]
    tokens: dict[str, str]
    people: list[Person] = field(default_factory=list)

    def person(self, node: Node, username: str | None = None) -> Person:
        person = Person(
            node,
            self.users[username] if username else None,
            token=self.tokens[username] if username else None,
        )
        self.people.append(person)
        return person


@pytest.fixture
async def site(redis_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    store = await Store.open(database, argon2=Argon2Params.cheap())
    try:
        await store.migrate()
        users = {
            name: (await store.users.create(name, PASSWORD))[0] for name in ("Streamer", "viewer")
        }
        # Log-in sessions live in the shared database: either node accepts them.
        tokens = {name: (await store.sessions.create(u.id))[0] for name, u in users.items()}
    finally:
        await store.close()
    site_args = (
        "--database-url", database, "--redis-url", redis_url, "--redis-prefix", redis_prefix(),
    )  # fmt: skip
    secret = secrets.token_hex(32)
    nodes = [
        Node(tmp_path / n, *site_args, secret_key=secret, stream_keys=(), socketio_door=True)
        for n in ("a", "b")
    ]
    async with all_running(*nodes) as (a, b):
        for node in nodes:  # the chat rooms are shared once each node hears Redis
            await node.until_logged(CHAT_SHARED)
        found = Site(a, b, users, tokens)
        yield found
        for person in found.people:
            await person.close()
    assert [node.returncode for node in nodes] == [0, 0], "a node did not stop cleanly"


async def test_two_nodes_share_one_room(site: Site) -> None:
    guest_a = await site.person(site.a).join("streamer")
    viewer_a = await site.person(site.a, "viewer").join("streamer")
    guest_b = await site.person(site.b).join("Streamer")
    owner_b = await site.person(site.b, "Streamer").join("streamer")

    # A message typed on node A reaches a viewer on node B, and the other way round.
    await guest_a.say("hello from A")
    message = await guest_b.next("message", text="hello from A")
    assert message["user"] == guest_a.welcome["permissions"]["name"]
    assert message["guest"]
    await owner_b.say("hi from B")
    assert (await viewer_a.next("message", text="hi from B"))["badges"] == ["owner"]

    # Likes on A are counted on B.
    for _ in range(3):
        await guest_a.send("like")
    total = 0
    while total < 3:
        total = (await guest_b.next("likes"))["total"]
    assert total == 3

    # The owner on B bans a user who is on A: A knows at once, and refuses their next message.
    await owner_b.send("ban", user="viewer", reason="spam")
    assert await viewer_a.next("ban", user="viewer")
    permissions = await viewer_a.next("permissions")
    assert permissions["banned"]
    await viewer_a.say("can I still talk?", nonce="v1")
    refused = await viewer_a.error("banned")
    assert refused["nonce"] == "v1"
    await guest_a.say("after the ban")
    await guest_b.next("message", text="after the ban")
    assert not [m for m in guest_b.seen("message") if m["text"] == "can I still talk?"]

    # Someone joining on B later gets the history both nodes wrote.
    late = await site.person(site.b).join("streamer")
    texts = [m["text"] for m in late.welcome["history"]]
    assert texts == ["hello from A", "hi from B", "after the ban"]

    # The chatter list on B names the users on A too, the owner first; guests are counted.
    await late.send("chatters", nonce="who")
    chatters = await late.next("chatters")
    assert chatters["users"] == [
        {"name": "Streamer", "badges": ["owner"]},
        {"name": "viewer", "badges": []},
    ]
    assert (chatters["guests"], chatters["total"], chatters["nonce"]) == (3, 5, "who")


# --- the bus between two nodes, in one process --------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.events: list[RoomEvent] = []
        self.arrived = asyncio.Event()

    def __call__(self, event: RoomEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def until(self, check: Callable[[list[RoomEvent]], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not check(self.events):
                self.arrived.clear()
                await self.arrived.wait()


def viewers(events: list[RoomEvent]) -> int | None:
    counts = [e.count for e in events if isinstance(e, ViewerCount)]
    return counts[-1] if counts else None


@pytest.fixture
async def buses(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    prefix = redis_prefix()
    opened: list[RedisBus] = []

    async def make(**kwargs: Any) -> RedisBus:
        bus = RedisBus(redis_url, prefix=prefix, **kwargs)
        await bus.start()
        async with asyncio.timeout(WAIT):
            await bus.wait_connected()
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()


async def test_viewer_counts_stay_on_their_node(buses: Callable[..., Any]) -> None:
    """Each node sums the site's viewers from the live map itself: a count given to one
    node's rooms is not sent to the others (they would show that node's figure)."""
    a: RedisBus = await buses()
    b: RedisBus = await buses()
    on_a, on_b = Collect(), Collect()
    await a.subscribe("alice", on_a)
    await b.subscribe("Alice", on_b)

    a.publish("alice", ViewerCount(5))
    a.publish("alice", LikesAdded(1))  # sent after the count: once it is there, so is...
    await on_b.until(lambda events: any(isinstance(e, LikesAdded) for e in events))
    assert viewers(on_b.events) is None  # ...what would have crossed before it
    assert viewers(on_a.events) == 5


async def test_bus_reconnects_after_redis_drops_it(
    buses: Callable[..., Any], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="strom.chat.redis_bus")
    a: RedisBus = await buses()
    b: RedisBus = await buses()
    on_b = Collect()
    await b.subscribe("alice", on_b)
    await b.subscribe("bob", Collect())

    lost = asyncio.Event()
    watch = _Watch("connection lost", lost)
    logging.getLogger("strom.chat.redis_bus").addHandler(watch)
    admin = Redis.from_url(redis_url)
    try:
        for client in await admin.client_list():
            if client.get("name") == f"strom-{b.node_id}":
                await admin.client_kill_filter(_id=client["id"])
    finally:
        await admin.aclose()
    try:
        async with asyncio.timeout(WAIT):
            await lost.wait()
    finally:
        logging.getLogger("strom.chat.redis_bus").removeHandler(watch)
    # Events published while B was away are lost; once it is back, they flow again.
    async with asyncio.timeout(WAIT):
        while not on_b.events:
            a.publish("alice", LikesAdded(1))
            await asyncio.sleep(0.1)
    assert b.connected
    assert sum("connected" in r.message for r in caplog.records) >= 3  # a, b, b again


class _Watch(logging.Handler):
    """Sets ``event`` when a log line containing ``text`` is written."""

    def __init__(self, text: str, event: asyncio.Event) -> None:
        super().__init__()
        self.text = text
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()
