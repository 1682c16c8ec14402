"""Avatars from uploads: the middle square of the picture as two JPEGs (256 and 64 px
square); too many bytes, too many pixels and what is no picture refused with a reason."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest

from strom.record.avatars import AVATAR_MAX_BYTES, AvatarRefused, make_avatar


def picture(width: int, height: int, codec: str = "png", pix_fmt: str = "rgb24") -> bytes:
    """Left half black, right half white: where the crop cuts shows in the result."""
    frame = av.VideoFrame(width, height, "rgb24")
    row = bytes(3 * (width // 2)) + bytes([255]) * (3 * (width - width // 2))
    row += bytes(frame.planes[0].line_size - len(row))  # the plane's rows are padded
    frame.planes[0].update(row * height)
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 1)
    frame = frame.reformat(format=pix_fmt)
    return b"".join(bytes(p) for p in encoder.encode(frame) + encoder.encode(None))


def decoded(jpeg: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(jpeg)) as container:
        return next(container.decode(video=0))


@pytest.mark.parametrize(("codec", "pix_fmt"), [("png", "rgb24"), ("mjpeg", "yuvj420p")])
def test_a_wide_picture_becomes_its_middle_square(codec: str, pix_fmt: str) -> None:
    made = make_avatar(picture(400, 200, codec, pix_fmt))
    large, small = decoded(made.large), decoded(made.small)
    assert (large.width, large.height, small.width, small.height) == (256, 256, 64, 64)
    # The middle square of a half-black, half-white picture: black left, white right.
    gray = large.reformat(format="gray")
    line = bytes(gray.planes[0])[128 * gray.planes[0].line_size :][:256]
    assert line[20] < 40
    assert line[236] > 215


def test_refusals_say_why() -> None:
    with pytest.raises(AvatarRefused, match="larger than 2 MiB"):
        make_avatar(b"\x89PNG" + bytes(AVATAR_MAX_BYTES))
    with pytest.raises(AvatarRefused, match="5000x4000 pixels: at most 16 million"):
        make_avatar(picture(5000, 4000))
    for junk in (b"", b"hello", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(AvatarRefused):
            make_avatar(junk)
