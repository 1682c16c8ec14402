"""Choosing a clip's segments: whole GOPs, the asked length or at most one GOP more,
ending where the viewer is; refusals for an empty recording and far-apart keyframes."""

from __future__ import annotations

import pytest

from strom.record.clips import ClipRefused, pick
from strom.record.storage import Segment


def gops(*durations: float) -> tuple[Segment, ...]:
    return tuple(
        Segment(seq=i, start=100.0 + sum(durations[:i]), duration=d, bytes=1000, init=1,
                discontinuity=False)
        for i, d in enumerate(durations)
    )  # fmt: skip


def test_the_last_seconds_of_a_live_recording() -> None:
    cut = pick(gops(*[2.0] * 20), 30.0, None, 60.0)  # 40 s recorded
    assert (cut.start, cut.duration) == (10.0, 30.0)
    assert [s.seq for s in cut.segments] == list(range(5, 20))


def test_an_end_inside_a_gop_takes_that_gop_and_starts_at_the_keyframe_before() -> None:
    cut = pick(gops(*[2.0] * 20), 10.0, 21.0, 60.0)
    assert (cut.start, cut.duration) == (10.0, 12.0)  # 10..22: covers 11..21
    exact = pick(gops(*[2.0] * 20), 10.0, 20.0, 60.0)
    assert (exact.start, exact.duration) == (10.0, 10.0)


def test_a_recording_shorter_than_asked_is_clipped_whole() -> None:
    cut = pick(gops(2.0, 2.0, 1.5), 30.0, None, 60.0)
    assert (cut.start, cut.duration) == (0.0, 5.5)
    assert pick(gops(2.0, 2.0), 30.0, 999.0, 60.0).duration == 4.0


def test_refusals_say_why() -> None:
    with pytest.raises(ClipRefused) as empty:
        pick((), 30.0, None, 60.0)
    assert (empty.value.http_status, empty.value.extra["code"]) == (409, "empty")
    with pytest.raises(ClipRefused) as sparse:
        pick(gops(600.0), 30.0, None, 60.0)  # one keyframe in ten minutes
    assert sparse.value.extra["code"] == "keyframes"
