"""Test pictures made by real codecs: raw frames with a moving pattern, and JPEGs from
FFmpeg's mjpeg encoder (what the original desktop app sends)."""

from __future__ import annotations

from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext


def make_picture(width: int, height: int, index: int = 0) -> av.VideoFrame:
    """A yuv420p picture: a grey ramp that moves with ``index``, so frames differ."""
    picture = av.VideoFrame(width, height, "yuv420p")
    luma = picture.planes[0]
    row = bytes((x * 4 + index * 3) % 256 for x in range(luma.line_size))
    luma.update(row * height)
    for plane in picture.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return picture


def make_jpeg(width: int, height: int, index: int = 0) -> bytes:
    """A real JPEG picture of :func:`make_picture`."""
    codec = av.CodecContext.create("mjpeg", "w")
    assert isinstance(codec, VideoCodecContext)
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 30)
    picture = make_picture(width, height, index).reformat(format="yuvj420p")
    picture.pts = 0
    packets = codec.encode(picture) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def make_still(codec_name: str, width: int, height: int, index: int = 0) -> bytes:
    """A real PNG (``png``) or WebP (``libwebp``) picture of :func:`make_picture`."""
    pix_fmt = {"png": "rgb24", "libwebp": "yuv420p"}[codec_name]
    codec = av.CodecContext.create(codec_name, "w")
    assert isinstance(codec, VideoCodecContext)
    codec.width, codec.height = width, height
    codec.pix_fmt = pix_fmt
    codec.time_base = Fraction(1, 30)
    picture = make_picture(width, height, index).reformat(format=pix_fmt)
    picture.pts = 0
    packets = codec.encode(picture) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)
