"""RTMP play of channels pushed with codecs FLV cannot carry (browser pushes: VP9, AV1,
Opus): H.264 + Opus plays as video only; VP9 + Opus refuses the player with a status that
says why. Driven with Chromium's MediaRecorder captures through the real hub."""

from __future__ import annotations

from pathlib import Path

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.rtmp_play import RtmpPlayer, frame_rate, rtmp_message
from strom.live.channel import Channel
from strom.live.chunk import Chunk
from strom.media import flv
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.model import Codec, Frame, Track, TrackKind
from strom.media.rtmp import MESSAGE_TYPE_VIDEO, VIDEO_CSID, encode_message
from tests.helpers.hub import FakeSession, FakeTransport

DATA = Path(__file__).resolve().parents[1] / "data"
CHUNK_SIZE = 4096


def _player(drops: list[str]) -> tuple[RtmpPlayer, FakeSession, FakeTransport]:
    session, transport = FakeSession(), FakeTransport()
    player = RtmpPlayer(
        session,  # type: ignore[arg-type]
        1,
        transport,  # type: ignore[arg-type]
        limits=ViewerLimits(),
        chunk_size=CHUNK_SIZE,
        clock=lambda: 0.0,
        on_drop=drops.append,
        label="test",
    )
    return player, session, transport


def _live(events: list[Track | Frame]) -> Channel:
    channel = Channel("browser")
    channel.claim(object())
    for event in events:
        if isinstance(event, Track):
            channel.set_track(event)
        else:
            channel.add_frame(event)
    assert channel.live
    return channel


def test_vp9_and_opus_refuse_the_player_saying_why() -> None:
    channel = _live(WebmDemuxer().feed((DATA / "mediarecorder_vp9_opus.webm").read_bytes()))
    drops: list[str] = []
    player, session, transport = _player(drops)
    channel.subscribe(player)
    (kind, (stream_id, level, code, description)), *_ = session.calls
    assert (kind, stream_id, level, code) == ("status", 1, "error", "NetStream.Play.Failed")
    assert "vp09.00.20.08 + opus" in description
    assert "browser or over HLS" in description
    assert drops == ["cannot play vp09.00.20.08 + opus over RTMP"]
    assert transport.written == []  # the GOP cache is not sent to a refused player


def test_h264_and_opus_play_as_video_only() -> None:
    channel = _live(Mp4Demuxer().feed((DATA / "mediarecorder_h264_opus.mp4").read_bytes()))
    drops: list[str] = []
    player, session, transport = _player(drops)
    channel.subscribe(player)
    assert drops == []
    (_, (_, name, metadata)), (_, header) = session.calls
    assert name == "onMetaData"
    assert "videocodecid" in metadata
    assert "audiocodecid" not in metadata
    assert metadata["framerate"] == frame_rate(channel.gop)
    assert 1 < metadata["framerate"] < 61
    assert header[1] == MESSAGE_TYPE_VIDEO  # one sequence header: the video's
    assert transport.written  # the GOP cache went out
    chunks: list[Chunk] = list(channel.gop)
    for chunk in chunks:
        expected = b"".join(
            encode_message(
                VIDEO_CSID,
                MESSAGE_TYPE_VIDEO,
                1,
                f.dts * 1000 // t.timescale,
                flv.video_frame(f),
                CHUNK_SIZE,
            )
            for t, f in chunk.frames
            if t.kind is TrackKind.VIDEO
        )
        assert rtmp_message(chunk, 1, CHUNK_SIZE) == (expected or None)
    assert any(t.kind is TrackKind.AUDIO for c in chunks for t, _ in c.frames)


def _video_chunk(dts: int, timescale: int = 90_000) -> Chunk:
    track = Track(1, TrackKind.VIDEO, Codec.H264, timescale, b"", "avc1.64001f", 640, 360)
    frame = Frame(1, dts, dts, dts == 0, b"x")
    return Chunk(b"", track, ((track, frame),), dts == 0, dts / timescale, 0.0)


def test_frame_rate_from_the_timestamps() -> None:
    ntsc = [_video_chunk(round(i * 90_000 * 1001 / 30_000)) for i in range(60)]
    assert frame_rate(ntsc) == 29.97
    assert frame_rate([_video_chunk(i * 3000) for i in range(31)]) == 30.0
    assert frame_rate([_video_chunk(0)]) is None  # one frame: no rate yet
    assert frame_rate([]) is None
