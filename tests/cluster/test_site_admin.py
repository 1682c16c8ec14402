"""The administrator of a site of two real ``strom serve`` nodes (a PostgreSQL database,
Redis and a secret of the test's own): ffmpeg publishes to A; the administrator, on B,
sees the broadcasts with the node they are on, stops one with a reason (ffmpeg on A is
told it, the streamer's dashboard API says it), and suspends a user live on A (their
broadcast stops there, their chat socket on A closes); ``strom user suspend`` with the
site's Redis closes a chat socket on a running node too."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from strom.cli import main
from strom.store import Store
from tests.helpers import MediaFile, publish_args
from tests.helpers.chat import PASSWORD, Person
from tests.helpers.cluster import drop_prefix, eventually, need_redis, postgres_database
from tests.helpers.cluster import redis_prefix as new_prefix
from tests.helpers.nodes import Node, all_running

HEARTBEAT = 0.5
TTL = 2.0
WAIT = 15.0  # seconds: a bound on each wait, never a timing assertion


@contextlib.asynccontextmanager
async def site(tmp_path: Path) -> AsyncIterator[tuple[Node, Node, Store, list[str]]]:
    redis_url = await need_redis()
    prefix = new_prefix()
    secret = secrets.token_hex(32)
    async with postgres_database() as database:
        common = (
            "--database-url", database, "--redis-url", redis_url, "--redis-prefix", prefix,
            "--cluster-heartbeat", str(HEARTBEAT), "--cluster-ttl", str(TTL),
        )  # fmt: skip
        nodes = [Node(tmp_path / name, *common, secret_key=secret) for name in ("a", "b")]
        store = await Store.open(database)
        try:
            async with all_running(*nodes):
                yield nodes[0], nodes[1], store, list(common)
        finally:
            await store.close()
            await drop_prefix(prefix)


async def person(store: Store, node: Node, username: str, *, admin: bool = False) -> Person:
    """A logged-in browser of ``username`` on ``node``."""
    user = await store.users.get(username)
    if user is None:
        user, _ = await store.users.create(username, PASSWORD, admin=admin)
    token, _ = await store.sessions.create(user.id)
    return Person(node, user, token=token)


async def publish(media: MediaFile, node: Node, key: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *publish_args(media, node.rtmp_port, key, loop=True),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def said(publisher: asyncio.subprocess.Process) -> str:
    """What ffmpeg printed until it ended (it must end)."""
    assert publisher.stderr is not None
    out = await asyncio.wait_for(publisher.stderr.read(), WAIT)
    await asyncio.wait_for(publisher.wait(), WAIT)
    return out.decode(errors="replace")


async def test_an_admin_on_one_node_sees_and_stops_broadcasts_on_another(
    tmp_path: Path, av_media: MediaFile
) -> None:
    async with site(tmp_path) as (a, b, store, settings):
        _, streamer_key = await store.users.create("streamer", PASSWORD)
        _, troll_key = await store.users.create("troll", PASSWORD)
        admin = await person(store, b, "operator", admin=True)
        streamer = await person(store, b, "streamer")
        troll = await person(store, a, "troll")
        spammer = await person(store, a, "spammer")
        publishers = [await publish(av_media, a, key) for key in (streamer_key, troll_key)]
        try:
            # B lists both broadcasts, on A.
            async def listed() -> dict[str, Any]:
                status, found = await admin.api("GET", "/api/v1/admin/streams")
                assert status == 200, found
                rows = {row["username"]: row for row in found["streams"]}
                return rows if len(rows) == 2 else {}

            rows = await eventually(listed, 20, "both broadcasts listed on B")
            assert rows["streamer"]["node"] == a.base
            assert rows["streamer"]["state"] == "live"
            http = await admin.session()
            async with http.get(b.base + "/admin") as resp:
                page = await resp.text()
            assert 'data-username="streamer"' in page
            assert a.base in page

            # Stopped from B: ffmpeg on A is told why, the dashboard's API says it.
            status, _ = await admin.api(
                "POST", "/api/v1/admin/streams/streamer/stop", json={"reason": "Copyrighted music"}
            )
            assert status == 200
            assert "Stopped by an administrator: Copyrighted music" in await said(publishers[0])

            async def told() -> Any:
                _, health = await streamer.api("GET", "/api/v1/me/health")
                return health.get("stopped")

            stopped = await eventually(told, WAIT, "the dashboard's health says why")
            assert stopped == "Stopped by an administrator: Copyrighted music"

            # Suspended from B: the broadcast on A stops, the chat socket on A closes.
            chat = await troll.join("streamer")
            status, _ = await admin.api(
                "PATCH", "/api/v1/admin/users/troll", json={"suspended": True}
            )
            assert status == 200
            assert "account suspended" in await said(publishers[1])
            closed = await asyncio.wait_for(chat.closing(), WAIT)
            assert closed.reason == "account suspended"

            # From the command line, with the site's Redis: a chat socket on A closes.
            chat = await spammer.join("streamer")
            argv = ["user", "suspend", "spammer", *settings[:6]]
            assert await asyncio.wait_for(asyncio.to_thread(main, argv), WAIT) == 0
            closed = await asyncio.wait_for(chat.closing(), WAIT)
            assert closed.reason == "account suspended"
        finally:
            for publisher in publishers:
                if publisher.returncode is None:
                    publisher.kill()
                await publisher.wait()
            for someone in (admin, streamer, troll, spammer):
                await someone.close()
