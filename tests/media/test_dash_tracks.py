"""Single-track views of Strom's multiplexed CMAF (the LL-DASH Representations): the bytes
of each track come out whole and in order, decodable by ffprobe alone, and a segment's
view is the concatenation of its chunks' views (it can grow chunk by chunk)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from strom.media.containers.isobmff import Mp4Error
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.dash.tracks import fragments_for_track, init_for_track
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Frame, Track, TrackKind
from tests.helpers import make_media, need_tool, run_process
from tests.helpers.fmp4 import root
from tests.helpers.hub import read_flv


class Muxed:
    def __init__(self, items: list[Track | Frame]) -> None:
        tracks = [i for i in items if isinstance(i, Track)]
        self.frames = [i for i in items if isinstance(i, Frame)]
        muxer = FragmentMuxer(tracks)
        self.init = muxer.init_segment()
        # As the hub chunks them: the audio held since the last video frame, then it.
        self.chunks: list[bytes] = []
        held: list[Frame] = []
        for frame in self.frames:
            if frame.track_id == VIDEO_TRACK_ID:
                self.chunks.append(muxer.add_frames([*held, frame]))
                held = []
            else:
                held.append(frame)
        if held:
            self.chunks.append(muxer.add_frames(held))


@pytest.fixture(scope="module")
def muxed(tmp_path_factory: pytest.TempPathFactory) -> Muxed:
    media = make_media(tmp_path_factory.mktemp("tracks") / "three.flv", seconds=3.0)
    return Muxed(read_flv(media.path))


def demux(data: bytes) -> list[Track | Frame]:
    return Mp4Demuxer().feed(data)


@pytest.mark.parametrize(
    ("track_id", "kind"), [(VIDEO_TRACK_ID, "video"), (AUDIO_TRACK_ID, "audio")]
)
def test_a_view_holds_its_tracks_samples_alone_byte_for_byte(
    muxed: Muxed, track_id: int, kind: str
) -> None:
    view = init_for_track(muxed.init, track_id) + fragments_for_track(
        b"".join(muxed.chunks), track_id
    )
    out = demux(view)
    tracks = [i for i in out if isinstance(i, Track)]
    assert [t.kind.value for t in tracks] == [kind]
    frames = [i for i in out if isinstance(i, Frame)]
    source = [f for f in muxed.frames if f.track_id == track_id]
    assert [f.data for f in frames] == [f.data for f in source]
    assert [f.keyframe for f in frames] == [f.keyframe for f in source]
    # The timeline is the muxed one's: the same decode times, to the millisecond.
    whole = [f for f in demux(muxed.init + b"".join(muxed.chunks)) if isinstance(f, Frame)]
    assert [round(f.dts) for f in frames] == [round(f.dts) for f in whole if f.track_id == track_id]


def test_a_view_is_the_concatenation_of_its_chunks_views(muxed: Muxed) -> None:
    whole = fragments_for_track(b"".join(muxed.chunks[:40]), VIDEO_TRACK_ID)
    pieces = b"".join(fragments_for_track(c, VIDEO_TRACK_ID) for c in muxed.chunks[:40])
    assert whole == pieces
    assert fragments_for_track(memoryview(b"".join(muxed.chunks[:40])), VIDEO_TRACK_ID) == whole


def test_the_view_of_a_fragment_without_the_track_is_empty(muxed: Muxed) -> None:
    video_only = next(
        c for c in muxed.chunks if not fragments_for_track(c, AUDIO_TRACK_ID)
    )  # a video frame with no audio held before it
    assert fragments_for_track(video_only, VIDEO_TRACK_ID)


def test_the_view_keeps_one_traf_and_points_its_trun_at_the_new_mdat(muxed: Muxed) -> None:
    chunk = next(c for c in muxed.chunks if fragments_for_track(c, AUDIO_TRACK_ID))
    assert len(root(chunk).one("moof").find("traf")) == 2
    data = fragments_for_track(chunk, AUDIO_TRACK_ID)
    moof, mdat = root(data).children
    moof_size = struct.unpack_from(">I", data)[0]
    assert [c.kind for c in moof.children] == [b"mfhd", b"traf"]
    assert moof.one("mfhd").payload == root(chunk).one("moof").one("mfhd").payload
    trun = moof.one("traf/trun").payload
    assert struct.unpack_from(">i", trun, 8)[0] == moof_size + 8
    count = struct.unpack_from(">I", trun, 4)[0]
    sizes = [struct.unpack_from(">I", trun, 12 + 16 * i + 4)[0] for i in range(count)]
    assert len(mdat.payload) == sum(sizes)


def test_the_init_keeps_one_trak_and_its_trex(muxed: Muxed) -> None:
    init = root(init_for_track(muxed.init, AUDIO_TRACK_ID))
    assert [b.kind for b in init.children] == [b"ftyp", b"moov"]
    moov = init.one("moov")
    assert [b.kind for b in moov.children] == [b"mvhd", b"trak", b"mvex"]
    assert struct.unpack_from(">I", moov.one("mvex/trex").payload, 4)[0] == AUDIO_TRACK_ID
    with pytest.raises(Mp4Error, match="no track 7"):
        init_for_track(muxed.init, 7)


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[:-3],  # the mdat cut short
        lambda c: c[: struct.unpack_from(">I", c)[0]],  # no mdat at all
        lambda c: c[:24] + b"\xff\xff\xff\xff" + c[28:],  # a traf past its moof
    ],
)
def test_damaged_fragments_are_refused(muxed: Muxed, damage: object) -> None:
    assert callable(damage)
    with pytest.raises(Mp4Error):
        fragments_for_track(damage(muxed.chunks[5]), VIDEO_TRACK_ID)


async def test_ffprobe_reads_each_view_as_a_file_of_one_stream(
    muxed: Muxed, tmp_path: Path
) -> None:
    found = {}
    for track_id in (VIDEO_TRACK_ID, AUDIO_TRACK_ID):
        path = tmp_path / f"track{track_id}.mp4"
        path.write_bytes(
            init_for_track(muxed.init, track_id)
            + fragments_for_track(b"".join(muxed.chunks), track_id)
        )
        code, out = await run_process(
            need_tool("ffprobe"), "-v", "error", "-of", "json", "-count_frames",
            "-show_entries", "stream=codec_type,nb_read_frames", str(path),
        )  # fmt: skip
        assert code == 0, out
        (stream,) = json.loads(out)["streams"]
        found[stream["codec_type"]] = int(stream["nb_read_frames"])
    kinds = {VIDEO_TRACK_ID: TrackKind.VIDEO, AUDIO_TRACK_ID: TrackKind.AUDIO}
    assert found == {kinds[t].value: sum(1 for f in muxed.frames if f.track_id == t) for t in kinds}
