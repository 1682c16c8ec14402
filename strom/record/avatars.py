"""Avatars: an uploaded picture (JPEG, PNG or WebP) cropped to its centre square and
encoded as two JPEGs, 256x256 for the channel page and 64x64 for cards and chat. The
upload is checked and decoded as every uploaded picture is
(:func:`strom.record.pictures.decode_picture`: bytes, then the header's pixels, before
anything decodes) and refused, with a reason for the user, when it is too many bytes, too
many pixels or not a picture. Blocking: run it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import quote

import av
import av.filter

from strom.errors import CodecError, LimitExceeded, UnsupportedMedia
from strom.media.picture import parse_picture_header
from strom.record.pictures import decode_picture, jpeg_of

#: the largest upload taken (bytes)
AVATAR_MAX_BYTES = 2 * 1024 * 1024
#: the largest picture decoded (pixels: width x height); bigger ones are refused unread
AVATAR_MAX_PIXELS = 4096 * 4096
#: the two sizes kept (square, pixels)
AVATAR_LARGE = 256
AVATAR_SMALL = 64
AVATAR_QUALITY = 85


def avatar_url(name: str, etag: str | None, *, small: bool = False) -> str | None:
    """Where ``name``'s avatar is served (any node serves it), None without one. The
    version in the query makes a new avatar a new URL, so an answer is cached for good."""
    if etag is None:
        return None
    size = AVATAR_SMALL if small else AVATAR_LARGE
    return f"/avatars/{quote(name)}/{size}.jpg?v={etag}"


_NOT_A_PICTURE = "That is not a picture: upload a JPEG, PNG or WebP."


class AvatarRefused(ValueError):
    """The upload cannot be an avatar; the message says why, for the user."""


@dataclass(frozen=True)
class AvatarPictures:
    large: bytes
    small: bytes


def make_avatar(data: bytes) -> AvatarPictures:
    """The avatar's two JPEGs made from an uploaded picture (see the module's text)."""
    if not data:
        raise AvatarRefused("The upload is empty.")
    try:
        frame = decode_picture(data, AVATAR_MAX_BYTES, AVATAR_MAX_PIXELS)
        square = _centre_square(frame)
        large = jpeg_of(square, AVATAR_LARGE, AVATAR_LARGE, AVATAR_QUALITY)
        small = jpeg_of(square, AVATAR_SMALL, AVATAR_SMALL, AVATAR_QUALITY)
    except LimitExceeded:
        raise AvatarRefused(_limit_reason(data)) from None
    except (UnsupportedMedia, CodecError):
        raise AvatarRefused(_NOT_A_PICTURE) from None
    return AvatarPictures(large, small)


def _limit_reason(data: bytes) -> str:
    if len(data) > AVATAR_MAX_BYTES:
        return f"The picture is larger than {AVATAR_MAX_BYTES // (1024 * 1024)} MiB."
    info = parse_picture_header(data)  # read once already: the pixels were too many
    return (
        f"The picture is {info.width}x{info.height} pixels: at most "
        f"{AVATAR_MAX_PIXELS // 1_000_000} million pixels."
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
