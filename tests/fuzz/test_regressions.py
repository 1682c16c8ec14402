"""What fuzzing found, kept: each input replays through the same target as in the
fuzzers (:func:`tests.fuzz.targets.check`), and the fixed behaviour is pinned down.

Inputs too long to read inline are files in ``tests/data/fuzz/crashers/``, named
``TARGET-what-was-wrong``, replayed with the split atheris chose for them
(:func:`~tests.fuzz.targets.derived_split`): copy a crash file from ``.fuzz-crashes/``
there, fix the parser, and this test keeps it fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.errors import CodecError
from strom.media import av1, tracks
from tests.fuzz.targets import TARGETS, check, derived_split

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
