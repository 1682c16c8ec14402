"""The fan-out micro-benchmark measures what it says: every viewer gets every chunk."""

from __future__ import annotations

import pytest

from bench import fanout


async def test_fanout_measures_a_cost_per_chunk_per_viewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[bytes] = []

    class Counting(fanout.NullTransport):
        def __init__(self) -> None:
            super().__init__()
            self.write = writes.append

    monkeypatch.setattr(fanout, "NullTransport", Counting)
    ns = await fanout.measure(viewers=3, chunks=60, size=100, rounds=2)
    assert len(ns) == 2
    assert all(n > 0 for n in ns)
    # Each viewer: the init (a text and a binary message), then every chunk of 2 rounds.
    assert len(writes) == 3 * (2 + 60 * 2)
    assert writes[6] is writes[7] is writes[8]  # one frame object for every viewer
