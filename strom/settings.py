"""Strom's settings: one typed object, filled from defaults, a TOML file, the environment
and the command line, in that order of precedence (later wins;
:mod:`strom.setting_sources` reads them).

Every field is one option. Its command-line flag is ``--field-name``, its environment
variable ``STROM_FIELD_NAME`` and its config-file key ``field_name``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strom.media.hls.settings import HlsSettings
from strom.media.ladder import parse_rungs
from strom.media.rtmp.limits import RtmpLimits
from strom.ratelimit import IPNetwork, parse_networks
from strom.setting_media import MediaWorkSettings
from strom.setting_values import (
    SettingsError,
    parse_tcp_ingest,
    valid_channel_name,
    valid_watch_name,
)
from strom.setting_values import (
    opt as _opt,
)

__all__ = [
    "Settings",
    "SettingsError",
    "exempt_networks",
    "section",
    "setting",
    "valid_channel_name",
    "valid_watch_name",
]

#: RTMP limits have their defaults in the sans-IO session, which tests use without settings.
_RTMP = RtmpLimits()

#: x264 presets Strom lets an operator choose (slower ones cannot keep up live).
_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_WEB = ("http", "https")


@dataclass(frozen=True)
class Settings(MediaWorkSettings):
    # --- network -------------------------------------------------------------------------
    host: str = _opt("0.0.0.0", "address to listen on (HTTP and RTMP)")  # noqa: S104
    http_port: int = _opt(8080, "HTTP port: pages, API, WebSocket and HLS delivery")
    rtmp_port: int = _opt(1935, "RTMP port for publishers (OBS, ffmpeg) and RTMP players")
    tls_cert: str = _opt(
        "", "certificate file (PEM, full chain): the HTTP port serves HTTPS, and RTMPS opens"
    )
    tls_key: str = _opt("", "private key file (PEM) of tls_cert")
    rtmps_port: int = _opt(1936, "RTMPS port for publishers (rtmps://), open when tls_cert is set")
    data_dir: Path = _opt(Path("strom-data"), "directory for Strom's files")
    log_level: str = _opt("info", "log level: debug, info, warning, error")
    event_loop: str = _opt("auto", "event loop: auto (uvloop when installed), uvloop, asyncio")
    workers: str = _opt(
        "1", "processes serving the same ports, one site among themselves ('auto': one per core)"
    )
    worker: int = _opt(0, "set by the supervisor of --workers: this process is worker N (1..)")
    stream_keys: dict[str, str] = field(
        default_factory=dict,
        repr=False,  # secrets never reach a log line through repr()
        metadata={
            "flag": "--stream-key",
            "help": "static stream key for a channel, NAME=KEY (repeatable; env: "
            "comma-separated list)",
            "metavar": "NAME=KEY",
        },
    )
    database_url: str = field(
        default="",
        repr=False,  # may hold a password
        metadata={"help": "SQLAlchemy database URL (default: an SQLite file in the data dir)"},
    )
    secret_key: str = field(
        default="",
        repr=False,
        metadata={"help": "secret for signing sessions (default: generated in the data dir)"},
    )
    secure_cookies: bool = _opt(False, "mark cookies Secure (set when served over HTTPS)")
    login_attempts_per_minute: int = _opt(
        10, "log-in and sign-up attempts per client address per minute, any account"
    )
    login_failures_per_account_address: int = _opt(
        5,
        "wrong passwords for one account from one address before that address must wait "
        "(429; one more try every 15/N minutes)",
    )
    login_delay_after_failures: int = _opt(
        10,
        "wrong passwords for one account from anywhere (per 15 minutes) after which its "
        "log-ins from addresses it has not logged in from are delayed (never refused)",
    )
    login_delay_max: float = _opt(
        10.0, "longest delay (seconds) before a log-in for an account under attack is checked"
    )
    session_days: float = _opt(30.0, "days a log-in lasts before the user must log in again")
    session_cache_seconds: float = _opt(
        5.0,
        "seconds a node trusts a session it looked up in the database: a log-out or "
        "suspension on another node takes effect within this (0: look up every request)",
    )
    visibility_cache_seconds: float = _opt(
        3.0,
        "seconds a node trusts a channel's visibility (public, unlisted, private) it read "
        "from the database: a change takes effect on every node within this",
    )
    watch_token_minutes: float = _opt(
        240.0,
        "minutes a private channel's media token (given to an allowed viewer by the watch "
        "page) plays; a reload of the page gives a new one",
    )
    connection_limit_exempt: str = _opt(
        "",
        "comma-separated networks (CIDR) whose clients are not limited per address: a "
        "reverse proxy, a load generator (e.g. 127.0.0.0/8,::1)",
    )
    trusted_proxies: str = _opt(
        "",
        "comma-separated networks (CIDR) of reverse proxies whose X-Forwarded-For/-Proto/-Host "
        "and Forwarded headers say who the client is (from anyone else they are ignored)",
    )
    metrics_allow: str = _opt(
        "",
        "comma-separated networks (CIDR) whose clients may read the node's numbers, "
        "/metrics and /api/v1/stats (empty: everyone; e.g. 10.0.0.0/8 for a Prometheus)",
    )
    # --- RTMP limits ---------------------------------------------------------------------
    rtmp_max_chunk_size: int = _opt(
        _RTMP.max_chunk_size, "largest Set Chunk Size accepted from a peer (bytes)"
    )
    rtmp_min_chunk_size: int = _opt(
        _RTMP.min_chunk_size,
        "smallest Set Chunk Size accepted from a peer (bytes; the spec's default is 128, "
        "smaller ones only multiply the server's work); smaller: refused, closed",
    )
    rtmp_max_message_size: int = _opt(
        _RTMP.max_message_size, "largest RTMP message a publisher may send (bytes)"
    )
    rtmp_max_pending_bytes: int = _opt(
        _RTMP.max_pending_bytes,
        "bytes of unfinished RTMP messages buffered for one publisher, all chunk streams",
    )
    rtmp_preauth_max_message_size: int = _opt(
        _RTMP.preauth_max_message_size,
        "largest RTMP message accepted until a publish is accepted, and from players "
        "(commands only; bytes)",
    )
    rtmp_preauth_max_pending_bytes: int = _opt(
        _RTMP.preauth_max_pending_bytes,
        "bytes of unfinished RTMP messages buffered until a publish is accepted, and for players",
    )
    rtmp_read_step_bytes: int = _opt(
        64 << 10,
        "bytes of one RTMP connection's input parsed per event-loop turn (every chunk "
        "counts as 128 at least); the rest waits for the next turn, so that no client "
        "holds up the others",
    )
    rtmp_preauth_read_rate: int = _opt(
        64 << 10,
        "bytes per second read from an RTMP connection until a publish is accepted, and "
        "from players (every chunk counts as 128 at least); a faster client waits "
        "(0: no limit)",
    )
    rtmp_handshake_timeout: float = _opt(
        10.0, "seconds from accepting an RTMP connection to its handshake and connect"
    )
    rtmp_start_timeout: float = _opt(
        20.0,
        "seconds an RTMP connection may stay without an accepted publish or play (from "
        "accepting it, or from the end of its last one)",
    )
    rtmp_idle_timeout: float = _opt(20.0, "seconds without data before a publisher is dropped")
    rtmp_out_chunk_size: int = _opt(4096, "chunk size Strom uses for what it sends")
    max_connections: int = _opt(10_000, "most RTMP connections open at once")
    rtmp_max_connections_per_address: int = _opt(
        10,
        "most RTMP connections open at once from one client address (IPv6: one /64; "
        "0: no limit; see connection_limit_exempt)",
    )
    # --- hub and viewers ------------------------------------------------------------------
    gop_cache_max_bytes: int = _opt(8 << 20, "most bytes kept for late joiners (last GOP)")
    viewer_skip_bytes: int = _opt(
        1 << 20, "a viewer with more unsent bytes than this skips to the next keyframe"
    )
    viewer_drop_bytes: int = _opt(
        8 << 20, "a viewer with more unsent bytes than this is disconnected"
    )
    viewer_drop_seconds: float = _opt(
        10.0, "a viewer that keeps skipping this long is disconnected"
    )
    ws_merge_above: int = _opt(
        0,
        "with more WebSocket viewers of a channel than this, a frame may wait for the next "
        "so that each viewer gets both in one write (half the writes and wake-ups, a frame "
        "interval of latency on every other frame); 0: never",
    )
    ws_merge_hold: float = _opt(
        0.04,
        "longest a frame waits to be merged with the next (seconds); a stream whose frames "
        "come further apart is never merged",
    )
    max_viewers_per_channel: int = _opt(20_000, "most viewers of one channel at once")
    reconnect_grace: float = _opt(
        30.0, "seconds a broadcast waits for a dropped publisher to come back (0: end at once)"
    )
    broadcast_heartbeat: float = _opt(
        10.0,
        "seconds between notes in the database that a broadcast is still on air (and its "
        "peak viewers): after a crash it ends at the last one, or its recording's last media",
    )
    coalesce_audio: bool = _opt(
        True, "send audio with the next video frame (one write per video frame per viewer)"
    )
    # --- LL-HLS ---------------------------------------------------------------------------
    hls_part_target: float = _opt(HlsSettings.part_target, "LL-HLS part target duration (seconds)")
    hls_window_segments: int = _opt(
        HlsSettings.window_segments, "complete segments listed in the live playlist"
    )
    # --- chat -----------------------------------------------------------------------------
    chat_message_max_chars: int = _opt(500, "longest chat message (characters)")
    chat_max_frame_bytes: int = _opt(
        8192, "largest WebSocket frame a chat client may send (bytes); larger: close 1009"
    )
    chat_rate: float = _opt(1.0, "chat messages per second per user (token bucket refill)")
    chat_burst: int = _opt(5, "chat messages a user may send at once before the rate applies")
    chat_duplicate_seconds: float = _opt(
        30.0, "a user's repeated identical chat message within this many seconds is refused"
    )
    chat_like_rate: float = _opt(5.0, "likes per second per user")
    chat_like_burst: int = _opt(10, "likes a user may send at once before the rate applies")
    chat_frames_per_second: float = _opt(
        20.0, "frames per second a chat socket may send (any kind); a flood closes it (1008)"
    )
    chat_frames_burst: int = _opt(50, "frames a chat socket may send at once")
    chat_history: int = _opt(50, "earlier messages a chat member gets on joining")
    chat_batch_interval: float = _opt(
        0.15, "seconds between a chat room's batched deliveries (one frame per room per tick)"
    )
    chat_max_members_per_room: int = _opt(20_000, "most chat sockets in one room")
    chat_chatters_max: int = _opt(500, "most names a chat's chatter list shows (guests: a count)")
    chat_member_drop_bytes: int = _opt(
        1 << 20, "a chat socket with more unsent bytes than this is disconnected (1008)"
    )
    socketio_door: bool = _opt(
        True, "serve the Socket.IO compatibility door for the original apps at /socket.io/"
    )
    open_rooms: bool = _opt(
        False,
        "open rooms, for the live-broadcast app and LAN events: anyone can publish to "
        "live/NAME, NAME being no account's or static channel's (docs/compat.md)",
    )
    # --- several nodes ----------------------------------------------------------------------
    redis_url: str = field(
        default="",
        repr=False,  # may hold a password
        metadata={
            "help": "Redis URL (redis://host:6379/0) shared by every node: chat rooms, likes, "
            "moderation and viewer counts span the nodes (default: one node, no Redis)"
        },
    )
    redis_prefix: str = _opt("strom", "prefix of Strom's Redis channel names (one per site)")
    redis_queue_max: int = _opt(
        10_000, "chat events waiting to be sent to Redis; beyond it new ones are dropped"
    )
    role: str = _opt(
        "all", "what this node does: all (ingest and serve) or edge (serve viewers only)"
    )
    node_url: str = _opt(
        "",
        "how the other nodes reach this node's HTTP port (default: the public URL, else "
        "http://<host>:<http port>)",
    )
    cluster_heartbeat: float = _opt(
        2.0, "seconds between a node's notes in Redis: its live channels, claims and viewers"
    )
    cluster_ttl: float = _opt(
        6.0, "seconds a node's notes in Redis last without a heartbeat (a dead node's vanish)"
    )
    upstream: str = _opt(
        "",
        "pull every channel this node does not ingest through the node at this URL "
        "(http://host:port, same secret key): makes this node a relay or an edge",
    )
    pull_linger: float = _opt(10.0, "seconds a pulled channel is kept after its last viewer left")
    # --- notifications ----------------------------------------------------------------------
    public_url: str = _opt(
        "",
        "the site's address as people reach it (https://example.org behind a proxy), for "
        "absolute links: webhooks, embeds, downloads (default: as each visitor reaches it)",
    )
    webhook_timeout: float = _opt(5.0, "seconds a go-live webhook may take (connect and answer)")
    webhook_concurrency: int = _opt(8, "go-live webhooks sent at once")
    webhook_allow_private: bool = _opt(
        False, "let webhooks reach loopback and private addresses (off: only public ones)"
    )

    # --- recordings -------------------------------------------------------------------------
    record: bool = _opt(True, "record every broadcast to the data dir (instant VOD and MP4)")
    recordings_keep_days: float = _opt(0.0, "delete recordings older than this (0: keep forever)")
    recordings_max_gb_per_channel: float = _opt(
        0.0, "delete a channel's oldest recordings beyond this many GB (0: unlimited)"
    )
    recording_queue_max_bytes: int = _opt(
        64 << 20, "bytes a recording may have waiting for the disk before it is stopped"
    )
    recording_fsync_seconds: float = _opt(5.0, "how often a recording is flushed to the disk")
    dvr_window: float = _opt(
        7200.0,
        "seconds viewers may rewind a live broadcast (its recording so far; 0: no rewind)",
    )
    # --- push ingest (HTTP PUT/POST, raw TCP, browser WebSocket) ---------------------------
    tcp_ingest: dict[int, str] = field(
        default_factory=dict,
        metadata={
            "flag": "--tcp-ingest",
            "help": "raw TCP push port for a channel, PORT=CHANNEL (repeatable; env: "
            "comma-separated list); it accepts WebM, fragmented MP4, FLV or MPEG-TS",
            "metavar": "PORT=CHANNEL",
            "parse": parse_tcp_ingest,
        },
    )
    ingest_max_bitrate: int = _opt(
        25_000_000,
        "bits per second a pushed stream may average (HTTP, TCP, WebSocket, WHIP); faster: closed",
    )
    ingest_idle_timeout: float = _opt(
        20.0, "seconds a pushed stream may send nothing before it counts as lost"
    )
    ingest_sniff_timeout: float = _opt(
        10.0, "seconds a push may take to send its first bytes (or a browser its start message)"
    )
    ingest_max_connections: int = _opt(1000, "most push ingests (HTTP, TCP, WebSocket) at once")
    ingest_ws_max_message: int = _opt(
        4 << 20, "largest WebSocket message a browser upload may send (bytes); larger: close 1009"
    )
    jpeg_stream_max_bytes: int = _opt(
        1 << 20, "largest JPEG frame the original desktop app may send over Socket.IO (bytes)"
    )
    jpeg_stream_max_fps: float = _opt(
        30.0, "JPEG frames per second a Socket.IO streamer may send; faster ones are dropped"
    )
    jpeg_relay_fps: float = _opt(
        10.0,
        "pictures per second of a Socket.IO stream relayed to the sockets that ask for them "
        "(watch_frames: the original desktop app's viewers); 0: none",
    )
    # --- HTTP connections, and connections per client address -----------------------------
    # (HTTP, media and chat WebSockets, Socket.IO, push ingest; the RTMP server has its own.
    # Addresses in connection_limit_exempt are not counted per address.)
    http_header_timeout: float = _opt(
        10.0,
        "seconds from accepting an HTTP connection to its complete first request head; bytes "
        "trickled in do not extend it (past it: 408 and close)",
    )
    http_keepalive_timeout: float = _opt(
        15.0,
        "seconds an idle keep-alive HTTP connection is kept; the next request head must be "
        "complete within it",
    )
    http_body_timeout: float = _opt(
        30.0,
        "seconds a request body (forms, JSON) may take to arrive in full (slower: 408); "
        "pushed streams have their own timeouts",
    )
    http_max_connections_per_address: int = _opt(
        2000,
        "HTTP connections (WebSockets included) open at once from one address, IPv6 per /64; "
        "more: 429 and close (0: no limit). Room for the media and chat sockets of a NAT's "
        "viewers and their page loads",
    )
    ws_max_viewers_per_address: int = _opt(
        500,
        "media WebSocket viewers from one address at once (many viewers can share a NAT); "
        "more: close 1013 (0: no limit)",
    )
    events_max_per_address: int = _opt(
        200,
        "event-stream WebSockets (/events/ws: one per open page) from one address at "
        "once; more: close 1013 (0: no limit)",
    )
    events_max_connections: int = _opt(
        20_000, "event-stream WebSockets open at once on this node; more: close 1013 (0: no limit)"
    )
    events_queue_max: int = _opt(
        256,
        "channel events waiting to be sent to one event-stream client; more: it is closed "
        "1008 (too slow) and its page reconnects",
    )
    events_viewers_interval: float = _opt(
        5.0, "seconds between viewer-count events of a live channel (sent when it changed)"
    )
    chat_max_sockets_per_address: int = _opt(
        500, "chat WebSockets from one address at once; more: close 1013 (0: no limit)"
    )
    ingest_max_connections_per_address: int = _opt(
        5,
        "push ingests (HTTP, TCP, WebSocket) from one address at once, counted before the "
        "stream key is checked; more: 429 or close 1013 (0: no limit)",
    )
    socketio_max_sessions: int = _opt(
        10_000, "Engine.IO sessions (the Socket.IO door) open at once; more: 503 (0: no limit)"
    )
    socketio_max_sessions_per_address: int = _opt(
        100, "Engine.IO sessions open at once from one address; more: 429 (0: no limit)"
    )
    socketio_connect_timeout: float = _opt(
        10.0, "seconds a new Engine.IO session has to connect to Socket.IO before it is closed"
    )
    socketio_poll_timeout: float = _opt(
        15.0,
        "seconds a long-polling Socket.IO session may go without a request before it is closed",
    )

    @property
    def limit_exempt_networks(self) -> tuple[IPNetwork, ...]:
        return exempt_networks(self.connection_limit_exempt)

    @property
    def proxy_networks(self) -> tuple[IPNetwork, ...]:
        """``trusted_proxies`` as networks (none: no forwarding header is believed)."""
        return exempt_networks(self.trusted_proxies)

    @property
    def metrics_networks(self) -> tuple[IPNetwork, ...]:
        """``metrics_allow`` as networks (none: everyone may read the numbers)."""
        return exempt_networks(self.metrics_allow)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise SettingsError(f"{f.name} must not be negative (got {value})")
        for port in ("http_port", "rtmp_port", "rtmps_port"):
            if not 0 <= getattr(self, port) <= 65535:
                raise SettingsError(f"{port} must be a TCP port number")
        if self.ws_merge_above < 0 or self.ws_merge_hold < 0:
            raise SettingsError("ws_merge_above and ws_merge_hold must be 0 or more")
        if self.viewer_drop_bytes < self.viewer_skip_bytes:
            raise SettingsError("viewer_drop_bytes must be at least viewer_skip_bytes")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be greater than 0")
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.ladder not in ("off", "on", "all"):
            raise SettingsError(f"unknown ladder mode {self.ladder!r}: off, on or all")
        if self.ladder_preset not in _X264_PRESETS:
            raise SettingsError(f"ladder_preset must be one of {', '.join(_X264_PRESETS)}")
        try:
            parse_rungs(self.ladder_renditions)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.transcode_preset not in _X264_PRESETS:
            raise SettingsError(f"transcode_preset must be one of {', '.join(_X264_PRESETS)}")
        for prefix in ("rtmp_", "rtmp_preauth_"):
            if getattr(self, prefix + "max_pending_bytes") < getattr(
                self, prefix + "max_message_size"
            ):
                raise SettingsError(
                    f"{prefix}max_pending_bytes must be at least {prefix}max_message_size"
                )
        if not 1 <= self.rtmp_min_chunk_size <= self.rtmp_max_chunk_size:
            raise SettingsError("rtmp_min_chunk_size must be 1 to rtmp_max_chunk_size")
        if self.redis_url and urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("redis_url must start with redis://, rediss:// or unix://")
        if not self.redis_prefix or any(c.isspace() for c in self.redis_prefix):
            raise SettingsError("redis_prefix must be a word without spaces")
        for name in ("public_url", "upstream", "node_url"):
            if getattr(self, name) and urlsplit(getattr(self, name)).scheme not in _WEB:
                raise SettingsError(f"{name} must start with http:// or https://")
        if self.role not in ("all", "edge"):
            raise SettingsError(f"unknown role {self.role!r}: all or edge")
        if self.cluster_ttl <= self.cluster_heartbeat:
            raise SettingsError("cluster_ttl must be longer than cluster_heartbeat")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key go together: give both or neither")
        for name in ("connection_limit_exempt", "metrics_allow", "trusted_proxies"):
            try:
                parse_networks(getattr(self, name).split(","))
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
        if self.workers != "auto" and not (self.workers.isdigit() and int(self.workers) > 0):
            raise SettingsError("workers must be a number above 0 or auto")
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            raise SettingsError(f"unknown event loop {self.event_loop!r}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise SettingsError(f"unknown log level {self.log_level!r}")


#: settings that must be greater than 0, and those that must be at least 1
_POSITIVE = (
    "chat_rate", "chat_like_rate", "chat_frames_per_second", "chat_batch_interval",
    "session_days", "webhook_timeout", "jpeg_stream_max_fps", "rtmp_handshake_timeout",
    "rtmp_start_timeout", "rtmp_idle_timeout", "ingest_idle_timeout", "ingest_sniff_timeout",
    "http_header_timeout", "http_keepalive_timeout", "http_body_timeout",
    "socketio_connect_timeout", "socketio_poll_timeout", "cluster_heartbeat", "ladder_max_lag",
    "watch_token_minutes", "whip_connect_timeout", "whip_keyframe_interval",
)  # fmt: skip
_AT_LEAST_ONE = (
    "chat_burst", "chat_like_burst", "chat_frames_burst", "chat_message_max_chars",
    "login_attempts_per_minute", "login_failures_per_account_address",
    "login_delay_after_failures", "redis_queue_max", "webhook_concurrency",
    "transcode_queue_frames", "transcode_max_pixels", "jpeg_stream_max_bytes", "ladder_queue_bytes",
    "ingest_max_bitrate", "ingest_max_connections", "ingest_ws_max_message",
    "rtmp_read_step_bytes", "rtmp_preauth_max_message_size", "chat_chatters_max",
    "whip_max_offer_bytes", "whip_max_sessions",
)  # fmt: skip


# -- the services' slices of the settings ------------------------------------------------------

_T = typing.TypeVar("_T")


def exempt_networks(raw: str) -> tuple[IPNetwork, ...]:
    """A setting of comma-separated networks (``connection_limit_exempt``...) as networks."""
    return parse_networks(raw.split(","))


def setting(name: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """A field of a service's limits dataclass that mirrors the setting ``name``: its
    default is that setting's (declared once, in :class:`Settings`) and :func:`section`
    fills it from the settings (through ``convert`` if the service wants another unit)."""
    spec = Settings.__dataclass_fields__[name]
    default = (
        spec.default if spec.default_factory is dataclasses.MISSING else spec.default_factory()
    )
    if convert is not None:
        default = convert(default)
    return field(default=default, metadata={"setting": name, "convert": convert})


def section(cls: type[_T], settings: Settings) -> _T:
    """An instance of the limits dataclass ``cls``, each :func:`setting` field read from
    ``settings`` (fields that mirror no setting keep their defaults)."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = spec.metadata.get("setting")
        if name is None:
            continue
        value = getattr(settings, name)
        convert = spec.metadata.get("convert")
        values[spec.name] = convert(value) if convert is not None else value
    return cls(**values)
