"""Golden captures of GStreamer 1.22 publishing (see tests/data/make_rtmp_captures.py):
``rtmpsink`` is librtmp, the code OBS's RTMP output derives from; ``rtmp2sink`` is
GStreamer's own RTMP client. Both send 60 frames of x264 (B-frames) and 2 s of AAC."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from strom.media.flv import FlvDemuxer
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track
from strom.media.rtmp import (
    ChunkReader,
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PublishRequest,
    RtmpServerSession,
    ServerEvent,
    UnpublishRequest,
)
from strom.media.rtmp.handshake import HANDSHAKE_SIZE, RTMP_VERSION, ServerHandshake
from strom.media.rtmp.messages import Command, MessageType, SetChunkSize
from tests.helpers import need_tool
from tests.helpers.fmp4 import AUDIO, VIDEO, parse_chunk
from tests.media.rtmp_replay import DATA, HANDSHAKE_BYTES, chunk_messages, commands, replay


@dataclass(frozen=True)
class Capture:
    file: str
    #: (command name, transaction id) in wire order
    commands: list[tuple[str, float]]
    delete_stream_arguments: tuple[object, ...]
    #: protocol control messages the client sent: (message type, payload)
    control: list[tuple[int, bytes]]
    #: flvmux sends onMetaData again whenever a value (here the audio bitrate) changes
    metadata: int


CAPTURES = {
    "rtmpsink": Capture(
        "gst_rtmpsink_publish.rtmp",
        [
            ("connect", 1),
            ("releaseStream", 2),
            ("FCPublish", 3),
            ("createStream", 4),
            ("publish", 5),
            ("FCUnpublish", 6),
            ("deleteStream", 7),
        ],
        delete_stream_arguments=(1.0,),
        control=[],  # librtmp publishes with 128-byte chunks and announces nothing
        metadata=23,
    ),
    "rtmp2sink": Capture(
        "gst_rtmp2sink_publish.rtmp",
        # Only connect and createStream expect a _result; the rest use transaction 0.
        [
            ("connect", 1),
            ("releaseStream", 0),
            ("FCPublish", 0),
            ("createStream", 2),
            ("publish", 0),
            ("FCUnpublish", 0),
            ("deleteStream", 0),
        ],
        delete_stream_arguments=("key",),  # the stream name, not its id
        control=[
            (MessageType.WINDOW_ACK_SIZE, (2_500_000).to_bytes(4, "big")),
            (MessageType.SET_CHUNK_SIZE, bytes(SetChunkSize(128))),
        ],
        metadata=22,
    ),
}
VIDEO_FRAMES = 60
AUDIO_FRAMES = 86  # 2 s of 1024-sample AAC frames at 44.1 kHz
VIDEO_MESSAGES = 1 + VIDEO_FRAMES + 1  # sequence header, frames, end of sequence
AUDIO_MESSAGES = 1 + AUDIO_FRAMES  # AudioSpecificConfig, frames


@pytest.fixture(params=sorted(CAPTURES))
def capture(request: pytest.FixtureRequest) -> tuple[bytes, Capture]:
    info = CAPTURES[request.param]
    return (DATA / info.file).read_bytes(), info


def test_capture_is_small(capture: tuple[bytes, Capture]) -> None:
    assert len(capture[0]) < 100_000


def test_handshake_is_plain_and_s2_echoes_c1(capture: tuple[bytes, Capture]) -> None:
    # Neither client signs C1: librtmp (and OBS's copy of it) does the Flash Player 9
    # digest handshake only for SWF verification or RTMPE; rtmp2sink never does.
    data = capture[0]
    c1 = data[1 : 1 + HANDSHAKE_SIZE]
    assert data[0] == RTMP_VERSION
    assert c1[4:8] == bytes(4)  # zero version: plain (spec 5.2.3)
    handshake = ServerHandshake(random_bytes=bytes)
    assert handshake.receive_data(data[: 1 + HANDSHAKE_SIZE]) == b""
    assert handshake.digest_scheme is None
    s0_s1_s2 = handshake.data_to_send()
    assert s0_s1_s2[0] == RTMP_VERSION
    assert s0_s1_s2[5:9] == bytes(4)  # our S1 is plain too, so librtmp stays plain
    assert s0_s1_s2[1 + HANDSHAKE_SIZE :] == c1  # librtmp warns when S2 is not C1


def test_replay_whole_and_byte_at_a_time(capture: tuple[bytes, Capture]) -> None:
    data, info = capture
    whole = replay(data, None)
    assert replay(data, 1) == whole
    assert replay(data, 1000) == whole

    connect = whole[0]
    assert isinstance(connect, ConnectRequest)
    assert connect.app == "live"
    assert connect.tc_url.startswith("rtmp://127.0.0.1:")
    assert connect.tc_url.endswith("/live")
    assert whole[1] == PublishRequest(1, "key", "live")
    assert whole[-1] == UnpublishRequest(1)

    metadata = [e for e in whole if isinstance(e, DataMessage)]
    assert len(metadata) == info.metadata
    assert {m.name for m in metadata} == {"onMetaData"}  # @setDataFrame unwrapped
    values = metadata[0].values[0]
    assert isinstance(values, dict)
    assert (values["width"], values["height"], values["framerate"]) == (320.0, 180.0, 30.0)
    assert (values["videocodecid"], values["audiocodecid"]) == (7.0, 10.0)  # AVC, AAC

    media = [e for e in whole if isinstance(e, MediaMessage)]
    video = [m for m in media if m.message_type == MessageType.VIDEO]
    audio = [m for m in media if m.message_type == MessageType.AUDIO]
    assert (len(video), len(audio)) == (VIDEO_MESSAGES, AUDIO_MESSAGES)
    assert len(media) + len(metadata) == len(whole) - 3
    assert video[0].payload[:2] == b"\x17\x00"  # keyframe, AVC sequence header
    assert video[-1].payload[:2] == b"\x17\x02"  # AVC end of sequence
    assert audio[0].payload[:2] == b"\xaf\x00"  # AAC sequence header
    for track in (video, audio):
        stamps = [m.timestamp for m in track]
        assert stamps == sorted(stamps)
    # flvmux clamps the negative decode times of the first B-frames to 0: three video
    # frames share DTS 0 (see test_repeated_decode_times_move_on_by_one_tick).
    assert [m.timestamp for m in video[1:5]] == [0, 0, 0, 33]


def test_command_sequence(capture: tuple[bytes, Capture]) -> None:
    data, info = capture
    sent = commands(data)
    assert [(c.name, c.transaction_id) for c in sent] == info.commands
    assert sent[4].arguments == ("key", "live")
    assert sent[6].arguments == info.delete_stream_arguments
    control = [
        (m.message_type, m.payload)
        for m in chunk_messages(data)
        if m.message_type in (MessageType.SET_CHUNK_SIZE, MessageType.WINDOW_ACK_SIZE)
    ]
    assert control == info.control


def answer(data: bytes, step: int = 4096) -> bytes:
    """What a server accepting the connect and the publish sends back to the capture."""
    session = RtmpServerSession(random_bytes=bytes)
    out = bytearray()
    for i in range(0, len(data), step):
        events: list[ServerEvent] = session.receive_data(data[i : i + step])
        for event in events:
            if isinstance(event, ConnectRequest):
                session.accept_connect()
            elif isinstance(event, PublishRequest):
                session.accept_publish(event.stream_id)
        out += session.data_to_send()
    return bytes(out)


def test_each_client_gets_the_answers_it_waits_for(capture: tuple[bytes, Capture]) -> None:
    data, info = capture
    replies = [
        (m.stream_id, Command.parse(m.payload))
        for m in ChunkReader().receive_data(answer(data)[HANDSHAKE_BYTES:])
        if m.message_type == MessageType.COMMAND_AMF0
    ]
    results = {c.transaction_id: c.arguments for _, c in replies if c.name == "_result"}
    # A _result for every request with a transaction id, but none for deleteStream
    # (spec 7.2.2.3) nor publish, which is answered by onStatus.
    wanted = {t for name, t in info.commands if t and name not in ("publish", "deleteStream")}
    assert set(results) == wanted
    info_object = results[1.0][0]
    assert isinstance(info_object, dict)
    assert info_object["code"] == "NetConnection.Connect.Success"
    create_stream = next(t for name, t in info.commands if name == "createStream")
    assert results[create_stream] == (1.0,)  # the stream id publish then uses
    statuses = [(sid, c.arguments[0]) for sid, c in replies if c.name == "onStatus"]
    assert len(statuses) == 1
    stream_id, status = statuses[0]
    assert stream_id == 1
    assert isinstance(status, dict)
    assert status["code"] == "NetStream.Publish.Start"


# -- the media: FlvDemuxer -> FragmentMuxer -> real ffmpeg --------------------------------


def demux(data: bytes) -> tuple[list[Track], list[Frame]]:
    demuxer = FlvDemuxer()
    tracks: list[Track] = []
    frames: list[Frame] = []
    for event in replay(data, None):
        if not isinstance(event, MediaMessage):
            continue
        if event.message_type == MessageType.VIDEO:
            items = demuxer.video(event.timestamp, event.payload)
        else:
            items = demuxer.audio(event.timestamp, event.payload)
        tracks += [i for i in items if isinstance(i, Track)]
        frames += [i for i in items if isinstance(i, Frame)]
    assert demuxer.skipped_frames == 0
    return tracks, frames


def mux(tracks: list[Track], frames: list[Frame]) -> bytes:
    muxer = FragmentMuxer(tracks)
    return muxer.init_segment() + b"".join(muxer.add_frame(f) for f in frames)


def test_frames_demux(capture: tuple[bytes, Capture]) -> None:
    tracks, frames = demux(capture[0])
    video, audio = tracks
    assert (video.codec, video.codec_string, video.width, video.height) == (
        Codec.H264,
        "avc1.64000d",  # High profile, level 1.3
        320,
        180,
    )
    assert (audio.codec, audio.codec_string, audio.sample_rate, audio.channels) == (
        Codec.AAC,
        "mp4a.40.2",
        44100,
        1,
    )
    counts = [sum(f.track_id == t for f in frames) for t in (VIDEO_TRACK_ID, AUDIO_TRACK_ID)]
    assert counts == [VIDEO_FRAMES, AUDIO_FRAMES]
    assert sum(f.keyframe for f in frames if f.track_id == VIDEO_TRACK_ID) == 2  # GOP 30


def test_repeated_decode_times_move_on_by_one_tick() -> None:
    """Regression: a repeated DTS made ffmpeg's mp4 reader drop the GStreamer stream's
    2nd and 3rd frames. Decode times now advance by one 90 kHz tick; pictures keep
    their presentation times."""
    muxer = FragmentMuxer([VIDEO, AUDIO])
    frames = [  # GStreamer's start: I (pts 0), P (pts 100), B (pts 33), B (pts 67)...
        Frame(VIDEO_TRACK_ID, 0, 0, True, b"\x00\x00\x00\x01\x65"),
        Frame(VIDEO_TRACK_ID, 0, 100, False, b"\x00\x00\x00\x01\x41"),
        Frame(VIDEO_TRACK_ID, 0, 33, False, b"\x00\x00\x00\x01\x01"),
        Frame(AUDIO_TRACK_ID, 0, 0, True, b"a"),  # other tracks keep their own times
        Frame(VIDEO_TRACK_ID, 33, 67, False, b"\x00\x00\x00\x01\x01"),
        Frame(VIDEO_TRACK_ID, 67, 200, False, b"\x00\x00\x00\x01\x41"),
    ]
    samples = [parse_chunk(muxer.add_frame(f)) for f in frames]
    video = [s for s in samples if s.track_id == VIDEO_TRACK_ID]
    # The repeats move on by a tick; then the stream is back on its 1/30 s grid.
    assert [s.decode_time for s in video] == [0, 1, 2, 3002, 6002]
    assert [s.duration for s in video] == [3000] * 5
    # Pictures keep their order and (to the publisher's millisecond) their times.
    shown = [s.decode_time + s.composition_offset for s in video]
    sent = [f.pts * 90 for f in frames if f.track_id == VIDEO_TRACK_ID]
    assert sorted(range(5), key=shown.__getitem__) == sorted(range(5), key=sent.__getitem__)
    assert all(abs(a - b) <= 90 for a, b in zip(shown, sent, strict=True))
    assert [s.decode_time for s in samples if s.track_id == AUDIO_TRACK_ID] == [0]


def test_a_decode_time_that_goes_back_is_passed_through() -> None:
    # A publisher restarting its clock: not a repeat, so not moved (it would squeeze
    # everything after it into one-tick steps).
    muxer = FragmentMuxer([VIDEO])
    times = [
        parse_chunk(muxer.add_frame(Frame(VIDEO_TRACK_ID, ms, ms, True, b"\x00"))).decode_time
        for ms in (1000, 1033, 0, 33)
    ]
    assert times == [90_000, 93_000, 0, 3000]


def probe(path: Path) -> dict[str, int]:
    """Frames of each stream that ffprobe decodes (codec type -> count)."""
    out = subprocess.run(
        [
            need_tool("ffprobe"), "-v", "error", "-count_frames", "-of", "json",
            "-show_entries", "stream=codec_type,nb_read_frames", str(path),
        ],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(out)["streams"]}


@pytest.mark.e2e
def test_ffmpeg_decodes_every_frame(capture: tuple[bytes, Capture], tmp_path: Path) -> None:
    mp4 = tmp_path / "gst.mp4"
    mp4.write_bytes(mux(*demux(capture[0])))
    decode = subprocess.run(
        [need_tool("ffmpeg"), "-v", "error", "-i", str(mp4), "-f", "null", "-"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0
    assert decode.stderr == ""
    assert probe(mp4) == {"video": VIDEO_FRAMES, "audio": AUDIO_FRAMES}
