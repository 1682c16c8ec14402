"""Which renditions a node that does not ingest a channel pulls for its master playlist
and MPD (strom.delivery.ladder_master.LadderFollower)."""

from __future__ import annotations

from strom.delivery.ladder_master import LadderFollower
from strom.live.registry import Registry
from strom.media.model import Codec, Frame, Track, TrackKind

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"", "avc1.64001f", 640, 360)
KEYFRAME = Frame(1, 0, 0, True, b"x")


async def test_an_edge_wants_the_channels_renditions_live_elsewhere() -> None:
    touched: list[str] = []
    elsewhere = ["alice", "alice~480p", "alice~360p", "alicex~480p", "bob~480p"]
    now = [0.0]

    async def touch(name: str) -> None:
        touched.append(name)

    registry = Registry()
    follower = LadderFollower(registry, lambda: elsewhere, touch, 2.0, clock=lambda: now[0])
    await follower.follow("alice")  # not here yet: pulled
    assert touched == ["alice~480p", "alice~360p"]
    touched.clear()
    registry.open("alice").origin = "http://a.example:8080"  # pulled from A
    await follower.follow("alice")
    assert touched == ["alice~480p", "alice~360p"]
    touched.clear()
    # The live map's snapshot is read again after the refresh time, not before.
    elsewhere.append("alice~720p")
    await follower.follow("alice")
    assert touched == ["alice~480p", "alice~360p"]
    touched.clear()
    now[0] = 2.0
    await follower.follow("alice")
    assert touched == ["alice~480p", "alice~360p", "alice~720p"]
    touched.clear()
    bob = registry.open("bob")  # ingested here: its ladder is here too
    bob.claim(object())  # type: ignore[arg-type]
    bob.set_track(VIDEO)
    bob.add_frame(KEYFRAME)
    assert bob.live
    await follower.follow("bob")
    assert touched == []
