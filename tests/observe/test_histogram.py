"""The histogram kept as plain numbers: an observation on a bucket's bound counts in that
bucket (Prometheus's ``le``), past the last bound in ``+Inf``, and the cumulative form is
what a scraper reads."""

from __future__ import annotations

import pytest

from strom.observe.histogram import Histogram


def test_buckets_are_cumulative_with_le_bounds() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        h.observe(value)
    assert h.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert h.count == 5
    assert h.sum == pytest.approx(8.65)
    assert h.as_dict() == {
        "count": 5,
        "sum": 8.65,
        "buckets": {"0.1": 2, "1.0": 4, "+Inf": 5},
    }


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increase"):
        Histogram((1.0, 0.5))
