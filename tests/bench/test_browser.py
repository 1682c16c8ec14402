"""The browser scenario's arithmetic (bench/browser.py): from what the page recorded to
first frame, glass-to-glass and stalls, on made-up probes with known answers."""

from __future__ import annotations

from typing import Any

import pytest

from bench.browser import ClockMap, analyze, send_time, stalls
from bench.publisher import SendLog

#: the publisher started sending (FLV timestamp 0) at this monotonic time
T0 = 1000.0
#: monotonic = page ms / 1000 + this
CLOCK = ClockMap(offset=T0 - 5.0, error=0.0005)


def send_log(seconds: float = 20.0) -> SendLog:
    """A 30 fps publisher sending each frame exactly on time."""
    log = SendLog()
    for i in range(int(seconds * 30)):
        ts = i * 1000 // 30
        log.add(ts, T0 + ts / 1000, keyframe=i % 60 == 0)
    return log


def probe(
    g2g: float, timestamp_offset: float, stall: tuple[float, float] | None = None
) -> dict[str, Any]:
    """A page that plays ``g2g`` s behind the publisher, on a timeline shifted by
    ``timestamp_offset`` (as hls.js shifts it), frozen during ``stall`` (page ms)."""
    samples = []
    frozen_at = None
    for t in range(6000, 16000, 100):
        mono = CLOCK.mono(t)
        media = mono - g2g - T0
        if stall and stall[0] <= t <= stall[1]:
            frozen_at = frozen_at if frozen_at is not None else media
            media = frozen_at
        samples.append([t, media + timestamp_offset, 1.0, False])
    events = [[5900.0, "playing", 0.0]]
    if stall:
        events += [[stall[0], "waiting", 0.0], [stall[1], "playing", 0.0]]
    return {
        "asked": 5500.0,
        "firstFrame": 5800.0,
        "samples": samples,
        "events": events,
        "offsets": [[5600.0, 0.0], [5700.0, timestamp_offset]],
        "stats": [],
        "marks": {"ws open": 5510.0},
    }


def test_send_time_runs_on_between_frames() -> None:
    log = send_log()
    assert send_time(log, 0.5) == pytest.approx(T0 + 0.5)
    assert send_time(log, 0.51) == pytest.approx(T0 + 0.51)  # 10 ms into frame 15
    assert send_time(log, -0.1) is None


@pytest.mark.parametrize("offset", [0.0, -3.0])
def test_glass_to_glass_is_exact_on_either_timeline(offset: float) -> None:
    result = analyze(probe(0.25, offset), send_log(), CLOCK, warmup=1.0, seconds=8.0)
    assert result["first_frame_ms"] == 5800
    assert result["first_frame_after_ask_ms"] == 300
    assert result["playing_after_ask_ms"] == 400
    assert result["g2g_ms"]["p50"] == pytest.approx(250.0, abs=0.1)
    assert result["g2g_ms"]["max"] == pytest.approx(250.0, abs=0.1)
    assert result["samples"] == 81
    assert result["stalls"] == 0
    assert result["frozen_s"] == 0


def test_a_stall_is_counted_and_costs_latency() -> None:
    result = analyze(probe(0.2, 0.0, stall=(9000.0, 9400.0)), send_log(), CLOCK, 1.0, 8.0)
    assert result["stalls"] == 1
    assert result["stalled_at"] == [(3.1, 0.4)]  # s after playback started, s long
    assert result["frozen_s"] == pytest.approx(0.4)
    assert result["g2g_ms"]["max"] == pytest.approx(600.0, abs=0.1)


def test_waiting_before_playback_is_no_stall() -> None:
    events = [[10.0, "waiting", 0.0], [20.0, "playing", 0.0], [50.0, "waiting", 0.0]]
    assert stalls(events, since=20.0, end=80.0) == [(0.03, 0.03)]
