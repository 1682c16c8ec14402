"""The ``soak`` scenario (issue 11): minutes of churn, then the question whether the
server gives everything back.

The load (:mod:`bench.churn`), for ``--minutes``: ``--soak-publishers`` real-time RTMP
publishers dropping (no unpublish: the reconnect grace) and coming back, or ending
cleanly; ``--soak-viewers`` WebSocket, RTMP and LL-HLS viewers and ``--soak-chat`` chat
sockets (and Socket.IO clients) joining and leaving; ``--garbage-rate`` hostile clients a
second (:mod:`bench.garbage`).

Phases: a cold look at the idle server; a warm-up round of the same load (a fifth of the
run, 20-60 s) so that what a server allocates once (imports, pools, caches) is in the
baseline; the settle; the **baseline** (server RSS and open file descriptors, from
/proc); ``--minutes`` of load; the settle again, until RSS and descriptors are back
within tolerance of the baseline and steady, or ``--settle`` seconds have passed.

It passes when descriptors are back within :attr:`SoakPlan.fd_tolerance` (the server's
socket, file and pipe count), RSS within :attr:`SoakPlan.rss_tolerance_mb` or
:attr:`SoakPlan.rss_tolerance_share` of the baseline (CPython's allocator keeps some
arenas), its numbers (``/api/v1/stats``) show no connection left, and the server's log has
no traceback and no ERROR line. Server CPU, loop lag (its numbers), RSS growth during the
load, the generator's own CPU and what every kind of client saw are reported.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import shutil
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.churn import Mix, SoakLoad, Tally
from bench.run import Options, Session, _r, session
from bench.sampler import fd_kinds
from bench.stats import percentile
from bench.viewers import LoopLag

JUNK_CHANNEL = "soakjunk"
#: log lines that fail the soak
_FAILING = re.compile(r"Traceback|\b(ERROR|CRITICAL)\b")
_WARNING = re.compile(r"\bWARNING\b")


@dataclass(frozen=True)
class SoakPlan:
    minutes: float = 2.0
    #: warm-up seconds (0: a fifth of the run, 20-60 s)
    warmup: float = 0.0
    publishers: int = 3
    viewers: int = 20
    chat_sockets: int = 12
    garbage_rate: float = 3.0
    #: longest settle after the load (seconds); it ends early once back to the baseline
    settle_max: float = 90.0
    #: samples (one a second) RSS and descriptors must hold still to count as settled
    stable_samples: int = 6
    reconnect_grace: float = 4.0
    fd_tolerance: int = 2
    rss_tolerance_mb: float = 16.0
    rss_tolerance_share: float = 0.10
    seed: int = 1

    @classmethod
    def from_options(cls, opts: Options) -> SoakPlan:
        return cls(
            minutes=opts.soak_minutes,
            warmup=opts.soak_warmup,
            publishers=opts.soak_publishers,
            viewers=opts.soak_viewers,
            chat_sockets=opts.soak_chat,
            garbage_rate=opts.garbage_rate,
            settle_max=opts.soak_settle,
            fd_tolerance=opts.soak_fd_tolerance,
            rss_tolerance_mb=opts.soak_rss_tolerance_mb,
            seed=opts.soak_seed,
        )

    @property
    def warmup_seconds(self) -> float:
        return self.warmup or min(60.0, max(20.0, self.minutes * 60 / 5))

    @property
    def mix(self) -> Mix:
        return Mix(
            self.publishers,
            self.viewers,
            self.chat_sockets,
            self.garbage_rate,
            self.reconnect_grace,
        )

    def rss_allowance_kb(self, baseline_kb: int) -> int:
        return round(max(self.rss_tolerance_mb * 1024, baseline_kb * self.rss_tolerance_share))


# -- the numbers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """The server at rest: median RSS and descriptors of a few samples; of those
    descriptors, the ones the database's connection pool holds (SQLite files: the pool
    keeps up to its size of idle connections, a working set, not a leak) and the pool's
    connections still checked out (with nothing running: a leak)."""

    rss_kb: int
    fds: int
    t: float
    db_fds: int = 0
    db_checked_out: int = 0

    @property
    def other_fds(self) -> int:
        return self.fds - self.db_fds

    def json(self) -> dict[str, Any]:
        return {
            "rss_mb": _r(self.rss_kb / 1024, 1),
            "fds": self.fds,
            "db_fds": self.db_fds,
            "db_checked_out": self.db_checked_out,
        }


def level(sess: Session, last: int = 5) -> Level:
    samples = [s for s in sess.sampler.samples if "server" in s.fds][-last:]
    if not samples:
        raise RuntimeError("no samples of the server's descriptors")
    database = str(sess.workdir / "data" / "strom.db")
    kinds = fd_kinds(sess.server.pid)
    pool = samples[-1].metrics.get("database") or {}
    return Level(
        round(statistics.median(s.rss_kb["server"] for s in samples)),
        round(statistics.median(s.fds["server"] for s in samples)),
        samples[-1].t,
        db_fds=sum(n for kind, n in kinds.items() if kind.startswith(database)),
        db_checked_out=int(pool.get("checked_out") or 0),
    )


def _steady(sess: Session, count: int) -> bool:
    """RSS and descriptors held (near) still over the last ``count`` samples."""
    samples = [s for s in sess.sampler.samples if "server" in s.fds][-count:]
    if len(samples) < count:
        return False
    fds = [s.fds["server"] for s in samples]
    rss = [s.rss_kb["server"] for s in samples]
    return max(fds) - min(fds) <= 1 and max(rss) - min(rss) <= 2048


async def settle(sess: Session, plan: SoakPlan, back_to: Level | None) -> tuple[Level, float, bool]:
    """Wait for the server to come to rest (and, given ``back_to``, back within the
    tolerance of it): the level then, the seconds it took, and whether it got there."""
    t0 = time.monotonic()
    await asyncio.sleep(plan.stable_samples + 1)
    while True:
        now = level(sess)
        home = back_to is None or within(now, back_to, plan)
        if home and _steady(sess, plan.stable_samples):
            return now, time.monotonic() - t0, True
        if time.monotonic() - t0 >= plan.settle_max:
            return now, time.monotonic() - t0, False
        await asyncio.sleep(1.0)


def within(now: Level, baseline: Level, plan: SoakPlan) -> bool:
    """Back to the baseline: the descriptors other than the database pool's within
    ``fd_tolerance``, no database connection checked out, RSS within the allowance."""
    return (
        now.other_fds <= baseline.other_fds + plan.fd_tolerance
        and now.db_checked_out == 0
        and now.rss_kb <= baseline.rss_kb + plan.rss_allowance_kb(baseline.rss_kb)
    )


def rss_slope_mb_per_min(sess: Session, t1: float, t2: float) -> float | None:
    """Least-squares slope of the server's RSS during the load (MB per minute)."""
    points = [(s.t, s.rss_kb["server"] / 1024) for s in sess.sampler.window(t1, t2)]
    if len(points) < 10:
        return None
    mean_t = statistics.fmean(p[0] for p in points)
    mean_v = statistics.fmean(p[1] for p in points)
    var = sum((p[0] - mean_t) ** 2 for p in points)
    if var == 0:
        return None
    cov = sum((p[0] - mean_t) * (p[1] - mean_v) for p in points)
    return cov / var * 60


def server_log(text: str) -> dict[str, Any]:
    """Tracebacks and ERROR lines (each a failure), WARNING lines by kind."""
    lines = text.splitlines()
    failing = [line for line in lines if _FAILING.search(line)]
    tracebacks = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            tracebacks.append(lines[j] if j < len(lines) else "?")
    warnings: Counter[str] = Counter()
    for line in lines:
        if _WARNING.search(line):
            # "date time WARNING logger: message": the message with its numbers taken out
            text_part = line.split(" WARNING ", 1)[-1]
            warnings[re.sub(r"\d+", "#", text_part)[:110]] += 1
    return {
        "tracebacks": len(tracebacks),
        "traceback_exceptions": dict(Counter(tracebacks).most_common(10)),
        "error_lines": len(failing) - sum(1 for x in failing if x.startswith("Traceback")),
        "first_errors": failing[:10],
        "warnings": sum(warnings.values()),
        "warning_kinds": dict(warnings.most_common(15)),
    }


def _metric_values(sess: Session, key: str, t1: float, t2: float) -> list[float]:
    return [float(s.metrics[key]) for s in sess.sampler.window(t1, t2) if key in s.metrics]


def _open_connections(metrics: dict[str, Any]) -> dict[str, int]:
    return {
        "rtmp_connections": int(metrics.get("rtmp_connections") or 0),
        "ws_viewers": int(metrics.get("ws_viewers") or 0),
        "socketio_clients": int(metrics.get("socketio_clients") or 0),
        "live_channels": sum(
            1 for c in metrics.get("channels", []) if c.get("state") not in ("offline", None)
        ),
    }


async def scenario_soak(opts: Options) -> dict[str, Any]:
    plan = SoakPlan.from_options(opts)
    rng = random.Random(plan.seed)
    keys = {f"soak{i}": f"soak-{i}-{secrets.token_hex(8)}" for i in range(plan.publishers)}
    junk_key = f"junk-{secrets.token_hex(8)}"
    # a short reconnect grace, so that it expires within the run too (loopback is exempt
    # from per-address limits: bench.servers.StromProcess)
    env = {"STROM_RECONNECT_GRACE": f"{plan.reconnect_grace:g}"}
    failures: list[str] = []
    async with session(
        "strom", opts, channels={**keys, JUNK_CHANNEL: junk_key}, server_env=env, small_media=True
    ) as sess:
        sess.junk_key = junk_key
        sess.sampler.fd_targets = {"server"}
        load = SoakLoad(sess, plan.mix, keys, sess.media, rng)
        gen_lag = LoopLag()
        gen_lag.start()
        await asyncio.sleep(4)
        cold = level(sess, 3)
        print(f"  soak: cold {cold.json()}; warming up {plan.warmup_seconds:.0f} s", flush=True)
        await load.run(plan.warmup_seconds)
        baseline, settled_s, _ = await settle(sess, plan, None)
        fds_at_baseline = fd_kinds(sess.server.pid)
        print(f"  soak: baseline {baseline.json()} after {settled_s:.0f} s", flush=True)
        load.tally = Tally()  # count the measured run only
        lag_from = len(gen_lag.samples)
        t1 = time.monotonic()
        await load.run(plan.minutes * 60)
        t2 = time.monotonic()
        gen_lag_samples = list(gen_lag.samples[lag_from:])
        peak_rss = max((s.rss_kb["server"] for s in sess.sampler.window(t1, t2)), default=0)
        peak_fds = max((s.fds.get("server", 0) for s in sess.sampler.window(t1, t2)), default=0)
        print(f"  soak: load done (peak RSS {peak_rss / 1024:.0f} MB, {peak_fds} fds)", flush=True)
        end, back_s, back = await settle(sess, plan, baseline)
        fds_at_end = fd_kinds(sess.server.pid)
        gen_lag.stop()
        last = sess.sampler.samples[-1].metrics if sess.sampler.samples else {}
        alive = sess.server.alive()
        server_cores = sess.sampler.cores("server", t1, t2)
        gen_cores = sess.sampler.cores("self:gen-main", t1, t2)
        lag_max = _metric_values(sess, "loop_lag_max_ms", t1, t2)
        lag_now = _metric_values(sess, "loop_lag_ms", t1, t2)
        sess.files.append(sess.server.log_path)
    log_text = sess.server.log_path.read_text(errors="replace")
    shutil.rmtree(sess.workdir / "data", ignore_errors=True)  # the recordings: gigabytes
    logged = server_log(log_text)
    left_open = _open_connections(last)
    if not alive:
        failures.append("the server died")
    if not back:
        failures.append(
            f"not back to the baseline after {plan.settle_max:.0f} s: fds {end.other_fds} "
            f"besides the database's (baseline {baseline.other_fds}, +{plan.fd_tolerance}), "
            f"{end.db_checked_out} database connections checked out, RSS "
            f"{end.rss_kb / 1024:.1f} MB (baseline {baseline.rss_kb / 1024:.1f} MB, "
            f"+{plan.rss_allowance_kb(baseline.rss_kb) / 1024:.0f} MB allowed)"
        )
    if logged["tracebacks"]:
        failures.append(f"{logged['tracebacks']} tracebacks in the server log")
    if logged["error_lines"]:
        failures.append(f"{logged['error_lines']} ERROR lines in the server log")
    if any(left_open.values()):
        failures.append(f"connections left in its numbers: {left_open}")
    tally = load.tally.json()
    if not sum(tally["video_frames_received"].values()) or not tally["chat_events_received"]:
        failures.append("the load did not get through (no video or no chat received)")
    soak = {
        "passed": not failures,
        "failures": failures,
        "plan": plan.__dict__,
        "load_seconds": round(t2 - t1, 1),
        "cold": cold.json(),
        "baseline": baseline.json(),
        "baseline_settle_s": round(settled_s, 1),
        "peak": {"rss_mb": _r(peak_rss / 1024, 1), "fds": peak_fds},
        "end": end.json(),
        "end_settle_s": round(back_s, 1),
        "rss_delta_mb": _r((end.rss_kb - baseline.rss_kb) / 1024, 1),
        "fds_delta": end.fds - baseline.fds,
        "other_fds_delta": end.other_fds - baseline.other_fds,
        "database_pool": last.get("database"),
        "fds_changed": {
            kind: fds_at_end.get(kind, 0) - fds_at_baseline.get(kind, 0)
            for kind in sorted(set(fds_at_baseline) | set(fds_at_end))
            if fds_at_end.get(kind, 0) != fds_at_baseline.get(kind, 0)
        },
        "rss_allowance_mb": _r(plan.rss_allowance_kb(baseline.rss_kb) / 1024, 1),
        "rss_slope_mb_per_min": _r(rss_slope_mb_per_min(sess, t1, t2), 2),
        "server_cores": _r(server_cores, 3),
        "server_loop_lag_ms": {
            "max": _r(max(lag_max, default=0.0), 1),
            "p95_of_samples": _r(percentile(lag_now, 95), 1),
        },
        "gen_cores": _r(gen_cores, 3),
        "gen_loop_lag_ms": {
            "p99": _r(percentile(gen_lag_samples, 99) * 1000, 1),
            "max": _r(max(gen_lag_samples, default=0.0) * 1000, 1),
        },
        "left_open": left_open,
        "server_log": logged,
        **tally,
    }
    return {"soak": soak, "notes": sess.notes, "files": sess.files}
