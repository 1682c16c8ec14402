"""What fuzzing found, kept: each input replays through the same target as in the
fuzzers (:func:`tests.fuzz.targets.check`), and the fixed behaviour is pinned down.

Inputs too long to read inline are files in ``tests/data/fuzz/crashers/``, named
``TARGET-what-was-wrong``, replayed with the split atheris chose for them
(:func:`~tests.fuzz.targets.derived_split`): copy a crash file from ``.fuzz-crashes/``
there, fix the parser, and this test keeps it fixed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from strom.errors import CodecError
from strom.media import av1, tracks
from strom.media.rtmp import ConnectRequest, PlayRequest, encode_message
from strom.media.rtmp.messages import Command
from tests.fuzz import seeds
from tests.fuzz.targets import TARGETS, check, derived_split, run

CRASHERS = Path(__file__).resolve().parents[1] / "data" / "fuzz" / "crashers"


@pytest.mark.parametrize("path", sorted(CRASHERS.iterdir()), ids=lambda p: p.name)
def test_crasher_file(path: Path) -> None:
    data = path.read_bytes()
    check(TARGETS[path.name.split("-")[0]], data, derived_split(data))


#: An old-style AAC CodecID (A_AAC/MPEG4/LC) whose SamplingFrequency is +inf.
WEBM_AAC_RATE_INF = bytes.fromhex(
    "1a45dfa3874282847765626d1853806701ffffffffffffff1654ae6ba7aea5d78101838102868e415f"
    "4141432f4d504547342f4c43e18db5887ff00000000000009f8101"
)

#: (target, input, split) found by fuzzing or by review, small enough to read.
INLINE = [
    # av1.parse_sequence_header(b"") indexed the OBU header byte: IndexError (fuzzing).
    pytest.param("av1", b"", (), id="av1-empty-obu"),
    # int(inf) for the rate's table index: OverflowError (review).
    pytest.param("webm", WEBM_AAC_RATE_INF, (), id="webm-aac-sampling-frequency-inf"),
]


@pytest.mark.parametrize(("target", "data", "split"), INLINE)
def test_crasher(target: str, data: bytes, split: tuple[int, ...]) -> None:
    check(TARGETS[target], data, split)


def test_empty_av1_obu_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        av1.parse_sequence_header(b"")


@pytest.mark.parametrize(("width", "height"), [(0, 240), (320, 0), (65536, 240), (320, 1 << 33)])
def test_video_tracks_the_hub_cannot_carry_are_codec_errors(width: int, height: int) -> None:
    """VP9 4096x65536 (webm), H.264 1088x2^33 from an SPS (mpegts, flv_stream)."""
    with pytest.raises(CodecError):
        tracks.vp8_track(width, height, 1000)


# -- RTMP (found by review; confirmed through the fuzz targets, which 20 minutes of atheris
# with the RTMP dictionary did not reach: the values sit in particular command arguments)


def _commands(*commands: tuple[Command, int]) -> bytes:
    """A client's handshake (from a capture), then ``commands`` on their message streams."""
    out = seeds.rtmp_handshakes()[0]
    for command, stream_id in commands:
        out += encode_message(3 if not stream_id else 8, 20, stream_id, 0, bytes(command), 128)
    return out


CONNECT = Command("connect", 1.0, {"app": "live"})


@pytest.mark.parametrize(
    "data",
    [
        # int(NaN / inf) of the connect's objectEncoding: ValueError / OverflowError.
        _commands((Command("connect", 1.0, {"app": "live", "objectEncoding": math.nan}), 0)),
        _commands((Command("connect", 1.0, {"app": "live", "objectEncoding": math.inf}), 0)),
        # int(inf) of deleteStream's stream id: OverflowError.
        _commands((CONNECT, 0), (Command("deleteStream", 0, None, (-math.inf,)), 0)),
        # publish, closeStream, play in one packet: accepting the publish found the stream
        # play-pending and raised LocalProtocolError out of the ingest's publish task.
        _commands(
            (CONNECT, 0),
            (Command("createStream", 2.0), 0),
            (Command("publish", 0, None, ("key",)), 1),
            (Command("closeStream", 0), 1),
            (Command("play", 0, None, ("key",)), 1),
        ),
    ],
    ids=["object-encoding-nan", "object-encoding-inf", "delete-stream-inf", "publish-close-play"],
)
def test_rtmp_session_crashers(data: bytes) -> None:
    check(TARGETS["rtmp_session"], data, ())
    check(TARGETS["rtmp_session"], data, (1,))
    out, error = run(TARGETS["rtmp_session"], data, ())
    assert error is None
    assert isinstance(out[0], ConnectRequest)


def test_rtmp_session_answers_the_request_the_peer_made_last() -> None:
    data = _commands(
        (CONNECT, 0),
        (Command("createStream", 2.0), 0),
        (Command("publish", 0, None, ("key",)), 1),
        (Command("closeStream", 0), 1),
        (Command("play", 0, None, ("key",)), 1),
    )
    out, _ = run(TARGETS["rtmp_session"], data, ())
    assert PlayRequest(1, "key") in out


@pytest.mark.parametrize("stream_id", [math.nan, math.inf, 1e12, 0.0])
def test_rtmp_client_refuses_a_stream_id_that_is_not_32_bits(stream_id: float) -> None:
    """int(NaN / inf) and a 1e12 id that no chunk header can carry: ValueError,
    OverflowError, OverflowError from the client's publish."""
    handshake = seeds.rtmp_server_replies()[0][: seeds.RTMP_HANDSHAKE_BYTES]
    connected = Command("_result", 1.0, None, ({"code": "NetConnection.Connect.Success"},))
    created = Command("_result", 4.0, None, (stream_id,))  # createStream is transaction 4
    head = handshake + encode_message(3, 20, 0, 0, bytes(connected), 128)
    data = head + encode_message(3, 20, 0, 0, bytes(created), 128)
    check(TARGETS["rtmp_client"], data, (len(head), 1000))  # publish between the two
    assert run(TARGETS["rtmp_client"], data, (len(head), 1000))[1] == "RtmpError"
