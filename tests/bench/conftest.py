"""Real media for the benchmark's own tests: a short FLV made by ffmpeg, demuxed and
muxed by Strom's own code, so the parsers are checked against what the server sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.media import MediaFile, load_flv
from tests.helpers import make_media
from tests.helpers.muxed import Muxed, mux


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
    return mux(bench_media)
