"""A recorded live broadcast without a publisher: real ffmpeg media fed to a real node's
hub at once, written by its real recorder (the clips tests cut from it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from strom.live.channel import Channel
from strom.record import storage
from strom.server import StromServer
from tests.helpers.hub import feed, read_flv
from tests.helpers.media import MediaFile, make_media

#: seconds between the long media's keyframes
GOP = 2.0


def long_media(path: Path) -> MediaFile:
    """40 s of small H.264 + AAC, a keyframe every 2 s."""
    return make_media(path, seconds=40.0, size="320x180", gop=60, bitrate="200k")


def go_live(server: StromServer, name: str, media: MediaFile) -> Channel:
    """``name`` live on ``server`` with all of ``media`` given to its hub."""
    channel = server.registry.open(name)
    channel.claim(object())  # type: ignore[arg-type]
    feed(channel, read_flv(media.path))
    return channel


async def recorded(server: StromServer, name: str, seconds: float) -> storage.RecordingInfo:
    """``name``'s live recording once its writer wrote all it was given (at least
    ``seconds`` of closed segments)."""
    async with asyncio.timeout(15):
        while True:
            await asyncio.sleep(0.1)
            writing = server.recorder.recording_of(name)
            found = storage.list_recordings(server.recorder.root, name)
            if writing and not writing.pending and found and found[0].duration >= seconds:
                return found[0]
