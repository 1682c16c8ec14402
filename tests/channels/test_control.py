"""Site orders, carried out by the node they concern: a stop reaches the publisher of a
channel ingested here (the reason noted first, for the dashboard), not one followed from
another node; an order that is not one (something else on Redis) is ignored; sessions
ended close the account's chat sockets here and forget its cached sessions."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from strom.channels.control import CONTROL_ROOM, SiteControl
from strom.chat.bus import LocalBus
from strom.chat.events import decode_room_event
from strom.live.registry import Registry


class Publisher:
    def __init__(self) -> None:
        self.told: list[str] = []
        self.stopped = asyncio.Event()

    def disconnect(self, reason: str) -> None:
        self.told.append(reason)
        self.stopped.set()


async def test_orders_are_carried_out_where_they_concern() -> None:
    registry = Registry()
    noted: list[tuple[str, str]] = []
    forgot: list[int] = []
    closed: list[tuple[int, str]] = []

    async def stopped_by_admin(name: str, reason: str) -> None:
        noted.append((name, reason))

    def disconnect_user(user_id: int, reason: str) -> int:
        closed.append((user_id, reason))
        return 1

    store: Any = SimpleNamespace(
        broadcasts=SimpleNamespace(stopped_by_admin=stopped_by_admin),
        sessions=SimpleNamespace(cache=SimpleNamespace(forget_user=forgot.append)),
    )
    chat: Any = SimpleNamespace(bus=LocalBus(), disconnect_user=disconnect_user)
    control = SiteControl(registry, chat, store)
    await control.start()
    here, followed = Publisher(), Publisher()
    registry.open("alice").claim(here)
    bob = registry.open("bob")  # followed from the node that ingests it
    bob.origin = "http://other-node:8080"
    bob.publisher = followed
    try:
        control.stop("bob", "not here", by="operator")
        hostile = b'{"event":"stop_ordered","data":{"channel":5,"reason":"x","by":"y"}}'
        chat.bus.publish(CONTROL_ROOM, decode_room_event(hostile))
        control.stop("alice", "Copyrighted <b>music</b>", by="operator")
        await asyncio.wait_for(here.stopped.wait(), 5)
        assert here.told == ["Stopped by an administrator: Copyrighted <b>music</b>"]
        assert noted == [("alice", "Copyrighted <b>music</b>")]
        assert followed.told == []

        control.sessions_ended(7, "account suspended")
        assert closed == [(7, "account suspended")]
        assert forgot == [7]
    finally:
        await control.stop_all()
