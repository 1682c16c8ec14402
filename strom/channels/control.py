"""Orders to every node of the site: stop a broadcast, a user's sessions ended.

An administrator acts on whichever node their page or API call reaches, but the publisher
of a channel is connected to one node (the one that ingests it) and a user's chat sockets
may be open on any. :class:`SiteControl` publishes the order on the room bus
(:mod:`strom.chat.bus`) under :data:`CONTROL_ROOM`, a room no channel can be called, so it
reaches every node of the site through Redis as chat does (and this node at once, Redis
or not). Every node acts on what concerns it:

- :class:`~strom.chat.events.StopOrdered`: the node that ingests the channel notes the
  reason on the broadcast (the streamer's dashboard shows it) and stops the publisher,
  telling it why (RTMP ``onStatus``, WebSocket close); a broadcast waiting for its
  publisher (reconnecting) ends there.
- :class:`~strom.chat.events.SessionsEnded`: every node forgets the account's cached
  sessions and closes its chat sockets.

Who may order: whoever can publish on the site's Redis, that is the site's own nodes and
its operator's ``strom user`` commands (given ``--redis-url``). Redis is the credential
here as it is for the live map's claims and the chat; keep it off the public network (or
behind a password, ``redis://:password@host``).
"""

from __future__ import annotations

import logging
import secrets

from redis.asyncio import Redis

from strom.chat.bus import RoomBus, Subscription
from strom.chat.events import RoomEvent, SessionsEnded, StopOrdered, encode_room_event
from strom.chat.service import ChatService
from strom.live.channel import ChannelState
from strom.live.registry import Registry
from strom.store import Store, StoreError, UnknownUser
from strom.store.models import STOP_REASON_MAX
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

#: the bus room of the site's orders (no channel name starts with "~")
CONTROL_ROOM = "~control"
#: what a stopped publisher is told, before the administrator's reason
STOPPED = "Stopped by an administrator"


def stop_message(reason: str) -> str:
    """What the publisher (RTMP ``onStatus``, WebSocket close) and the dashboard say."""
    reason = " ".join(reason.split())
    return f"{STOPPED}: {reason}" if reason else STOPPED


class SiteControl:
    """This node's end of the orders: :meth:`stop` and :meth:`sessions_ended` publish
    one; what the bus delivers (from any node) is carried out here if it concerns this
    node."""

    def __init__(self, registry: Registry, chat: ChatService, store: Store) -> None:
        self.registry = registry
        self.chat = chat
        self.store = store
        self.bus: RoomBus = chat.bus
        self._subscription: Subscription | None = None
        self._tasks = TaskSet("site control")

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(CONTROL_ROOM, self._deliver)

    async def stop_all(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self._tasks.close(cancel=True)

    # -- orders -------------------------------------------------------------------------

    def stop(self, channel: str, reason: str, *, by: str) -> None:
        """Stop ``channel``'s broadcast wherever it is ingested, telling its publisher."""
        self.bus.publish(CONTROL_ROOM, StopOrdered(channel, reason[:STOP_REASON_MAX], by))

    def sessions_ended(self, user_id: int, reason: str) -> None:
        """Every session of ``user_id`` ended (the sessions store's listener)."""
        self.bus.publish(CONTROL_ROOM, SessionsEnded(user_id, reason))

    # -- carried out --------------------------------------------------------------------

    def _deliver(self, event: RoomEvent) -> None:
        if isinstance(event, StopOrdered) and isinstance(event.channel, str):
            self._stop_here(event)
        elif isinstance(event, SessionsEnded) and isinstance(event.user_id, int):
            self.store.sessions.cache.forget_user(event.user_id)
            closed = self.chat.disconnect_user(event.user_id, str(event.reason)[:120])
            if closed:
                log.info("closed %d chat sockets of user %d: %s", closed, event.user_id,
                         event.reason)  # fmt: skip

    def _stop_here(self, order: StopOrdered) -> None:
        channel = self.registry.get(order.channel)
        if channel is None or channel.origin is not None:
            return  # not ingested here
        if channel.publisher is None and channel.state is not ChannelState.RECONNECTING:
            return
        self._tasks.spawn(self._stop(order))

    async def _stop(self, order: StopOrdered) -> None:
        reason = str(order.reason)[:STOP_REASON_MAX]
        # Noted first: the dashboard shows it as soon as the broadcast is over. A static
        # channel or an open room has no account to tell (UnknownUser).
        try:
            await self.store.broadcasts.stopped_by_admin(order.channel, reason)
        except UnknownUser:
            pass
        except StoreError as exc:
            log.warning("cannot note why %s was stopped: %s", order.channel, exc)
        channel = self.registry.get(order.channel)
        if channel is None or channel.origin is not None:
            return
        log.info("channel %s: stopping it here, as admin %s ordered", order.channel, order.by)
        if channel.publisher is not None:
            channel.publisher.disconnect(stop_message(reason))
        else:  # waiting for its publisher: it waits no more
            channel.close()


async def order_site(redis_url: str, prefix: str, *events: RoomEvent) -> int:
    """Publish ``events`` to the running nodes of the site from outside one (the
    ``strom user`` commands): as a node's bus does, under :data:`CONTROL_ROOM`. Returns
    how many nodes heard the last one."""
    sender = ("cli-" + secrets.token_hex(4)).encode()
    heard = 0
    async with Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0) as r:
        for event in events:
            data = sender + b" " + encode_room_event(event)
            heard = int(await r.publish(f"{prefix}:chat:{CONTROL_ROOM}", data))
    return heard
