"""``python -m bench ladder``: what the quality ladder costs (docs/ladder.md).

With the bench's 720p30 2.5 Mbit/s media (B-frames off: the renditions' timestamps are
the source's, so a rendition viewer's latency is measured against the publisher's own
send log):

1. **one ladder** (720p, 480p, 360p): the worker process's CPU and the whole node's, and
   the latency a WebSocket viewer of the source and one of the 360p rendition see
   (publisher → viewer; the difference is what the ladder adds);
2. **each rung alone** (one worker encoding that rung only): its CPU, decode included,
   so the decode's share comes out as ``sum(rungs) - ladder``;
3. **the most ladders**: 1, 2, 3... publishers (``--ladder-steps``), each with a ladder,
   until one falls behind real time: a rendition under :data:`KEEP_UP` of its source's
   video frame rate (its worker skipped frames).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

from bench.run import Options, Session, progress, session, viewer_step
from bench.sampler import all_stats, tree

RUNGS = ("720p", "480p", "360p")
#: a rendition keeps up when it delivers this share of its source's frame rate
KEEP_UP = 0.95
#: seconds a ladder may take to start (its worker's first keyframe)
START = 20.0


def _env(rungs: str, ladders: int) -> dict[str, str]:
    return {
        "STROM_LADDER": "all",
        "STROM_LADDER_RENDITIONS": rungs,
        "STROM_LADDER_MAX": str(ladders),
        "STROM_RECORD": "false",
    }


def _workers(server_pid: int) -> list[int]:
    """The ladder worker processes under the server."""
    stats = all_stats()
    found = []
    for pid in tree(server_pid, stats):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"strom.ladder.worker" in cmdline:
            found.append(pid)
    return found


async def _renditions_live(sess: Session, names: list[str]) -> None:
    async with asyncio.timeout(START):
        while True:
            await asyncio.sleep(1.0)
            last = sess.sampler.samples[-1].metrics if sess.sampler.samples else {}
            live = {c["name"] for c in last.get("channels", []) if c.get("state") == "live"}
            if set(names) <= live:
                return


def _fps(sess: Session, t1: float, t2: float) -> dict[str, float]:
    """Each channel's video frames per second over [t1, t2], as the node measures them
    (its media's: a GOP a worker skipped is a hole in it), averaged over the samples."""
    rates: dict[str, list[float]] = {}
    for sample in sess.sampler.window(t1, t2):
        for channel in sample.metrics.get("channels", []):
            rates.setdefault(channel["name"], []).append(float(channel.get("fps", 0.0)))
    return {name: sum(values) / len(values) for name, values in rates.items()}


async def _measure(sess: Session, channels: list[str]) -> dict[str, Any]:
    """CPU of the node and of each worker, and the channels' rates, over one window."""
    workers = _workers(sess.server.pid)
    for i, pid in enumerate(workers):
        sess.sampler.targets[f"ladder{i}"] = pid
    await asyncio.sleep(sess.opts.warmup)
    t1 = time.monotonic()
    await asyncio.sleep(sess.opts.step_seconds)
    t2 = time.monotonic()
    worker_cores = [sess.sampler.cores(f"ladder{i}", t1, t2) for i in range(len(workers))]
    fps = _fps(sess, t1, t2)
    return {
        "node_cores": sess.sampler.cores("server", t1, t2),  # the server and its workers
        "worker_cores": [round(c, 3) if c is not None else None for c in worker_cores],
        "fps": {n: round(v, 1) for n, v in fps.items() if n.split("~")[0] in channels},
        "machine_cores": sess.sampler.system_cores(t1, t2),
    }


def keeps_up(fps: dict[str, float], sources: list[str]) -> bool:
    for source in sources:
        base = fps.get(source, 0.0)
        for rung in RUNGS:
            if fps.get(f"{source}~{rung}", 0.0) < KEEP_UP * base:
                return False
    return bool(sources)


async def one_ladder(opts: Options) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with session("strom", opts, server_env=_env(",".join(RUNGS), 1)) as sess:
        key = sess.server.keys["bench"]  # type: ignore[attr-defined]
        await sess.publish({"bench": key})
        await _renditions_live(sess, [f"bench~{r}" for r in RUNGS])
        figures = await _measure(sess, ["bench"])
        # The renditions' timestamps are the source's: one send log times both.
        sess.logs["bench~360p"] = sess.logs["bench"]
        rows = []
        for channel in ("bench", "bench~360p"):
            row = await viewer_step(sess, "ws", opts.ladder_viewers, channels=[channel],
                                    label=f"viewers of {channel}")  # fmt: skip
            progress(row)
            rows.append(row)
        return figures, rows


async def one_rung(opts: Options, rung: str) -> dict[str, Any]:
    async with session("strom", opts, server_env=_env(rung, 1)) as sess:
        await sess.publish({"bench": sess.server.keys["bench"]})  # type: ignore[attr-defined]
        await _renditions_live(sess, [f"bench~{rung}"])
        return await _measure(sess, ["bench"])


async def ladders(opts: Options, count: int) -> dict[str, Any]:
    keys = {f"l{i:02d}": f"key-{i:02d}-{secrets.token_hex(6)}" for i in range(count)}
    env = _env(",".join(RUNGS), count)
    async with session("strom", opts, channels=keys, server_env=env) as sess:
        await sess.publish(keys, stagger=0.5)
        try:
            await _renditions_live(sess, [f"{k}~{r}" for k in keys for r in RUNGS])
        except TimeoutError:
            return {"ladders": count, "keeps_up": False, "note": "renditions did not all start"}
        figures = await _measure(sess, list(keys))
        return {"ladders": count, "keeps_up": keeps_up(figures["fps"], list(keys)), **figures}


def _c(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


async def scenario_ladder(opts: Options) -> dict[str, Any]:
    lines = ["", "### Quality ladder (720p, 480p, 360p below a 720p30 2.5 Mbit/s source)", ""]
    figures, rows = await one_ladder(opts)
    worker = figures["worker_cores"][0] if figures["worker_cores"] else None
    lines.append(f"- one ladder: worker {_c(worker)} cores, node (server + worker) "
                 f"{_c(figures['node_cores'])} cores; rates {figures['fps']}")  # fmt: skip
    p50 = [r.get("latency_ms", {}).get("p50") for r in rows]
    lines.append(f"- latency p50, publisher → viewer: source {p50[0]} ms, 360p {p50[1]} ms")
    per_rung = {}
    for rung in RUNGS:
        found = await one_rung(opts, rung)
        per_rung[rung] = found["worker_cores"][0] if found["worker_cores"] else None
        lines.append(f"- {rung} alone (decode + one encode): {_c(per_rung[rung])} cores")
    known = [v for v in per_rung.values() if v is not None]
    if worker is not None and len(known) == len(RUNGS):
        lines.append(f"- the decode's share: ~{_c((sum(known) - worker) / (len(RUNGS) - 1))} cores")
    steps = []
    most = 0
    for count in opts.ladder_steps:
        step = await ladders(opts, count)
        steps.append(step)
        lines.append(f"- {count} ladders: node {_c(step.get('node_cores'))} cores, machine "
                     f"{_c(step.get('machine_cores'))}, keeps up: {step['keeps_up']}")  # fmt: skip
        if not step["keeps_up"]:
            break
        most = count
    lines.append(f"- the most ladders live in real time here: {most}")
    return {
        "rows": rows,
        "lines": lines,
        "ladder": {"one": figures, "per_rung": per_rung, "steps": steps, "most": most},
        "notes": [],
        "files": [],
    }
