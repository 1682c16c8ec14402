"""One Strom process: the hub, the RTMP server and the web application, started and
stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, web

from strom import __version__
from strom.chat import ChatLimits, ChatService
from strom.chat.engineio_sessions import EngineIOLimits
from strom.chat.redis_bus import RedisBus
from strom.chat.socketio import SocketIODoor
from strom.delivery.backpressure import ViewerLimits
from strom.delivery.ws import WsDelivery
from strom.errors import StromError
from strom.ingest.jpeg_socketio import JpegStreamIngest, JpegStreamLimits
from strom.ingest.push import PushIngest, PushLimits, transcoder_from_settings
from strom.ingest.rtmp import RtmpServer, RtmpServerConfig
from strom.ingest.tcp import TcpIngest
from strom.live.registry import Registry, StaticStreamKeys, StreamKeyResolver
from strom.notify import WebhookLimits, WebhookSender
from strom.platform import Platform
from strom.record.recorder import Recorder, RecorderSettings
from strom.record.thumbnails import ThumbnailWorker
from strom.settings import Settings
from strom.store import Store
from strom.store.models import NODE_ID_MAX
from strom.store.sessions import SessionLimits
from strom.web.app import create_app
from strom.web.auth import load_or_create_secret
from strom.web.connections import ConnectionGuard, GuardedSite, HttpLimits
from strom.web.request_errors import http_server_logger

log = logging.getLogger(__name__)


class SchemaOutOfDate(StromError):
    """An external database needs ``strom db upgrade`` before this version can use it."""


class ChannelNameClash(StromError):
    """A static channel (``--stream-key NAME=KEY``) has the name of an account."""


async def check_static_names(store: Store, names: Sequence[str]) -> None:
    """Reserve the static channels' names (sign-up and ``strom user create`` refuse them,
    in any case) and refuse to start if an account already has one of them.

    Why refuse to start rather than drop that one static key: a channel name must mean
    one channel, and Strom cannot tell which of the two the operator meant. Served
    anyway, the name would be the account's page, chat room and recordings while the
    operator's key went live on it; dropped, the operator's channel would be gone behind
    one log line while whoever registered the name kept it (the operator may well be
    streaming to it from a script that retries forever). Stopping with the reason is
    the loud, safe failure: nothing runs under an ambiguous name, and the operator picks
    another static name."""
    store.reserve_names(names)
    for name in names:
        user = await store.get_user(name)
        if user is not None:
            raise ChannelNameClash(
                f"the static channel {name!r} (--stream-key {name}=...) has the name of the "
                f"account {user.username!r}: one name cannot be both. Give the static "
                "channel another name"
            )


class LoopLagMonitor:
    """How late the event loop runs a timer: the server's own health number."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.last = 0.0
        self.max_recent = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        window_start = loop.time()
        peak = 0.0
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - before - self.interval)
            peak = max(peak, self.last)
            if loop.time() - window_start > 10:
                self.max_recent, peak, window_start = peak, 0.0, loop.time()
            else:
                self.max_recent = max(self.max_recent, peak)


#: another node's open broadcast is closed by a restarting node only when its heartbeat is
#: this many intervals old (that node is gone); until then it may well be live elsewhere
STALE_HEARTBEATS = 30


def load_or_create_node_id(data_dir: Path) -> str:
    """This node's id, kept in the data directory: the broadcasts it runs carry it, so
    after a crash it closes its own and never another node's live ones. (The cluster
    work will want the same id for the live map; a copied data dir copies it too.)"""
    path = data_dir / "node-id"
    with contextlib.suppress(FileNotFoundError):
        found = path.read_text().strip()
        if found:
            return found[:NODE_ID_MAX]
    data_dir.mkdir(parents=True, exist_ok=True)
    node = f"{socket.gethostname()[:40]}-{secrets.token_hex(6)}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(node + "\n")
    os.replace(tmp, path)
    return node


def database_url(settings: Settings) -> tuple[str, bool]:
    """The database URL, and whether it is the embedded default (SQLite in the data dir)."""
    if settings.database_url:
        return settings.database_url, False
    return f"sqlite+aiosqlite:///{(settings.data_dir / 'strom.db').resolve()}", True


class StromServer:
    def __init__(self, settings: Settings, keys: StreamKeyResolver | None = None) -> None:
        self.settings = settings
        self.registry = Registry.from_settings(settings)
        self.viewer_limits = ViewerLimits.from_settings(settings)
        self._keys = keys
        self.store: Store | None = None
        self.platform = Platform(self.registry, None)
        self.secret = b""
        self.rtmp: RtmpServer | None = None
        #: push ingest without RTMP: HTTP PUT/POST, raw TCP ports, browser uploads
        self.push: PushIngest | None = None
        self.tcp_ingest: TcpIngest | None = None
        self.ws_delivery: WsDelivery | None = None
        #: the HTTP listener's header deadline and per-address connection cap
        self.http_guard = ConnectionGuard(HttpLimits.from_settings(settings))
        self._runner: web.AppRunner | None = None
        self.http_port = settings.http_port
        self.rtmp_port = settings.rtmp_port
        self.lag = LoopLagMonitor()
        self.static_channels: Sequence[str] = []
        self.thumbnails: ThumbnailWorker | None = None
        self.chat: ChatService | None = None
        self.socketio: SocketIODoor | None = None
        self.webhooks: WebhookSender | None = None
        self.recorder: Recorder | None = None
        self.node_id = ""
        self.started = time.time()

    async def start(self) -> None:
        settings = self.settings
        self.secret = (
            settings.secret_key.encode()
            if settings.secret_key
            else load_or_create_secret(settings.data_dir)
        )
        url, embedded = database_url(settings)
        self.store = await Store.open(url, sessions=SessionLimits.from_settings(settings))
        status = await self.store.schema_status()
        if not status.up_to_date:
            if not embedded:
                await self.store.close()
                raise SchemaOutOfDate(
                    f"the database schema is at {status.current or 'nothing'}, this Strom needs "
                    f"{status.head}: run `strom db upgrade` first"
                )
            await self.store.migrate()
        try:
            await check_static_names(self.store, list(settings.stream_keys))
        except ChannelNameClash:
            await self.store.close()
            raise
        self.node_id = load_or_create_node_id(settings.data_dir)
        static = StaticStreamKeys(settings.stream_keys) if settings.stream_keys else None
        self.static_channels = static.names if static is not None else []
        self.thumbnails = ThumbnailWorker(self.registry)
        self.webhooks = WebhookSender(self.store, WebhookLimits.from_settings(settings))
        self.platform = Platform(
            self.registry,
            self.store,
            static,
            self.thumbnails,
            webhooks=self.webhooks,
            node=self.node_id,
            heartbeat=settings.broadcast_heartbeat,
        )
        keys = self._keys or self.platform
        self.recorder = Recorder(
            self.registry,
            settings.data_dir / "recordings",
            RecorderSettings.from_settings(settings),
            broadcast_ids=self.platform.broadcast_id,
            wants_recording=self.platform.wants_recording,
        )
        self.platform.broadcast_listeners.append(self.recorder.broadcast_recorded)
        await self.recorder.start()
        await self._close_broadcasts_left_open()
        self.platform.start()
        bus: RedisBus | None = None
        if settings.redis_url:
            bus = RedisBus(
                settings.redis_url,
                prefix=settings.redis_prefix,
                queue_max=settings.redis_queue_max,
                local_viewers=self._live_viewers,
            )
            await bus.start()
        self.chat = ChatService(
            ChatLimits.from_settings(settings),
            self.store,
            self.registry,
            bus=bus,
            static_channels=self.static_channels,
        )
        await self.chat.start()
        chat = self.chat
        # An account logged out everywhere (suspended, new password, "log out
        # everywhere") keeps no chat socket open on this node either.
        self.store.sessions.listeners.append(chat.disconnect_user)
        self.rtmp = RtmpServer(self.registry, keys, RtmpServerConfig.from_settings(settings))
        self.rtmp_port = await self.rtmp.start(settings.host, settings.rtmp_port)
        self.push = PushIngest(
            self.registry,
            keys,
            PushLimits.from_settings(settings),
            transcoder=transcoder_from_settings(settings),
        )
        self.tcp_ingest = TcpIngest(self.push, settings.tcp_ingest)
        await self.tcp_ingest.start(settings.host)
        app = create_app(self)
        if settings.socketio_door:
            # The original desktop app goes live through the door, as JPEG frames.
            streams = JpegStreamIngest(
                self.registry, keys, JpegStreamLimits.from_settings(settings)
            )
            self.socketio = SocketIODoor(
                self.chat,
                self.platform,
                self.secret,
                streams,
                limits=EngineIOLimits.from_settings(settings),
            )
            self.socketio.attach(app)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.http_guard.limits.keepalive_timeout,
            logger=http_server_logger(),
        )
        await self._runner.setup()
        site = GuardedSite(self._runner, self.http_guard, settings.host, settings.http_port)
        await site.start()
        self.http_port = site.bound_port
        self.lag.start()
        self.thumbnails.start()
        host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
        self.webhooks.public_url = settings.public_url or f"http://{host}:{self.http_port}"
        log.info("Strom %s is up: http://%s:%d/", __version__, host, self.http_port)
        log.info("go live: OBS server rtmp://%s:%d/live with your stream key", host, self.rtmp_port)
        for name in self.static_channels:
            log.info("channel %s: watch at http://%s:%d/live/%s", name, host, self.http_port, name)

    async def _close_broadcasts_left_open(self) -> None:
        """A crash or ``kill -9`` left this node's broadcasts open: end each when it was
        last on air (the heartbeat, or the last media its recording kept), never now."""
        assert self.store is not None
        assert self.recorder is not None
        last_media = {
            r.broadcast_id: datetime.fromtimestamp(r.ended, UTC)
            for r in self.recorder.interrupted
            if r.broadcast_id is not None and r.ended is not None
        }
        beat = self.settings.broadcast_heartbeat
        closed = await self.store.close_unfinished_broadcasts(
            self.node_id,
            last_media=last_media,
            # without heartbeats nothing tells a gone node from a live one
            stale_after=timedelta(seconds=STALE_HEARTBEATS * beat) if beat > 0 else None,
        )
        for broadcast_id, ended in sorted(closed.items()):
            log.info(
                "broadcast %d was left open by the last run: ended at %s (%s)",
                broadcast_id,
                ended.isoformat(timespec="seconds"),
                "its recording's last media" if broadcast_id in last_media else "last heartbeat",
            )

    async def stop(self) -> None:
        self.lag.stop()
        if self.thumbnails is not None:
            await self.thumbnails.stop()
        if self.rtmp is not None:
            await self.rtmp.stop()
        if self.push is not None:
            self.push.close_all("server shutting down")
        if self.tcp_ingest is not None:
            await self.tcp_ingest.stop()
        for channel in self.registry:
            channel.close()
        if self.recorder is not None:
            await self.recorder.stop()
        if self.ws_delivery is not None:
            await self.ws_delivery.close_all(WSCloseCode.GOING_AWAY, "server shutting down")
        if self.socketio is not None:
            await self.socketio.stop()
        if self.chat is not None:
            await self.chat.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.platform.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.store is not None:
            await self.store.close()

    def _redis_metrics(self) -> dict[str, Any] | None:
        bus = self.chat.bus if self.chat is not None else None
        if not isinstance(bus, RedisBus):
            return None
        return {
            "node": bus.node_id,
            "connected": bus.connected,
            "published": bus.published,
            "received": bus.received,
            "dropped": bus.dropped,
        }

    def _live_viewers(self) -> dict[str, int]:
        """This node's media viewers per channel (for the other nodes' totals); the same
        numbers the chat pushes to its rooms (a channel's viewers, live or not yet)."""
        return {c.name: c.viewers for c in self.registry if c.viewers}

    async def channel_view(self, name: str) -> dict[str, Any] | None:
        """What a channel page shows, or None if there is no such channel."""
        if self.store is not None:
            user = await self.store.get_user(name)
            if user is not None:
                info = await self.store.channel(user.username)
                followers = await self.store.follower_count(user.username)
                return self.platform.channel_view(user.username, info, followers)
        if name in self.static_channels:
            return self.platform.channel_view(name, None)
        return None

    def metrics(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        channels = list(self.registry)
        return {
            "version": __version__,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "uptime": round(time.time() - self.started, 1),
            "loop_lag_ms": round(self.lag.last * 1000, 3),
            "loop_lag_max_ms": round(self.lag.max_recent * 1000, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_kb": usage.ru_maxrss,
            "http_connections": self.http_guard.metrics(),
            "rtmp_connections": len(self.rtmp.connections) if self.rtmp else 0,
            "push_ingest": self.push.metrics() if self.push is not None else None,
            "ws_viewers": self.ws_delivery.viewers if self.ws_delivery else 0,
            "socketio_clients": len(self.socketio.clients) if self.socketio else 0,
            "socketio_sessions": self.socketio.sessions.metrics() if self.socketio else None,
            "socketio_streams": (
                self.socketio.streams.metrics()
                if self.socketio is not None and self.socketio.streams is not None
                else None
            ),
            "redis": self._redis_metrics(),
            "recordings": self.recorder.metrics() if self.recorder is not None else None,
            "database": self.store.pool_status() if self.store is not None else None,
            "channels": [
                {
                    "name": c.name,
                    "state": c.state.value,
                    "viewers": c.viewers,
                    "subscribers": len(c.subscribers),
                    "frames_in": c.frames_in,
                    "bytes_in": c.bytes_in,
                }
                for c in channels
            ],
        }
