"""Scenarios of several Strom processes on 127.0.0.1 (issue 13): the latency each pull
hop adds (``hops``), the join time on a cold edge (``coldjoin``), and ``--workers 2``
against ``--workers 1`` and nginx-rtmp (``workers``).

Nodes are wired as the README's "Several nodes" shows, without Redis: every node shares
one secret key (the internal pull's key is derived from it) and an edge or relay names
its upstream with ``--upstream``. The ingest node is the :class:`~bench.run.Session`'s
server (publisher, sampler); the others are more :class:`StromProcess` children, each
sampled under its own name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bench.http import get_stats
from bench.records import ViewerRecord
from bench.run import (
    WORKER_START,
    NginxMissing,
    Options,
    Session,
    limits,
    progress,
    resource_row,
    run_workers,
    session,
    viewer_step,
)
from bench.servers import StromProcess
from bench.stats import Window, added_latency, analyze_group, join_time, summary
from bench.viewers import ViewerGroup, WsViewer

CHANNEL = "bench"
#: viewer indexes of the n-th node's group start at n times this (records carry no port)
INDEX_STRIDE = 100_000
#: latency (ms, p95) a step may have and still count as "held" (the issue's goal)
HELD_P95_MS = 50.0


@dataclass(frozen=True)
class Node:
    """A node viewers watch: its name and its HTTP port."""

    name: str
    http_port: int


def site_env() -> dict[str, str]:
    """The settings every node of one benchmark site shares."""
    return {"STROM_SECRET_KEY": "bench-site-" + secrets.token_hex(16)}


@contextlib.asynccontextmanager
async def more_node(
    sess: Session, name: str, env: dict[str, str], *args: str
) -> AsyncIterator[StromProcess]:
    """Another ``strom serve`` of the session's site, sampled as ``name``, stopped at
    the end."""
    keys: dict[str, str] = getattr(sess.server, "keys", {})
    node = StromProcess(
        sess.workdir / name, keys, host=sess.opts.host, extra_env=env,
        source=sess.opts.strom_source, args=args, name=name,
    )  # fmt: skip
    await node.start()
    sess.sampler.targets[name] = node.pid
    try:
        yield node
    finally:
        await node.stop()


@dataclass(frozen=True)
class Chain:
    """The nodes of the cluster scenarios: publisher → ingest → edge, and ingest →
    relay → relay-edge."""

    sess: Session
    ingest: StromProcess
    edge: StromProcess
    relay: StromProcess
    far: StromProcess


@contextlib.asynccontextmanager
async def chain(opts: Options, *edge_options: str) -> AsyncIterator[Chain]:
    """Start the ingest node (publishing once the others are up), an edge, a relay and
    an edge behind the relay (``edge_options`` for the last three)."""
    env = site_env()
    async with session("strom", opts, server_env=env) as sess:
        ingest = sess.server
        assert isinstance(ingest, StromProcess)
        edge_args = ("--role", "edge", *edge_options, "--upstream")
        async with (
            more_node(sess, "edge", env, *edge_args, ingest.base) as edge,
            more_node(sess, "relay", env, *edge_args, ingest.base) as relay,
            more_node(sess, "relay-edge", env, *edge_args, relay.base) as far,
        ):
            await sess.publish({CHANNEL: ingest.keys[CHANNEL]})
            await asyncio.sleep(2)
            yield Chain(sess, ingest, edge, relay, far)


async def pulls(node: StromProcess) -> dict[str, Any]:
    """``node``'s pulls (its numbers): ``active`` now, ``started_total``..."""
    for _ in range(9):  # a busy node may close before answering: ask again
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            resp = await get_stats(node.host, node.http_port, timeout=2.0)
            if resp.status == 200:
                found: dict[str, Any] = json.loads(resp.body).get("pulls") or {}
                return found
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{node.name}: no answer with its numbers")


async def nodes_step(
    sess: Session, nodes: list[Node], per_node: int, label: str = ""
) -> list[dict[str, Any]]:
    """``per_node`` WebSocket viewers (every one a probe) on each node at once, one
    measured window: a row per node, with the latency it adds to the first node's."""
    opts = sess.opts
    join_window = max(1.0, per_node * len(nodes) / 1000)
    start_at = time.monotonic() + WORKER_START
    measure_from = start_at + join_window + opts.warmup
    window = Window(measure_from, measure_from + opts.step_seconds)
    stop_at = window.end + 0.5
    groups = []
    for i, node in enumerate(nodes):
        group = ViewerGroup(
            "ws", opts.host, node.http_port, (CHANNEL,), per_node, start_at, stop_at,
            join_window, first_index=i * INDEX_STRIDE, probes=-1,
        )  # fmt: skip
        groups.append(group)
    records, lag, gen_names = await run_workers(sess, groups, stop_at)
    by_node: list[list[ViewerRecord]] = [[] for _ in nodes]
    for rec in records:
        by_node[rec.index // INDEX_STRIDE].append(rec)
    rows = []
    for node, recs in zip(nodes, by_node, strict=True):
        target = "server" if node is nodes[0] else node.name
        row = resource_row(sess, "ws", per_node, window, lag, gen_names, label, target=target)
        row["server"] = node.name
        if target != "server":  # the sampler asks the ingest node's numbers only
            row["server_loop_lag_max_ms"] = None
        row.update(analyze_group(recs, sess.logs, window))
        row["limits"] = limits(row, lag)
        row["added_ms"] = added_latency(recs, by_node[0], window)
        rows.append(row)
    await asyncio.sleep(opts.settle)
    return rows


async def scenario_hops(opts: Options) -> dict[str, Any]:
    """Publisher on the ingest node; ``--node-viewers`` WebSocket viewers on the ingest,
    on an edge pulling from it, and on an edge behind a relay, at once; ``--repeat``
    windows."""
    async with chain(opts) as c:
        return await hops(c, opts)


async def hops(c: Chain, opts: Options) -> dict[str, Any]:
    """:func:`scenario_hops` on a running chain."""
    sess = c.sess
    await sess.idle_baseline()
    nodes = [
        Node("ingest", c.ingest.http_port),
        Node("edge", c.edge.http_port),
        Node("relay-edge", c.far.http_port),
    ]
    rows: list[dict[str, Any]] = []
    for round_ in range(max(1, opts.repeat)):
        label = f"round {round_ + 1}"
        these = await nodes_step(sess, nodes, opts.node_viewers, label)
        for row in these:
            _progress_hop(row)
        rows += these
    return {
        "rows": rows,
        "lines": hop_lines(rows),
        "baseline": sess.baseline,
        "notes": sess.notes,
        "files": sess.files,
    }


def hop_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per node and round: the latency from the publisher, and what it adds to the
    ingest node's own viewers (frame by frame, and per hop)."""
    out = [
        "",
        "| round | node | hops | latency p50 / p95 ms | added vs ingest, per frame, "
        "p50 / p95 ms | added per hop p50 / p95 ms | behind |",
        "|---|---|---|---|---|---|---|",
    ]
    hops = {"ingest": 0, "edge": 1, "relay-edge": 2}
    for row in rows:
        n = hops.get(row["server"], 0)
        lat, add = row["latency_ms"], row["added_ms"]
        per_hop = f"{add['p50'] / n:.1f} / {add['p95'] / n:.1f}" if n and add.get("n") else "-"
        out.append(
            f"| {row['label']} | {row['server']} | {n} | {lat.get('p50')} / {lat.get('p95')} | "
            f"{add.get('p50', '-')} / {add.get('p95', '-')} | {per_hop} | {row['behind']} |"
        )
    return out


def _progress_hop(row: dict[str, Any]) -> None:
    lat, add = row["latency_ms"], row["added_ms"]
    print(
        f"  {row['label']} {row['server']:10} {row['viewers']} viewers: latency p50 "
        f"{lat.get('p50')} p95 {lat.get('p95')} ms, added p50 {add.get('p50')} p95 "
        f"{add.get('p95')} ms, behind {row['behind']}, node {row['server_cores']} cores; "
        f"{'; '.join(row['limits'])}",
        flush=True,
    )


# -- cold joins ------------------------------------------------------------------------


async def join_once(host: str, port: int, timeout: float = 5.0) -> ViewerRecord:
    """One WebSocket viewer: connect, wait for its first keyframe, leave."""
    loop = asyncio.get_running_loop()
    rec = ViewerRecord("ws", 0, CHANNEL)
    done: asyncio.Future[None] = loop.create_future()
    viewer = WsViewer(rec, host, port, f"/live/{CHANNEL}/ws", done)
    rec.t_start = time.monotonic()
    deadline = rec.t_start + timeout
    try:
        await asyncio.wait_for(loop.create_connection(lambda: viewer, host, port), timeout)
    except (OSError, TimeoutError) as exc:
        rec.error = f"connect: {exc or type(exc).__name__}"
        return rec
    # polls only: the arrival time is taken on receipt, in the viewer's protocol
    while not rec.t_first_key and not done.done() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    viewer.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, 2.0)
    return rec


async def until_released(nodes: list[StromProcess], timeout: float) -> bool:
    """Wait until none of ``nodes`` pulls a channel (their linger is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any([(await pulls(n)).get("active") for n in nodes]):
            return True
        await asyncio.sleep(0.05)
    return False


async def scenario_coldjoin(opts: Options) -> dict[str, Any]:
    """``--cold-joins`` single viewers, one after the other, on an edge whose pull has
    lingered out (``--pull-linger``) each time, and on an edge behind a relay (both
    cold); the ingest node's (always warm) joins for reference."""
    async with chain(opts, "--pull-linger", f"{opts.pull_linger:g}") as c:
        return await cold_joins(c, opts)


async def cold_joins(c: Chain, opts: Options) -> dict[str, Any]:
    """:func:`scenario_coldjoin` on a running chain (its edges started with
    ``--pull-linger``)."""
    sess = c.sess
    cases: list[tuple[str, StromProcess, list[StromProcess]]] = [
        ("ingest (warm)", c.ingest, []),
        ("edge (cold)", c.edge, [c.edge]),
        ("relay-edge (both cold)", c.far, [c.far, c.relay]),
    ]
    rows = []
    for name, node, pullers in cases:
        joins: list[float] = []
        failed: list[str] = []
        started = [(await pulls(n)).get("started_total", 0) for n in pullers]
        for _ in range(opts.cold_joins):
            if not await until_released(pullers, opts.pull_linger + 10):
                failed.append("pull not released")
                continue
            rec = await join_once(opts.host, node.http_port)
            jt = join_time(rec)
            if jt is None:
                failed.append(rec.error or "no keyframe in 5 s")
            else:
                joins.append(jt)
        # proof of coldness: each join started a new pull on each node named
        after = [(await pulls(n)).get("started_total", 0) for n in pullers]
        row = {
            "case": name,
            "join_ms": summary(joins),
            "failed": failed,
            "pulls_started": [b - a for a, b in zip(started, after, strict=True)],
        }
        print(f"  {name}: join {row['join_ms']} failed {len(failed)}", flush=True)
        rows.append(row)
    return {"joins": rows, "lines": join_lines(rows), "notes": sess.notes}


def join_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "",
        "| case | joins | join p50 / p95 / max ms (connect → first keyframe) | "
        "pulls started (per puller) | failed |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        j = r["join_ms"]
        out.append(
            f"| {r['case']} | {j['n']} | {j.get('p50')} / {j.get('p95')} / {j.get('max')} | "
            f"{r['pulls_started'] or '-'} | {len(r['failed'])} "
            f"{sorted(set(r['failed']))[:3] or ''} |"
        )
    return out


# -- workers ---------------------------------------------------------------------------


async def scenario_workers(opts: Options) -> dict[str, Any]:
    """nginx-rtmp (RTMP play), Strom ``--workers 1`` and ``--workers 2`` (WebSocket),
    each ramped over ``--worker-steps`` until a viewer falls behind; the most viewers
    *held* is the largest step with none behind and latency p95 ≤ 50 ms. ``--repeat``
    rounds, the order rotating."""
    trio: list[tuple[str, str, tuple[str, ...]]] = [
        ("nginx", "rtmp", ()),
        ("strom w1", "ws", ("--workers", "1")),
        ("strom w2", "ws", ("--workers", "2")),
    ]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    held: dict[str, list[int]] = {name: [] for name, _, _ in trio}
    for round_ in range(max(1, opts.repeat)):
        order = trio[round_ % 3 :] + trio[: round_ % 3]
        for name, kind, args in order:
            server = "nginx" if name == "nginx" else "strom"
            try:
                async with session(server, opts, server_args=args) as sess:
                    key = getattr(sess.server, "keys", {}).get(CHANNEL, CHANNEL)
                    await sess.publish({CHANNEL: key})
                    await asyncio.sleep(2)
                    await sess.idle_baseline()
                    best = 0
                    for n in opts.worker_steps:
                        row = await viewer_step(sess, kind, n, label=f"round {round_ + 1}")
                        row["server"] = name
                        progress(row)
                        rows.append(row)
                        if row["behind"]:
                            break  # more would only fall further behind
                        # a p95 over the goal is not the end: other load on the box
                        # comes and goes, and the next step may hold
                        p95 = row["latency_ms"].get("p95")
                        if p95 is not None and p95 <= HELD_P95_MS:
                            best = n
                    held[name].append(best)
                    notes += sess.notes
            except NginxMissing as exc:
                notes.append(f"nginx-rtmp reference skipped: {exc}")
    return {"rows": rows, "lines": worker_lines(rows, held), "notes": notes}


def worker_lines(rows: list[dict[str, Any]], held: dict[str, list[int]]) -> list[str]:
    out = [
        "",
        "| server | most viewers held per round (p95 ≤ 50 ms, none behind) | "
        "µs CPU / viewer·s at each step | generator cores at each step |",
        "|---|---|---|---|",
    ]
    for name, best in held.items():
        mine = [r for r in rows if r["server"] == name]
        cpu = ", ".join(f"{r['viewers']}: {r['us_per_viewer_s']}" for r in mine)
        gen = ", ".join(f"{r['viewers']}: {r['gen_cores_total']}" for r in mine)
        out.append(f"| {name} | {best} | {cpu} | {gen} |")
    return out
