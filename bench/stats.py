"""From raw observations to the numbers the issue asks for: delivery latency, join time,
stalls, frame loss, per viewer and per group, against the publisher's send log.

Definitions (also in bench/RESULTS.md):

- *delivery latency* of a video frame: its arrival time at the viewer minus the time the
  publisher wrote it to its socket, for frames the publisher sent after the viewer
  started connecting (older frames, e.g. a GOP cache burst, measure nothing about
  delivery) and that arrived inside the measurement window;
- *join time*: connect start to the first keyframe fully received;
- *stall*: more than ``STALL_SECONDS`` without a video frame inside the window, once
  playing (the gap up to the window's end counts too);
- *frame loss*: video frames the publisher sent inside the window (from the viewer's
  first keyframe on, up to ``LOSS_GRACE`` before the end) that never reached it;
- latency quantiles come from the *probe* viewers, which read every frame as it comes;
  the others read in bulk once playing (SO_RCVLOWAT) so the generator can afford
  thousands, and their arrival times are late by up to that much data
  (``latency_all_ms`` includes them);
- a viewer *fell behind* when a frame arrived more than ``BEHIND_SECONDS`` late, it
  stalled, or it lost its connection.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.publisher import SendLog
from bench.records import ViewerRecord

STALL_SECONDS = 1.0
BEHIND_SECONDS = 1.0
LOSS_GRACE = 1.0


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear between closest ranks (numpy's default);
    NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * p / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo))


def summary(values: Sequence[float], scale: float = 1000.0, digits: int = 1) -> dict[str, Any]:
    """n, mean, p50, p95, p99, max, scaled (seconds -> ms by default)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def r(v: float) -> float:
        return round(v * scale, digits)

    return {
        "n": len(ordered),
        "mean": r(math.fsum(ordered) / len(ordered)),
        "p50": r(percentile(ordered, 50)),
        "p95": r(percentile(ordered, 95)),
        "p99": r(percentile(ordered, 99)),
        "max": r(ordered[-1]),
    }


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def latencies(rec: ViewerRecord, log: SendLog, window: Window) -> array[float]:
    out = array("d")
    time_of = log.time_of
    for ts, t in zip(rec.ts, rec.t, strict=True):
        if not window.start <= t < window.end:
            continue
        sent = time_of(ts)
        if sent is not None and sent >= rec.t_start:
            out.append(t - sent)
    return out


def join_time(rec: ViewerRecord) -> float | None:
    if rec.t_first_key <= 0 or rec.t_start <= 0:
        return None
    return rec.t_first_key - rec.t_start


def stalls(rec: ViewerRecord, window: Window, threshold: float = STALL_SECONDS) -> list[float]:
    """Lengths of the gaps over ``threshold`` between video arrivals inside the window."""
    if rec.t_first_key <= 0:
        return []
    last = max(window.start, rec.t_first_key)
    gaps: list[float] = []
    for t in rec.t:
        if t < last:
            continue
        if t >= window.end:
            break
        if t - last > threshold:
            gaps.append(t - last)
        last = t
    end = min(window.end, rec.t_end) if rec.t_end > window.start else window.end
    if end - last > threshold:
        gaps.append(end - last)
    return gaps


def frame_loss(
    rec: ViewerRecord, log: SendLog, window: Window, grace: float = LOSS_GRACE
) -> tuple[int, int]:
    """(expected, received) video frames: those sent in the window after the viewer's
    first keyframe, until ``grace`` seconds before its end."""
    if rec.t_first_key <= 0:
        return 0, 0
    start = max(window.start, rec.t_first_key)
    expected = [ts for ts in log.sent_between(start, window.end - grace) if ts > rec.first_key_ts]
    if not expected:
        return 0, 0
    got = {log.match(ts) for ts in rec.ts}
    return len(expected), sum(1 for ts in expected if ts in got)


@dataclass
class ViewerSummary:
    latency_max: float  # seconds; NaN without frames
    latency_p95: float
    frames: int
    stalls: int
    expected: int
    received: int
    behind: bool


def summarize_viewer(
    rec: ViewerRecord, log: SendLog, window: Window
) -> tuple[ViewerSummary, array[float]]:
    lat = latencies(rec, log, window)
    gaps = stalls(rec, window)
    expected, received = frame_loss(rec, log, window)
    worst = max(lat) if lat else math.nan
    lost_connection = bool(rec.error) and rec.t_end < window.end
    behind = (
        (bool(lat) and worst > BEHIND_SECONDS)
        or bool(gaps)
        or lost_connection
        or rec.t_first_key <= 0
    )
    return (
        ViewerSummary(worst, percentile(lat, 95), len(lat), len(gaps), expected, received, behind),
        lat,
    )


def analyze_group(
    records: Iterable[ViewerRecord], logs: dict[str, SendLog], window: Window
) -> dict[str, Any]:
    """The table row of one group of viewers (e.g. the healthy ones of a step)."""
    recs = list(records)
    all_lat = array("d")
    probe_lat = array("d")
    joins: list[float] = []
    per_viewer_max: list[float] = []
    errors: Counter[str] = Counter()
    behind = stalled = 0
    expected = received = 0
    total_bytes = 0
    for rec in recs:
        log = logs.get(rec.channel)
        if log is None:
            continue
        summary_v, lat = summarize_viewer(rec, log, window)
        all_lat.extend(lat)
        if rec.probe:
            probe_lat.extend(lat)
        if not math.isnan(summary_v.latency_max):
            per_viewer_max.append(summary_v.latency_max)
        behind += summary_v.behind
        stalled += summary_v.stalls > 0
        expected += summary_v.expected
        received += summary_v.received
        total_bytes += rec.bytes
        jt = join_time(rec)
        if jt is not None:
            joins.append(jt)
        if rec.error:
            errors[_error_kind(rec.error)] += 1
    playing = sum(1 for r in recs if r.t_first_key > 0)
    connected_seconds = sum(max(0.0, r.t_end - r.t_start) for r in recs) / max(len(recs), 1)
    connected_seconds *= len(recs)
    return {
        "viewers": len(recs),
        "playing": playing,
        "behind": behind,
        "stalled": stalled,
        "errors": dict(errors),
        "probes": sum(1 for r in recs if r.probe),
        "latency_ms": summary(probe_lat),
        "latency_all_ms": summary(all_lat),
        "viewer_max_latency_ms": summary(per_viewer_max),
        "join_ms": summary(joins),
        "frames_expected": expected,
        "frames_received": received,
        "frame_loss": round(1 - received / expected, 5) if expected else None,
        "mbit_per_viewer": round(total_bytes * 8 / 1e6 / connected_seconds, 3)
        if connected_seconds
        else 0,
    }


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0][:60]


def hls_part_delays(
    records: Iterable[ViewerRecord], logs: dict[str, SendLog], window: Window
) -> dict[str, Any]:
    """LL-HLS: for parts that arrived in the window and were announced by a blocking
    reload after the viewer joined, how long after the publisher sent the part's last
    frame the part was listed (playlist response) and delivered (part response); and
    ``listed_after_next_ms``: listed after the frame *following* the part was sent (a
    server can only close a part when the next frame arrives)."""
    listed: list[float] = []
    delivered: list[float] = []
    after_next: list[float] = []
    records = list(records)
    for rec in records:
        log = logs.get(rec.channel)
        if log is None:
            continue
        for part in rec.parts:
            if not window.start <= part.arrived < window.end or part.last_ts < 0:
                continue
            sent = log.time_of(part.last_ts)
            if sent is None or sent < rec.t_start:
                continue
            delivered.append(part.arrived - sent)
            if part.listed > rec.t_connected:
                listed.append(part.listed - sent)
                nxt = log.next_after(part.last_ts)
                if nxt is not None:
                    after_next.append(part.listed - nxt)
    return {
        "part_delivered_ms": summary(delivered),
        "part_listed_ms": summary(listed),
        "listed_after_next_ms": summary(after_next),
        "requests_per_viewer_s": request_rate(records),
    }


def request_rate(records: Iterable[ViewerRecord]) -> float | None:
    """HTTP requests per viewer and second (playlists or MPDs, and media) of LL-HLS or
    DASH viewers, over the time each was connected."""
    requests = seconds = 0.0
    for rec in records:
        if rec.t_end > rec.t_start:
            requests += rec.playlist_requests + rec.media_requests
            seconds += rec.t_end - rec.t_start
    return round(requests / seconds, 2) if seconds else None


@dataclass(frozen=True)
class SegmentSeen:
    """A plain-HLS segment: when its playlist entry was first seen and when it was
    downloaded, and the decode times (90 kHz) of its video frames."""

    uri: str
    listed: float
    arrived: float
    video_dts: tuple[int, ...]


def segment_delays(
    segments: Iterable[SegmentSeen], log: SendLog, dts_offset: int
) -> dict[str, Any]:
    """Seconds from the publisher sending a segment's last video frame to the segment
    being listed (and downloaded), and from each of its frames to the download
    (``frame_to_segment_ms``: the per-frame delivery latency of plain HLS).
    ``dts_offset`` (90 kHz) is what the server adds to the RTMP timestamps (nginx-rtmp:
    63000, a 700 ms PCR delay)."""
    listed: list[float] = []
    arrived: list[float] = []
    per_frame: list[float] = []
    for seg in segments:
        if not seg.video_dts:
            continue
        sent = []
        for dts in seg.video_dts:
            ms = (dts - dts_offset) // 90
            found = log.last_before(ms + 1)
            if found is not None and abs(found[0] - ms) <= 1:  # 90 kHz -> ms rounding
                sent.append(found[1])
        if not sent:
            continue
        listed.append(seg.listed - max(sent))
        arrived.append(seg.arrived - max(sent))
        per_frame += [seg.arrived - t for t in sent]
    return {
        "segment_listed_ms": summary(listed),
        "segment_arrived_ms": summary(arrived),
        "frame_to_segment_ms": summary(per_frame),
    }


def added_latency(
    records: Iterable[ViewerRecord], reference: Iterable[ViewerRecord], window: Window
) -> dict[str, Any]:
    """What a node behind others adds, frame by frame: each arrival of a video frame at
    a viewer of ``records`` (inside the window) minus the median arrival of the same
    frame at the viewers of ``reference`` (the ingest node's), one clock. Only probes."""
    arrivals: dict[int, list[float]] = {}
    for rec in reference:
        if not rec.probe:
            continue
        for ts, t in zip(rec.ts, rec.t, strict=True):
            arrivals.setdefault(ts, []).append(t)
    median = {ts: percentile(ts_t, 50) for ts, ts_t in arrivals.items()}
    added = array("d")
    for rec in records:
        if not rec.probe:
            continue
        for ts, t in zip(rec.ts, rec.t, strict=True):
            ref = median.get(ts)
            if ref is not None and window.start <= t < window.end:
                added.append(t - ref)
    return summary(added)


def histogram_quantiles(
    histogram: dict[str, Any], percents: Sequence[float]
) -> dict[str, float | None]:
    """Percentiles, in ms, of a server histogram in seconds (``{"count": n, "buckets":
    {"0.001": cumulative, ..., "+Inf": n}}``), interpolated within the bucket as
    Prometheus's ``histogram_quantile`` does (the top bucket: its lower bound)."""
    count = histogram.get("count", 0)
    bounds = [(float(k), n) for k, n in histogram.get("buckets", {}).items()]
    out: dict[str, float | None] = {}
    for pct in percents:
        rank = count * pct / 100
        value = None
        lower, below = 0.0, 0
        for bound, cumulative in bounds:
            if count and cumulative >= rank:
                if bound == float("inf"):
                    value = lower
                else:
                    share = (rank - below) / (cumulative - below) if cumulative > below else 1
                    value = lower + (bound - lower) * share
                break
            lower, below = bound, cumulative
        out[f"p{pct:g}"] = round(value * 1000, 2) if value is not None else None
    return out
