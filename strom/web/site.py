"""What the web layer may use of a running node: the :class:`Site`.

The composition root (:mod:`strom.server`) builds every service once and hands the web
application this narrow, frozen view of them; handler modules import this, never the
root. A web test builds the same thing in process (``tests/helpers``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strom.channels import Directory, StreamKeys
from strom.channels.access import WatchAccess
from strom.channels.control import SiteControl
from strom.channels.events import ChannelEvents
from strom.chat import ChatService
from strom.cluster.elsewhere import Elsewhere
from strom.cluster.serve import PullServer
from strom.delivery.dash import DashDelivery
from strom.delivery.hls import HlsDelivery
from strom.delivery.ws import WsDelivery
from strom.ingest.push import PushIngest
from strom.live.registry import Registry
from strom.record.recorder import Recorder
from strom.settings import Settings
from strom.store import Store
from strom.web.connections import ConnectionGuard


@dataclass(frozen=True, eq=False)
class Site:
    settings: Settings
    #: signs sessions and guest names
    secret: bytes
    store: Store
    #: the live channels (the hub)
    registry: Registry
    #: what the directory and channel pages show
    directory: Directory
    #: stream key -> channel
    keys: StreamKeys
    chat: ChatService
    #: channel state, titles and viewers pushed to the pages (``/events/ws``)
    events: ChannelEvents
    #: orders to every node: stop a broadcast wherever it is ingested, sessions ended
    control: SiteControl
    recorder: Recorder
    #: HTTP PUT/POST, raw TCP and browser pushes
    push: PushIngest
    ws: WsDelivery
    hls: HlsDelivery
    #: LL-DASH manifests over the LL-HLS renditions' segments
    dash: DashDelivery
    #: the internal pull route (other nodes following this one's channels), and who
    #: else wants a channel here (this node's own pulls)
    pulls: PullServer
    #: the recordings and thumbnails other nodes of the site have
    elsewhere: Elsewhere
    #: the HTTP listener's deadlines and per-address caps
    http_guard: ConnectionGuard
    #: where publishers connect (the port the RTMP server got)
    rtmp_port: int
    #: the node's numbers, as ``/metrics`` shows them
    metrics: Callable[[], dict[str, Any]]
    #: where publishers connect over TLS (None: no RTMPS, the node has no certificate)
    rtmps_port: int | None = None
    #: the numbers of services assembled in their own modules (WHIP, the quality ladder),
    #: by their key in ``/api/v1/stats``; each registers itself
    reports: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    #: who may watch what: unlisted and private channels, media tokens
    #: (:mod:`strom.channels.access`), made from the store, the secret and the settings
    access: WatchAccess = field(init=False)

    def __post_init__(self) -> None:
        access = WatchAccess(
            self.store,
            self.secret,
            cache_seconds=self.settings.visibility_cache_seconds,
            token_seconds=self.settings.watch_token_minutes * 60,
        )
        object.__setattr__(self, "access", access)
