"""The numbers: percentiles, latency against the publisher's send log, join time, stalls,
frame loss, what counts as behind; plain-HLS segment dating."""

from __future__ import annotations

import math

import pytest

from bench.publisher import SendLog
from bench.records import ViewerRecord
from bench.run import median_ratios, ratios, split_groups
from bench.stats import (
    SegmentSeen,
    Window,
    analyze_group,
    frame_loss,
    histogram_quantiles,
    join_time,
    latencies,
    percentile,
    segment_delays,
    stalls,
    summary,
)
from bench.viewers import ViewerGroup


def test_percentile_is_linear_between_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7], 99) == 7
    assert math.isnan(percentile([], 50))
    s = summary([0.010, 0.020, 0.030])
    assert s == {"n": 3, "mean": 20.0, "p50": 20.0, "p95": 29.0, "p99": 29.8, "max": 30.0}
    assert summary([]) == {"n": 0}


def make_log(frames: int = 300, start: float = 100.0, fps: int = 30, gop: int = 60) -> SendLog:
    log = SendLog()
    for i in range(frames):
        log.add(i * 1000 // fps, start + i / fps, keyframe=i % gop == 0)
    return log


def viewer(
    log: SendLog, t_start: float, delay: float, skip: set[int] | None = None
) -> ViewerRecord:
    """A viewer that joined at ``t_start`` and got every frame ``delay`` s after it was
    sent, from the keyframe before it joined (a GOP cache) on; ``skip``: lost frames."""
    rec = ViewerRecord("ws", 0, "bench", t_start=t_start)
    first_key = max(
        i for i, ts in enumerate(log.ts) if ts in set(log.keyframes) and log.t[i] <= t_start
    )
    for i in range(first_key, len(log)):
        if skip and i in skip:
            continue
        arrival = max(log.t[i] + delay, t_start + 0.001)  # the GOP burst arrives at once
        rec.video(log.ts[i], arrival, log.ts[i] in set(log.keyframes))
    rec.t_end = log.t[-1] + 1
    return rec


def test_latency_counts_live_frames_only() -> None:
    log = make_log()
    rec = viewer(log, t_start=102.5, delay=0.020)
    window = Window(104.0, 108.0)
    lat = latencies(rec, log, window)
    # frames that arrived in the window; the GOP-cache burst (sent before joining) is out
    assert len(lat) == 120
    assert all(x == pytest.approx(0.020) for x in lat)
    all_time = latencies(rec, log, Window(0, 1e9))
    assert len(all_time) == sum(1 for t in log.t if t >= 102.5)


def test_join_time_is_connect_to_first_keyframe() -> None:
    log = make_log()
    rec = viewer(log, t_start=102.5, delay=0.020)
    assert rec.first_key_ts == 2000  # the GOP started at 102.0 s
    assert join_time(rec) == pytest.approx(0.001)
    late = ViewerRecord("rtmp", 1, "bench", t_start=50.0)
    late.video(1033, 50.5, keyframe=False)  # a player cannot start on this one
    assert join_time(late) is None
    assert not late.ts
    late.video(2000, 51.25, keyframe=True)
    assert join_time(late) == pytest.approx(1.25)


def test_stalls_and_losses() -> None:
    log = make_log()
    lost = set(range(150, 190))  # 40 frames (1.33 s) never arrive
    rec = viewer(log, t_start=101.0, delay=0.010, skip=lost)
    window = Window(102.0, 109.0)
    gaps = stalls(rec, window)
    assert len(gaps) == 1
    assert gaps[0] == pytest.approx(41 / 30)
    expected, received = frame_loss(rec, log, window)
    # frames sent in [102, 108) (1 s of grace at the end)
    assert expected == 180
    assert expected - received == 40
    healthy = viewer(log, t_start=101.0, delay=0.010)
    assert stalls(healthy, window) == []
    assert frame_loss(healthy, log, window) == (180, 180)


def test_a_viewer_that_stops_receiving_stalls_to_the_window_end() -> None:
    log = make_log()
    rec = viewer(log, t_start=101.0, delay=0.010, skip=set(range(200, 300)))
    gaps = stalls(rec, Window(102.0, 109.0))
    assert len(gaps) == 1
    assert gaps[0] == pytest.approx(109.0 - (100 + 199 / 30 + 0.010))


def test_group_flags_viewers_behind() -> None:
    log = make_log()
    window = Window(103.0, 108.0)
    recs = [viewer(log, 101.0, 0.015), viewer(log, 101.0, 1.5), viewer(log, 101.0, 0.030)]
    never = ViewerRecord("ws", 3, "bench", t_start=101.0, error="connect: refused", t_end=101.1)
    row = analyze_group([*recs, never], {"bench": log}, window)
    assert row["viewers"] == 4
    assert row["playing"] == 3
    assert row["behind"] == 2  # 1.5 s late, and the one that never played
    assert row["errors"] == {"connect": 1}
    assert row["viewer_max_latency_ms"]["max"] == 1500.0
    assert row["frame_loss"] == 0.0


def test_plain_hls_segment_delays() -> None:
    log = make_log()
    offset = 63000
    # a segment of frames 60..119 (2 s), listed 50 ms after its last frame was sent
    dts = tuple(log.ts[i] * 90 + offset for i in range(60, 120))
    listed = log.t[119] + 0.050
    seg = SegmentSeen("bench-1.ts", listed, listed + 0.010, dts)
    out = segment_delays([seg], log, offset)
    assert out["segment_listed_ms"]["p50"] == 50.0
    assert out["segment_arrived_ms"]["p50"] == 60.0
    # per frame: from 2 s (first frame) down to 60 ms (last)
    assert out["frame_to_segment_ms"]["max"] == pytest.approx(59 / 30 * 1000 + 60, abs=0.1)
    assert out["frame_to_segment_ms"]["n"] == 60
    # with a wrong offset (17 ms off) nothing matches: no made-up numbers
    assert segment_delays([seg], log, offset + 17 * 90)["segment_listed_ms"] == {"n": 0}


def test_groups_split_over_worker_processes() -> None:
    g = ViewerGroup("ws", "127.0.0.1", 1, ("a", "b"), 1001, 10.0, 40.0, 2.0, 100, 5e4, probes=50)
    parts = split_groups([g], 3)
    flat = [p for proc in parts for p in proc]
    assert [p.count for p in flat] == [334, 334, 333]
    assert [p.first_index for p in flat] == [0, 334, 668]
    assert sum(p.slow_count for p in flat) == 100
    assert sum(p.probes for p in flat) == 50
    assert all(p.start_at == 10.0 and p.join_window == 2.0 for p in flat)
    assert ViewerGroup.from_dict(g.to_dict()) == g
    assert split_groups([g], 1)[0] == [g]


def test_ratios_against_nginx_and_their_median() -> None:
    def row(server: str, kind: str, us: float, p50: float) -> dict[str, object]:
        return {
            "server": server, "kind": kind, "us_per_viewer_s": us,
            "us_per_viewer_s_marginal": us - 10, "latency_ms": {"p50": p50, "p95": 2 * p50},
            "join_ms": {"p50": 10.0},
        }  # fmt: skip

    one = ratios([row("nginx", "rtmp", 400, 10), row("strom", "ws", 200, 5)])
    assert one["strom-ws/nginx-rtmp"]["cpu_per_viewer"] == 0.5
    assert one["strom-ws/nginx-rtmp"]["latency_p95"] == 0.5
    two = ratios([row("nginx", "rtmp", 400, 10), row("strom", "ws", 600, 5)])
    three = ratios([row("nginx", "rtmp", 400, 10), row("strom", "ws", 300, 5)])
    med = median_ratios([one, two, three])
    assert med["strom-ws/nginx-rtmp"]["cpu_per_viewer"] == 0.75
    assert ratios([row("strom", "ws", 1, 1)]) == {}


def test_histogram_quantiles_interpolate_within_the_bucket_as_prometheus_does() -> None:
    found = {"count": 100, "buckets": {"0.001": 50, "0.002": 90, "0.005": 100, "+Inf": 100}}
    q = histogram_quantiles(found, (50, 95, 99))
    assert q == {"p50": 1.0, "p95": 3.5, "p99": 4.7}
    assert histogram_quantiles({"count": 0, "buckets": {}}, (50,)) == {"p50": None}
