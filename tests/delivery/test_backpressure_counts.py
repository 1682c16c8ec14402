"""A delivery's counts of its slow viewers (``/metrics``): the backpressure gate counts a
viewer falling behind once (a skip), every chunk it does not get while skipping, and a
drop; every viewer of the delivery adds to the same counts."""

from __future__ import annotations

from strom.delivery.backpressure import BackpressureGate, DeliveryCounts, Verdict, ViewerLimits
from strom.live.chunk import Chunk
from strom.media.model import Track, TrackKind


def _chunk(keyframe: bool) -> Chunk:
    track = Track(1, TrackKind.VIDEO, codec=None, timescale=1000, config=b"", codec_string="")  # type: ignore[arg-type]
    return Chunk(b"x", track, (), keyframe, 0.0, 0.0)


def test_skips_skipped_chunks_and_drops_are_counted() -> None:
    counts = DeliveryCounts()
    limits = ViewerLimits(skip_bytes=100, drop_bytes=1000, drop_seconds=5)
    gate = BackpressureGate(limits, lambda: 0.0, counts)
    other = BackpressureGate(limits, lambda: 0.0, counts)
    assert gate.admit(_chunk(True), 0) is Verdict.SEND
    assert gate.admit(_chunk(False), 150) is Verdict.SKIP  # fell behind
    assert gate.admit(_chunk(False), 0) is Verdict.SKIP  # waits for the next keyframe
    assert gate.admit(_chunk(True), 0) is Verdict.SEND  # caught up
    assert counts.as_dict() == {"bytes_sent": 0, "drops": 0, "skipped_chunks": 2, "skips": 1}
    assert other.admit(_chunk(True), 1001) is Verdict.DROP
    assert counts.drops == 1
