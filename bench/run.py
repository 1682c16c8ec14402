"""Scenarios: a server under test (subprocess), the publisher(s) and the sampler in this
process, viewers in worker subprocesses (``python -m bench worker``), one bounded
measurement window per step."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import profile
from bench.http import get_stats
from bench.media import MediaFile, MediaSpec, ensure_media, load_flv
from bench.plainhls import poll_segments
from bench.publisher import RtmpPublisher, SendLog
from bench.records import ViewerRecord
from bench.sampler import Sampler
from bench.servers import (
    ROOT,
    NginxProcess,
    ServerProcess,
    StromProcess,
    find_nginx,
    load_generator_exempt,
)
from bench.stats import (
    Window,
    analyze_group,
    histogram_quantiles,
    hls_part_delays,
    percentile,
    request_rate,
    segment_delays,
)
from bench.viewers import LoopLag, ViewerGroup, run_group

log = logging.getLogger("bench")
T = TypeVar("T")

#: a generator process at this share of a core or more is the limit, not the server
GEN_SATURATED = 0.9
#: generator event-loop lag (p99) beyond this inflates the latencies it measures
GEN_LAG_LIMIT = 0.05
#: the server at this share of its one core is saturated
SERVER_SATURATED = 0.95
WORKER_START = 3.0  # seconds from spawning workers to their first connection
#: the soak's media: 20 s of 640x360 at 600 kbit/s (a keyframe every 2 s)
SMALL_MEDIA = MediaSpec(seconds=20, size="640x360", video_kbps=600, audio_kbps=64)


@dataclass
class Options:
    step_seconds: float = 20.0
    warmup: float = 5.0
    settle: float = 3.0
    steps: tuple[int, ...] = (100, 500, 1000, 2000, 3000, 4000)
    max_viewers: int = 2000
    viewers: int = 400
    hls_viewers: int = 100
    #: reqcost: requests of each kind, and the keep-alive connections asking them
    req_count: int = 20_000
    req_conns: int = 10
    publishers: int = 100
    slow_share: float = 0.1
    slow_factor: float = 0.5
    joins: int = 500
    gen_procs: int = 1
    probes: int = 50
    #: Strom's --event-loop (auto, uvloop, asyncio); "" leaves the server's default
    server_loop: str = ""
    #: the generator's own event loop: auto (uvloop when installed), uvloop, asyncio
    gen_loop: str = "auto"
    repeat: int = 1
    #: py-spy the server during the measurement window of steps with this many viewers
    profile_at: tuple[int, ...] = ()
    bulk_lowat: int = 32 * 1024
    #: the chat scenario: sockets in one room, messages a second in all, senders, and
    #: SO_RCVLOWAT of the non-probe sockets (0: every socket reads each frame at once)
    chat_sockets: int = 1000
    chat_rate: float = 10.0
    chat_senders: int = 10
    chat_lowat: int = 0
    bframes: int = 0
    media_seconds: int = 60
    #: the cluster scenarios (bench.nodes): WebSocket viewers per node (hops), joins per
    #: case and the edges' --pull-linger (coldjoin), the viewer steps (workers)
    node_viewers: int = 30
    cold_joins: int = 20
    pull_linger: float = 0.5
    worker_steps: tuple[int, ...] = (200, 400, 800, 1200, 1600)
    #: the ladder scenario (bench.ladder): ladders at once per step, viewers per rendition
    ladder_steps: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    ladder_viewers: int = 5
    #: compare: also Strom with --ws-merge-above this (0: not)
    merge_above: int = 0
    #: the browser scenario (bench.browser): the watch page's transports, in turn
    browser_transports: tuple[str, ...] = ("ws", "hls", "dash")
    #: the soak scenario (bench.soak.SoakPlan): minutes of load, warm-up seconds (0:
    #: automatic), publishers, viewers, chat sockets, garbage clients a second, the
    #: longest settle, the tolerances of the return to the baseline, the random seed
    soak_minutes: float = 2.0
    soak_warmup: float = 0.0
    soak_publishers: int = 3
    soak_viewers: int = 20
    soak_chat: int = 12
    garbage_rate: float = 3.0
    soak_settle: float = 90.0
    soak_fd_tolerance: int = 2
    soak_rss_tolerance_mb: float = 16.0
    soak_seed: int = 1
    host: str = "127.0.0.1"
    out_root: Path = ROOT / "bench" / "results"
    strom_source: Path = ROOT


@dataclass
class Session:
    """One server under test with its publishers and the sampler."""

    name: str
    server: ServerProcess
    sampler: Sampler
    media: MediaFile
    opts: Options
    workdir: Path
    rtmp_port: int
    http_port: int
    logs: dict[str, SendLog] = field(default_factory=dict)
    publishers: list[RtmpPublisher] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    #: the stream key of a channel kept for broken pushes (the soak's garbage)
    junk_key: str = ""

    async def publish(self, keys: dict[str, str], stagger: float = 0.0) -> None:
        """Start one real-time publisher per channel (``channel -> key``)."""
        for i, (channel, key) in enumerate(keys.items()):
            pub = RtmpPublisher(self.opts.host, self.rtmp_port, key, self.media, channel=channel)
            self.publishers.append(pub)
            self.logs[channel] = pub.log
            self.tasks.append(asyncio.create_task(self._publish(pub, i * stagger)))
        await asyncio.sleep(len(keys) * stagger + 0.5)
        failed = [p.stats.channel for p in self.publishers if p.stats.error]
        if failed:
            raise RuntimeError(f"{len(failed)} publishers failed: {self.publishers[0].stats.error}")

    async def _publish(self, pub: RtmpPublisher, delay: float) -> None:
        await asyncio.sleep(delay)
        await pub.run(time.monotonic() + 24 * 3600)

    async def idle_baseline(self, seconds: float = 5.0) -> dict[str, Any]:
        """Server CPU and memory with the publishers and no viewer."""
        t1 = time.monotonic()
        await asyncio.sleep(seconds)
        t2 = time.monotonic()
        rss = self.sampler.rss_kb("server", t1, t2)
        self.baseline = {
            "server_cores": self.sampler.cores("server", t1, t2),
            "server_rss_kb": rss[1] if rss else None,
        }
        return self.baseline


@contextlib.asynccontextmanager
async def session(
    name: str,
    opts: Options,
    channels: dict[str, str] | None = None,
    server_env: dict[str, str] | None = None,
    *,
    small_media: bool = False,
    server_args: tuple[str, ...] = (),
) -> AsyncIterator[Session]:
    """Start ``name`` ("strom" or "nginx") on free ports, the sampler, and stop both;
    ``server_env``: more STROM_* settings for Strom, ``server_args`` more options
    (``--workers 2``); ``small_media``: publish
    :data:`SMALL_MEDIA` (many broadcasts and recordings) instead of the 720p test media."""
    spec = (
        SMALL_MEDIA if small_media else MediaSpec(seconds=opts.media_seconds, bframes=opts.bframes)
    )
    media = load_flv(ensure_media(spec))
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    server: ServerProcess
    if name == "strom":
        keys = channels or {"bench": "bench-" + secrets.token_hex(8)}
        env = load_generator_exempt(opts.host)
        if opts.server_loop:
            env["STROM_EVENT_LOOP"] = opts.server_loop
        env.update(server_env or {})
        strom = StromProcess(
            workdir, keys, host=opts.host, extra_env=env, source=opts.strom_source,
            args=server_args,
        )  # fmt: skip
        await strom.start()
        server, rtmp_port, http_port = strom, strom.rtmp_port, strom.http_port
        metrics: tuple[str, int] | None = (opts.host, http_port)
    else:
        found = find_nginx()
        if isinstance(found, str):
            raise NginxMissing(found)
        nginx = NginxProcess(workdir, *found, host=opts.host)
        await nginx.start()
        server, rtmp_port, http_port = nginx, nginx.rtmp_port, nginx.http_port
        metrics = None
    sampler = Sampler(metrics=metrics)
    sampler.targets = {"server": server.pid, "self:gen-main": os.getpid()}
    sampler.start()
    sess = Session(name, server, sampler, media, opts, workdir, rtmp_port, http_port)
    try:
        yield sess
    finally:
        for task in sess.tasks:
            task.cancel()
        await asyncio.gather(*sess.tasks, return_exceptions=True)
        await sampler.stop()
        await server.stop()


class NginxMissing(Exception):
    """nginx or its RTMP module is not installed: the reference is skipped."""


def split_groups(groups: list[ViewerGroup], n_procs: int) -> list[list[ViewerGroup]]:
    """Each group's viewers, slow viewers and probes shared out over ``n_procs`` worker
    processes (same times and join window, consecutive viewer indexes)."""
    n_procs = max(1, n_procs)
    per_proc: list[list[ViewerGroup]] = [[] for _ in range(n_procs)]
    for g in groups:
        first = g.first_index
        for i in range(n_procs):
            count = _share(g.count, n_procs, i)
            if count:
                share = {
                    "count": count,
                    "slow_count": _share(g.slow_count, n_procs, i),
                    "first_index": first,
                    "probes": g.probes if g.probes < 0 else _share(g.probes, n_procs, i),
                }
                per_proc[i].append(ViewerGroup(**{**g.__dict__, **share}))
            first += count
    return per_proc


def _share(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


async def run_workers(
    sess: Session, groups: list[ViewerGroup], stop_at: float
) -> tuple[list[ViewerRecord], list[float], list[str]]:
    """Spread each group over ``gen_procs`` worker processes and collect their records,
    event-loop lag samples and sampler target names."""
    per_proc = split_groups(groups, sess.opts.gen_procs)
    procs = []
    names = []
    tmp = sess.workdir
    for i, proc_groups in enumerate(per_proc):
        if not proc_groups:
            continue
        spec = tmp / f"worker{i}.json"
        out = tmp / f"worker{i}.pickle"
        out.unlink(missing_ok=True)
        spec.write_text(
            json.dumps({"groups": [g.to_dict() for g in proc_groups], "loop": sess.opts.gen_loop})
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench", "worker", str(spec), str(out), cwd=ROOT
        )
        name = f"gen-worker{i}"
        sess.sampler.targets[name] = proc.pid
        procs.append((proc, out, name))
        names.append(name)
    records: list[ViewerRecord] = []
    lag: list[float] = []
    for proc, out, name in procs:
        try:
            await asyncio.wait_for(proc.wait(), max(5.0, stop_at - time.monotonic() + 30))
        except TimeoutError:
            proc.kill()
            await proc.wait()
            sess.notes.append(f"{name} did not finish in time and was killed")
        sess.sampler.targets.pop(name, None)
        if out.exists():
            with out.open("rb") as f:
                result = pickle.load(f)
            records += result["records"]
            lag += result["loop_lag"]
        else:
            sess.notes.append(f"{name} wrote no result (exit {proc.returncode})")
    return records, lag, names


async def viewer_step(
    sess: Session,
    kind: str,
    count: int,
    *,
    channels: Sequence[str] = ("bench",),
    join_window: float | None = None,
    slow_count: int = 0,
    label: str = "",
    extra: Any = None,
) -> dict[str, Any]:
    """Connect ``count`` viewers, wait for warm-up, measure one window, disconnect."""
    opts = sess.opts
    if join_window is None:
        join_window = max(1.0, count / 1000)
    start_at = time.monotonic() + WORKER_START
    measure_from = start_at + join_window + opts.warmup
    window = Window(measure_from, measure_from + opts.step_seconds)
    stop_at = window.end + 0.5
    port = sess.rtmp_port if kind == "rtmp" else sess.http_port
    slow_rate = sess.media.bitrate_kbps * 1000 / 8 * opts.slow_factor
    group = ViewerGroup(
        kind, opts.host, port, tuple(channels), count, start_at, stop_at, join_window,
        slow_count, slow_rate, probes=opts.probes, bulk_lowat=opts.bulk_lowat,
    )  # fmt: skip
    extra_task = asyncio.create_task(extra(stop_at)) if extra is not None else None
    profiling = None
    if count in opts.profile_at:
        profiling = asyncio.create_task(_profile(sess, kind, count, window))
    records, lag, gen_names = await run_workers(sess, [group], stop_at)
    extra_result = await extra_task if extra_task is not None else None
    row = step_row(sess, kind, count, window, records, lag, gen_names, label=label)
    if slow_count:
        row["healthy"] = analyze_group([r for r in records if not r.slow], sess.logs, window)
        row["slow"] = analyze_group([r for r in records if r.slow], sess.logs, window)
    if kind == "hls":
        row["hls"] = hls_part_delays(records, sess.logs, window)
    if kind == "dash":
        row["dash"] = {"requests_per_viewer_s": request_rate(records)}
    if extra_result is not None:
        row["extra"] = extra_result
    if profiling is not None:
        row["profile"] = await profiling
    await asyncio.sleep(opts.settle)
    return row


async def _profile(sess: Session, kind: str, count: int, window: Window) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, window.start - time.monotonic()))
    out = sess.workdir / f"profile-{sess.name}-{kind}-{count}.txt"
    path = await profile.record(sess.server.pid, window.seconds, out)
    if path is None:
        return {"error": "py-spy not available or failed"}
    sess.files.append(path)
    return {"file": path.name, **profile.summarize_collapsed(path.read_text())}


def step_row(
    sess: Session,
    kind: str,
    count: int,
    window: Window,
    records: list[ViewerRecord],
    lag: list[float],
    gen_names: list[str],
    label: str = "",
) -> dict[str, Any]:
    row = resource_row(sess, kind, count, window, lag, gen_names, label)
    row.update(analyze_group(records, sess.logs, window))
    row["limits"] = limits(row, lag)
    if sess.name == "strom" and row["server_loop_lag_max_ms"] is None:
        row["limits"].append("no answer with its numbers in the window (server too busy)")
    return row


def resource_row(
    sess: Session,
    kind: str,
    count: int,
    window: Window,
    lag: Sequence[float],
    gen_names: list[str],
    label: str = "",
    target: str = "server",
) -> dict[str, Any]:
    """Server and generator CPU, memory and loop lag in ``window``, for ``count``
    viewers (or chat sockets); ``target``: the sampled server process (another node)."""
    s = sess.sampler
    t1, t2 = window.start, window.end
    server = s.cores(target, t1, t2)
    base = sess.baseline.get("server_cores") if target == "server" else None
    gen = {name: s.cores(name, t1, t2) for name in ["self:gen-main", *gen_names]}
    gen_total = sum(v for v in gen.values() if v is not None)
    system = s.system_cores(t1, t2)
    rss = s.rss_kb(target, t1, t2)
    base_rss = sess.baseline.get("server_rss_kb") if target == "server" else None
    row: dict[str, Any] = {
        "server": sess.name,
        "kind": kind,
        "label": label,
        "viewers": count,
        "window_s": round(window.seconds, 1),
        "server_cores": _r(server, 3),
        "baseline_cores": _r(base, 3),
        "us_per_viewer_s": _r(server / count * 1e6, 0) if server and count else None,
        "us_per_viewer_s_marginal": _r((server - base) / count * 1e6, 0)
        if server is not None and base is not None and count
        else None,
        "server_rss_mb": _r(rss[1] / 1024, 1) if rss else None,
        "rss_growth_mb": _r((rss[1] - rss[0]) / 1024, 1) if rss else None,
        "kb_per_viewer": _r((rss[1] - base_rss) / count, 1) if rss and base_rss and count else None,
        "server_loop_lag_max_ms": s.metric_max("loop_lag_max_ms", t1, t2),
        "gen_cores": {k: _r(v, 3) for k, v in gen.items()},
        "gen_cores_total": _r(gen_total, 3),
        "gen_loop_lag_ms": {
            "p50": _r(percentile(lag, 50) * 1000, 1),
            "p99": _r(percentile(lag, 99) * 1000, 1),
            "max": _r(max(lag) * 1000, 1) if lag else None,
        },
        "system_cores": _r(system, 3),
        "other_cores": _r(system - (server or 0) - gen_total, 3) if system is not None else None,
    }
    return row


def limits(row: dict[str, Any], lag: Sequence[float]) -> list[str]:
    """What limited this step, in words: the generator, the server, or the box."""
    out = []
    busy = [k for k, v in row["gen_cores"].items() if v is not None and v >= GEN_SATURATED]
    if busy:
        out.append("generator saturated (" + ", ".join(busy) + ")")
    if lag and percentile(lag, 99) > GEN_LAG_LIMIT:
        out.append(f"generator loop lag p99 {percentile(lag, 99) * 1000:.0f} ms")
    if row["server_cores"] is not None and row["server_cores"] >= SERVER_SATURATED:
        out.append("server saturated (one core)")
    cores = os.cpu_count() or 1
    if row["system_cores"] is not None and row["system_cores"] >= cores * 0.95:
        out.append("machine saturated")
    if row["other_cores"] is not None and row["other_cores"] > 0.2:
        out.append(f"other load {row['other_cores']:.2f} cores (noisy)")
    return out


def _r(value: float | None, digits: int) -> float | None:
    if value is None or value != value:  # None or NaN
        return None
    return round(value, digits) if digits else float(round(value))


# -- scenarios ----------------------------------------------------------------------------


async def scenario_ramp(opts: Options) -> dict[str, Any]:
    rows = []
    stop_reason = f"reached the top step (--max-viewers {opts.max_viewers})"
    async with session("strom", opts) as sess:
        await sess.publish({"bench": sess.server.keys["bench"]})  # type: ignore[attr-defined]
        await asyncio.sleep(2)
        await sess.idle_baseline()
        for n in opts.steps:
            if n > opts.max_viewers:
                break
            row = await viewer_step(sess, "ws", n)
            rows.append(row)
            progress(row)
            if row["behind"]:
                stop_reason = f"{row['behind']} viewers fell behind at {n}"
                break
            if row["limits"] and any("saturated" in x for x in row["limits"]):
                stop_reason = f"stopped at {n}: " + "; ".join(row["limits"])
                break
        return {
            "rows": rows,
            "stop": stop_reason,
            "baseline": sess.baseline,
            "notes": sess.notes,
            "files": sess.files,
        }


async def scenario_viewers(
    opts: Options, server: str, kind: str, count: int, server_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One server, one kind of viewer, one step (plus nginx's own HLS for reference)."""
    async with session(server, opts, server_env=server_env) as sess:
        key = sess.server.keys["bench"] if server == "strom" else "bench"  # type: ignore[attr-defined]
        await sess.publish({"bench": key})
        await asyncio.sleep(2)
        await sess.idle_baseline()
        extra = None
        if server == "nginx":

            async def extra(stop_at: float) -> dict[str, Any]:
                segs = await poll_segments(opts.host, sess.http_port, "/hls/bench.m3u8", stop_at)
                out = segment_delays(segs, sess.logs["bench"], NginxProcess.HLS_DTS_OFFSET)
                out["segments"] = len(segs)
                return out

        elif kind == "hls":

            async def extra(stop_at: float) -> dict[str, Any]:
                await asyncio.sleep(max(0.0, stop_at - 0.3 - time.monotonic()))
                return await hls_server_side(opts.host, sess.http_port)

        row = await viewer_step(sess, kind, count, extra=extra)
        progress(row)
        return {"rows": [row], "baseline": sess.baseline, "notes": sess.notes, "files": sess.files}


async def hls_server_side(host: str, port: int) -> dict[str, Any]:
    """The server's own LL-HLS figures (since it started): how soon the requests a part
    woke were answered after the chunk that completed it (a Strom without that figure:
    empty)."""
    resp = await get_stats(host, port)
    hls = json.loads(resp.body).get("hls", {}) if resp.status == 200 else {}
    found = hls.get("answered_after_part_seconds")
    if not found:
        return {}
    return {"answered_after_part_ms": histogram_quantiles(found, (50, 95, 99))}


async def scenario_hls(opts: Options) -> dict[str, Any]:
    """``--hls-viewers`` viewers of one stream over WebSocket, then LL-HLS, then LL-DASH,
    in the same run: what an HTTP viewer costs against a WebSocket viewer (issue 14's
    goal for LL-HLS: at most 1.5 times), with the latencies and requests per viewer;
    ``--repeat`` rounds (the order rotating) give the median ratio of the rounds."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    runs: list[dict[str, Any]] = []
    kinds = ["ws", "hls", "dash"]
    for round_ in range(max(1, opts.repeat)):
        k = round_ % len(kinds)
        these = []
        for kind in kinds[k:] + kinds[:k]:
            part = await scenario_viewers(opts, "strom", kind, opts.hls_viewers)
            for row in part["rows"]:
                row["label"] = f"round {round_ + 1}" if opts.repeat > 1 else ""
            these += part["rows"]
            notes += part["notes"]
        rows += these
        runs.append(ratios(these, "strom", "ws"))
    return {"rows": rows, "ratios": median_ratios(runs), "notes": notes}


async def scenario_compare(opts: Options) -> dict[str, Any]:
    """The same number of viewers on Strom (WebSocket, RTMP play) and nginx-rtmp (RTMP
    play), back to back in one session, so the ratios hold on a noisy machine;
    ``--repeat`` rounds (the order rotating) give the median ratio of the rounds."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    files: list[Path] = []
    runs: list[dict[str, Any]] = []
    trio = [("nginx", "rtmp"), ("strom", "ws"), ("strom", "rtmp")]
    if opts.merge_above:  # and Strom merging WebSocket writes (ws_merge_above)
        trio.append(("strom-merged", "ws"))
    for round_ in range(max(1, opts.repeat)):
        k = round_ % len(trio)
        order = trio[k:] + trio[:k]
        these = []
        for server, kind in order:
            env = None
            if server == "strom-merged":
                env = {"STROM_WS_MERGE_ABOVE": str(opts.merge_above)}
            try:
                result = await scenario_viewers(
                    opts, server.split("-")[0], kind, opts.viewers, server_env=env
                )
            except NginxMissing as exc:
                notes.append(f"nginx-rtmp reference skipped: {exc}")
                continue
            except RuntimeError as exc:  # a server that did not start: keep the rest
                notes.append(f"{server} {kind} round {round_ + 1} failed: {exc}"[:300])
                continue
            for row in result["rows"]:
                row["server"] = server
                row["label"] = f"round {round_ + 1}" if opts.repeat > 1 else ""
            these += result["rows"]
            notes += result["notes"]
            files += result["files"]
        rows += these
        runs.append(ratios(these))
    return {"rows": rows, "notes": notes, "ratios": median_ratios(runs), "files": files}


def median_ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per comparison and metric, the median over rounds (a single round: itself)."""
    out: dict[str, Any] = {}
    for name in {k for run in runs for k in run}:
        metrics = {m for run in runs for m in run.get(name, {})}
        out[name] = {}
        for metric in metrics:
            values = [r[name][metric] for r in runs if r.get(name, {}).get(metric) is not None]
            out[name][metric] = round(percentile(values, 50), 3) if values else None
    return dict(sorted(out.items()))


def ratios(
    rows: list[dict[str, Any]], ref_server: str = "nginx", ref_kind: str = "rtmp"
) -> dict[str, Any]:
    """Each row's figures over the reference row's (nginx-rtmp's RTMP play by default)."""
    ref = next((r for r in rows if r["server"] == ref_server and r["kind"] == ref_kind), None)
    if ref is None:
        return {}
    out: dict[str, Any] = {}
    ref_name = (
        "nginx-rtmp"
        if (ref_server, ref_kind) == ("nginx", "rtmp")
        else (f"{ref_server}-{ref_kind}")
    )
    for r in rows:
        if r is ref:
            continue
        key = f"{r['server']}-{r['kind']}/{ref_name}"
        out[key] = {
            "cpu_per_viewer": _ratio(r["us_per_viewer_s"], ref["us_per_viewer_s"]),
            "cpu_per_viewer_marginal": _ratio(
                r["us_per_viewer_s_marginal"], ref["us_per_viewer_s_marginal"]
            ),
            "latency_p50": _ratio(r["latency_ms"].get("p50"), ref["latency_ms"].get("p50")),
            "latency_p95": _ratio(r["latency_ms"].get("p95"), ref["latency_ms"].get("p95")),
            "join_p50": _ratio(r["join_ms"].get("p50"), ref["join_ms"].get("p50")),
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


async def scenario_publishers(opts: Options) -> dict[str, Any]:
    n = opts.publishers
    keys = {f"p{i:03d}": f"key-{i:03d}-{secrets.token_hex(6)}" for i in range(n)}
    async with session("strom", opts, channels=keys) as sess:
        t0 = time.monotonic()
        await asyncio.sleep(2)
        empty = sess.sampler.rss_kb("server", t0, time.monotonic())
        await sess.publish(keys, stagger=2.0 / n)
        # until the LL-HLS windows (6 segments of 2 s) are full: memory at steady state
        await asyncio.sleep(15)
        base = await sess.idle_baseline()
        row = await viewer_step(sess, "ws", n, channels=list(keys), label="1 viewer/channel")
        row["kb_per_viewer"] = None  # memory here is per channel, below
        frames_sent = sum(len(p.log) for p in sess.publishers)
        last = sess.sampler.samples[-1].metrics if sess.sampler.samples else {}
        frames_in = sum(c.get("frames_in", 0) for c in last.get("channels", []))
        lateness = [x for p in sess.publishers for x in p.stats.lateness]
        row["publishers"] = {
            "count": n,
            "errors": sum(1 for p in sess.publishers if p.stats.error),
            "server_cores_publishers_only": _r(base.get("server_cores"), 3),
            "mb_per_channel": _r(
                ((base.get("server_rss_kb") or 0) - (empty[1] if empty else 0)) / 1024 / n, 2
            ),
            "video_frames_sent": frames_sent,
            "server_frames_in_all_tracks": frames_in,
            "publisher_lateness_ms": {
                "p50": _r(percentile(lateness, 50) * 1000, 1),
                "p99": _r(percentile(lateness, 99) * 1000, 1),
            },
        }
        progress(row)
        return {"rows": [row], "baseline": sess.baseline, "notes": sess.notes, "files": sess.files}


async def scenario_slow(opts: Options) -> dict[str, Any]:
    n = opts.viewers
    slow = round(n * opts.slow_share)
    async with session("strom", opts) as sess:
        await sess.publish({"bench": sess.server.keys["bench"]})  # type: ignore[attr-defined]
        await asyncio.sleep(2)
        await sess.idle_baseline()
        all_healthy = await viewer_step(sess, "ws", n, label="all healthy")
        progress(all_healthy)
        mixed = await viewer_step(sess, "ws", n, slow_count=slow, label=f"{slow} slow")
        progress(mixed)
        p95_before = all_healthy["latency_ms"].get("p95")
        p95_after = mixed["healthy"]["latency_ms"].get("p95")
        rise = round(p95_after - p95_before, 1) if p95_before and p95_after else None
        return {
            "rows": [all_healthy, mixed],
            "healthy_p95_rise_ms": rise,
            "baseline": sess.baseline,
            "notes": sess.notes,
            "files": sess.files,
        }


async def scenario_joins(opts: Options) -> dict[str, Any]:
    async with session("strom", opts) as sess:
        await sess.publish({"bench": sess.server.keys["bench"]})  # type: ignore[attr-defined]
        await asyncio.sleep(2)
        await sess.idle_baseline()
        row = await viewer_step(sess, "ws", opts.joins, join_window=1.0, label="join in 1 s")
        progress(row)
        return {"rows": [row], "baseline": sess.baseline, "notes": sess.notes, "files": sess.files}


def progress(row: dict[str, Any]) -> None:
    lat = row["latency_ms"]
    print(
        f"  {row['server']:5} {row['kind']:4} {row['viewers']:5} viewers: "
        f"server {row['server_cores']} cores, {row['us_per_viewer_s']} us/viewer-s, "
        f"latency p50 {lat.get('p50')} p95 {lat.get('p95')} ms, "
        f"join p50 {row['join_ms'].get('p50')} ms, behind {row['behind']}, "
        f"gen {row['gen_cores_total']} cores {'; '.join(row['limits'])}",
        flush=True,
    )


def run_loop(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """Run ``main`` on uvloop (``auto``: when installed) or asyncio's own loop."""
    if loop != "asyncio":
        try:
            import uvloop  # noqa: PLC0415 - optional
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def worker_main(spec_path: str, out_path: str) -> None:
    """``python -m bench worker SPEC OUT``: run the viewer groups of SPEC, pickle the
    records and this process's loop-lag samples to OUT."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spec = json.loads(Path(spec_path).read_text())
    groups = [ViewerGroup.from_dict(g) for g in spec["groups"]]

    async def main() -> tuple[list[ViewerRecord], list[float]]:
        lag = LoopLag()
        lag.start()
        results = await asyncio.gather(*(run_group(g) for g in groups))
        lag.stop()
        return [r for rs in results for r in rs], list(lag.samples)

    records, lag = run_loop(main(), spec.get("loop", "auto"))
    tmp = Path(out_path + ".tmp")
    with tmp.open("wb") as f:
        pickle.dump({"records": records, "loop_lag": lag}, f)
    tmp.replace(out_path)
