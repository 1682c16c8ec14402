"""Stream health: the frame rate is the media's, over a window of its timestamps, and the
dashboard warns when far fewer frames arrive than the streamer chose."""

from __future__ import annotations

import pytest

from strom.channels.directory import Directory
from strom.live.channel import ChannelState
from strom.live.registry import Registry
from strom.live.stats import StreamStats, declared_fps
from strom.media.model import Codec, Frame, Track, TrackKind
from strom.record.thumbnails import ThumbnailWorker

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"", "avc1.64001f", 320, 180)


def frames(fps: float, seconds: float, start: float = 0.0) -> list[Frame]:
    count = round(fps * seconds)
    return [
        Frame(
            1, round((start + i / fps) * 1000), round((start + i / fps) * 1000), i % 60 == 0, b"x"
        )
        for i in range(count)
    ]


def test_a_30_fps_source_arriving_in_bursts_reads_30() -> None:
    stats = StreamStats(now=0.0, window=5.0)
    # 30 fps media, but it arrives in bursts (a network hiccup, then a catch-up): what
    # reached the server in 5 s of wall time is 5.25 s of media; the rate is still 30.
    now = 0.0
    for i, frame in enumerate(frames(30, 12)):
        now = i / 30 if i < 150 else 5.0 + (i - 150) / 40
        stats.add(frame, VIDEO, now)
    assert stats.fps == pytest.approx(30.0, abs=0.05)


def test_the_rate_follows_the_last_window_of_media() -> None:
    # A file pushed at twice real time (ffmpeg without -re): 30 fps, then 20 fps media.
    stats = StreamStats(now=0.0, window=5.0)
    for frame in frames(30, 10):
        stats.add(frame, VIDEO, frame.dts / 2000)
    assert stats.fps == pytest.approx(30.0, abs=0.05)
    for frame in frames(20, 20, start=10.0):  # the encoder falls behind
        stats.add(frame, VIDEO, frame.dts / 2000)
    assert stats.fps == pytest.approx(20.0, abs=0.05)


def test_a_new_timeline_starts_the_window_over() -> None:
    stats = StreamStats(now=0.0, window=5.0)
    for frame in frames(30, 3, start=100.0):
        stats.add(frame, VIDEO, 0.0)
    for frame in frames(25, 2):  # a publisher whose clock starts at 0
        stats.add(frame, VIDEO, 0.0)
    assert stats.fps == pytest.approx(25.0, abs=0.05)


def test_declared_rates_are_plausible_numbers_only() -> None:
    assert declared_fps(30) == 30.0
    assert declared_fps(29.97) == 29.97
    for bad in (None, "30", True, 0, -5, 10_000, float("nan"), float("inf")):
        assert declared_fps(bad) is None


def live_channel(fps: float, chosen: float | None) -> Directory:
    registry = Registry()
    channel = registry.open("alice")
    channel.tracks = {1: VIDEO}
    channel.state = ChannelState.LIVE
    channel.stats.declared_fps = chosen
    for frame in frames(fps, 6):
        channel.stats.add(frame, VIDEO, frame.dts / 1000)
    return Directory(registry, None, ThumbnailWorker(registry))  # type: ignore[arg-type]


def test_the_dashboard_warns_when_far_fewer_frames_arrive_than_chosen() -> None:
    health = live_channel(19.9, 30).health("alice")
    assert health["fps"] == 19.9
    assert health["chosen_fps"] == 30
    assert "Only 19.9 of the 30 frames per second you chose reach the server" in " ".join(
        health["warnings"]
    )
    # 24 of a chosen 25 is fine; without a chosen rate, 24 is fine too.
    assert live_channel(24, 25).health("alice")["warnings"] == []
    assert live_channel(24, None).health("alice")["warnings"] == []
