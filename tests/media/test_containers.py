"""Sniffing a pushed stream's container and opening its demuxer: every kind, real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.errors import LimitExceeded
from strom.media.containers import ContainerKind, open_demuxer, sniff
from strom.media.model import TrackKind
from tests.helpers import make_media
from tests.media.container_media import DATA, encode, feed, frames_of, probe, tracks_of


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[ContainerKind, Path]:
    tmp = tmp_path_factory.mktemp("containers")
    return {
        ContainerKind.FLV: make_media(tmp / "av.flv", seconds=2, size="320x240").path,
        ContainerKind.MPEGTS: encode(tmp / "av.ts", "h264", "aac", "-f", "mpegts"),
        ContainerKind.WEBM: DATA / "mediarecorder_vp8_opus.webm",
        ContainerKind.MP4: DATA / "mediarecorder_h264_opus.mp4",
    }


@pytest.mark.e2e
@pytest.mark.parametrize("kind", list(ContainerKind))
def test_sniffed_kind_opens_a_demuxer_that_reads_it(
    files: dict[ContainerKind, Path], kind: ContainerKind
) -> None:
    data = files[kind].read_bytes()
    assert sniff(data[:4096]) is kind
    events = feed(open_demuxer(kind), data, "random-3")
    probed = probe(files[kind])
    tracks = tracks_of(events)
    assert set(tracks) == {TrackKind.VIDEO, TrackKind.AUDIO}
    for track_kind, track in tracks.items():
        assert len(frames_of(events, track)) == len(probed[track_kind].packets)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", list(ContainerKind))
def test_max_size_bounds_every_demuxer(
    files: dict[ContainerKind, Path], kind: ContainerKind
) -> None:
    with pytest.raises(LimitExceeded):
        open_demuxer(kind, max_size=200).feed(files[kind].read_bytes())


@pytest.mark.parametrize(
    "prefix",
    [b"", b"FL", b"\x1a\x45", b"\x00\x00\x00\x18ftyp"[:7], b"G" + bytes(300), b"RIFF....WAVE"],
)
def test_unknown_or_too_short_prefixes(prefix: bytes) -> None:
    assert sniff(prefix) is None


def test_ts_needs_three_sync_bytes() -> None:
    packet = b"\x47" + bytes(187)
    assert sniff(packet * 2 + b"\x47") is ContainerKind.MPEGTS
    assert sniff(packet * 2) is None
    assert sniff(packet + b"\x00" + bytes(187) + b"\x47") is None
