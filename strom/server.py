"""The composition root: one Strom node, assembled from its services.

:meth:`StromServer.start` builds every service once, in dependency order, inside one
:class:`contextlib.AsyncExitStack`: each one's stop is pushed as soon as it exists, so a
node that fails half-way stops what it had started, and :meth:`StromServer.stop` unwinds
the stack in reverse (ingest before the hub, the hub before the recorder, connections
told "going away" before the HTTP server closes, the database last). The web layer gets
a narrow, frozen :class:`~strom.web.site.Site`; nothing imports this module but the CLI.

Roles: ``all`` ingests and serves; ``edge`` serves viewers and refuses publishers (the
registry's admission says where to publish). With ``--redis-url`` the node joins a site
(:class:`~strom.cluster.LiveMap`); alone, the hub's own rules apply. A service a role
does not run is simply not assembled; nothing downstream checks for ``None``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from strom import __version__, ladder, node_urls
from strom.channels import Broadcasts, Directory, StreamKeys, load_or_create_node_id
from strom.channels.control import SiteControl
from strom.channels.events import ChannelEvents, EventLimits
from strom.channels.rooms import OpenRooms
from strom.chat import ChatLimits, ChatService
from strom.chat.bus import RoomBus
from strom.chat.redis_bus import RedisBus
from strom.cluster import LiveMap, ViewersOnly
from strom.cluster.elsewhere import Elsewhere
from strom.cluster.locate import Locator, StaticUpstream
from strom.cluster.pull import PullLimits, PullManager
from strom.cluster.serve import Demand, NoDemand, PullServer
from strom.delivery.backpressure import ViewerLimits
from strom.delivery.dash import DashDelivery
from strom.delivery.hls import HlsDelivery
from strom.delivery.merge import MergeLimits
from strom.delivery.ws import WsDelivery
from strom.ingest.jpeg_socketio import JpegStreamIngest, JpegStreamLimits
from strom.ingest.push import PushIngest, PushLimits, transcoder_from_settings
from strom.ingest.rtmp import RtmpServer, RtmpServerConfig
from strom.ingest.tcp import TcpIngest
from strom.live.registry import Registry, StaticStreamKeys
from strom.notify import WebhookLimits, WebhookSender
from strom.observe.lag import LoopLagMonitor
from strom.ratelimit import SlotLimits
from strom.record.recorder import Recorder, RecorderSettings
from strom.record.thumbnails import ThumbnailWorker
from strom.settings import Settings
from strom.store import Store
from strom.store.sessions import SessionLimits
from strom.tls import ServerTls
from strom.web.app import create_app
from strom.web.auth import load_or_create_secret
from strom.web.connections import ConnectionGuard, GuardedSite, HttpLimits
from strom.web.forwarded import ForwardedHeaders
from strom.web.lean import LeanMediaPath
from strom.web.request_errors import http_server_logger
from strom.web.site import Site
from strom.web.socketio import EngineIOLimits, SocketIODoor

log = logging.getLogger(__name__)

#: what every connection is told when the node stops
SHUTTING_DOWN = "server shutting down"


def database_url(settings: Settings) -> tuple[str, bool]:
    """The database URL, and whether it is the embedded default (SQLite in the data dir)."""
    if settings.database_url:
        return settings.database_url, False
    return f"sqlite+aiosqlite:///{(settings.data_dir / 'strom.db').resolve()}", True


async def open_store(settings: Settings) -> Store:
    """The store, its schema current: the embedded SQLite is migrated in place; an
    external database must be migrated by the operator (``strom db upgrade``), and a
    node refuses to start on an out-of-date one (:class:`SchemaOutOfDate`)."""
    url, embedded = database_url(settings)
    store = await Store.open(url, sessions=SessionLimits.from_settings(settings))
    try:
        if embedded:
            if not (await store.schema_status()).up_to_date:
                await store.migrate()
        else:
            await store.check_schema()
    except BaseException:
        await store.close()
        raise
    return store


@dataclass(frozen=True, eq=False)
class Node:
    """Everything one running node is made of (built once by :meth:`StromServer.start`)."""

    site: Site
    node_id: str
    broadcasts: Broadcasts
    thumbnails: ThumbnailWorker
    webhooks: WebhookSender
    rtmp: RtmpServer
    tcp_ingest: TcpIngest
    #: the original apps' door (absent when ``--socketio-door false``)
    socketio: SocketIODoor | None
    #: the channels this node follows from upstreams (absent without ``--upstream``)
    pulls: PullManager | None
    http_port: int
    #: the site's live map (absent on a node without Redis)
    live_map: LiveMap | None
    #: playlists, MPDs and media answered before the application's middlewares
    lean: LeanMediaPath
    #: how the other nodes reach this one
    node_url: str
    #: a worker's private 127.0.0.1 port (``--workers``), None otherwise
    private_port: int | None = None
    #: the certificate of HTTPS and RTMPS (absent without ``--tls-cert``)
    tls: ServerTls | None = None


class StromServer:
    """One node: ``await start()``, then ``await stop()``. Its parts are readable once it
    has started (tests and the CLI use ``http_port``, ``rtmp_port``, ``store``...)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lag = LoopLagMonitor()
        self.started = time.time()
        self._stack = AsyncExitStack()
        self._node: Node | None = None

    @property
    def node(self) -> Node:
        if self._node is None:
            raise RuntimeError("the node has not started")
        return self._node

    # The parts tests, the CLI and the benchmark look at.
    @property
    def site(self) -> Site:
        return self.node.site

    @property
    def http_port(self) -> int:
        return self.node.http_port

    @property
    def rtmp_port(self) -> int:
        return self.node.site.rtmp_port

    @property
    def store(self) -> Store:
        return self.node.site.store

    @property
    def registry(self) -> Registry:
        return self.node.site.registry

    @property
    def keys(self) -> StreamKeys:
        return self.node.site.keys

    @property
    def directory(self) -> Directory:
        return self.node.site.directory

    @property
    def chat(self) -> ChatService:
        return self.node.site.chat

    @property
    def recorder(self) -> Recorder:
        return self.node.site.recorder

    @property
    def push(self) -> PushIngest:
        return self.node.site.push

    @property
    def tcp_ingest(self) -> TcpIngest:
        return self.node.tcp_ingest

    @property
    def ws_delivery(self) -> WsDelivery:
        return self.node.site.ws

    @property
    def socketio(self) -> SocketIODoor | None:
        return self.node.socketio

    @property
    def secret(self) -> bytes:
        return self.node.site.secret

    # -- assembly --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._node = await self._assemble(self._stack)
        except BaseException:
            await self._stack.aclose()
            raise
        self._announce()

    async def stop(self) -> None:
        await self._stack.aclose()

    async def _assemble(self, stack: AsyncExitStack) -> Node:
        settings = self.settings
        # First: a bad certificate is one line at once, before anything is opened.
        tls = ServerTls(settings.tls_cert, settings.tls_key) if settings.tls_cert else None
        secret = settings.secret_key.encode() or load_or_create_secret(settings.data_dir)
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        static = StaticStreamKeys(settings.stream_keys) if settings.stream_keys else None
        keys = StreamKeys(store, static)
        await keys.check_static_names()
        keys.rooms = OpenRooms(store, frozenset(keys.static_names), settings.open_rooms)
        node_id = load_or_create_node_id(settings.data_dir)
        if settings.worker:  # one machine's workers share the data dir, not the node id
            node_id = f"{node_id}-w{settings.worker}"
        reuse_port = bool(settings.worker)  # the workers share the public ports
        registry = Registry.from_settings(settings)
        thumbnails = ThumbnailWorker(registry)
        live_map = None
        if settings.redis_url:
            live_map = LiveMap(
                settings.redis_url,
                registry,
                store,
                node_id=node_id,
                prefix=settings.redis_prefix,
                role=settings.role,
                heartbeat=settings.cluster_heartbeat,
                ttl=settings.cluster_ttl,
                thumbnail=lambda name: t.etag if (t := thumbnails.get(name)) else None,
            )
            registry.admission = live_map
        elif settings.role == "edge":
            registry.admission = ViewersOnly()

        webhooks = WebhookSender(store.webhooks, WebhookLimits.from_settings(settings))
        stack.push_async_callback(webhooks.stop)
        directory = Directory(
            registry, store, thumbnails, keys.static_names, others=live_map, rooms=keys.rooms
        )
        broadcasts = Broadcasts(
            registry,
            store,
            directory,
            node=node_id,
            heartbeat=settings.broadcast_heartbeat,
            went_live=webhooks.went_live,
            # A site: a publisher back within the grace, on any node, carries its
            # broadcast on (its last note in the database may be a heartbeat old).
            carry_on_within=(
                settings.reconnect_grace + settings.broadcast_heartbeat
                if settings.redis_url and settings.reconnect_grace > 0
                else None
            ),
        )
        stack.push_async_callback(broadcasts.stop)

        chat = await self._chat(stack, store, registry, keys, directory)
        events = ChannelEvents(
            registry, directory, chat.bus, EventLimits(settings.events_viewers_interval)
        )
        await events.start()  # stopped before the chat closes the bus
        stack.push_async_callback(events.stop)
        control = SiteControl(registry, chat, store)
        await control.start()
        stack.push_async_callback(control.stop_all)

        recorder = Recorder(
            registry,
            settings.data_dir / "recordings",
            RecorderSettings.from_settings(settings),
            broadcast_ids=broadcasts.broadcast_id,
            wants_recording=ladder.ladder_recording(settings, broadcasts.wants_recording),
            # workers: the supervisor closed what a crash left; another worker's
            # recordings in progress are not left over
            salvage=not settings.worker,
        )
        broadcasts.listeners.append(recorder.broadcast_recorded)
        await recorder.start()
        stack.push_async_callback(recorder.stop)
        await broadcasts.close_left_open(
            {
                r.broadcast_id: datetime.fromtimestamp(r.ended, UTC)
                for r in recorder.interrupted
                if r.broadcast_id is not None and r.ended is not None
            }
        )
        broadcasts.start()
        # Once every ingest has stopped, the channels end (viewers told, recordings closed).
        stack.callback(_close_channels, registry)
        ladders = ladder.start_ladder(stack, settings, registry, store)  # stopped before channels

        rtmp = RtmpServer(registry, keys, RtmpServerConfig.from_settings(settings))
        rtmp_port = await rtmp.start(settings.host, settings.rtmp_port, reuse_port=reuse_port)
        stack.push_async_callback(rtmp.stop)
        rtmps_port = None
        if tls is not None:  # the same sessions, behind asyncio's TLS
            rtmps_port = await rtmp.start(
                settings.host, settings.rtmps_port, reuse_port=reuse_port, tls=tls.context
            )
        push = PushIngest(
            registry, keys, PushLimits.from_settings(settings),
            transcoder=transcoder_from_settings(settings),
        )  # fmt: skip
        stack.callback(push.close_all, SHUTTING_DOWN)
        tcp_ingest = TcpIngest(push, settings.tcp_ingest)
        await tcp_ingest.start(settings.host, reuse_port=reuse_port)
        stack.push_async_callback(tcp_ingest.stop)

        ws = WsDelivery(
            registry,
            ViewerLimits.from_settings(settings),
            SlotLimits(
                per_address=settings.ws_max_viewers_per_address,
                exempt=settings.limit_exempt_networks,
            ),
            MergeLimits.from_settings(settings),
        )
        pulls: PullManager | None = None
        demand: Demand = NoDemand()
        # What this node does not ingest, it follows from the upstream (a relay or an edge
        # behind one), else from the node that ingests it (the site's live map).
        locator: Locator | None = (
            StaticUpstream(settings.upstream) if settings.upstream else live_map
        )
        if locator is not None:
            pulls = PullManager(
                registry, locator, secret, PullLimits.from_settings(settings),
            )  # fmt: skip
            stack.push_async_callback(pulls.stop)
            demand = pulls
        pull_server = PullServer(registry, secret, ViewerLimits.from_settings(settings), demand)
        http_guard = ConnectionGuard(HttpLimits.from_settings(settings))
        elsewhere = Elsewhere(
            (lambda: [n.url for n in live_map.nodes()]) if live_map is not None else (lambda: ()),
            settings.upstream,
        )
        stack.push_async_callback(elsewhere.close)
        hls = HlsDelivery.from_settings(registry, settings)
        site = Site(
            settings=settings,
            secret=secret,
            store=store,
            registry=registry,
            directory=directory,
            keys=keys,
            chat=chat,
            events=events,
            control=control,
            recorder=recorder,
            push=push,
            ws=ws,
            hls=hls,
            dash=DashDelivery.from_settings(hls, settings),
            pulls=pull_server,
            elsewhere=elsewhere,
            http_guard=http_guard,
            rtmp_port=rtmp_port,
            metrics=self.metrics,
            rtmps_port=rtmps_port,
            reports={"ladder": ladders.metrics} if ladders is not None else {},
        )
        rtmp.play_gate = site.access  # RTMP play of a private channel takes its token
        app = create_app(site)
        door = None
        if settings.socketio_door:
            # The original desktop app goes live through the door, as JPEG frames.
            streams = JpegStreamIngest(registry, keys, JpegStreamLimits.from_settings(settings))
            limits = EngineIOLimits.from_settings(settings)
            door = SocketIODoor(chat, keys, secret, streams, limits=limits, access=site.access)
            door.attach(app)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=http_guard.limits.keepalive_timeout,
            logger=http_server_logger(),
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        assert runner.server is not None
        lean = LeanMediaPath.install(site, runner.server)  # LL-HLS past the middlewares
        # In front of both: a trusted proxy's client is the request's remote address.
        ForwardedHeaders.install(settings.proxy_networks, runner.server)
        listener = GuardedSite(
            runner,
            http_guard,
            settings.host,
            settings.http_port,
            reuse_port=reuse_port,
            tls=tls.context if tls is not None else None,
        )
        await listener.start()
        private_port = None
        # A worker's own address, where the other nodes pull what it ingests: loopback
        # when the site is this machine's workers (the supervisor's coordinator, a Unix
        # socket), the public interface when the workers join a site spanning machines.
        one_machine = settings.redis_url.startswith("unix:")
        if settings.worker:
            private_host = "127.0.0.1" if one_machine else settings.host
            private = GuardedSite(runner, http_guard, private_host, 0)
            await private.start()
            private_port = private.bound_port
        # Before the HTTP server closes: every long-lived connection it serves is told
        # "going away" (the server would otherwise wait for them).
        stack.push_async_callback(_say_goodbye, ws, chat, push, door)
        stack.callback(events.close_all)
        stack.callback(hls.let_go)
        stack.callback(pull_server.close_all, SHUTTING_DOWN)

        thumbnails.start()
        stack.push_async_callback(thumbnails.stop)
        self.lag.start()
        stack.callback(self.lag.stop)
        # An account logged out everywhere (suspended, new password, "log out
        # everywhere") keeps no chat socket open, on any node of the site.
        store.sessions.listeners.append(control.sessions_ended)
        own = f"{node_urls.scheme(settings)}://{node_urls.local_host(settings)}"
        webhooks.public_url = settings.public_url or f"{own}:{listener.bound_port}"
        node_url = node_urls.node_url(settings, listener.bound_port)
        if private_port is not None:  # a worker: the others reach it on its private port
            node_url = (
                f"http://127.0.0.1:{private_port}"
                if one_machine
                else node_urls.with_port(node_url, private_port)
            )
        if live_map is not None:
            if not settings.node_url and private_port is None:
                log.info(
                    "node URL %s (the other nodes pull from it; set --node-url if they "
                    "reach this node another way)",
                    node_url,
                )
            await live_map.start(node_url, rtmp_port)
            stack.push_async_callback(live_map.close)
            # First thing at a stop, before any publisher is cut off: a site's broadcasts
            # stay open for their publishers to carry on (here after a restart, or on
            # another node) within the grace.
            if not settings.worker:  # the workers stop together, with their site
                stack.push_async_callback(_leave_open_to_the_site, broadcasts, live_map)
        return Node(
            site=site,
            node_id=node_id,
            broadcasts=broadcasts,
            thumbnails=thumbnails,
            webhooks=webhooks,
            rtmp=rtmp,
            tcp_ingest=tcp_ingest,
            socketio=door,
            pulls=pulls,
            http_port=listener.bound_port,
            live_map=live_map,
            lean=lean,
            node_url=node_url,
            private_port=private_port,
            tls=tls,
        )

    async def _chat(
        self,
        stack: AsyncExitStack,
        store: Store,
        registry: Registry,
        keys: StreamKeys,
        directory: Directory,
    ) -> ChatService:
        settings = self.settings
        bus: RoomBus | None = None
        if settings.redis_url:
            bus = RedisBus(
                settings.redis_url,
                prefix=settings.redis_prefix,
                queue_max=settings.redis_queue_max,
            )
            await bus.start()
        chat = ChatService(
            ChatLimits.from_settings(settings),
            store,
            registry,
            bus=bus,
            static_channels=keys.static_names,
            viewers=directory.live_viewers,
            rooms=keys.rooms,
        )
        await chat.start()  # from here on, chat.stop() closes the bus too
        stack.push_async_callback(chat.stop)
        return chat

    def _announce(self) -> None:
        host, node = node_urls.local_host(self.settings), self.node
        scheme = node_urls.scheme(self.settings)
        log.info("Strom %s is up: %s://%s:%d/", __version__, scheme, host, node.http_port)
        if self.settings.role == "edge":
            log.info("role edge: this node serves viewers; publishers go to an ingest node")
        else:
            log.info(
                "go live: OBS server rtmp://%s:%d/live with your stream key", host, self.rtmp_port
            )
            if node.site.rtmps_port is not None:
                log.info("or encrypted: rtmps://%s:%d/live", host, node.site.rtmps_port)
        for name in self.keys.static_names:
            log.info(
                "channel %s: watch at %s://%s:%d/live/%s", name, scheme, host, node.http_port, name
            )

    def reload_tls(self) -> None:
        """``SIGHUP``: read the certificate and key again (a renewed certificate)."""
        if self.node.tls is not None:
            self.node.tls.reload()

    # -- numbers ---------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """``/api/v1/stats`` (and, in the Prometheus format, ``/metrics``): this process
        and each service's own numbers."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        node, site = self.node, self.node.site
        door = node.socketio
        bus = site.chat.bus
        return {
            "version": __version__,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "uptime": round(time.time() - self.started, 1),
            "pid": os.getpid(),
            "worker": self.settings.worker or None,
            "private_port": node.private_port,
            "loop_lag_ms": round(self.lag.last * 1000, 3),
            "loop_lag_max_ms": round(self.lag.max_recent * 1000, 3),
            "loop_lag": self.lag.samples.as_dict(),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_kb": usage.ru_maxrss,
            "http_connections": site.http_guard.metrics(),
            "rtmp_connections": len(node.rtmp.connections),
            "push_ingest": site.push.metrics(),
            "ws_viewers": site.ws.viewers,
            "delivery": {
                "ws": site.ws.counts.as_dict(),
                "rtmp": node.rtmp.playback_counts.as_dict(),
                "pull": site.pulls.counts.as_dict(),
            },
            "hls": {**site.hls.counts.as_dict(), "waiting": site.hls.waiting()},
            "socketio_clients": len(door.clients) if door is not None else 0,
            "socketio_sessions": door.sessions.metrics() if door is not None else None,
            "socketio_streams": door.streams.metrics() if door and door.streams else None,
            "redis": bus.metrics() if isinstance(bus, RedisBus) else None,
            "channel_events": site.events.metrics(),
            "cluster": (
                node.live_map.metrics()
                if node.live_map is not None
                else {"role": self.settings.role, "node_url": node.node_url}
            ),
            "recordings": site.recorder.metrics(),
            "database": site.store.pool_status(),
            "channels": site.registry.metrics(),
            "pulls": node.pulls.metrics() if node.pulls is not None else None,
            "pull_feeds": site.pulls.feeds,
            "elsewhere": site.elsewhere.metrics(),
            **{key: report() for key, report in site.reports.items()},
        }


async def _leave_open_to_the_site(broadcasts: Broadcasts, live_map: LiveMap) -> None:
    """A node of a site stopping while other nodes run (a restart, a node taken out):
    its broadcasts stay open for their publishers to carry on. The last node of a site
    stopping ends them, as one node alone does: nobody would be left to."""
    if live_map.nodes():
        await broadcasts.leave_open()


def _close_channels(registry: Registry) -> None:
    for channel in registry:
        channel.close()


async def _say_goodbye(
    ws: WsDelivery, chat: ChatService, push: PushIngest, door: SocketIODoor | None
) -> None:
    await ws.close_all(WSCloseCode.GOING_AWAY, SHUTTING_DOWN)
    push.close_all(SHUTTING_DOWN)
    if door is not None:
        await door.stop()
    chat.close_all(WSCloseCode.GOING_AWAY, SHUTTING_DOWN)
