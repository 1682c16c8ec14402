"""Real media for the benchmark's own tests: a short FLV made by ffmpeg, demuxed and
muxed by Strom's own code, so the parsers are checked against what the server sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.media import TAG_AUDIO, TAG_VIDEO, MediaFile, load_flv
from strom.media.flv import FlvDemuxer
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import Frame, Track
from tests.conftest import make_media


@dataclass(frozen=True)
class Muxed:
    tracks: dict[int, Track]
    frames: list[Frame]
    init: bytes
    chunks: list[bytes]  # one per frame, in order


@pytest.fixture(scope="session")
def bench_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench-media") / "small.flv"
    make_media(path, seconds=3.0, size="320x180", gop=30, bframes=2, bitrate="300k")
    return path


@pytest.fixture(scope="session")
def bench_media(bench_flv: Path) -> MediaFile:
    return load_flv(bench_flv)


@pytest.fixture(scope="session")
def muxed(bench_media: MediaFile) -> Muxed:
    demux = FlvDemuxer()
    tracks: dict[int, Track] = {}
    frames: list[Frame] = []
    for tag in bench_media.tags:
        if tag.tag_type == TAG_VIDEO:
            out = demux.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            out = demux.audio(tag.timestamp, tag.payload)
        else:
            continue
        for item in out:
            if isinstance(item, Track):
                tracks[item.id] = item
            else:
                frames.append(item)
    muxer = FragmentMuxer(sorted(tracks.values(), key=lambda t: t.id))
    chunks = [muxer.add_frame(f) for f in frames]
    return Muxed(tracks, frames, muxer.init_segment(), chunks)
