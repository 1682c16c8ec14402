"""The ladder in the hub, in process with a real worker process: renditions go live as
channels of their own, wait with their source when its publisher drops and go on with
it, and end with it; past ladder_max a channel gets none; a worker that falls behind
real time skips to the next keyframe and says so."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from strom.ladder import LadderLimits, LadderService
from strom.live.channel import ChannelState
from strom.live.registry import Registry
from strom.media.ladder import Rung
from strom.media.model import Frame, Track
from tests.helpers import make_media
from tests.helpers.hub import feed, read_flv
from tests.helpers.watching import until

LIMITS = LadderLimits(rungs=(Rung(180, 100_000),), preset="ultrafast", max_ladders=1)


class Publisher:
    def disconnect(self, reason: str) -> None:
        return


async def wants(name: str) -> bool:
    return True


@pytest.fixture
def items(media_dir: Path) -> list[Track | Frame]:
    return read_flv(make_media(media_dir / "ladder-service.flv", seconds=3.0, gop=15).path)


async def test_renditions_live_wait_and_end_with_their_source(items: list[Track | Frame]) -> None:
    registry = Registry()
    # The media comes in bursts here, not in real time: a loaded machine's worker may
    # be seconds behind without skipping (skipping is the next test's).
    service = LadderService(registry, dataclasses.replace(LIMITS, max_lag=60.0), wants)
    source, publisher = registry.open("alice"), Publisher()
    source.claim(publisher)
    feed(source, items[:40])  # live from its first keyframe
    await until(lambda: "alice" in service.ladders, 20)
    ladder = service.ladders["alice"]
    feed(source, items[40:])
    rendition = registry.get("alice~180p")
    assert rendition is not None
    await until(lambda: rendition.live and rendition.frames_in > 30, 20)
    assert {t.height for t in rendition.tracks.values()} == {180, 0}  # video and audio

    # A second channel finds the one ladder this node allows taken.
    other = registry.open("bob")
    other.claim(Publisher())
    feed(other, items[:40])
    await asyncio.sleep(0.5)
    assert "bob" not in service.ladders
    assert registry.get("bob~180p") is None

    # The publisher drops: the rendition waits with its source, and goes on with it.
    source.publisher_lost(publisher)
    assert rendition.state is ChannelState.RECONNECTING
    publisher = Publisher()
    source.claim(publisher)
    before = rendition.frames_in
    feed(source, items[:60])
    await until(lambda: rendition.live and rendition.frames_in > before + 30, 20)
    assert rendition.broadcast_id == 1  # the same broadcast

    source.release(publisher)
    assert rendition.state is ChannelState.OFFLINE
    await until(lambda: ladder._process.returncode is not None, 10)  # its worker is gone
    await service.stop()


async def test_a_worker_behind_real_time_skips_to_keyframes(
    items: list[Track | Frame], caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    # Any frame still in the worker a millisecond after it was sent counts as behind.
    service = LadderService(registry, dataclasses.replace(LIMITS, max_lag=0.001), wants)
    source, publisher = registry.open("alice"), Publisher()
    source.claim(publisher)
    feed(source, items[:40])
    await until(lambda: "alice" in service.ladders, 20)
    caplog.set_level(logging.WARNING, "strom.ladder")
    for start in range(40, len(items), 10):
        feed(source, items[start : start + 10])
        await asyncio.sleep(0.01)
    ladder = service.ladders["alice"]
    assert ladder.dropped > 0
    assert "falls behind real time" in caplog.text
    rendition = registry.get("alice~180p")
    assert rendition is not None
    await until(lambda: rendition.live, 20)  # from the keyframes that got through
    source.release(publisher)
    await service.stop()
