"""The room bus: every room event passes through it, from the node where it happened to
every node with members in that room, the originating node included.

One process uses :class:`LocalBus`, which hands each event straight to the room. Several
processes share rooms through an implementation of :class:`RoomBus` over a broker (one
pub/sub channel per room, e.g. Redis ``PUBLISH strom:chat:<room>``), carrying events as
bytes with :func:`~strom.chat.events.encode_room_event` /
:func:`~strom.chat.events.decode_room_event`. Rooms apply what the bus delivers to
their own state (history, bans, modes, moderators, likes, viewer count) and queue it for
their members, so a node never changes a room's state except through the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from strom.chat.events import (
    RoomEvent,
)

log = logging.getLogger(__name__)

Deliver = Callable[[RoomEvent], None]


class Subscription(Protocol):
    async def close(self) -> None:
        """Stop delivering to this subscriber (idempotent)."""


class RoomBus(Protocol):
    """Fan-out of room events between nodes."""

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        """From now on, call ``deliver`` with every event published to ``room`` (by any
        node, this one included). ``deliver`` runs on the event loop and must not block."""

    def publish(self, room: str, event: RoomEvent) -> None:
        """Send ``event`` to every subscriber of ``room``. Never blocks: a bus between
        processes queues it (bounded) and sends it from its own task."""

    async def close(self) -> None:
        """Stop: no more deliveries."""


class _LocalSubscription:
    def __init__(self, bus: LocalBus, room: str, deliver: Deliver) -> None:
        self._bus = bus
        self._room = room
        self._deliver = deliver

    async def close(self) -> None:
        self._bus.unsubscribe(self._room, self._deliver)


class LocalBus:
    """The bus of a single process: publishing is a direct call to the subscribers."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Deliver]] = {}
        self.published = 0

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        self._subscribers.setdefault(room, []).append(deliver)
        return _LocalSubscription(self, room, deliver)

    def unsubscribe(self, room: str, deliver: Deliver) -> None:
        subscribers = self._subscribers.get(room)
        if subscribers is None:
            return
        if deliver in subscribers:
            subscribers.remove(deliver)
        if not subscribers:
            del self._subscribers[room]

    def publish(self, room: str, event: RoomEvent) -> None:
        self.published += 1
        for deliver in list(self._subscribers.get(room, ())):
            try:
                deliver(event)
            except Exception:  # one room's bug must not stop the publisher
                log.exception("chat %s: delivering %s failed", room, event.type)

    async def close(self) -> None:
        self._subscribers.clear()

    def rooms(self) -> list[str]:
        return sorted(self._subscribers)
