"""Pictures people upload (a category's box art; an avatar, :mod:`strom.record.avatars`):
checked, then made a JPEG of a bounded size with PyAV, as the thumbnails are (no image
library needed).

Hostile until checked: the bytes are bounded, the format is read from the signature and
the size from the header (:mod:`strom.media.picture`) before anything decodes, so a few
hundred bytes declaring a 60000x60000 picture are refused without allocating it. What is
kept is always a re-encoded JPEG, never the bytes as uploaded (no SVG, no script, no
metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
from av.video.codeccontext import VideoCodecContext

from strom.errors import CodecError, LimitExceeded, UnsupportedMedia
from strom.media.picture import parse_picture_header, picture_codec
from strom.record.thumbnails import Picture, mjpeg_qscale

#: box art as stored: fits in this box (3:4, as game covers are), never larger
ART_WIDTH = 285
ART_HEIGHT = 380
#: an upload larger than this is refused before it is looked at
ART_MAX_BYTES = 5 << 20
#: a picture declaring more pixels than this is refused before it is decoded
ART_MAX_PIXELS = 40_000_000


@dataclass(frozen=True, slots=True)
class PictureLimits:
    max_bytes: int = ART_MAX_BYTES
    max_pixels: int = ART_MAX_PIXELS
    width: int = ART_WIDTH
    height: int = ART_HEIGHT
    quality: int = 85


def fitted_size(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled to fit in the box keeping its shape (never enlarged),
    even numbers (4:2:0 chroma)."""
    scale = min(1.0, box_width / width, box_height / height)
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)


def decode_picture(data: bytes, max_bytes: int, max_pixels: int) -> av.VideoFrame:
    """The one picture in ``data`` (JPEG, PNG or WebP), decoded once its bytes and its
    header's size are within bounds. Blocking: run it in a worker thread. Raises
    :class:`LimitExceeded` (413) for too many bytes or pixels, :class:`UnsupportedMedia`
    (415) for anything but a picture, :class:`CodecError` (400) for a picture that does
    not decode."""
    if len(data) > max_bytes:
        raise LimitExceeded(f"the picture is larger than {max_bytes >> 20} MB")
    codec = picture_codec(data)
    if codec is None:
        raise UnsupportedMedia("not a picture: send a JPEG, PNG or WebP image")
    info = parse_picture_header(data)
    if info.width * info.height > max_pixels:
        raise LimitExceeded(
            f"the picture has {info.width}x{info.height} pixels, more than {max_pixels:,} in all"
        )
    try:
        decoder = av.CodecContext.create(codec, "r")
        assert isinstance(decoder, VideoCodecContext)
        # one picture, one packet (a parser may hold a JPEG back until a next one)
        frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    except (av.error.FFmpegError, ValueError) as exc:
        raise CodecError(f"the picture does not decode: {exc}") from None
    if not frames:
        raise CodecError("the picture decoded to nothing")
    return frames[0]


def jpeg_of(frame: av.VideoFrame, width: int, height: int, quality: int) -> bytes:
    """``frame`` scaled to ``width`` x ``height`` and encoded as one JPEG."""
    try:
        # yuvj420p: full-range 4:2:0, what JPEG (JFIF) expects; swscale converts the range
        picture = frame.reformat(width, height, "yuvj420p", interpolation="AREA")
        encoder = av.CodecContext.create("mjpeg", "w")
        assert isinstance(encoder, VideoCodecContext)
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 1)
        encoder.qmin = encoder.qmax = mjpeg_qscale(quality)
        picture.pts = 0
        packets = encoder.encode(picture) + encoder.encode(None)
    except (av.error.FFmpegError, ValueError) as exc:
        raise CodecError(f"the picture does not encode: {exc}") from None
    jpeg = b"".join(bytes(p) for p in packets)
    if not jpeg:
        raise CodecError("the JPEG encoder produced nothing")
    return jpeg


def fit_picture(data: bytes, limits: PictureLimits | None = None) -> Picture:
    """``data`` (JPEG, PNG or WebP) as a JPEG fitting ``limits``' box (see
    :func:`decode_picture` for what is refused). Blocking: run it in a worker thread."""
    limits = limits or PictureLimits()
    frame = decode_picture(data, limits.max_bytes, limits.max_pixels)
    width, height = fitted_size(frame.width, frame.height, limits.width, limits.height)
    return Picture(jpeg_of(frame, width, height, limits.quality), width, height)
