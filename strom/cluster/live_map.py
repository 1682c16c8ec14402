"""The site's live map in Redis: which node ingests each channel, and what every node has.

Several nodes sharing ``--redis-url`` are one site. Each node keeps, under its Redis prefix
(``<p>`` below)::

    <p>:cluster:channel:<name>   the channel's claim and entry: {"node", "url", "state",
                                 "broadcast", ...}, JSON, with a TTL (cluster_ttl)
    <p>:cluster:node:<node id>   the node's record: its URL, role, where to publish, its
                                 live entries and its viewers per channel, with a TTL
    <p>:cluster:nodes            the set of node ids (pruned of records that expired)

Every ``cluster_heartbeat`` seconds (and at once when a channel here changes state) a
node rewrites its record and its channels' entries, with their TTL, then reads every
node's record: the snapshot the directory lists and sums from. A node that dies (SIGKILL,
a lost machine) stops refreshing: its entries and record vanish with their TTL, and its
channels can be published elsewhere.

One publisher per channel site-wide: every ingest door asks :meth:`LiveMap.admit` before
it claims a channel; the channel key is taken with a Lua script (atomic: free or already
ours → ours, with the TTL), so two nodes racing for one channel cannot both win. The
entry stays while the channel is starting, live or waiting for its publisher
(reconnecting), and goes when it ends. A claim whose publish never started is not
refreshed and lapses with its TTL.

The reconnect grace across nodes: a channel another node holds only because it waits for
its publisher (*reconnecting*) is taken over by the node its publisher reconnects to, in
the same atomic script. That node continues the broadcast (:class:`~strom.live.channel.
CarriedOver`: its start and timeline, from the old entry; its database row, through
:class:`~strom.channels.Broadcasts`); the old node learns at its next heartbeat that the
claim is gone (:meth:`~strom.live.channel.Channel.moved`) and follows the channel from
the new node like any other, so whoever watched it there sees it resume. Redis holds the
claim only while some node refreshes it; what outlives a dead node is the open
broadcast row in the database, which a publisher back within the grace carries on.

Redis away: a node logs it once, keeps serving its own channels, admits publishers on
its own word (the hub still refuses a second one here) and retries every heartbeat; what
it knew of the other nodes is forgotten once it is older than the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from strom.channels.directory import RemoteStream
from strom.chat.redis_bus import redact_url
from strom.cluster.records import LiveEntry, NodeRecord
from strom.errors import PublishRefused
from strom.live.channel import CarriedOver, Channel, ChannelState
from strom.live.registry import Registry
from strom.media.ladder import audience_name
from strom.media.model import TrackKind
from strom.store import ChannelInfo, Store
from strom.store.errors import StoreError

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 5.0  # seconds for connecting and for a command's answer
#: the snapshot's titles and categories are read again from the database this often
INFO_REFRESH = 10.0

#: the states in which a channel here holds its claim (its publisher is on, or awaited)
HELD = (ChannelState.STARTING, ChannelState.LIVE, ChannelState.RECONNECTING)
#: the states in which the other nodes list a channel (a broadcast waiting for its
#: publisher stays listed, with its viewers)
LISTED = (ChannelState.LIVE.value, ChannelState.RECONNECTING.value)

# KEYS[1] the channel key; ARGV: node id, entry JSON, TTL (ms). Free or ours: (re)write
# it with the TTL and answer nil; another node's: answer its entry.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if ok and type(entry) == 'table' and entry['node'] ~= ARGV[1] then return current end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return false
"""

# As _CLAIM, for a publisher that arrives: another node's entry that only waits for its
# publisher (reconnecting) is taken over too. Answers nil (free or ours), {1, entry}
# (taken over from that entry) or {0, entry} (refused: that entry holds the channel).
_ADMIT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if ok and type(entry) == 'table' and entry['node'] ~= ARGV[1] then
    if entry['state'] ~= 'reconnecting' then return {0, current} end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return {1, current}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return false
"""

# KEYS[1] the channel key; ARGV[1] node id. Delete it if it is ours.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if ok and type(entry) == 'table' and entry['node'] == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0
"""


def publish_url(node_url: str, rtmp_port: int) -> str:
    """Where publishers go live on the node reachable at ``node_url``."""
    return f"rtmp://{urlsplit(node_url).hostname or 'localhost'}:{rtmp_port}/live"


def edge_refusal(ingest_nodes: Sequence[str]) -> PublishRefused:
    """What a node with ``--role edge`` tells a publisher."""
    where = (
        "publish to " + " or ".join(ingest_nodes)
        if ingest_nodes
        else "publish to a node with --role all"
    )
    return PublishRefused(f"this node only serves viewers (role edge): {where}", status=403)


def _audiences(registry: Registry) -> dict[str, int]:
    """This node's viewers by channel, a ladder's renditions' counted as their source's
    (the other nodes add them up by name: :meth:`LiveMap.viewers`)."""
    found: dict[str, int] = {}
    for channel in registry:
        if channel.viewers:
            name = audience_name(channel.name)
            found[name] = found.get(name, 0) + channel.viewers
    return found


class ViewersOnly:
    """The :class:`~strom.live.registry.PublishAdmission` of an edge without Redis: it
    knows of no ingest node to name."""

    async def admit(self, channel: str) -> None:
        raise edge_refusal(())


class LiveMap:
    """This node's part of the site: its claims and entries in Redis, and a snapshot of
    the others'. :meth:`start` it once the node's HTTP and RTMP ports are known.

    It is the registry's :class:`~strom.live.registry.PublishAdmission`, the directory's
    :class:`~strom.channels.directory.OtherNodes`, and the pull's locator
    (:meth:`locate`)."""

    def __init__(
        self,
        url: str,
        registry: Registry,
        store: Store,
        *,
        node_id: str,
        prefix: str = "strom",
        role: str = "all",
        heartbeat: float = 2.0,
        ttl: float = 6.0,
        thumbnail: Callable[[str], str | None] = lambda name: None,
    ) -> None:
        self.redis_url = url
        #: a channel ingested here: the version of its live picture (None: none yet)
        self.thumbnail_of = thumbnail
        self.registry = registry
        self.store = store
        self.node_id = node_id
        self.role = role
        self.heartbeat = heartbeat
        self.ttl = ttl
        #: set by :meth:`start`: how the other nodes reach this one, where to publish here
        self.node_url = ""
        self.publish_url = ""
        self._key = f"{prefix}:cluster:"
        self._redis = Redis.from_url(
            url,
            client_name=f"strom-map-{node_id}",
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # retried by the heartbeat, with a log line
        )
        self._claim = self._redis.register_script(_CLAIM)
        self._admit = self._redis.register_script(_ADMIT)
        self._release = self._redis.register_script(_RELEASE)
        #: channels whose entry this node refreshed (to delete when they end)
        self._mine: set[str] = set()
        #: the other nodes as last read, and when (monotonic)
        self._others: dict[str, NodeRecord] = {}
        self._read_at = -float("inf")
        self._infos: dict[str, tuple[ChannelInfo | None, float]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self._failing = False
        self._closed = False
        self.refused = 0  # publishes refused: the channel was another node's
        self.taken_over = 0  # broadcasts carried on here from another node's grace
        registry.listeners.append(self._on_state)

    def __repr__(self) -> str:
        return f"<LiveMap node={self.node_id} {self.role} {self.node_url}>"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, node_url: str, rtmp_port: int) -> None:
        self.node_url = node_url.rstrip("/")
        self.publish_url = publish_url(self.node_url, rtmp_port)
        await self.sync()  # the first heartbeat now: entries current before any viewer
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="live-map")

    async def close(self) -> None:
        """Stop: this node's entries and record go at once (the others need not wait for
        their TTL)."""
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self._on_state)
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            async with asyncio.timeout(1.0):
                for name in list(self._mine):
                    await self._release(keys=[self._channel_key(name)], args=[self.node_id])
                await self._redis.delete(self._key + "node:" + self.node_id)
                await self._redis.srem(self._key + "nodes", self.node_id)
        self._mine.clear()
        await self._redis.aclose()

    # -- PublishAdmission ---------------------------------------------------------------------

    async def admit(self, channel: str) -> None:
        """May a publisher here claim ``channel``? Refused on an edge, and when another
        node holds the channel live or starting. A channel another node holds only in its
        reconnect grace is taken over: the publisher came back here, and the broadcast
        goes on here (the channel's next claim carries it on)."""
        if self.role == "edge":
            raise edge_refusal(self.ingest_nodes())
        entry = LiveEntry(channel, self.node_id, self.node_url, ChannelState.STARTING.value)
        here = self.registry.get(channel)
        if here is not None:
            here.carry_on(None)
        try:
            answer = await self._admit(
                keys=[self._channel_key(channel)],
                args=[self.node_id, entry.encode(), self._ttl_ms],
            )
        except (RedisError, OSError) as exc:
            # Availability first: this node's hub still refuses a second publisher here.
            log.warning("live map: cannot claim %s in Redis (%s); admitting", channel, exc)
            return
        if answer is None:
            return  # not refreshed until the publish starts: lapses if it never does
        taken, holder = answer
        other = LiveEntry.decode(holder)
        if int(taken) == 1:
            self.taken_over += 1
            log.info(
                "live map: %s waited for its publisher on %s; it came here: the broadcast "
                "goes on here",
                channel,
                other.url if other is not None else "another node",
            )
            if other is not None:
                carried = CarriedOver(other.started_at, other.timeline or 0.0)
                self.registry.open(channel).carry_on(carried)
            return
        self.refused += 1
        where = f"on {other.url}" if other is not None else "on another node"
        log.info("live map: publish of %s refused: already live %s", channel, where)
        raise PublishRefused(f"channel {channel} is already live {where}")

    def ingest_nodes(self) -> list[str]:
        """Where publishers can go live: the RTMP addresses of the nodes that ingest."""
        return sorted(
            {r.publish_url for r in self._fresh().values() if r.role == "all" and r.publish_url}
        )

    # -- the locator (for the pull) -----------------------------------------------------------

    async def locate(self, channel: str) -> str | None:
        """The base HTTP URL of the node that ingests ``channel`` (starting, live or
        waiting for its publisher), None if no other node does (or Redis cannot tell):
        the pull's :class:`~strom.cluster.locate.Locator`."""
        entry = await self.entry(channel)
        if entry is None or entry.node == self.node_id:
            return None  # here: nothing to pull (a publish about to start, or ending)
        return entry.url

    async def entry(self, channel: str) -> LiveEntry | None:
        """``channel``'s entry as Redis has it now."""
        try:
            raw = await self._redis.get(self._channel_key(channel))
        except (RedisError, OSError) as exc:
            log.debug("live map: cannot look up %s: %s", channel, exc)
            return None
        return LiveEntry.decode(raw) if raw is not None else None

    # -- OtherNodes (the directory) -----------------------------------------------------------

    def streams(self) -> Sequence[RemoteStream]:
        found: dict[str, RemoteStream] = {}
        for record in self._fresh().values():
            for e in record.entries:
                if e.state in LISTED:
                    info = self._infos.get(e.channel, (None, 0.0))[0]
                    found[e.channel] = RemoteStream(
                        e.channel, e.url, e.started_at, e.width, e.height, info, e.thumbnail,
                        e.state,
                    )  # fmt: skip
        return sorted(found.values(), key=lambda s: s.name)

    def viewers(self, name: str) -> int:
        return sum(r.viewers.get(name, 0) for r in self._fresh().values())

    def thumbnail(self, name: str) -> str | None:
        for record in self._fresh().values():
            for e in record.entries:
                if e.channel == name and e.thumbnail:
                    return e.thumbnail
        return None

    def nodes(self) -> list[NodeRecord]:
        """The other nodes heard from within the TTL."""
        return list(self._fresh().values())

    def metrics(self) -> dict[str, object]:
        return {
            "node": self.node_id,
            "role": self.role,
            "node_url": self.node_url,
            "connected": self.connected,
            "entries": [asdict(e) for e in self._entries()],
            "other_nodes": sorted(r.url for r in self._fresh().values()),
            "publishes_refused": self.refused,
            "broadcasts_taken_over": self.taken_over,
        }

    # -- the heartbeat --------------------------------------------------------------------

    def _on_state(self, channel: Channel) -> None:
        if channel.origin is None:
            self._dirty.set()  # the entry changes now, not at the next heartbeat

    async def _beat(self) -> None:
        # Not "while True": redis-py may turn a cancellation into a connection error.
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat):
                    await self._dirty.wait()
            try:
                await self.sync()
            except Exception:  # a bug here must not stop the heartbeat for good
                log.exception("live map: heartbeat failed")

    async def sync(self) -> None:
        """One heartbeat: write this node's entries and record, read the others'."""
        self._dirty.clear()
        try:
            await self._write()
            await self._read()
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning(
                    "live map %s: Redis unreachable (%s); this node serves its own channels "
                    "and retries every %g s",
                    redact_url(self.redis_url),
                    exc,
                    self.heartbeat,
                )
            self._failing = True
            self.connected = False
            return
        if not self.connected:
            log.info(
                "live map %s: node %s (%s) is in the site",
                redact_url(self.redis_url),
                self.node_id,
                self.node_url,
            )
        self._failing = False
        self.connected = True
        await self._refresh_infos()

    def _entries(self) -> list[LiveEntry]:
        entries = []
        for channel in self.registry:
            if channel.origin is not None or channel.state not in HELD:
                continue
            video = next((t for t in channel.tracks.values() if t.kind is TrackKind.VIDEO), None)
            entries.append(
                LiveEntry(
                    channel.name,
                    self.node_id,
                    self.node_url,
                    channel.state.value,
                    channel.broadcast_id,
                    channel.started_at,
                    channel.timeline if channel.state is ChannelState.RECONNECTING else None,
                    video.width if video else None,
                    video.height if video else None,
                    self.thumbnail_of(channel.name),
                )
            )
        return entries

    async def _write(self) -> None:
        """This node's entries (claims refreshed), ended ones released, its record: one
        round trip."""
        entries = self._entries()
        held = {e.channel for e in entries}
        ended = [
            name
            for name in sorted(self._mine - held)
            if (c := self.registry.get(name)) is None or c.state is ChannelState.OFFLINE
        ]
        record = NodeRecord(
            self.node_id,
            self.node_url,
            self.role,
            self.publish_url if self.role == "all" else "",
            tuple(entries),
            _audiences(self.registry),
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                await self._claim(
                    keys=[self._channel_key(entry.channel)],
                    args=[self.node_id, entry.encode(), self._ttl_ms],
                    client=pipe,
                )
            for name in ended:
                await self._release(
                    keys=[self._channel_key(name)], args=[self.node_id], client=pipe
                )
            pipe.set(self._key + "node:" + self.node_id, record.encode(), px=self._ttl_ms)
            pipe.sadd(self._key + "nodes", self.node_id)
            answers = await pipe.execute()
        moved = set()
        for entry, holder in zip(entries, answers, strict=False):
            if holder is None:
                continue
            channel = self.registry.get(entry.channel)
            other = LiveEntry.decode(holder)
            if (
                channel is not None
                and channel.state is ChannelState.RECONNECTING
                and other is not None
            ):
                # Its publisher reconnected to that node within the grace, which took
                # the claim: the broadcast goes on there, and is followed from there.
                moved.add(entry.channel)
                channel.moved(other.url)
            else:  # our claim lapsed (Redis was away) and was taken
                log.warning(
                    "live map: %s is live here and claimed by another node too (%s)",
                    entry.channel,
                    holder,
                )
        self._mine = (self._mine | held) - set(ended) - moved

    async def _read(self) -> None:
        ids = sorted(
            m.decode() if isinstance(m, bytes) else str(m)
            for m in await self._redis.smembers(self._key + "nodes")
        )
        others = [i for i in ids if i != self.node_id]
        raws = await self._redis.mget([self._key + "node:" + i for i in others]) if others else []
        found: dict[str, NodeRecord] = {}
        gone = []
        for node, raw in zip(others, raws, strict=True):
            record = NodeRecord.decode(raw) if raw is not None else None
            if record is None:
                gone.append(node)
            else:
                found[node] = record
        if gone:  # expired: a dead node leaves the set too
            await self._redis.srem(self._key + "nodes", *gone)
        self._others = found
        self._read_at = time.monotonic()

    def _fresh(self) -> dict[str, NodeRecord]:
        """The other nodes, if the snapshot is recent enough to trust."""
        return self._others if time.monotonic() - self._read_at < self.ttl else {}

    async def _refresh_infos(self) -> None:
        """Titles and categories of the channels live elsewhere: from the shared database,
        on first sight and every :data:`INFO_REFRESH` seconds (edits show up)."""
        now = time.monotonic()
        live = {s.name for s in self.streams()}
        for name in list(self._infos):
            if name not in live:
                del self._infos[name]
        for name in sorted(live):
            cached = self._infos.get(name)
            if cached is not None and now - cached[1] < INFO_REFRESH:
                continue
            try:
                self._infos[name] = (await self.store.channels.get(name), now)
            except StoreError as exc:
                log.debug("live map: no channel info for %s: %s", name, exc)

    def _channel_key(self, channel: str) -> str:
        return self._key + "channel:" + channel.lower()

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))
