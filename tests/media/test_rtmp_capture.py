"""Golden captures: the bytes real ffmpeg 5.1 sent while publishing (see make_rtmp_captures.py)."""

from __future__ import annotations

import pytest

from strom.media.rtmp import (
    ChunkReader,
    ChunkWriter,
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PublishRequest,
    RtmpMessage,
    UnpublishRequest,
    encode_message,
)
from strom.media.rtmp.handshake import HANDSHAKE_SIZE, ServerHandshake
from strom.media.rtmp.messages import MessageType, SetChunkSize
from tests.media.rtmp_replay import DATA, chunk_messages, commands, replay, replay_in_steps

CAPTURES = {
    # file: (audio messages, video messages), sequence headers included
    "ffmpeg_publish.rtmp": (89, 62),
    "ffmpeg_publish_noaudio.rtmp": (0, 62),
}


@pytest.fixture(params=sorted(CAPTURES))
def capture(request: pytest.FixtureRequest) -> tuple[bytes, tuple[int, int]]:
    name = request.param
    return (DATA / name).read_bytes(), CAPTURES[name]


def test_capture_is_small(capture: tuple[bytes, tuple[int, int]]) -> None:
    assert len(capture[0]) < 200_000


def test_ffmpeg_c1_carries_a_scheme_0_digest(capture: tuple[bytes, tuple[int, int]]) -> None:
    handshake = ServerHandshake()
    handshake.receive_data(capture[0][: 1 + HANDSHAKE_SIZE])
    assert handshake.digest_scheme == 0


def test_replay_whole_and_byte_at_a_time(capture: tuple[bytes, tuple[int, int]]) -> None:
    data, (audio_count, video_count) = capture
    whole = replay(data, None)
    assert replay(data, 1) == whole
    assert replay(data, 1000) == whole

    connect = whole[0]
    assert isinstance(connect, ConnectRequest)
    assert connect.app == "live"
    assert connect.tc_url.endswith("/live")
    assert whole[1] == PublishRequest(1, "key", "live")
    metadata = whole[2]
    assert isinstance(metadata, DataMessage)
    assert metadata.name == "onMetaData"
    assert isinstance(metadata.values[0], dict)
    assert metadata.values[0]["width"] == 320.0
    assert metadata.values[0]["height"] == 180.0
    assert whole[-1] == UnpublishRequest(1)

    media = [e for e in whole if isinstance(e, MediaMessage)]
    video = [m for m in media if m.message_type == MessageType.VIDEO]
    audio = [m for m in media if m.message_type == MessageType.AUDIO]
    assert (len(audio), len(video)) == (audio_count, video_count)
    assert len(media) == len(whole) - 4
    assert video[0].payload[0] == 0x17  # keyframe, AVC
    assert video[0].payload[1] == 0  # AVCPacketType 0: sequence header
    if audio:
        assert audio[0].payload[:2] == b"\xaf\x00"  # AAC sequence header
    # Timestamps are decode order per track: never go backwards.
    for track in (video, audio):
        stamps = [m.timestamp for m in track]
        assert stamps == sorted(stamps)
    assert video[-1].timestamp > 1900  # ~2 s of video


def test_command_sequence(capture: tuple[bytes, tuple[int, int]]) -> None:
    sent = commands(capture[0])
    assert [c.name for c in sent] == [
        "connect",
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
        "FCUnpublish",
        "deleteStream",
    ]
    assert sent[4].arguments == ("key", "live")


def reencode(messages: list[RtmpMessage], compress: bool) -> bytes:
    """Every message chunked again, at whatever chunk size is in effect at that point."""
    chunk_size = 128
    writer = ChunkWriter(chunk_size, compress=compress)
    out = bytearray()
    for m in messages:
        if compress:
            writer.chunk_size = chunk_size
            out += writer.write(m.csid, m.message_type, m.stream_id, m.timestamp, m.payload)
        else:
            args = (m.csid, m.message_type, m.stream_id, m.timestamp, m.payload, chunk_size)
            out += encode_message(*args)
        if m.message_type == MessageType.SET_CHUNK_SIZE:
            chunk_size = SetChunkSize.parse(m.payload).size
    return bytes(out)


@pytest.mark.parametrize("compress", [False, True], ids=["type-0 headers", "compressed"])
def test_round_trip_through_encode_message(
    capture: tuple[bytes, tuple[int, int]], compress: bool
) -> None:
    messages = chunk_messages(capture[0])
    assert any(m.message_type == MessageType.SET_CHUNK_SIZE for m in messages)
    data = reencode(messages, compress)
    assert ChunkReader().receive_data(data) == messages
    reader = ChunkReader()
    trickle: list[RtmpMessage] = []
    for i in range(len(data)):
        trickle += reader.receive_data(data[i : i + 1])
    assert trickle == messages


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.rtmp")))
@pytest.mark.parametrize("feed", [None, 1000], ids=["lump", "1000-byte reads"])
def test_real_clients_pass_the_limits_in_bounded_steps(name: str, feed: int | None) -> None:
    """ffmpeg, librtmp (OBS's RTMP code, as GStreamer's rtmpsink) and GStreamer's
    rtmp2sink, read the way the server reads: small pre-publish limits, the default
    chunk size floor, steps of 4 KiB. The same events as one unbounded read."""
    data = (DATA / name).read_bytes()
    assert replay_in_steps(data, 4096, feed) == replay(data, None)
