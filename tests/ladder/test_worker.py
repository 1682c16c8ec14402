"""The ladder's worker: a source decoded once and encoded per rung, IDRs where the
source has them; in process, and as the real process the hub starts (bytes in, bytes
out over its pipes)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from strom.ingest.transcode import H264Encoder
from strom.ladder.config import WorkerConfig
from strom.ladder.worker import LadderEncoder
from strom.media import frame_pipe, h264
from strom.media.flv import TAG_VIDEO, FlvDemuxer, FlvReader
from strom.media.ladder import Rung
from strom.media.model import Frame, Track
from tests.helpers.enhanced_rtmp import write_flv
from tests.media.pictures import make_picture

CONFIG = WorkerConfig((Rung(180, 150_000), Rung(144, 80_000)), preset="ultrafast")


def source(frames: int = 25, every: int = 10) -> tuple[Track, list[Frame]]:
    """A 320x180 H.264 source with an IDR every ``every`` frames."""
    encoder = H264Encoder(timescale=1000, bitrate=300_000, preset="ultrafast")
    out: list[Track | Frame] = []
    for i in range(frames):
        picture = make_picture(320, 180, index=i)
        picture.pts = i * 40
        out += encoder.encode(picture, keyframe=i % every == 0)
    track = out[0]
    assert isinstance(track, Track)
    return track, [f for f in out if isinstance(f, Frame)]


def test_every_rung_has_its_size_and_the_source_keyframes() -> None:
    track, frames = source()
    ladder = LadderEncoder(CONFIG)
    ladder.set_track(track)
    out = [item for f in frames for item in ladder.add_frame(f)]
    for lane, height in ((0, 180), (1, 144)):
        items = [item for n, item in out if n == lane]
        first = items[0]
        assert isinstance(first, Track)
        assert (first.width, first.height) == ({180: 320, 144: 256}[height], height)
        assert h264.parse_avcc(first.config).height == height
        encoded = [f for f in items if isinstance(f, Frame)]
        assert [f.pts for f in encoded if f.keyframe] == [0, 400, 800]  # the source's IDRs
        assert [f.pts for f in encoded] == [f.pts for f in frames]  # every picture, in order


def test_a_broken_frame_is_skipped_up_to_the_next_keyframe() -> None:
    track, frames = source()
    ladder = LadderEncoder(CONFIG)
    ladder.set_track(track)
    frames[3] = Frame(1, frames[3].dts, frames[3].pts, False, b"\x00\x00\x00\x02\x41\xff")
    out = [item for f in frames for item in ladder.add_frame(f) if item[0] == 0]
    pts = [i.pts for _, i in out if isinstance(i, Frame)]
    assert 400 in pts  # decoding went on from the next keyframe
    assert len(pts) >= len(frames) - 10


async def test_the_worker_process_speaks_the_pipe_format() -> None:
    track, frames = source(frames=12)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "strom.ladder.worker", CONFIG.to_json(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    wire = frame_pipe.encode(track) + b"".join(frame_pipe.encode(f) for f in frames)
    async with asyncio.timeout(30):
        out, _ = await process.communicate(wire)
    assert process.returncode == 0  # it ends with its stdin
    messages = frame_pipe.PipeReader().feed(out)
    for lane in (0, 1):
        got = [m.item for m in messages if m.lane == lane]
        assert isinstance(got[0], Track)
        assert sum(isinstance(i, Frame) for i in got) == len(frames)


@pytest.mark.parametrize("video", ["libx265", "libsvtav1"])
def test_hevc_and_av1_sources_get_h264_rungs(tmp_path: Path, video: str) -> None:
    # What Enhanced RTMP brings (PyAV's FFmpeg writes it), as Strom's demuxer reads it.
    clip = tmp_path / "source.flv"
    write_flv(str(clip), video, seconds=1.0)
    demuxer = FlvDemuxer()
    items = [
        item
        for tag in FlvReader().feed(clip.read_bytes())
        if tag.tag_type == TAG_VIDEO
        for item in demuxer.video(tag.timestamp, tag.payload)
    ]
    [track] = [i for i in items if isinstance(i, Track)]
    frames = [i for i in items if isinstance(i, Frame)]
    ladder = LadderEncoder(CONFIG)
    ladder.set_track(track)
    out = [item for f in frames for item in ladder.add_frame(f) if item[0] == 1]
    first = out[0][1]
    assert isinstance(first, Track)
    assert first.codec_string.startswith("avc1.")
    assert (first.width, first.height) == (192, 144)  # 320x240 scaled to the 144p rung
    encoded = [f for _, f in out if isinstance(f, Frame)]
    assert len(encoded) >= len(frames) - 5  # every picture (a decoder may hold a few)
    assert ladder.errors == 0
