"""The JPEG header reader: real pictures (PyAV's mjpeg encoder), and hostile bytes."""

from __future__ import annotations

import pytest

from strom.errors import CodecError
from strom.media.jpeg import parse_jpeg_header
from tests.media.pictures import make_jpeg


@pytest.mark.parametrize(("width", "height"), [(64, 48), (321, 17), (1280, 720)])
def test_size_of_real_pictures(width: int, height: int) -> None:
    info = parse_jpeg_header(make_jpeg(width, height))
    assert (info.width, info.height) == (width, height)
    assert info.components == 3
    assert info.process == 0  # baseline


def test_fill_bytes_and_standalone_markers_are_skipped() -> None:
    data = make_jpeg(32, 16)
    # FF fill bytes before the first segment marker (T.81 B.1.1.2), and a stray RST0.
    padded = data[:2] + b"\xff\xd0" + b"\xff\xff" + data[2:]
    assert parse_jpeg_header(padded).width == 32


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no SOI"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "no SOI"),
        (b"\xff\xd8", "truncated"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated"),
        (b"\xff\xd8\xff\xe0\x00\x01", "truncated"),
        (b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00", "before its frame header"),
        (b"\xff\xd8\xff\xd9", "before its frame header"),
        (b"\xff\xd8\x00\x00\x00\x00", "marker expected"),
        # SOF0 with height 0 (left to a DNL segment) and a 2-component SOF
        (b"\xff\xd8\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x01\x01\x11\x00", "no size"),
        (b"\xff\xd8\xff\xc0\x00\x0e\x08\x00\x10\x00\x10\x02" + b"\x01\x11\x00" * 2, "2 comp"),
        (b"\xff\xd8\xff\xc0\x00\x08\x08\x00\x10\x00\x10\x03", "truncated"),
    ],
)
def test_not_a_picture_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        parse_jpeg_header(data)


def test_every_truncation_of_a_real_header_is_refused_or_read() -> None:
    data = make_jpeg(48, 32)
    for end in range(len(data) + 1):
        try:
            info = parse_jpeg_header(data[:end])
        except CodecError:
            continue
        assert (info.width, info.height) == (48, 32)
