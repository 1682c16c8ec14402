"""The CMAF muxer: box-level checks, then real decoders (ffmpeg, Chromium MSE) on its output."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from strom.errors import LocalProtocolError, ProtocolError
from strom.media import tracks
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.flv import TAG_AUDIO, TAG_VIDEO, FlvDemuxer, FlvReader
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import (
    AUDIO_TRACK_ID,
    VIDEO_TRACK_ID,
    Codec,
    Frame,
    Track,
    TrackKind,
    mime_type,
)
from strom.record.thumbnails import render_thumbnail
from tests.helpers import make_media, need_tool
from tests.helpers.fmp4 import AUDIO, AVCC, VIDEO, _tfdt, parse_chunk, root
from tests.media.container_media import DATA, encode, mux, tracks_of
from tests.media.hevc_records import PPS, SPS, VPS, hvcc

# -- a tiny ISO BMFF box walker ------------------------------------------------------------


# -- box-level checks with hand-made tracks ------------------------------------------------

SYNC, NON_SYNC = 0x02000000, 0x01010000


def test_init_segment_structure() -> None:
    init = root(FragmentMuxer([VIDEO, AUDIO]).init_segment())
    assert [b.kind for b in init.children] == [b"ftyp", b"moov"]
    moov = init.one("moov")
    assert [b.kind for b in moov.children] == [b"mvhd", b"trak", b"trak", b"mvex"]
    assert struct.unpack_from(">I", moov.one("mvhd").payload, 96)[0] == 3  # next_track_ID
    video, audio = moov.find("trak")
    for trak, track_id, handler, timescale in (
        (video, 1, b"vide", 90000),
        (audio, 2, b"soun", 44100),
    ):
        assert struct.unpack_from(">I", trak.one("tkhd").payload, 12)[0] == track_id
        assert trak.one("mdia/hdlr").payload[8:12] == handler
        assert struct.unpack_from(">I", trak.one("mdia/mdhd").payload, 12)[0] == timescale
        for empty in ("stts", "stsc", "stco"):
            assert trak.one(f"mdia/minf/stbl/{empty}").payload == bytes(8)
    assert struct.unpack_from(">II", video.one("tkhd").payload, 76) == (320 << 16, 180 << 16)
    avc1 = video.one("mdia/minf/stbl/stsd/avc1")
    assert struct.unpack_from(">HH", avc1.payload, 24) == (320, 180)
    assert avc1.one("avcC").payload == AVCC
    mp4a = audio.one("mdia/minf/stbl/stsd/mp4a")
    channels, bits, _, _, rate = struct.unpack_from(">HHHHI", mp4a.payload, 16)
    assert (channels, bits, rate >> 16) == (2, 16, 44100)
    assert mp4a.one("esds").payload.endswith(b"\x05\x02\x12\x10\x06\x01\x02")  # ASC, SL
    trex_ids = [struct.unpack_from(">I", t.payload, 4)[0] for t in moov.find("mvex/trex")]
    assert trex_ids == [1, 2]


def test_chunks_carry_an_exact_timeline_and_increasing_sequence_numbers() -> None:
    muxer = FragmentMuxer([VIDEO, AUDIO])
    frames = [  # millisecond times, as RTMP gives them: 30 fps video, 44.1 kHz AAC
        Frame(VIDEO_TRACK_ID, 0, 67, True, b"\x00\x00\x00\x02\x65\x88"),
        Frame(AUDIO_TRACK_ID, 0, 0, True, b"a" * 300),
        Frame(AUDIO_TRACK_ID, 23, 23, True, b"b" * 301),
        Frame(VIDEO_TRACK_ID, 33, 133, False, b"\x00\x00\x00\x01\x41"),
        Frame(AUDIO_TRACK_ID, 46, 46, True, b"c" * 302),
        Frame(VIDEO_TRACK_ID, 67, 100, False, b"\x00\x00\x00\x01\x01"),
        Frame(VIDEO_TRACK_ID, 100, 90, False, b"\x00\x00\x00\x01\x01"),  # pts before dts
    ]
    samples = [parse_chunk(muxer.add_frame(f)) for f in frames]
    assert [s.sequence for s in samples] == list(range(1, len(frames) + 1))
    assert muxer.sequence_number == len(frames)
    for frame, sample in zip(frames, samples, strict=True):
        assert sample.track_id == frame.track_id
        assert sample.data == frame.data
        assert sample.size == len(frame.data)
        assert sample.flags == (SYNC if frame.keyframe else NON_SYNC)
    video = [s for s in samples if s.track_id == VIDEO_TRACK_ID]
    audio = [s for s in samples if s.track_id == AUDIO_TRACK_ID]
    # 33/34 ms apart is 1/30 s rounded: each picture starts where the previous one ends,
    # on the 1/30 s grid, and B-frames show on it too (a composition offset of -10 ms is
    # no rounding of a frame, so it stays).
    assert [(s.decode_time, s.duration) for s in video] == [
        (0, 3000), (3000, 3000), (6000, 3000), (9000, 3000)
    ]  # fmt: skip
    assert [s.composition_offset for s in video] == [6000, 9000, 3000, -900]
    # An AAC frame is 1024 samples, whatever milliseconds it was sent with.
    assert [(s.decode_time, s.duration) for s in audio] == [(0, 1024), (1024, 1024), (2048, 1024)]


def test_one_chunk_holds_every_track_in_one_fragment() -> None:
    """A video frame and the audio before it are one moof (a traf per track) + one mdat:
    a player that starts at any chunk finds every track's decode time in it."""
    muxer = FragmentMuxer([VIDEO, AUDIO])
    audio = [Frame(AUDIO_TRACK_ID, ms, ms, True, bytes([n]) * 5) for n, ms in enumerate((0, 23))]
    video = Frame(VIDEO_TRACK_ID, 33, 33, True, b"\x00\x00\x00\x01\x65")
    chunk = muxer.add_frames([*audio, video])
    top = root(chunk)
    assert [b.kind for b in top.children] == [b"moof", b"mdat"]
    assert top.children[1].payload == b"".join(f.data for f in (*audio, video))
    moof_size = 8 + len(top.children[0].payload)
    trafs = top.find("moof/traf")
    expected = [(AUDIO_TRACK_ID, 0, [1024, 1024], [5, 5]), (VIDEO_TRACK_ID, 2970, [3000], [5])]
    offset = moof_size + 8
    for traf, (track_id, tfdt, durations, sizes) in zip(trafs, expected, strict=True):
        assert struct.unpack_from(">I", traf.one("tfhd").payload, 4)[0] == track_id
        assert struct.unpack_from(">Q", traf.one("tfdt").payload, 4)[0] == tfdt
        trun = traf.one("trun").payload
        count, data_offset = struct.unpack_from(">Ii", trun, 4)
        assert (count, data_offset) == (len(sizes), offset)
        rows = [struct.unpack_from(">IIIi", trun, 12 + 16 * i) for i in range(count)]
        assert [r[0] for r in rows] == durations
        assert [r[1] for r in rows] == sizes
        offset += sum(sizes)
    assert muxer.last_sample(VIDEO_TRACK_ID) == (2970 / 90_000, 5970 / 90_000)
    assert muxer.sequence_number == 1
    with pytest.raises(LocalProtocolError):  # a track's frames must be consecutive
        muxer.add_frames([audio[0], video, audio[1]])


def test_decode_times_never_go_backwards_when_rounded() -> None:
    muxer = FragmentMuxer([AUDIO])
    times = [_tfdt(root(muxer.add_frame(Frame(2, ms, ms, True, b"x")))) for ms in range(3000)]
    assert times == sorted(times)
    assert times[1000] == 44100


def test_single_track_streams() -> None:
    for track in (VIDEO, AUDIO):
        init = root(FragmentMuxer([track]).init_segment())
        assert len(init.find("moov/trak")) == 1
        assert len(init.find("moov/mvex/trex")) == 1


@pytest.mark.parametrize(
    "tracks",
    [
        pytest.param([], id="no-tracks"),
        pytest.param([VIDEO, VIDEO], id="duplicate-ids"),
        pytest.param(
            [Track(1, TrackKind.AUDIO, Codec.H264, 1000, AVCC, "avc1.64000d")], id="kind-mismatch"
        ),
        pytest.param(
            [Track(1, TrackKind.VIDEO, Codec.H264, 1000, AVCC, "avc1.64000d")], id="no-size"
        ),
    ],
)
def test_unusable_tracks(tracks: list[Track]) -> None:
    with pytest.raises(LocalProtocolError):
        FragmentMuxer(tracks)


# -- VP9, AV1, Opus; VP8 refused ------------------------------------------------------------

VPCC = bytes((0, 20, 0x80, 2, 2, 2, 0, 0))  # profile 0, level 2, 8-bit 4:2:0
AV1C = bytes((0x81, 0x00, 0x0C, 0x00))
DOPS = bytes((0, 2)) + (312).to_bytes(2, "big") + (48000).to_bytes(4, "big") + bytes(3)


def test_vp9_av1_opus_sample_entries() -> None:
    vp9 = tracks.vp9_track(VPCC, 320, 240, 1000)
    av1 = tracks.av1_track(AV1C, 320, 240, 1000)
    audio = tracks.opus_track(DOPS, 1000)
    assert (vp9.codec_string, av1.codec_string, audio.codec_string) == (
        "vp09.00.20.08",
        "av01.0.00M.08",
        "opus",
    )
    for video, entry, config in ((vp9, "vp09", "vpcC"), (av1, "av01", "av1C")):
        init = root(FragmentMuxer([video, audio]).init_segment())
        ftyp = init.one("ftyp").payload
        assert b"Opus" in ftyp[8:]
        assert (b"av01" in ftyp[8:]) is (video is av1)
        video_trak, audio_trak = init.find("moov/trak")
        sample_entry = video_trak.one(f"mdia/minf/stbl/stsd/{entry}")
        assert struct.unpack_from(">HH", sample_entry.payload, 24) == (320, 240)
        box = sample_entry.one(config).payload
        # vpcC is a FullBox (version 1, flags 0); av1C a plain box
        assert box == (b"\x01\x00\x00\x00" + VPCC if video is vp9 else AV1C)
        assert struct.unpack_from(">I", audio_trak.one("mdia/mdhd").payload, 12)[0] == 48000
        opus_entry = audio_trak.one("mdia/minf/stbl/stsd/Opus")
        channels, bits, _, _, rate = struct.unpack_from(">HHHHI", opus_entry.payload, 16)
        assert (channels, bits, rate >> 16) == (2, 16, 48000)
        assert opus_entry.one("dOps").payload == DOPS


def test_hevc_sample_entry() -> None:
    # ISO/IEC 14496-15 8.4.1.1: 'hvc1' with the hvcC as the ingest normalised it.
    track, _ = tracks.hevc_track(hvcc(VPS, SPS, PPS, length_size=2), 1000)
    assert (track.codec_string, track.width, track.height) == ("hvc1.1.6.L60.90", 320, 180)
    init = root(FragmentMuxer([track]).init_segment())
    entry = init.one("moov/trak/mdia/minf/stbl/stsd/hvc1")
    assert struct.unpack_from(">HH", entry.payload, 24) == (320, 180)
    assert entry.one("hvcC").payload == hvcc(VPS, SPS, PPS)  # 4-byte NAL lengths


def test_opus_chunks_count_48khz_samples() -> None:
    muxer = FragmentMuxer([tracks.opus_track(DOPS, 1000)])
    samples = [parse_chunk(muxer.add_frame(Frame(2, ms, ms, True, b"\xfc"))) for ms in (0, 20, 80)]
    assert [s.decode_time for s in samples] == [0, 960, 3840]  # a gap stays a gap
    assert [s.duration for s in samples] == [960, 960, 960]  # the TOC: 20 ms


def test_vp8_cannot_go_in_mp4() -> None:
    with pytest.raises(LocalProtocolError, match=r"VP8.*transcode"):
        FragmentMuxer([tracks.vp8_track(320, 240, 1000)])


def test_frames_the_muxer_cannot_place() -> None:
    muxer = FragmentMuxer([VIDEO])
    with pytest.raises(LocalProtocolError):  # our bug: the hub knows its tracks
        muxer.add_frame(Frame(AUDIO_TRACK_ID, 0, 0, True, b"x"))
    # The publisher's times, unwritable in fMP4: a protocol error ends that publisher.
    for dts, pts in ((-1, 0), (0, 1 << 40), (1 << 62, 1 << 62)):
        with pytest.raises(ProtocolError) as caught:
            muxer.add_frame(Frame(VIDEO_TRACK_ID, dts, pts, True, b"x"))
        assert not isinstance(caught.value, LocalProtocolError)


def test_a_huge_jump_in_decode_time_reanchors_the_timeline() -> None:
    """Found by fuzzing: a 14-hour jump made the sample duration overflow 32 bits."""
    muxer = FragmentMuxer([VIDEO])
    muxer.add_frame(Frame(VIDEO_TRACK_ID, 0, 0, True, b"x"))
    chunk = parse_chunk(muxer.add_frame(Frame(VIDEO_TRACK_ID, 14 * 3_600_000, 14 * 3_600_000,
                                               True, b"x")))  # fmt: skip
    assert chunk.decode_time == 14 * 3600 * 90_000
    assert chunk.duration == 3000


# -- end to end: FLV from ffmpeg -> FlvReader -> FlvDemuxer -> FragmentMuxer -> decoders -----


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need_tool(args[0]), *args[1:]], check=True, capture_output=True, text=True, timeout=120
    )


@dataclass
class Stream:
    source: Path
    tracks: list[Track]
    frames: list[Frame]
    mp4: Path


def _remux(source: Path, mp4: Path, kinds: set[TrackKind]) -> Stream:
    """FlvReader -> FlvDemuxer -> FragmentMuxer over ``source``, keeping tracks of ``kinds``."""
    demuxer = FlvDemuxer()
    tracks: list[Track] = []
    frames: list[Frame] = []
    for tag in FlvReader().feed(source.read_bytes()):
        if tag.tag_type == TAG_VIDEO:
            events = demuxer.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            events = demuxer.audio(tag.timestamp, tag.payload)
        else:
            continue
        tracks += [e for e in events if isinstance(e, Track) and e.kind in kinds]
        frames += [e for e in events if isinstance(e, Frame)]
    kept = {t.id for t in tracks}
    frames = [f for f in frames if f.track_id in kept]
    muxer = FragmentMuxer(tracks)
    mp4.write_bytes(muxer.init_segment() + b"".join(muxer.add_frame(f) for f in frames))
    return Stream(source, tracks, frames, mp4)


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stream]:
    """3 s of 320x180 30 fps H.264 High (-bf 2) + AAC 44.1 kHz, and a video-only take."""
    tmp = tmp_path_factory.mktemp("fmp4")
    av = make_media(tmp / "av.flv", seconds=3, size="320x180").path
    video = make_media(tmp / "video.flv", seconds=3, size="320x180", audio=False).path
    both = {TrackKind.VIDEO, TrackKind.AUDIO}
    return {
        "av": _remux(av, tmp / "av.mp4", both),
        "video-only": _remux(video, tmp / "video.mp4", both),
        "audio-only": _remux(av, tmp / "audio.mp4", {TrackKind.AUDIO}),
    }


def _probe_streams(path: Path) -> dict[str, dict[str, object]]:
    out = _run(
        "ffprobe", "-v", "error", "-count_frames", "-of", "json", "-show_entries",
        "stream=codec_type,codec_name,width,height,nb_read_frames,sample_rate,channels",
        str(path),
    ).stdout  # fmt: skip
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def _video_frame_times(path: Path) -> list[float]:
    out = _run(
        "ffprobe", "-v", "error", "-select_streams", "v", "-of", "json",
        "-show_entries", "frame=best_effort_timestamp_time", "-show_frames", str(path),
    ).stdout  # fmt: skip
    return [float(f["best_effort_timestamp_time"]) for f in json.loads(out)["frames"]]


def _picture_hashes(path: Path) -> list[str]:
    out = _run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-")
    return [line.rsplit(",", 1)[1].strip() for line in out.stdout.splitlines() if line[:1] != "#"]


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["av", "video-only", "audio-only"])
def test_ffmpeg_decodes_the_stream_without_errors(streams: dict[str, Stream], name: str) -> None:
    stream = streams[name]
    decode = _run("ffmpeg", "-v", "error", "-i", str(stream.mp4), "-f", "null", "-")
    assert decode.stderr == ""
    probed = _probe_streams(stream.mp4)
    audio_frames = sum(1 for f in stream.frames if f.track_id == AUDIO_TRACK_ID)
    if name == "audio-only":
        assert set(probed) == {"audio"}
    else:
        video = probed["video"]
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
        assert int(str(video["nb_read_frames"])) == 90
    if name == "video-only":
        assert set(probed) == {"video"}
    else:
        audio = probed["audio"]
        (track,) = (t for t in stream.tracks if t.kind is TrackKind.AUDIO)
        assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == (
            "aac",
            "44100",
            track.channels,
        )
        assert int(str(audio["nb_read_frames"])) == audio_frames > 100


@pytest.mark.e2e
def test_pictures_and_presentation_times_survive_remuxing(streams: dict[str, Stream]) -> None:
    stream = streams["av"]
    assert _picture_hashes(stream.mp4) == _picture_hashes(stream.source)
    times = _video_frame_times(stream.mp4)
    assert times == sorted(times)
    assert len(set(times)) == 90
    # The FLV source has its times in milliseconds (a presentation time is a decode time
    # plus an offset, each rounded); the muxer puts them on the exact 1/30 s grid.
    source = _video_frame_times(stream.source)
    assert all(abs(a - b) < 0.0015 for a, b in zip(times, source, strict=True))
    assert times == [round(round(t * 30) / 30, 6) for t in times]
    first = min(f.pts for f in stream.frames if f.track_id == VIDEO_TRACK_ID)
    assert abs(times[0] - first / 1000) < 0.0015  # B-frames delay the first picture
    assert times[0] > 0


# -- end to end: Chromium's Media Source Extensions -------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MSE_SCRIPT = """async ([b64, mime]) => {
  if (!MediaSource.isTypeSupported(mime)) return {unsupported: true};
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const video = document.createElement('video');
  video.muted = true;
  document.body.appendChild(video);
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise(resolve => source.addEventListener('sourceopen', resolve, {once: true}));
  const buffer = source.addSourceBuffer(mime);
  let error = null;
  buffer.addEventListener('error', () => { error = 'SourceBuffer error'; });
  video.addEventListener('error', () => { error = video.error.message || 'media error'; });
  buffer.appendBuffer(bytes);
  await new Promise(resolve => buffer.addEventListener('updateend', resolve, {once: true}));
  const ranges = [];
  for (let i = 0; i < buffer.buffered.length; i++)
    ranges.push([buffer.buffered.start(i), buffer.buffered.end(i)]);
  await video.play().catch(e => { error = error || String(e); });
  const started = performance.now();
  while (video.currentTime < 0.5 && performance.now() - started < 10000 && !error)
    await new Promise(resolve => setTimeout(resolve, 50));
  return {error, ranges, width: video.videoWidth, height: video.videoHeight,
          playedTo: video.currentTime};
}"""


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")
@pytest.mark.parametrize("name", ["av", "video-only", "audio-only"])
async def test_chromium_mse_plays_the_stream(streams: dict[str, Stream], name: str) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    stream = streams[name]
    mime = mime_type(stream.tracks)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = await browser.new_page()
            await page.set_content("<!doctype html><body></body>")
            data = base64.b64encode(stream.mp4.read_bytes()).decode()
            result = await page.evaluate(MSE_SCRIPT, [data, mime])
        finally:
            await browser.close()
    assert not result.get("unsupported"), f"Chromium does not support {mime}"
    assert result["error"] is None
    (start, end), *rest = result["ranges"]
    assert rest == []
    assert start < 0.1
    assert end > 2.9
    assert result["playedTo"] >= 0.5
    if name != "audio-only":
        assert (result["width"], result["height"]) == (320, 180)


# -- the new codecs reach viewers: Chromium's MSE and the thumbnail decoder ------------------


@pytest.fixture(scope="module")
def browser_streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """2 s streams as a browser or ffmpeg pushes them, demuxed and muxed by Strom: the
    MSE type and the fMP4 file. VP9 and AV1 come with Opus; H.264 + Opus is what
    Chromium's MediaRecorder writes as MP4."""
    tmp = tmp_path_factory.mktemp("fmp4-codecs")
    sources = {
        "vp9+opus": (WebmDemuxer, encode(tmp / "vp9.webm", "vp9", "opus", "-f", "webm")),
        "av1+opus": (WebmDemuxer, encode(tmp / "av1.webm", "av1", "opus", "-f", "webm")),
        "h264+opus": (Mp4Demuxer, DATA / "mediarecorder_h264_opus.mp4"),
    }
    out = {}
    for name, (demuxer, path) in sources.items():
        events = demuxer().feed(path.read_bytes())
        mp4 = mux(events, tmp / f"{name}.mp4")
        out[name] = (mime_type(list(tracks_of(events).values())), mp4)
    return out


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")
async def test_chromium_mse_plays_vp9_av1_and_opus(
    browser_streams: dict[str, tuple[str, Path]],
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    results = {}
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = await browser.new_page()
            await page.set_content("<!doctype html><body></body>")
            for name, (mime, mp4) in browser_streams.items():
                data = base64.b64encode(mp4.read_bytes()).decode()
                results[name] = (mime, await page.evaluate(MSE_SCRIPT, [data, mime]))
        finally:
            await browser.close()
    for name, (mime, result) in results.items():
        assert not result.get("unsupported"), f"Chromium does not support {mime}"
        assert result["error"] is None, name
        (start, end), *rest = result["ranges"]
        assert rest == []
        assert start < 0.15  # MediaRecorder's first audio frame comes ~40 ms in
        assert end > 1.4
        assert result["playedTo"] >= 0.5
        assert (result["width"], result["height"]) == (320, 240)


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["vp9+opus", "av1+opus"])
def test_thumbnails_decode_vp9_and_av1(
    browser_streams: dict[str, tuple[str, Path]], name: str
) -> None:
    """The thumbnail worker decodes an init segment + one keyframe chunk with PyAV."""
    _, mp4 = browser_streams[name]
    data = mp4.read_bytes()
    moov_end = data.index(b"moof") - 4
    picture = render_thumbnail(data[:moov_end] + _first_chunk(data[moov_end:]), width=160,
                               quality=80)  # fmt: skip
    assert (picture.width, picture.height) == (160, 120)
    assert picture.jpeg.startswith(b"\xff\xd8")


def _first_chunk(chunks: bytes) -> bytes:
    """The first moof + mdat of the video track (track 1)."""
    pos = 0
    while pos < len(chunks):
        moof_size = struct.unpack_from(">I", chunks, pos)[0]
        mdat_size = struct.unpack_from(">I", chunks, pos + moof_size)[0]
        chunk = chunks[pos : pos + moof_size + mdat_size]
        if parse_chunk(chunk).track_id == VIDEO_TRACK_ID:
            return chunk
        pos += moof_size + mdat_size
    raise AssertionError("no video chunk")
