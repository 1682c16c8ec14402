"""The MP4 of a broadcast whose streamer came back at another resolution: one file that
plays through both, each part at its own size (in-band parameter sets)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.containers import ContainerKind, FlvStreamDemuxer, open_demuxer, sniff
from strom.media.model import VIDEO_TRACK_ID, Frame
from strom.record import storage
from strom.record.recorder import Recorder, RecorderSettings
from strom.record.remux import remux
from tests.helpers import MediaFile, make_media
from tests.helpers.watching import decode

pytestmark = pytest.mark.e2e


class Publisher:
    def disconnect(self, reason: str) -> None:
        raise AssertionError("not stopped by anyone here")


def publish(channel: Channel, media: MediaFile) -> None:
    for item in FlvStreamDemuxer().feed(media.path.read_bytes()):
        if isinstance(item, Frame):
            channel.add_frame(item)
        else:
            channel.set_track(item)


async def test_mp4_plays_through_a_resolution_change(tmp_path: Path) -> None:
    small = make_media(tmp_path / "small.flv", seconds=2.0, size="320x180")
    big = make_media(tmp_path / "big.flv", seconds=2.0, size="640x360")
    registry = Registry()
    root = tmp_path / "recordings"
    recorder = Recorder(registry, root, RecorderSettings())
    await recorder.start()
    channel = registry.open("alice")
    first, second = Publisher(), Publisher()
    channel.claim(first)
    publish(channel, small)
    channel.publisher_lost(first)  # the encoder dropped ...
    channel.claim(second)  # ... and came back within the grace, at another size
    publish(channel, big)
    channel.release(second)
    await recorder.stop()

    [info] = storage.list_recordings(root, "alice")
    assert len({s.init for s in info.segments}) == 2  # one recording, two init segments
    out = tmp_path / "out.mp4"
    remux(info.path, info.segments, out)

    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == small.frames + big.frames
    with av.open(str(out)) as container:
        sizes = [(f.width, f.height) for f in container.decode(video=0)]
    assert sizes[0] == (320, 180)
    assert sizes[-1] == (640, 360)
    assert sizes.count((320, 180)) == small.frames


DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(
    "capture",
    ["mediarecorder_vp9_opus.webm", "mediarecorder_av1_opus.webm", "mediarecorder_h264_opus.mp4"],
)
async def test_mp4_of_a_browser_broadcast(tmp_path: Path, capture: str) -> None:
    """What a browser sends (VP9/AV1/H.264 with Opus, pushed through /ingest) is recorded
    and downloads as an MP4 that decodes with every video frame."""
    items = open_demuxer(sniff((DATA / capture).read_bytes()[:4096]) or ContainerKind.WEBM).feed(
        (DATA / capture).read_bytes()
    )
    registry = Registry()
    root = tmp_path / "recordings"
    recorder = Recorder(registry, root, RecorderSettings())
    await recorder.start()
    channel = registry.open("alice")
    streamer = Publisher()
    channel.claim(streamer)
    for item in items:
        if isinstance(item, Frame):
            channel.add_frame(item)
        else:
            channel.set_track(item)
    channel.release(streamer)
    await recorder.stop()

    [info] = storage.list_recordings(root, "alice")
    out = tmp_path / "out.mp4"
    remux(info.path, info.segments, out)
    frames, errors = await decode(str(out))
    assert errors == ""
    video = [i for i in items if isinstance(i, Frame) and i.track_id == VIDEO_TRACK_ID]
    first_key = next(n for n, f in enumerate(video) if f.keyframe)
    assert frames == len(video) - first_key
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert container.streams.audio[0].codec_context.name == "opus"
