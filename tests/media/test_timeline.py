"""Exact sample timelines from a publisher's rounded timestamps (SampleClock), and
timestamps that wrap (WrappingClock)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from strom.media.timeline import SampleClock, WrappingClock


def ms_to(timescale: int, ms: int) -> int:
    """A millisecond timestamp in media ticks, rounded down as the muxer converts it."""
    return ms * timescale // 1000


def video_clock() -> SampleClock:
    return SampleClock(90_000, unit=90, first_duration=3000)


def place_all(
    clock: SampleClock, times: list[int], duration: int | None = None
) -> list[tuple[int, int]]:
    return [clock.place(t, duration) for t in times]


def assert_contiguous(placed: list[tuple[int, int]]) -> None:
    for (start, duration), (following, _) in itertools.pairwise(placed):
        assert start + duration == following


@pytest.mark.parametrize(
    ("fps", "spacing"), [(Fraction(30), 3000), (Fraction(30000, 1001), 3003), (Fraction(25), 3600)]
)
def test_rounded_picture_times_become_an_exact_grid(fps: Fraction, spacing: int) -> None:
    # RTMP gives each picture's time in whole milliseconds: 33, 33, 34 ms apart at 30 fps.
    sent = [ms_to(90_000, round(n * 1000 / fps)) for n in range(600)]
    clock = video_clock()
    placed = place_all(clock, sent)
    # (The first picture's duration is a guess, 1/30 s, made before any spacing is seen.)
    assert_contiguous(placed if fps == 30 else placed[1:])
    assert clock.spacing == spacing
    assert {d for _, d in placed[60:]} == {spacing}  # settled within two seconds
    # never further from the publisher's clock than its rounding and the first guesses
    assert max(abs(start - t) for (start, _), t in zip(placed, sent, strict=True)) < spacing // 2


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_aac_frames_last_1024_samples_from_the_first_timestamp_on(rate: int) -> None:
    sent = [ms_to(rate, round(n * 1024 * 1000 / rate)) for n in range(2000)]
    placed = place_all(SampleClock(rate, unit=-(-rate // 1000), first_duration=1024), sent, 1024)
    assert placed == [(n * 1024, 1024) for n in range(2000)]


def test_a_real_gap_reanchors_the_timeline() -> None:
    clock = SampleClock(48_000, unit=48, first_duration=1024)
    sent = [n * 1024 for n in range(5)] + [n * 1024 for n in range(7, 10)]  # two frames lost
    placed = place_all(clock, sent, 1024)
    assert [start for start, _ in placed] == sent  # the gap stays where it was
    assert_contiguous(placed[:5])
    assert_contiguous(placed[5:])


def test_repeats_advance_and_a_restart_passes_through() -> None:
    clock = video_clock()
    # GStreamer's flvmux starts a B-frame stream 0, 0, 0, 33 ms; then the publisher's
    # clock restarts at 0.
    times = [0, 0, 0, 2970, 6030, 9000, 0, 3060]
    starts = [start for start, _ in place_all(clock, times)]
    assert starts == [0, 1, 2, 3002, 6002, 9002, 0, 3000]


def test_composition_offsets_snap_to_the_grid_only_within_rounding() -> None:
    clock = video_clock()
    place_all(clock, [0, 2970, 6030, 9000])
    assert clock.snap_offset(6030) == 6000  # two pictures, rounded to the millisecond
    assert clock.snap_offset(-900) == -900  # 10 ms is not rounding
    assert clock.snap_offset(0) == 0


def test_wrapping_clock_extends_32_bit_milliseconds() -> None:
    clock = WrappingClock(32)
    wrap = 1 << 32
    assert [clock.extend(t) for t in (wrap - 10, 5, wrap - 2, 20)] == [
        wrap - 10, wrap + 5, wrap - 2, wrap + 20
    ]  # fmt: skip
