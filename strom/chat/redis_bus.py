"""The room bus between processes: Redis pub/sub, one channel per room.

Each node publishes what happens in a room on ``<prefix>:chat:<room key>`` (the room key is
the channel name in lower case) and subscribes to the channels of the rooms it has members
in. A message is the publishing node's id, a space, and the event as
:func:`~strom.chat.events.encode_room_event` writes it::

    PUBLISH strom:chat:alice "3f9a01c2be77 {"event":"message","data":{...}}"

The publishing node hands an event to its own rooms at once, as :class:`LocalBus` does, and
skips it when Redis echoes it back (the node id tells): typing and seeing your message stays
as fast as on one node, and while Redis is away each node goes on as a single node. The cost
is that two nodes may interleave events from different nodes in a different order; every
room event sets state (a ban, a mode, a deletion) rather than toggling it, so rooms agree
again with the next event, and the database stays the truth a room is loaded from.

Viewer counts never cross the bus: each node sums the site's counts from the live map
(:mod:`strom.cluster.live_map`) and hands its rooms a :class:`ViewerCount` of its own, so a
``ViewerCount`` published here is delivered here only (and one received from Redis, sent
by an older node, is ignored).

Failures: publishing never blocks; events wait in a bounded queue (``queue_max``; beyond
it new events are dropped, with a log line) while Redis is unreachable. Both the publisher
and the subscriber reconnect on their own with exponential backoff (0.5 s to 30 s) and say
so in the log: once when the connection is lost, once when it is back. Events published by
other nodes while this one was disconnected are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from strom.chat.bus import Deliver, Subscription
from strom.chat.events import RoomEvent, ViewerCount, decode_room_event, encode_room_event
from strom.chat.protocol import MalformedMessage

log = logging.getLogger(__name__)

RECONNECT_MIN = 0.5  # seconds before the first reconnection attempt
RECONNECT_MAX = 30.0  # the backoff doubles up to this
PUBLISH_BATCH = 256  # events sent to Redis in one pipeline
SOCKET_TIMEOUT = 5.0  # seconds for connecting and for a command's answer
POLL_SECONDS = 1.0  # the subscriber's longest wait for a message (health checks between)
DROP_LOG_SECONDS = 10.0  # at most one "dropping events" line per this many seconds


def redact_url(url: str) -> str:
    """``url`` without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _RedisSubscription:
    def __init__(self, bus: RedisBus, room: str, deliver: Deliver) -> None:
        self._bus = bus
        self._room = room
        self._deliver: Deliver | None = deliver

    async def close(self) -> None:
        if self._deliver is not None:
            deliver, self._deliver = self._deliver, None
            await self._bus.unsubscribe(self._room, deliver)


class RedisBus:
    """A :class:`~strom.chat.bus.RoomBus` over Redis pub/sub. :meth:`start` it before use."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "strom",
        node_id: str | None = None,
        queue_max: int = 10_000,
    ) -> None:
        self.url = url
        self.node_id = node_id or secrets.token_hex(6)
        self._channel_prefix = f"{prefix}:chat:"
        self._node_channel = f"{prefix}:node:{self.node_id}"  # keeps the subscriber busy
        self._redis = self._client()
        self._subscribers: dict[str, list[Deliver]] = {}
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=queue_max)
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_drop_log = -math.inf
        self._closed = False
        self._connected = asyncio.Event()
        self.published = 0  # events sent to Redis
        self.received = 0  # events from other nodes
        self.dropped = 0  # events not sent: the queue was full

    def _client(self) -> Redis:
        return Redis.from_url(
            self.url,
            client_name=f"strom-{self.node_id}",
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 0),  # reconnection is ours, with backoff and a log line
        )

    def __repr__(self) -> str:
        return f"<RedisBus {redact_url(self.url)} node={self.node_id}>"

    def metrics(self) -> dict[str, object]:
        return {
            "node": self.node_id,
            "connected": self.connected,
            "published": self.published,
            "received": self.received,
            "dropped": self.dropped,
        }

    @property
    def connected(self) -> bool:
        """Whether this node hears the others now (its subscription is up)."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start publishing and listening (connecting in the background: a Redis that is
        not there yet is retried, this node works alone meanwhile)."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="redis-bus-listen"),
            loop.create_task(self._send(), name="redis-bus-send"),
        ]

    async def close(self) -> None:
        """Stop: send what is queued (briefly), then no more deliveries."""
        if self._closed:
            return
        self._closed = True
        if self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._subscribers.clear()
        await self._redis.aclose()

    # --- RoomBus -------------------------------------------------------------------------

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        key = room.lower()
        subscribers = self._subscribers.setdefault(key, [])
        subscribers.append(deliver)
        if len(subscribers) == 1:
            pubsub = self._pubsub
            if pubsub is not None:
                try:
                    await pubsub.subscribe(self._channel_prefix + key)
                except (RedisError, OSError) as exc:  # the listener reconnects and resubscribes
                    log.debug("redis: subscribing to %s failed: %s", key, exc)
        return _RedisSubscription(self, key, deliver)

    async def unsubscribe(self, key: str, deliver: Deliver) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is None:
            return
        if deliver in subscribers:
            subscribers.remove(deliver)
        if subscribers:
            return
        del self._subscribers[key]
        pubsub = self._pubsub
        if pubsub is not None and not self._closed:
            try:
                await pubsub.unsubscribe(self._channel_prefix + key)
            except (RedisError, OSError) as exc:
                log.debug("redis: unsubscribing from %s failed: %s", key, exc)

    def publish(self, room: str, event: RoomEvent) -> None:
        key = room.lower()
        self._deliver(key, event)
        if not isinstance(event, ViewerCount):  # each node counts the site itself
            self._enqueue(key, event)

    def rooms(self) -> list[str]:
        return sorted(self._subscribers)

    # --- to and from Redis ---------------------------------------------------------------

    def _deliver(self, key: str, event: RoomEvent) -> None:
        for deliver in list(self._subscribers.get(key, ())):
            try:
                deliver(event)
            except Exception:  # one room's bug must not stop the others
                log.exception("chat %s: delivering %s failed", key, event.type)

    def _enqueue(self, key: str, event: RoomEvent) -> None:
        if self._closed:
            return
        data = self.node_id.encode() + b" " + encode_room_event(event)
        try:
            self._queue.put_nowait((self._channel_prefix + key, data))
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log >= DROP_LOG_SECONDS:
                self._last_drop_log = now
                log.warning(
                    "redis: %d chat events waiting to be sent: dropping new ones (%d so far); "
                    "other nodes miss them",
                    self._queue.qsize(),
                    self.dropped,
                )

    async def _send(self) -> None:
        """Send queued events, a pipeline at a time; on failure keep them and retry."""
        delay = RECONNECT_MIN
        failing = False
        batch: list[tuple[str, bytes]] = []
        while True:
            if not batch:
                batch.append(await self._queue.get())
                while len(batch) < PUBLISH_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning(
                        "redis %s: cannot publish chat events (%s); other nodes miss this "
                        "node's chat until it is back; retrying",
                        redact_url(self.url),
                        _reason(exc),
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            if failing:
                log.info("redis %s: publishing again", redact_url(self.url))
            failing = False
            delay = RECONNECT_MIN
            self.published += len(batch)
            for _ in batch:
                self._queue.task_done()
            batch = []

    async def _listen(self) -> None:
        """Hold a subscription to every room with members here; reconnect when it breaks."""
        delay = RECONNECT_MIN
        lost = False
        ever = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._node_channel)
                self._pubsub = pubsub  # from now on new rooms subscribe themselves
                rooms = [self._channel_prefix + key for key in list(self._subscribers)]
                if rooms:
                    await pubsub.subscribe(*rooms)
                self._connected.set()
                delay = RECONNECT_MIN
                log.info(
                    "redis %s: connected; chat rooms are shared with the other nodes (node %s)",
                    redact_url(self.url),
                    self.node_id,
                )
                lost = False
                ever = True
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=POLL_SECONDS
                    )
                    if message is not None and message.get("type") == "message":
                        self._received(message)
            except (RedisError, OSError) as exc:
                if not lost:
                    log.warning(
                        "redis %s: %s (%s); chat rooms are local to this node until it is "
                        "back; reconnecting with backoff",
                        redact_url(self.url),
                        "connection lost" if ever else "cannot connect",
                        _reason(exc),
                    )
                else:
                    log.debug("redis: reconnecting failed: %s", _reason(exc))
                lost = True
            finally:
                self._connected.clear()
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _received(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        data = message.get("data")
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        node, _, body = data.partition(b" ")
        if node == self.node_id.encode():
            return  # ours: delivered here when it was published
        key = channel.decode(errors="replace").removeprefix(self._channel_prefix)
        try:
            event = decode_room_event(body)
        except MalformedMessage as exc:
            log.warning("redis: dropped a malformed event on %s: %s", key, exc)
            return
        self.received += 1
        if isinstance(event, ViewerCount):
            return  # each node counts the site itself
        self._deliver(key, event)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
