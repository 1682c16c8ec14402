"""The WebSocket player's latency policy (static/player-latency.js) in Chromium, fed
made-up arrival series: the target follows the viewer's jitter, the rate follows the
target. No server: Playwright serves the module file itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

from tests.e2e.stub_server import STATIC

pytestmark = pytest.mark.e2e

ORIGIN = "http://player.test"

# Arrivals of a 30 fps stream whose media time runs with the wall clock: `late(t)` says
# how late (s) the chunk due at t arrives; `gop` s of media arrive first, a frame every
# `burstPace` s (the join burst: the server sends the GOP so far at once, and each append
# takes its time).
SIMULATE = """
async ({ seconds, gop, burstPace, lateAt, lateBy, stallAt }) => {
  const { LiveLatency, LATENCY } = await import("/static/player-latency.js");
  const control = new LiveLatency();
  const frame = 1 / 30;
  const start = 100;
  const out = { settings: LATENCY, targets: [], liveAt: null };
  const burst = Math.ceil(gop / frame);
  for (let i = 0; i < burst; i += 1) {
    control.arrival(start - 0.005 - (burst - i) * burstPace, 50 + (i + 1) * frame);
  }
  const burstEnd = 50 + gop;
  for (let i = 1; i * frame <= seconds; i += 1) {
    const due = start + i * frame;
    const late = lateAt !== null && due - start >= lateAt && due - start < lateAt + lateBy
      ? lateAt + lateBy - (due - start) : 0;
    control.arrival(due + late, burstEnd + i * frame);
    if (control.live && out.liveAt === null) out.liveAt = due - start;
    if (stallAt !== null && Math.abs(due - start - stallAt) < frame / 2) control.stall(due);
    if (i % 15 === 0) out.targets.push([due - start, control.target(due), control.jitter()]);
  }
  const now = start + seconds;
  out.edge = control.liveEdge(now) - burstEnd;
  out.target = control.target(now);
  out.steer = {};
  for (const behind of [0, 0.01, 0.1, 0.3, 3]) {
    const at = control.liveEdge(now) - out.target - behind;
    out.steer[behind] = control.steer(now, at, out.target + behind);
  }
  out.steer.ahead = control.steer(now, control.liveEdge(now) - out.target + 0.06, 0.04);
  out.steer.dry = control.steer(now, control.liveEdge(now) - out.target - 0.3, 0.01);
  return out;
}
"""


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()

    async def serve(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path.startswith("/static/"):
            body = (STATIC / path.removeprefix("/static/")).read_text()
            await route.fulfill(body=body, content_type="text/javascript")
        else:
            await route.fulfill(
                body="<!doctype html><title>player</title>", content_type="text/html"
            )

    await context.route(f"{ORIGIN}/**", serve)
    new_page = await context.new_page()
    await new_page.goto(f"{ORIGIN}/")
    try:
        yield new_page
    finally:
        await context.close()


async def simulate(
    page: Page,
    seconds: float,
    *,
    gop: float = 1.5,
    burst_pace: float = 0.001,
    late_at: float | None = None,
    late_by: float = 0.0,
    stall_at: float | None = None,
) -> dict[str, Any]:
    arg = {
        "seconds": seconds,
        "gop": gop,
        "burstPace": burst_pace,
        "lateAt": late_at,
        "lateBy": late_by,
        "stallAt": stall_at,
    }
    result: dict[str, Any] = await page.evaluate(SIMULATE, arg)
    return result


def target_at(result: dict[str, Any], t: float) -> float:
    """The target at the first sample at or after ``t`` s."""
    return next(target for at, target, _ in result["targets"] if at >= t - 1e-9)


async def test_a_smooth_stream_after_the_join_burst_gets_the_floor(page: Page) -> None:
    result = await simulate(page, 10.0)
    floor = result["settings"]["floor"]
    # The burst (1.5 s of media in 45 ms) is not jitter: live within a few frames after it.
    assert result["liveAt"] < 0.2
    assert result["target"] == pytest.approx(floor, abs=0.005)
    assert max(jitter for _, _, jitter in result["targets"]) < 0.005
    # The live edge is where the media is now, not where the burst left it.
    assert result["edge"] == pytest.approx(10.0, abs=0.05)


async def test_a_burst_appended_slowly_is_not_jitter_either(page: Page) -> None:
    """A busy machine takes 20 ms per append of the burst (1.65 times real time): each
    pair of arrivals looks almost paced, the span does not."""
    result = await simulate(page, 10.0, gop=2.0, burst_pace=0.02)
    assert result["liveAt"] < 0.2
    assert result["target"] == pytest.approx(result["settings"]["floor"], abs=0.005)
    assert max(jitter for _, _, jitter in result["targets"]) < 0.005


async def test_jitter_grows_the_target_at_once_and_it_shrinks_slowly(page: Page) -> None:
    result = await simulate(page, 40.0, late_at=5.0, late_by=0.2)
    s = result["settings"]
    floor, gain = s["floor"], s["jitterGain"]
    assert target_at(result, 4.5) == pytest.approx(floor, abs=0.005)
    # 0.2 s without arrivals, then six frames at once: 0.2 s of jitter.
    grown = target_at(result, 5.5)
    assert grown == pytest.approx(floor + gain * 0.2, abs=0.04)
    # Out of the jitter window it shrinks by `decay` s per s, not at once...
    left_window = 5.2 + s["jitterWindow"]
    later = target_at(result, left_window + 2)
    assert grown - 3 * s["decay"] < later < grown
    # ...and is back to the floor once calm for long enough.
    assert result["target"] == pytest.approx(floor, abs=0.005)


async def test_a_stall_grows_the_target(page: Page) -> None:
    result = await simulate(page, 45.0, stall_at=4.0)
    s = result["settings"]
    bumped = s["floor"] + s["stallBump"]
    assert target_at(result, 4.0) == pytest.approx(bumped, abs=0.01)
    # It holds while a stall is recent, then shrinks slowly.
    assert target_at(result, 4.0 + s["calm"]) == pytest.approx(bumped, abs=0.01)
    assert target_at(result, 5.0 + s["calm"]) == pytest.approx(bumped - s["decay"], abs=0.01)
    assert result["target"] == pytest.approx(s["floor"], abs=0.005)


async def test_steering_catches_up_by_rate_and_seeks_only_far_behind(page: Page) -> None:
    result = await simulate(page, 10.0)
    s = result["settings"]
    steer = result["steer"]
    assert steer["0"] == {"rate": 1}
    assert steer["0.01"] == {"rate": 1}  # inside the dead band
    assert steer["0.1"] == {"rate": pytest.approx(1 + s["gain"] * 0.1)}
    assert steer["0.3"] == {"rate": s["maxRate"]}
    assert steer["3"]["seekTo"] == pytest.approx(
        result["edge"] + 50 + 1.5 - result["target"], abs=0.01
    )
    # Too close to the edge: a little slower, so the buffer fills up to the target.
    assert 1 > steer["ahead"]["rate"] >= s["minRate"]
    # Behind, but nothing buffered to catch up with (the media is late): no faster.
    assert steer["dry"] == {"rate": 1}
