"""Reading a py-spy collapsed-stacks profile: own and total time per function."""

from __future__ import annotations

from bench.profile import summarize_collapsed

ROOT = "<module> (strom/__main__.py:4);run (asyncio/runners.py:118)"
PUBLISH = ROOT + ";_publish (strom/live/channel.py:250)"
RAW = f"""\
{PUBLISH};on_chunk (strom/delivery/ws.py:120) 60
{PUBLISH};admit (strom/delivery/backpressure.py:60) 20
{ROOT};select (selectors.py:468) 20
garbage line
"""


def test_own_and_total_percentages() -> None:
    out = summarize_collapsed(RAW)
    assert out["samples"] == 100
    own = dict(out["own"])
    assert own["on_chunk (delivery/ws.py)"] == 60.0
    assert own["admit (delivery/backpressure.py)"] == 20.0
    assert own["select (selectors.py)"] == 20.0
    total = dict(out["total"])
    assert total["_publish (live/channel.py)"] == 80.0
    assert "run (asyncio/runners.py)" not in total  # on every stack: no information
    assert summarize_collapsed("") == {}
