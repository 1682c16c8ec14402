"""Pictures a peer sends (``strom.media.picture``): format and size from the header
bytes, before any decoder sees them; real pictures made by FFmpeg's encoders, and hand
made headers for each WebP flavour."""

from __future__ import annotations

import pytest

from strom.errors import CodecError
from strom.media.picture import parse_picture_header, picture_codec
from tests.media.pictures import make_jpeg, make_still


def test_real_pictures_are_known_by_their_signature_and_size() -> None:
    for data, codec in (
        (make_jpeg(64, 32), "mjpeg"),
        (make_still("png", 160, 96), "png"),
        (make_still("libwebp", 160, 96), "webp"),
    ):
        info = parse_picture_header(data)
        assert info.codec == codec
        assert picture_codec(data) == codec
    assert parse_picture_header(make_still("png", 160, 96)).width == 160
    assert parse_picture_header(make_still("libwebp", 160, 96)).height == 96


def riff(chunk: bytes) -> bytes:
    return b"RIFF" + (len(chunk) + 4).to_bytes(4, "little") + b"WEBP" + chunk


def test_each_webp_flavour_says_its_size() -> None:
    # VP8X (extended): canvas width - 1 and height - 1 in 24 bits each
    vp8x = riff(b"VP8X" + (10).to_bytes(4, "little") + bytes(4) + (639).to_bytes(3, "little")
                + (359).to_bytes(3, "little"))  # fmt: skip
    assert (parse_picture_header(vp8x).width, parse_picture_header(vp8x).height) == (640, 360)
    # VP8L (lossless): signature 0x2f, then 14-bit width - 1 and height - 1
    bits = (320 - 1) | ((200 - 1) << 14)
    vp8l = riff(b"VP8L" + (5).to_bytes(4, "little") + b"\x2f" + bits.to_bytes(4, "little"))
    assert (parse_picture_header(vp8l).width, parse_picture_header(vp8l).height) == (320, 200)
    # VP8 (lossy): a key frame's 3-byte tag, its start code, 14-bit sizes
    vp8 = riff(b"VP8 " + (10).to_bytes(4, "little") + bytes(3) + b"\x9d\x01\x2a"
               + (176).to_bytes(2, "little") + (144).to_bytes(2, "little"))  # fmt: skip
    assert (parse_picture_header(vp8).width, parse_picture_header(vp8).height) == (176, 144)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00",
        b"\x89PNG\r\n\x1a\n",  # no IHDR
        b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IHDR" + bytes(8),  # 0 x 0
        riff(b"VP8 " + bytes(20)),  # no key frame start code
        riff(b"ALPH" + bytes(20)),  # not a first chunk WebP starts with
        riff(b"VP8L" + bytes(4) + b"\x00" + bytes(4)),  # no VP8L signature
    ],
)
def test_what_is_no_picture_is_refused_by_the_header(data: bytes) -> None:
    with pytest.raises(CodecError):
        parse_picture_header(data)
