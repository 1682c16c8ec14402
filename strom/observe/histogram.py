"""A histogram of seconds kept as plain numbers: bucket counts, a sum and a count.

It is what Prometheus calls a histogram (cumulative ``le`` buckets, ``_sum``,
``_count``), filled without prometheus-client on the path that observes: one
``bisect`` and three additions per observation, no allocation. ``/metrics`` renders it
at scrape time (:mod:`strom.observe.prometheus`), ``/api/v1/stats`` shows
:meth:`Histogram.as_dict`.
"""

from __future__ import annotations

from bisect import bisect_left

#: from a few milliseconds (a part already there) to the spec's longest blocking wait
#: (three target durations: seconds)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Observations counted into buckets with upper bounds ``bounds`` (seconds), plus
    one past the last bound (``+Inf``)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = WAIT_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must increase")
        self.bounds = bounds
        #: observations per bucket (not cumulative), the last one past every bound
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound falls in that bound's bucket (``le``)
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)``, ending with ``+Inf``: the
        buckets as Prometheus exposes them."""
        total = 0
        out = []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "sum": round(self.sum, 6),
            "buckets": {_label(b): n for b, n in self.cumulative()},
        }


def _label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
