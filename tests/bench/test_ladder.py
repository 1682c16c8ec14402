"""The ladder scenario's verdict: every rendition of every source at its source's rate."""

from __future__ import annotations

from bench.__main__ import build_parser, options
from bench.ladder import keeps_up


def test_a_ladderkeeps_up_when_each_rendition_has_its_source_rate() -> None:
    fps = {"a": 30.0, "a~720p": 29.9, "a~480p": 30.0, "a~360p": 29.0}
    assert keeps_up(fps, ["a"])
    assert not keeps_up({**fps, "a~480p": 24.0}, ["a"])  # it skipped frames
    assert not keeps_up({k: v for k, v in fps.items() if k != "a~360p"}, ["a"])
    assert not keeps_up(fps, [])


def test_the_ladder_steps_are_an_option() -> None:
    args = build_parser().parse_args(["ladder", "--ladder-steps", "1,3"])
    assert options(args).ladder_steps == (1, 3)
