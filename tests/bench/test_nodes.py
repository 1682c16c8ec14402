"""The cluster scenarios against real `strom serve` nodes (an ingest node, an edge, a
relay and an edge behind it, wired by --upstream): every node's viewers play, the
added latency is measured frame by frame, and each cold join starts a new pull."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from bench import nodes, run
from bench.records import ViewerRecord
from bench.report import markdown
from bench.stats import Window, added_latency


def _rec(ts: list[int], t: list[float], probe: bool = True) -> ViewerRecord:
    rec = ViewerRecord("ws", 0, "c", probe=probe)
    rec.ts, rec.t = array("q", ts), array("d", t)
    return rec


def test_added_latency_is_per_frame_against_the_reference_median() -> None:
    ref = [_rec([0, 33], [1.0, 2.0]), _rec([0, 33], [1.2, 2.2])]  # medians 1.1 and 2.1
    edge = [_rec([0, 33, 66], [1.15, 2.3, 3.0]), _rec([0], [9.9], probe=False)]
    found = added_latency(edge, ref, Window(0, 10))
    assert found["n"] == 2  # frame 66 has no reference, the bulk reader is no probe
    assert found["p50"] == pytest.approx(125.0)
    assert found["max"] == pytest.approx(200.0)


def _machine() -> dict[str, object]:
    return {"nproc": 2, "cpu": "test", "python": "3", "strom_commit": "abc"}


@pytest.mark.e2e
async def test_hops_and_cold_joins_on_real_nodes(tmp_path: Path) -> None:
    """A few viewers per node for 2 s, two cold joins per case: bounded, and no timing
    asserted (the machine may be busy)."""
    opts = run.Options(
        out_root=tmp_path, step_seconds=2.0, warmup=1.0, settle=0.2, node_viewers=3,
        cold_joins=2, pull_linger=0.3,
    )  # fmt: skip
    async with nodes.chain(opts, "--pull-linger", f"{opts.pull_linger:g}") as chain:
        await _hops_and_cold_joins(chain, opts)


async def _hops_and_cold_joins(chain: nodes.Chain, opts: run.Options) -> None:
    """Both scenarios on one chain of nodes (they start four ``strom serve`` each)."""
    result = await nodes.hops(chain, opts)
    rows = result["rows"]
    assert [r["server"] for r in rows] == ["ingest", "edge", "relay-edge"]
    for row in rows:
        assert row["playing"] == 3, row
        # None: no frame was judged (on a busy machine the viewers' first keyframe can come
        # too late in the 2 s step); that every frame crosses the nodes is
        # tests/cluster/test_pull_nodes.py's
        assert row["frame_loss"] in (0.0, None), row
        assert row["added_ms"]["n"] > 0
    text = markdown("hops", result, {"date": "now", "machine": _machine(), "command": "x"})
    assert "| round 1 | relay-edge | 2 |" in text

    result = await nodes.cold_joins(chain, opts)
    found = {r["case"]: r for r in result["joins"]}
    assert found["edge (cold)"]["pulls_started"] == [2]  # each join a new pull
    assert found["relay-edge (both cold)"]["pulls_started"] == [2, 2]
    for row in found.values():
        assert row["failed"] == [], row
        assert row["join_ms"]["n"] == 2
