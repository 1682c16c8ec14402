"""The desktop streamer's pictures relayed to the original HTML5 viewers, over Socket.IO.

The original desktop app's viewers were web pages that got each picture as a Socket.IO
``frame`` event and drew it. Strom's own viewers watch the H.264 broadcast the pictures
are encoded into; for pages of the original kind, a socket that asks for them
(``watch_frames``, see ``docs/chat-protocol.md``) gets the pictures too, thinned to
``jpeg_relay_fps`` (the original servers relayed every frame; a page shows ten a second
well enough, and a watcher costs what it is sent).

A JPEG goes out as the streamer sent it (a data URL stays a data URL, bare base64 stays
bare): one Socket.IO emit to the room's watchers, encoded once whatever their number.
A PNG or WebP picture is made a JPEG first, in a worker thread, one at a time per stream
(a picture that comes while the last is being made is not relayed): the viewers of the
original app expect JPEG.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import av
from av.video.codeccontext import VideoCodecContext

from strom.errors import CodecError
from strom.media.picture import PictureInfo

log = logging.getLogger(__name__)

#: JPEG quality of converted pictures (FFmpeg's qscale: 2 best .. 31 worst)
JPEG_QSCALE = 5


def jpeg_of(picture: bytes, decoder: str) -> bytes:
    """``picture`` (decoded by FFmpeg's ``decoder``) as a JPEG. Blocking: run in a thread."""
    try:
        context = av.CodecContext.create(decoder, "r")
        assert isinstance(context, VideoCodecContext)
        frames = [f for p in context.parse(picture) for f in context.decode(p)]
        frames += context.decode(None)
        if not frames:
            raise CodecError("the picture decoded to nothing")
        frame = frames[0].reformat(format="yuvj420p")
        encoder = av.CodecContext.create("mjpeg", "w")
        assert isinstance(encoder, VideoCodecContext)
        encoder.width, encoder.height = frame.width, frame.height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 25)
        encoder.options = {"qmin": str(JPEG_QSCALE), "qmax": str(JPEG_QSCALE)}
        frame.pts = 0
        packets = encoder.encode(frame) + encoder.encode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise CodecError(f"could not make a JPEG of the picture: {exc}") from None
    return b"".join(bytes(p) for p in packets)


def _form(payload: Any) -> Any:
    """The picture part of a frame event's payload (an object's ``frame``/``image``...)."""
    if isinstance(payload, Mapping):
        for key in ("frame", "image", "data", "jpeg", "png", "picture"):
            if key in payload:
                return payload[key]
    return payload


def as_sent(payload: Any, jpeg: bytes) -> str:
    """A converted JPEG in the form the streamer sent its pictures: a data URL if it
    sent data URLs, else bare base64."""
    text = base64.b64encode(jpeg).decode()
    form = _form(payload)
    if isinstance(form, str) and form.startswith("data:"):
        return "data:image/jpeg;base64," + text
    return text


class FrameRelay:
    """One stream's relay: when the next picture is due, and the conversion under way."""

    def __init__(
        self, fps: float, watched: Callable[[], bool], send: Callable[[Any], None]
    ) -> None:
        #: seconds between relayed pictures (0: relay off)
        self.interval = 1.0 / fps if fps > 0 else 0.0
        #: whether any socket watches the stream's pictures now
        self._watched = watched
        #: emits one picture to the watchers
        self._send = send
        self._next = 0.0
        self._busy: asyncio.Task[None] | None = None
        self.relayed = 0

    def offer(self, now: float, payload: Any, picture: bytes, info: PictureInfo) -> None:
        """A picture the stream took at loop time ``now``: relay it if one is due."""
        if not self.interval or now < self._next or not self._watched():
            return
        self._next = now + self.interval
        if info.codec == "mjpeg":
            self._send(_form(payload))
            self.relayed += 1
        elif self._busy is None or self._busy.done():
            self._busy = asyncio.get_running_loop().create_task(
                self._convert(payload, picture, info)
            )

    async def _convert(self, payload: Any, picture: bytes, info: PictureInfo) -> None:
        try:
            jpeg = await asyncio.to_thread(jpeg_of, picture, info.codec)
        except CodecError as exc:
            log.info("a picture not relayed: %s", exc)
            return
        self._send(as_sent(payload, jpeg))
        self.relayed += 1

    def close(self) -> None:
        if self._busy is not None:
            self._busy.cancel()
