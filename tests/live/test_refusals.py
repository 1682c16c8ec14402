"""The last publish refusal per channel: what the dashboard shows, bounded."""

from __future__ import annotations

from strom.ingest.rtmp_publish import declared_size
from strom.live.refusals import MAX_REASON, PublishRefusals, Refusal
from strom.live.registry import Registry
from tests.helpers import MediaFile
from tests.helpers.hub import feed, read_flv


def test_last_refusal_until_the_channel_goes_live() -> None:
    refusals = PublishRefusals(clock=lambda: 12.5)
    refusals.note("alice", "unknown codec")
    refusals.note("alice", "channel alice is already live")
    assert refusals.last("alice") == Refusal("channel alice is already live", 12.5)
    assert refusals.last("bob") is None
    refusals.accepted("alice")
    assert refusals.last("alice") is None


def test_bounded_in_channels_and_length() -> None:
    refusals = PublishRefusals(max_channels=2)
    for name in ("a", "b", "c"):
        refusals.note(name, "x" * (MAX_REASON + 50))
    assert refusals.last("a") is None
    last = refusals.last("c")
    assert last is not None
    assert len(last.reason) == MAX_REASON


def test_declared_size_believes_only_sane_numbers() -> None:
    assert declared_size({"width": 1280.0, "height": 720.0}) == (1280, 720)
    for meta in ({}, {"width": "1280", "height": 720.0}, {"width": float("nan"), "height": 1.0},
                 {"width": 1e9, "height": 720.0}, {"width": -1.0, "height": 720.0}):  # fmt: skip
        assert declared_size(meta) == (0, 0)  # type: ignore[arg-type]


def test_the_registry_forgets_a_refusal_once_the_channel_is_live(av_media: MediaFile) -> None:
    registry = Registry()
    registry.refusals.note("alice", "unsupported video codec 'vp09'")
    channel = registry.open("alice")
    channel.claim(object())
    assert registry.refusals.last("alice") is not None  # claimed, not yet live
    feed(channel, read_flv(av_media.path)[:40])
    assert channel.live
    assert registry.refusals.last("alice") is None
