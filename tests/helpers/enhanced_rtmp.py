"""Enhanced RTMP publishers made with PyAV's FFmpeg (8.x: its FLV muxer writes the
extended header for HEVC, AV1 and Opus, which Debian's ffmpeg 5 cannot)."""

from __future__ import annotations

import asyncio
import sys
import time
from fractions import Fraction
from typing import TYPE_CHECKING

import av

from tests.helpers.media import run_process
from tests.helpers.servers import STREAM_KEY
from tests.media.pictures import make_picture

if TYPE_CHECKING:
    from strom.server import StromServer

#: fast presets: a few hundred milliseconds of encoding for a test clip
VIDEO_OPTIONS = {
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error:keyint=30"},
    "libsvtav1": {"preset": "12", "svtav1-params": "keyint=30"},
}
FPS = 30


def write_flv(
    target: str,
    video: str,
    audio: str | None = None,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 240),
    realtime: bool = False,
) -> int:
    """Encode ``seconds`` of a moving ramp with ``video`` (``libx265``, ``libsvtav1``)
    and silence with ``audio`` (``libopus``, ``aac``) into FLV at ``target``: a file or
    ``rtmp://...`` (then ``realtime`` paces frames as a live encoder would). Returns the
    number of video frames written."""

    out = av.open(target, "w", format="flv")
    try:
        stream = out.add_stream(video, rate=FPS, options=VIDEO_OPTIONS.get(video, {}))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        sound = out.add_stream(audio, rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        frames = int(seconds * FPS)
        samples = 960 if audio == "libopus" else 1024
        audio_pts = 0
        start = time.monotonic()
        for i in range(frames):
            picture = make_picture(*size, index=i)
            picture.pts, picture.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(picture):
                out.mux(packet)
            while sound is not None and audio_pts * FPS <= i * 48000:
                chunk = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
                for plane in chunk.planes:
                    plane.update(bytes(plane.buffer_size))
                chunk.sample_rate, chunk.pts = 48000, audio_pts
                audio_pts += samples
                for packet in sound.encode(chunk):
                    out.mux(packet)
            if realtime:
                time.sleep(max(0.0, start + (i + 1) / FPS - time.monotonic()))
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            for packet in sound.encode(None):
                out.mux(packet)
    finally:
        out.close()
    return frames


def publish_args(rtmp_port: int, video: str, audio: str, seconds: float, key: str) -> list[str]:
    """A process publishing in real time (for :func:`tests.helpers.run_process`): PyAV
    holds the GIL while it waits on its socket, so it cannot share a process with the
    server it publishes to."""
    url = f"rtmp://127.0.0.1:{rtmp_port}/live/{key}"
    return [sys.executable, "-m", "tests.helpers.enhanced_rtmp", url, video, audio, str(seconds)]


def publish(
    server: StromServer, video: str, audio: str, seconds: float
) -> asyncio.Task[tuple[int, str]]:
    """PyAV publishing to ``server`` in real time, in a process of its own."""
    args = publish_args(server.rtmp_port, video, audio, seconds, STREAM_KEY)
    return asyncio.create_task(run_process(*args, timeout=seconds + 30))


async def published(task: asyncio.Task[tuple[int, str]]) -> int:
    """The frames the publisher wrote, once it is done."""
    code, out = await task
    assert code == 0, out
    return int(out.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    url, video, audio, seconds = argv
    print(write_flv(url, video, audio, seconds=float(seconds), realtime=True))
    return 0


if __name__ == "__main__":
    av.logging.set_level(av.logging.ERROR)
    sys.exit(main(sys.argv[1:]))
