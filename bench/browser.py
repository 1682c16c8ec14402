"""The watch page's player in headless Chromium, measured (issue 14): first frame and
glass-to-glass latency per transport (``python -m bench browser``).

Strom runs as a subprocess with the bench's real-time RTMP publisher (:mod:`bench.run`'s
session); for each transport of ``--transports`` (default ``ws,hls,dash``) a fresh
browser context opens ``/live/bench?transport=NAME``. A transport the page does not know
(it plays another one: ``#player[data-transport]`` differs) is skipped and said so.

What the page records (:data:`PROBE`, an init script that runs before the page's own):

- *asked*: when the player first asks for media (a WebSocket, fetch or XHR to
  ``/live/...``), on ``performance.now()``'s clock;
- *first frame*: the first ``requestVideoFrameCallback`` (a frame was presented), from
  the navigation start (``performance.now() == 0``) and from *asked*;
- every 100 ms: ``performance.now()``, ``video.currentTime``, ``playbackRate``; every
  second the player's own ``stats()``; ``waiting`` and ``playing`` events;
- each ``SourceBuffer.timestampOffset`` an append ran with.

Glass-to-glass of a sample, exactly: the stream's timeline is the publisher's: its FLV
timestamps start at 0 and Strom's muxer writes them into ``tfdt`` unchanged (ms →
90 kHz), so media time *m* (s) is FLV timestamp ``1000 m``. MSE places a sample at
``tfdt / timescale + timestampOffset``: the WebSocket player appends with offset 0,
hls.js and dash.js shift the timeline with ``timestampOffset``; so the media time at the
playhead is ``currentTime - timestampOffset``. The publisher logged the monotonic time
it wrote each video frame; it sends in real time, so media time ``m`` between frames
``ts_i <= 1000 m < ts_i+1`` was due ``(1000 m - ts_i)`` ms after frame ``i``'s send
time. The page's clock is put on the publisher's (``time.monotonic()``) by the round
trip of a ``performance.now()`` evaluation (the shortest of several, taken before and
after the run: its half is the error, ~1 ms). Glass-to-glass = sample time - send time
of the media at the playhead: the server, the network, the player's buffer; not the
compositor's and the screen's last frames.

A *stall* is a ``waiting`` event after the first frame, lasting until the next
``playing``; *frozen* adds up the 100 ms samples in which a playing (not paused)
``currentTime`` did not move (catches stalls without an event).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench.golive import CHROMIUM, CHROMIUM_ARGS
from bench.publisher import SendLog
from bench.run import Options, Session, session
from bench.stats import summary

CHANNEL = "bench"
#: the page's sampling period (ms)
SAMPLE_MS = 100
#: a sample whose currentTime moved less than this (s) while playing counts as frozen
FROZEN_EPSILON = 0.001
#: seconds to wait for the first frame before giving up on a transport
FIRST_FRAME_TIMEOUT = 20.0

PROBE = """
(() => {
  const probe = { asked: null, firstFrame: null, samples: [], events: [], offsets: [],
                  stats: [], marks: {} };
  window.stromBench = probe;
  const now = () => performance.now();
  const once = (name) => {
    probe.marks[name] ??= now();
  };
  const mark = (url) => {
    if (probe.asked === null && String(url).includes("/live/")) probe.asked = now();
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      mark(url);
      super(url, protocols);
      this.addEventListener("open", () => once("ws open"));
      this.addEventListener("message", () => once("ws message"));
    }
  };
  const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) {
    once("source open");
    return addSourceBuffer.call(this, mime);
  };
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    mark(url);
    return open.call(this, method, url, ...rest);
  };
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    mark(input instanceof Request ? input.url : input);
    return nativeFetch.call(this, input, init);
  };
  const append = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (data) {
    once(probe.marks["first append"] === undefined ? "first append" : "second append");
    const last = probe.offsets[probe.offsets.length - 1];
    const offset = this.timestampOffset;
    if (!last || last[1] !== offset) probe.offsets.push([now(), offset]);
    return append.call(this, data);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("#player video");
    if (!video) return;
    const onFrame = (t) => {
      if (probe.firstFrame === null) probe.firstFrame = t;
    };
    video.requestVideoFrameCallback(onFrame);
    video.addEventListener("loadstart", () => {
      if (probe.firstFrame === null) video.requestVideoFrameCallback(onFrame);
    });
    for (const type of ["waiting", "playing", "seeking", "seeked"]) {
      video.addEventListener(type, () => {
        const ranges = video.buffered;
        const end = ranges.length ? ranges.end(ranges.length - 1) : video.currentTime;
        probe.events.push([now(), type, video.currentTime, end - video.currentTime]);
      });
    }
    setInterval(() => {
      probe.samples.push([now(), video.currentTime, video.playbackRate, video.paused]);
    }, %(sample_ms)d);
    setInterval(() => {
      const stats = window.stromPlayer?.stats();
      if (stats) probe.stats.push([now(), stats]);
    }, 1000);
  });
})();
"""


@dataclass(frozen=True)
class ClockMap:
    """``time.monotonic()`` = ``performance.now()`` / 1000 + ``offset``, to ± ``error`` s."""

    offset: float
    error: float

    def mono(self, page_ms: float) -> float:
        return page_ms / 1000 + self.offset


async def clock_map(page: Page, tries: int = 7) -> ClockMap:
    """The page's clock on the monotonic clock, from the quickest of ``tries`` round trips."""
    best: tuple[float, float] | None = None
    for _ in range(tries):
        t1 = time.monotonic()
        page_ms: float = await page.evaluate("() => performance.now()")
        t2 = time.monotonic()
        if best is None or t2 - t1 < best[1]:
            best = ((t1 + t2) / 2 - page_ms / 1000, t2 - t1)
    assert best is not None
    return ClockMap(best[0], best[1] / 2)


def send_time(log: SendLog, media_s: float) -> float | None:
    """When the publisher sent media time ``media_s`` (s): its frame's send time plus the
    time into that frame (the publisher sends in real time)."""
    ms = media_s * 1000
    found = log.last_before(int(ms))
    if found is None:
        return None
    ts, t = found
    return t + (ms - ts) / 1000


def offset_at(offsets: list[list[float]], t: float) -> float:
    """The ``timestampOffset`` of the last append at or before page time ``t``."""
    value = offsets[0][1] if offsets else 0.0
    for at, offset in offsets:
        if at > t:
            break
        value = offset
    return value


def stalls(events: list[list[Any]], since: float, end: float) -> list[tuple[float, float]]:
    """Each ``waiting`` after ``since`` (page ms): when (s after it) and how long (s, until
    the next ``playing``, or ``end``)."""
    out: list[tuple[float, float]] = []
    waiting = None
    for t, kind, *_ in events:
        if t < since:
            continue
        if kind == "waiting" and waiting is None:
            waiting = t
        elif kind == "playing" and waiting is not None:
            out.append((round((waiting - since) / 1000, 2), round((t - waiting) / 1000, 2)))
            waiting = None
    if waiting is not None:
        out.append((round((waiting - since) / 1000, 2), round((end - waiting) / 1000, 2)))
    return out


def analyze(
    probe: dict[str, Any], log: SendLog, clock: ClockMap, warmup: float, seconds: float
) -> dict[str, Any]:
    """First frame, glass-to-glass over ``[first frame + warmup, + seconds]``, stalls."""
    first = probe["firstFrame"]
    asked = probe["asked"]
    samples = probe["samples"]
    start_ms, end_ms = first + warmup * 1000, first + (warmup + seconds) * 1000
    # Playback starts at the first 'playing' from the first frame on (the player may show
    # the first keyframe before it has the join burst and plays from the live point).
    playing = max(first, next((t for t, k, *_ in probe["events"] if k == "playing"), first))
    g2g: list[float] = []
    rates: list[float] = []
    frozen = 0.0
    prev: list[Any] | None = None
    for sample in samples:
        t, current, rate, paused = sample
        if (
            t >= playing
            and prev is not None
            and not paused
            and abs(current - prev[1]) < FROZEN_EPSILON
        ):
            frozen += (t - prev[0]) / 1000
        prev = sample
        if not start_ms <= t <= end_ms:
            continue
        sent = send_time(log, current - offset_at(probe["offsets"], t))
        if sent is not None:
            g2g.append(clock.mono(t) - sent)
        rates.append(rate)
    stalled = stalls(probe["events"], playing, samples[-1][0] if samples else first)
    stats = [s for t, s in probe["stats"] if start_ms <= t <= end_ms]
    targets = [s["targetLatency"] for s in stats if s.get("targetLatency") is not None]
    jitters = [s["jitter"] for s in stats if s.get("jitter") is not None]
    latencies = [s["latency"] for s in stats if s.get("latency") is not None]
    offsets = sorted({o for _, o in probe["offsets"]})
    return {
        "first_frame_ms": round(first),
        "first_frame_after_ask_ms": round(first - asked) if asked is not None else None,
        "playing_after_ask_ms": round(playing - asked) if asked is not None else None,
        "g2g_ms": summary(g2g),
        "stalls": len(stalled),
        "stalled_s": round(sum(d for _, d in stalled), 2),
        "stalled_at": stalled,
        "frozen_s": round(frozen, 2),
        "rate_min": min(rates) if rates else None,
        "rate_max": max(rates) if rates else None,
        "target_ms": summary(targets) if targets else None,
        "jitter_ms": summary(jitters) if jitters else None,
        "player_latency_ms": summary(latencies) if latencies else None,
        "timestamp_offsets": offsets,
        "marks_ms": {k: round(v - asked) for k, v in probe["marks"].items()} if asked else {},
        "events": [
            (round(e[0] - first), e[1], *(round(x, 3) for x in e[2:])) for e in probe["events"]
        ][:40],
        "clock_error_ms": round(clock.error * 1000, 2),
        "samples": len(g2g),
    }


async def measure(
    browser: Browser, sess: Session, transport: str, warmup: float, seconds: float
) -> dict[str, Any]:
    """One transport: open the watch page, wait for the first frame, sample, analyze."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        await context.add_init_script(PROBE % {"sample_ms": SAMPLE_MS})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        base = f"http://{sess.opts.host}:{sess.http_port}"
        await page.goto(f"{base}/live/{CHANNEL}?transport={transport}")
        await page.wait_for_function("() => window.stromPlayer?.root.dataset.transport")
        plays = await page.evaluate("() => window.stromPlayer.root.dataset.transport")
        if plays != transport:
            return {"transport": transport, "skipped": f"the page plays {plays!r} instead"}
        await page.wait_for_function(
            "() => window.stromBench.firstFrame !== null", timeout=FIRST_FRAME_TIMEOUT * 1000
        )
        before = await clock_map(page)
        load1 = os.getloadavg()[0]
        t1 = time.monotonic()
        await asyncio.sleep(warmup + seconds + SAMPLE_MS / 1000)
        t2 = time.monotonic()
        after = await clock_map(page)
        probe: dict[str, Any] = await page.evaluate("() => window.stromBench")
        clock = before if before.error <= after.error else after
        result = analyze(probe, sess.logs[CHANNEL], clock, warmup, seconds)
        drift = abs(before.offset - after.offset) * 1000
        return {
            "transport": transport,
            "player": await page.evaluate("() => window.stromPlayer.transport"),
            **result,
            "clock_drift_ms": round(drift, 2),
            "load_avg": [round(load1, 2), round(os.getloadavg()[0], 2)],
            "server_cores": _round(sess.sampler.cores("server", t1, t2)),
            "system_cores": _round(sess.sampler.system_cores(t1, t2)),
            "page_errors": errors,
        }
    finally:
        await context.close()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(s: dict[str, Any] | None, key: str) -> str:
    return "-" if not s or s.get(key) is None else f"{s[key]:.0f}"


def lines(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| transport | first frame ms after ask (after navigation) | playing ms after ask "
        "| g2g p50 / p95 / max ms | stalls (s) | frozen s | rate | target (jitter) p50 ms "
        "| load avg | cores busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['transport']} | skipped: {r['skipped']} ||||||||")
            continue
        g = r["g2g_ms"]
        rate = f"{r['rate_min']:.2f}-{r['rate_max']:.2f}" if r["rate_min"] is not None else "-"
        out.append(
            f"| {r['player']} | {r['first_frame_after_ask_ms']} ({r['first_frame_ms']}) "
            f"| {r['playing_after_ask_ms']} "
            f"| {_ms(g, 'p50')} / {_ms(g, 'p95')} / {_ms(g, 'max')} "
            f"| {r['stalls']} ({r['stalled_s']}) | {r['frozen_s']} | {rate} "
            f"| {_ms(r['target_ms'], 'p50')} ({_ms(r['jitter_ms'], 'p50')}) "
            f"| {r['load_avg'][0]}-{r['load_avg'][1]} | {_v(r['system_cores'])} |"
        )
    return out


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


async def scenario_browser(opts: Options) -> dict[str, Any]:
    """Each of ``opts.browser_transports`` in turn, one publisher, one browser."""
    rows: list[dict[str, Any]] = []
    async with session("strom", opts) as sess:
        await sess.publish({CHANNEL: sess.server.keys[CHANNEL]})  # type: ignore[attr-defined]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                for transport in opts.browser_transports:
                    row = await measure(browser, sess, transport, opts.warmup, opts.step_seconds)
                    rows.append(row)
                    print(lines([row])[-1], flush=True)
            finally:
                await browser.close()
    return {"browser": rows, "lines": lines(rows), "notes": sess.notes}
