"""Fixtures shared by the whole suite: test media made by real ffmpeg, and a real Strom
server on loopback (random ports), stopped by the test. The helpers they are built from
live in :mod:`tests.helpers`; tests import those from there, never from a conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strom.server import StromServer
from tests.helpers import MediaFile, make_media, make_settings
from tests.helpers.priority import no_raised_priority_for_children


def pytest_configure(config: pytest.Config) -> None:
    no_raised_priority_for_children()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def av_media(media_dir: Path) -> MediaFile:
    """4 s of 640x360 30 fps H.264 High with B-frames + AAC."""
    return make_media(media_dir / "av.flv")


@pytest.fixture(scope="session")
def video_only_media(media_dir: Path) -> MediaFile:
    return make_media(media_dir / "video.flv", audio=False, seconds=3.0)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
