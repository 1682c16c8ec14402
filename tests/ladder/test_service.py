"""The ladder in the hub, in process with a real worker process: renditions go live as
channels of their own and end with their source; a worker fed faster than it encodes
skips to the next keyframe and says so; past ladder_max a channel gets none."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from strom.ladder import LadderLimits, LadderService
from strom.live.channel import ChannelState
from strom.live.registry import Registry
from strom.media.ladder import Rung
from tests.helpers import make_media
from tests.helpers.hub import feed, read_flv
from tests.helpers.watching import until

LIMITS = LadderLimits(rungs=(Rung(180, 100_000),), preset="ultrafast", max_ladders=1)


class Publisher:
    def disconnect(self, reason: str) -> None:
        return


async def wants(name: str) -> bool:
    return True


async def test_a_flood_skips_to_keyframes_and_the_renditions_end_with_the_source(
    media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = read_flv(make_media(media_dir / "ladder-flood.flv", seconds=4.0, gop=15).path)
    registry = Registry()
    service = LadderService(registry, LIMITS, wants)
    source, publisher = registry.open("alice"), Publisher()
    source.claim(publisher)
    feed(source, items[:40])  # live from its first keyframe
    await until(lambda: "alice" in service.ladders, 20)
    caplog.set_level(logging.WARNING, "strom.ladder")
    feed(source, items[40:])  # 4 s of media at once: far faster than real time
    ladder = service.ladders["alice"]
    assert ladder.dropped > 0
    assert "falls behind real time" in caplog.text
    rendition = registry.get("alice~180p")
    assert rendition is not None
    await until(lambda: rendition.live and rendition.frames_in > 10, 20)
    assert {t.height for t in rendition.tracks.values()} == {180, 0}  # video and audio

    # A second channel finds the one ladder this node allows taken.
    other = registry.open("bob")
    other.claim(Publisher())
    feed(other, items[:40])
    await asyncio.sleep(0.5)
    assert "bob" not in service.ladders
    assert registry.get("bob~180p") is None

    source.release(publisher)
    assert rendition.state is ChannelState.OFFLINE
    await until(lambda: ladder._process.returncode is not None, 10)  # its worker is gone
    await service.stop()
