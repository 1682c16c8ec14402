"""Avatars: an uploaded picture (JPEG, PNG, WebP, GIF: whatever FFmpeg's image demuxers
recognise) cropped to its centre square and encoded as two JPEGs, 256x256 for the channel
page and 64x64 for cards and chat. The upload is refused, with a reason, when it is too
many bytes, too many pixels or not a picture. Blocking: run it in a worker thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
import av.filter

from strom.record.thumbnails import mjpeg_qscale

#: the largest upload taken (bytes)
AVATAR_MAX_BYTES = 2 * 1024 * 1024
#: the largest picture decoded (pixels: width x height); bigger ones are refused unread
AVATAR_MAX_PIXELS = 4096 * 4096
#: the two sizes kept (square, pixels)
AVATAR_LARGE = 256
AVATAR_SMALL = 64
AVATAR_QUALITY = 85


_NOT_A_PICTURE = "That is not a picture: upload a JPEG, PNG, WebP or GIF."


class AvatarRefused(ValueError):
    """The upload cannot be an avatar; the message says why, for the user."""


@dataclass(frozen=True)
class AvatarPictures:
    large: bytes
    small: bytes


def make_avatar(data: bytes) -> AvatarPictures:
    """The avatar's two JPEGs made from an uploaded picture (see the module's text)."""
    if len(data) > AVATAR_MAX_BYTES:
        raise AvatarRefused(f"The picture is larger than {AVATAR_MAX_BYTES // (1024 * 1024)} MiB.")
    if not data:
        raise AvatarRefused("The upload is empty.")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video or container.format.name not in _IMAGE_FORMATS:
                raise AvatarRefused(_NOT_A_PICTURE)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > AVATAR_MAX_PIXELS:
                raise AvatarRefused(
                    f"The picture is {width}x{height} pixels: at most "
                    f"{AVATAR_MAX_PIXELS // 1_000_000} million pixels."
                )
            stream.codec_context.thread_count = 1
            frame = next(container.decode(stream), None)
    except av.error.FFmpegError:
        raise AvatarRefused(_NOT_A_PICTURE) from None
    if frame is None or frame.width * frame.height > AVATAR_MAX_PIXELS:
        raise AvatarRefused(_NOT_A_PICTURE)
    square = _centre_square(frame)
    return AvatarPictures(_jpeg(square, AVATAR_LARGE), _jpeg(square, AVATAR_SMALL))


#: FFmpeg's names of the demuxers of single pictures Strom takes
_IMAGE_FORMATS = frozenset(
    {"jpeg_pipe", "png_pipe", "webp_pipe", "gif", "bmp_pipe", "image2", "gif_pipe"}
)


def _centre_square(frame: av.VideoFrame) -> av.VideoFrame:
    side = min(frame.width, frame.height)
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 1)
    )
    crop = graph.add("crop", f"{side}:{side}")
    sink = graph.add("buffersink")
    source.link_to(crop)
    crop.link_to(sink)
    graph.configure()
    graph.push(frame)
    out = graph.pull()
    assert isinstance(out, av.VideoFrame)
    return out


def _jpeg(frame: av.VideoFrame, side: int) -> bytes:
    # yuvj420p is full-range 4:2:0, what JPEG (JFIF) expects; swscale converts the range.
    picture = frame.reformat(side, side, "yuvj420p", interpolation="AREA")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width = encoder.height = side
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    encoder.qmin = encoder.qmax = mjpeg_qscale(AVATAR_QUALITY)
    packets = encoder.encode(picture) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)
