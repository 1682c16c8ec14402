"""``/metrics``: a node's numbers in the Prometheus text format.

The numbers are the ones ``/api/v1/stats`` shows as JSON (the composition root gathers
them from each service, :meth:`strom.server.StromServer.metrics`); :func:`families` maps
that one dict to metric families at scrape time, so the two can never disagree and
nothing is counted twice. Each node has its own :class:`Exposition` (a registry of its
own: several nodes run in one test process, and prometheus-client's default registry is
global), with prometheus-client's process collector (CPU, memory, file descriptors)
beside Strom's own.

Names follow Prometheus's conventions: ``strom_`` first, base units (``_bytes``,
``_seconds``), ``_total`` on counters; labels ``channel``, ``transport`` (``ws``,
``rtmp``, ``pull``, ``hls``) and ``kind``. docs/metrics.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

#: the dict ``/api/v1/stats`` answers
Stats = Mapping[str, Any]

#: the deliveries that keep :class:`~strom.delivery.backpressure.DeliveryCounts`, by the
#: key of their counts in the stats' ``delivery``
_DELIVERIES = ("ws", "rtmp", "pull")


class Exposition:
    """One node's ``/metrics``: its numbers, and its process's."""

    def __init__(self, stats: Callable[[], Stats]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StromCollector(stats))
        ProcessCollector(registry=self.registry)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body and its content type for a scraper that sent ``accept``: the
        Prometheus text format (version 0.0.4 unless a newer one is asked for), or
        OpenMetrics when asked for, as prometheus-client's own handler negotiates."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class StromCollector(Collector):
    """Reads the node's stats at every scrape and yields them as metric families."""

    def __init__(self, stats: Callable[[], Stats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        yield from families(self._stats())


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _histogram(name: str, doc: str, found: Mapping[str, Any]) -> HistogramMetricFamily:
    """A :meth:`~strom.observe.histogram.Histogram.as_dict` as a histogram family."""
    buckets = [(le, float(n)) for le, n in found["buckets"].items()]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=found["sum"])


def families(stats: Stats) -> Iterator[Metric]:
    """Every metric family of ``stats`` (the ``/api/v1/stats`` dict)."""
    yield from _process(stats)
    yield from _channels(stats["channels"])
    yield from _deliveries(stats["delivery"], stats["hls"]["bytes_sent"])
    yield from _hls(stats["hls"])
    yield from _connections(stats)
    yield from _ladder(stats.get("ladder"))
    yield from _whip(stats.get("whip"))


def _process(stats: Stats) -> Iterator[Metric]:
    info = _gauge(
        "strom_info",
        "The node: Strom's version, its role, its event loop, its worker number.",
        ("version", "role", "event_loop", "worker"),
    )
    worker = stats["worker"]
    info.add_metric(
        [stats["version"], stats["cluster"]["role"], stats["event_loop"],
         "" if worker is None else str(worker)],
        1,
    )  # fmt: skip
    yield info
    yield GaugeMetricFamily(
        "strom_event_loop_lag_seconds",
        "How late the event loop ran its last timer sample (a few samples a second).",
        value=round(stats["loop_lag_ms"] / 1000, 6),
    )
    yield GaugeMetricFamily(
        "strom_event_loop_lag_max_seconds",
        "The worst of the event loop's timer samples over the last ten seconds or so.",
        value=round(stats["loop_lag_max_ms"] / 1000, 6),
    )
    yield _histogram(
        "strom_event_loop_lag_samples_seconds",
        "Every event loop lag sample since the start.",
        stats["loop_lag"],
    )


def _channels(channels: list[Mapping[str, Any]]) -> Iterator[Metric]:
    live = _gauge("strom_channel_live", "1 while the channel is live here.", ("channel",))
    viewers = _gauge(
        "strom_viewers",
        "People watching the channel here, by transport (LL-HLS players hold no "
        "connection: see strom_hls_waiting_requests).",
        ("channel", "transport"),
    )
    bitrate = _gauge(
        "strom_ingest_bitrate_bits_per_second",
        "The publisher's stream as received at its ingest node, over the last few seconds.",
        ("channel",),
    )
    fps = _gauge(
        "strom_ingest_video_frames_per_second",
        "The publisher's video frames per second, over the last few seconds.",
        ("channel",),
    )
    bytes_in = _counter(
        "strom_ingest_bytes", "Media bytes received from the publisher this broadcast.",
        ("channel",),
    )  # fmt: skip
    frames_in = _counter(
        "strom_ingest_frames", "Frames received from the publisher this broadcast.",
        ("channel",),
    )  # fmt: skip
    chunks = _counter(
        "strom_chunks_fanned_out",
        "CMAF chunks handed to every subscriber of the channel (each muxed once).",
        ("channel",),
    )
    for c in channels:
        name = c["name"]
        live.add_metric([name], 1 if c["state"] == "live" else 0)
        for transport, n in sorted(c["viewers_by_transport"].items()):
            viewers.add_metric([name, transport], n)
        bitrate.add_metric([name], c["bitrate"])
        fps.add_metric([name], c["fps"])
        bytes_in.add_metric([name], c["bytes_in"])
        frames_in.add_metric([name], c["frames_in"])
        chunks.add_metric([name], c["chunks_out"])
    yield from (live, viewers, bitrate, fps, bytes_in, frames_in, chunks)


def _deliveries(delivery: Mapping[str, Mapping[str, int]], hls_bytes: int) -> Iterator[Metric]:
    sent = _counter(
        "strom_delivery_sent_bytes",
        "Bytes written to viewers, by transport (hls: parts, segments and init segments; "
        "pull: to other nodes).",
        ("transport",),
    )
    sent.add_metric(["hls"], hls_bytes)
    skips = _counter(
        "strom_viewer_skips",
        "Times a viewer fell behind (its socket buffer full) and skipped to a keyframe.",
        ("transport",),
    )
    skipped = _counter(
        "strom_viewer_skipped_chunks",
        "Chunks not sent to viewers while they skipped.",
        ("transport",),
    )
    drops = _counter(
        "strom_viewer_drops", "Viewers disconnected for being too slow.", ("transport",)
    )
    for transport in _DELIVERIES:
        counts = delivery[transport]
        sent.add_metric([transport], counts["bytes_sent"])
        skips.add_metric([transport], counts["skips"])
        skipped.add_metric([transport], counts["skipped_chunks"])
        drops.add_metric([transport], counts["drops"])
    yield from (sent, skips, skipped, drops)


def _hls(hls: Mapping[str, Any]) -> Iterator[Metric]:
    requests = _counter(
        "strom_hls_requests",
        "LL-HLS requests by kind: playlist, blocking_playlist (a reload with _HLS_msn), "
        "init, part, segment.",
        ("kind",),
    )
    for kind, n in hls["requests"].items():
        requests.add_metric([kind], n)
    yield requests
    yield _histogram(
        "strom_hls_blocking_wait_seconds",
        "How long each blocking LL-HLS request (playlist reload, preload-hinted part) "
        "waited for its part.",
        hls["blocked_seconds"],
    )
    yield _histogram(
        "strom_hls_answered_after_part_seconds",
        "From the chunk that completed a part to each request woken by it being answered.",
        hls["answered_after_part_seconds"],
    )
    waiting = _gauge(
        "strom_hls_waiting_requests",
        "LL-HLS requests blocked now waiting for a part (about one per low-latency player).",
        ("channel",),
    )
    for name, n in sorted(hls["waiting"].items()):
        waiting.add_metric([name], n)
    yield waiting


def _connections(stats: Stats) -> Iterator[Metric]:
    http = stats["http_connections"]
    yield GaugeMetricFamily(
        "strom_http_connections", "HTTP connections open (WebSocket viewers and chat "
        "included).", value=http["open"],
    )  # fmt: skip
    yield CounterMetricFamily(
        "strom_http_connections_refused",
        "HTTP connections refused (too many from one address, or in all).",
        value=http["refused"],
    )
    yield GaugeMetricFamily(
        "strom_rtmp_connections", "RTMP connections open (publishers and players).",
        value=stats["rtmp_connections"],
    )  # fmt: skip
    push = _gauge(
        "strom_push_publishers", "Publishers pushing over HTTP, TCP or a browser, by "
        "transport.", ("transport",),
    )  # fmt: skip
    for transport, n in sorted(stats["push_ingest"]["active_by_transport"].items()):
        push.add_metric([transport], n)
    yield push
    yield GaugeMetricFamily(
        "strom_socketio_clients", "Socket.IO clients connected (the original apps).",
        value=stats["socketio_clients"],
    )  # fmt: skip
    recordings = stats["recordings"]
    yield GaugeMetricFamily(
        "strom_recordings_active", "Recordings being written.",
        value=len(recordings["active"]),
    )  # fmt: skip
    yield GaugeMetricFamily(
        "strom_recordings_disk_bytes",
        "The recordings directory's size at the last retention pass.",
        value=recordings["disk_bytes"],
    )
    pulls = stats["pulls"]
    yield GaugeMetricFamily(
        "strom_pulls_active", "Channels this node follows from another node now.",
        value=pulls["active"] if pulls else 0,
    )  # fmt: skip
    yield CounterMetricFamily(
        "strom_pulls_started", "Pulls of a channel from another node started.",
        value=pulls["started_total"] if pulls else 0,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "strom_pull_feeds", "Other nodes following a channel of this node now.",
        value=stats["pull_feeds"],
    )  # fmt: skip


def _ladder(ladder: Mapping[str, Any] | None) -> Iterator[Metric]:
    """The quality ladder's (docs/ladder.md); zeros where the site has none."""
    ladder = ladder or {}
    yield GaugeMetricFamily(
        "strom_ladders_running", "Quality ladders encoding here now (one worker process "
        "each).", value=ladder.get("running", 0),
    )  # fmt: skip
    yield CounterMetricFamily(
        "strom_ladders_started", "Quality ladders started.", value=ladder.get("started", 0)
    )
    yield CounterMetricFamily(
        "strom_ladders_refused", "Channels that got no ladder: --ladder-max ran already.",
        value=ladder.get("refused", 0),
    )  # fmt: skip
    sent = _counter(
        "strom_ladder_source_frames", "Source video frames sent to the channel's ladder "
        "worker.", ("channel",),
    )  # fmt: skip
    skipped = _counter(
        "strom_ladder_skipped_frames", "Source video frames the channel's ladder skipped: "
        "its worker fell --ladder-max-lag behind.", ("channel",),
    )  # fmt: skip
    encoded = _counter(
        "strom_ladder_encoded_frames", "Video frames encoded for a rendition (channel: the "
        "source).", ("channel", "rendition"),
    )  # fmt: skip
    for name, one in sorted(ladder.get("ladders", {}).items()):
        sent.add_metric([name], one["frames_sent"])
        skipped.add_metric([name], one["dropped"])
        for rendition, n in sorted(one["encoded"].items()):
            encoded.add_metric([name, rendition], n)
    yield from (sent, skipped, encoded)


def _whip(whip: Mapping[str, Any] | None) -> Iterator[Metric]:
    """WHIP ingest's sessions (docs/whip.md)."""
    whip = whip or {}
    active = _gauge(
        "strom_whip_sessions", "WHIP sessions open, by state (connecting: answered, ICE "
        "and DTLS not done; publishing).", ("state",),
    )  # fmt: skip
    for state, n in sorted(whip.get("active_by_state", {}).items()):
        active.add_metric([state], n)
    yield active
    yield CounterMetricFamily(
        "strom_whip_sessions_started", "WHIP offers answered.", value=whip.get("started", 0)
    )
    refused = _counter(
        "strom_whip_refused", "WHIP offers refused, by the HTTP status sent (401 unknown "
        "key, 409 already live, 429/503 too many...).", ("status",),
    )  # fmt: skip
    for status, n in sorted(whip.get("refused_by_status", {}).items()):
        refused.add_metric([status], n)
    yield refused
