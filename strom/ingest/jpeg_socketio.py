"""Going live the original desktop app's way: one JPEG per frame over Socket.IO.

The original desktop client spoke Socket.IO: ``start_stream`` with the stream key, then
one event per frame carrying a base64 JPEG, at its own frame rate and picture size. The
Socket.IO door (:mod:`strom.web.socketio.door`) hands those events to
:class:`JpegStreamIngest`, which makes such a client a real streamer: the JPEGs are
decoded and encoded as H.264 in a worker thread
(:class:`~strom.ingest.transcode.PictureTranscoder`), and the channel is fed like any
other ingest feeds it (viewers, LL-HLS, recording, chat and the directory see a normal
broadcast). The protocol is documented in ``docs/chat-protocol.md``.

Each frame is checked on the event loop before it is queued, cheaply: its size, its base64,
its JPEG frame header and picture size (:func:`~strom.media.jpeg.parse_jpeg_header`).
Frames are timestamped by their arrival (milliseconds from the first frame); those above
``max_fps`` are dropped and counted. A bad frame gets an ``error`` event; the stream goes on.

A disconnect without ``stop_stream`` leaves the broadcast in its reconnect grace (the app
may come back and ``start_stream`` again); ``stop_stream`` ends it. Stream keys are never
logged or kept.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from strom.chat.protocol import ErrorCode
from strom.errors import CodecError, ProtocolError, PublishRefused
from strom.ingest.frame_relay import FrameRelay
from strom.ingest.transcode import (
    PictureTranscoder,
)
from strom.live.channel import Channel, ChannelBusy
from strom.live.registry import Registry, StreamKeyResolver
from strom.media.model import VIDEO_TRACK_ID, Frame, Track
from strom.media.picture import MEDIA_TYPES, PictureInfo, parse_picture_header, picture_codec
from strom.ratelimit import TokenBucket
from strom.settings import Settings, section, setting
from strom.store import DatabaseUnavailable
from strom.store.security import SECRET_MAX

log = logging.getLogger(__name__)

#: Socket.IO events this module takes (the door routes them here).
START_EVENT = "start_stream"
STOP_EVENT = "stop_stream"
FRAME_EVENTS = ("frame", "stream_frame")
#: A viewer's ask for a stream's pictures (relayed as ``frame`` events).
WATCH_EVENT = "watch_frames"
#: Sent to the streaming client: how many watch (``{roomKey, count}``).
VIEWER_COUNT_EVENT = "viewer_count"

#: Seconds between viewer counts sent to a streamer when the count does not change
#: (a change is sent within a second).
VIEWER_COUNT_EVERY = 5.0
#: Frame events beyond this many times ``max_fps`` (sustained) are a flood: disconnect.
FLOOD_FACTOR = 4
_LOG_EVERY = 10.0  # seconds between repeated warnings about one stream
#: Fields of an object payload that may carry the picture.
_PICTURE_FIELDS = ("frame", "image", "data", "jpeg", "png", "picture")
#: base64 characters enough to see a picture's signature (16 bytes)
_SIGNATURE_CHARS = 24
#: Data URL prefix and Socket.IO event framing around a frame's base64 text.
_PACKET_OVERHEAD = 1024


class FrameRefused(ProtocolError):
    """A frame event whose payload is not a picture Strom takes (the reason says why)."""


@dataclass(frozen=True)
class JpegStreamLimits:
    max_frame_bytes: int = setting("jpeg_stream_max_bytes")
    max_fps: float = setting("jpeg_stream_max_fps")
    #: pictures per second relayed to the sockets that watch a stream (0: none)
    relay_fps: float = setting("jpeg_relay_fps")
    max_pixels: int = setting("transcode_max_pixels")
    #: H.264 bitrate (bit/s); 0: chosen from the picture size
    bitrate: int = setting("transcode_bitrate")
    queue_frames: int = setting("transcode_queue_frames")
    preset: str = setting("transcode_preset")

    @classmethod
    def from_settings(cls, settings: Settings) -> JpegStreamLimits:
        return section(cls, settings)

    @property
    def max_base64_chars(self) -> int:
        return -(-self.max_frame_bytes // 3) * 4

    @property
    def max_packet_bytes(self) -> int:
        """The largest Socket.IO packet a streaming client needs to send."""
        return self.max_base64_chars + _PACKET_OVERHEAD


def stream_key(data: Any) -> str | None:
    """The stream key of a ``start_stream`` payload: the key, or ``{"key": ...}``."""
    if isinstance(data, Mapping):
        data = data.get("key", data.get("streamKey", data.get("stream_key")))
    return data if isinstance(data, str) and 0 < len(data) <= SECRET_MAX else None


def frame_picture(data: Any, limits: JpegStreamLimits) -> bytes:
    """The JPEG bytes of a frame event's payload; :class:`FrameRefused` if it has none.

    The payload is a data URL (``data:image/jpeg;base64,...``), bare base64 text, binary
    (Socket.IO attachments), or an object with one of those in ``frame``/``image``/``data``.
    """
    if isinstance(data, Mapping):
        data = next((data[k] for k in _PICTURE_FIELDS if k in data), None)
    if isinstance(data, bytes | bytearray | memoryview):
        picture = bytes(data)
        if len(picture) > limits.max_frame_bytes:
            raise FrameRefused(
                f"frame of {len(picture)} bytes exceeds the limit of {limits.max_frame_bytes} bytes"
            )
        return picture
    if not isinstance(data, str):
        raise FrameRefused("a frame is a base64 picture (a data URL or bare base64) or binary")
    if data.startswith("data:"):
        header, comma, data = data.partition(",")
        media_type = header[5:].split(";")[0].strip().lower()
        if not comma or not header.endswith(";base64"):
            raise FrameRefused("a frame's data URL must be base64 (data:image/jpeg;base64,...)")
        if media_type not in MEDIA_TYPES:
            raise FrameRefused(
                f"frames are JPEG, PNG or WebP pictures, not {media_type or 'untyped data'}"
            )
    if len(data) > limits.max_base64_chars + 4:  # + some padding or line ends
        raise FrameRefused(f"frame exceeds the limit of {limits.max_frame_bytes} bytes")
    if "\n" in data or "\r" in data:  # base64 wrapped in lines (MIME style)
        data = data.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameRefused(f"frame is not valid base64 ({exc})") from None


def checked_picture(data: Any, limits: JpegStreamLimits) -> tuple[bytes, PictureInfo]:
    """:func:`frame_picture`, checked to be a JPEG, PNG or WebP picture within
    ``limits.max_pixels``; with its format and size."""
    picture = frame_picture(data, limits)
    try:
        info = parse_picture_header(picture)
    except CodecError as exc:
        raise FrameRefused(f"frame is not a picture: {exc}") from None
    if info.width * info.height > limits.max_pixels:
        raise FrameRefused(
            f"picture of {info.width}x{info.height} exceeds the limit of {limits.max_pixels} pixels"
        )
    return picture, info


def misnamed_frame(event: str, data: Any) -> str | None:
    """What to tell a client that sent ``data`` under ``event``, a name no handler takes:
    the frame event names, if ``data`` is a picture (None: not one, ignored)."""
    if not looks_like_picture(data):
        return None
    names = ", ".join(f"'{name}'" for name in FRAME_EVENTS)
    return f"'{event[:40]}' is not a frame event: send pictures as {names}"


def looks_like_picture(data: Any) -> bool:
    """Whether an event's payload carries a picture (a data URL of an image, base64 or
    binary with a picture's signature, or an object holding one): what a client sending
    frames under an event name Strom does not know would send."""
    if isinstance(data, Mapping):
        return any(looks_like_picture(data[k]) for k in _PICTURE_FIELDS if k in data)
    if isinstance(data, bytes | bytearray | memoryview):
        return picture_codec(bytes(data[:16])) is not None
    if not isinstance(data, str):
        return False
    if data.startswith("data:image/"):
        return True
    try:
        head = base64.b64decode(data[:_SIGNATURE_CHARS], validate=True)
    except (binascii.Error, ValueError):
        return False
    return picture_codec(head) is not None


class Door(Protocol):
    """What the streams need of the Socket.IO door."""

    def emit_to(self, sid: str, event: str, data: Any) -> None: ...

    def disconnect(self, sid: str) -> None: ...

    def watches_frames(self, room: str) -> bool: ...

    def relay_frame(self, room: str, picture: Any) -> None: ...


@dataclass(eq=False)
class JpegStream:
    """One client's broadcast: the channel's publisher."""

    ingest: JpegStreamIngest
    sid: str
    peer: str
    channel: Channel
    #: frames within the frame rate limit; frame events at all (beyond it: a flood)
    rate: TokenBucket
    flood: TokenBucket
    transcoder: PictureTranscoder | None = None
    #: the pictures relayed to the sockets that watch them
    relay: FrameRelay | None = None
    #: loop time of the first frame: timestamps count from it
    started: float | None = None
    frames: int = 0
    #: frames dropped above the frame rate limit, and refused as not a picture
    dropped: int = 0
    refused: int = 0
    viewers_sent: int = -1
    viewers_sent_at: float = 0.0
    _last_warning: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"socket.io {self.peer} {self.channel.name}"

    def disconnect(self, reason: str) -> None:
        """Stop this publisher (operator action): tell it why, end the broadcast."""
        log.warning("%s: disconnected: %s", self.label, reason)
        self.ingest.emit_error(self.sid, ErrorCode.NOT_ALLOWED, reason)
        self.ingest.end(self, lost=False)
        self.ingest.disconnect(self.sid)

    def warn(self, kind: str, message: str, *args: object) -> None:
        """Log ``message``, at most once per ``_LOG_EVERY`` seconds per ``kind``."""
        now = time.monotonic()
        if now - self._last_warning.get(kind, -_LOG_EVERY) >= _LOG_EVERY:
            self._last_warning[kind] = now
            log.warning("%s: " + message, self.label, *args)

    def on_output(self, items: list[Track | Frame]) -> None:
        channel = self.channel
        if channel.publisher is not self:
            return  # ended, or lost and taken over: late output goes nowhere
        for item in items:
            if isinstance(item, Frame):
                channel.add_frame(item)
            else:
                log.info("%s: video %dx%d (%s)", self.label, item.width, item.height,
                         item.codec_string)  # fmt: skip
                channel.set_track(item)

    def on_error(self, reason: str) -> None:
        self.refused += 1
        self.ingest.emit_error(self.sid, ErrorCode.BAD_REQUEST, reason)


class JpegStreamIngest:
    """The streams of JPEG-over-Socket.IO clients, keyed by Socket.IO session id."""

    def __init__(
        self, registry: Registry, keys: StreamKeyResolver, limits: JpegStreamLimits
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.limits = limits
        self.door: Door | None = None
        self.streams: dict[str, JpegStream] = {}
        self._ticker: asyncio.Task[None] | None = None

    # -- to the client ---------------------------------------------------------------------

    def emit_error(self, sid: str, code: ErrorCode, reason: str) -> None:
        if self.door is not None:
            self.door.emit_to(sid, "error", {"roomKey": None, "code": code.value, "reason": reason})

    def disconnect(self, sid: str) -> None:
        if self.door is not None:
            self.door.disconnect(sid)

    def _send_viewers(self, stream: JpegStream, now: float) -> None:
        count = stream.channel.viewers
        stream.viewers_sent, stream.viewers_sent_at = count, now
        if self.door is not None:
            data = {"roomKey": stream.channel.name, "count": count}
            self.door.emit_to(stream.sid, VIEWER_COUNT_EVENT, data)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while self.streams:
            await asyncio.sleep(1.0)
            now = loop.time()
            for stream in list(self.streams.values()):
                if (
                    stream.channel.viewers != stream.viewers_sent
                    or now - stream.viewers_sent_at >= VIEWER_COUNT_EVERY
                ):
                    self._send_viewers(stream, now)
        self._ticker = None

    # -- from the client -------------------------------------------------------------------

    def is_streaming(self, sid: str) -> bool:
        return sid in self.streams

    async def start_stream(self, sid: str, peer: str, data: Any) -> dict[str, Any]:
        """``start_stream``: claim the key's channel for this client. The answer is the
        event's acknowledgement; a refusal also comes as an ``error`` event."""
        key = stream_key(data)
        try:
            name = await self.keys.resolve(key) if key is not None else None
        except DatabaseUnavailable:
            log.warning("socket.io %s: start_stream failed: the database is unavailable", peer)
            return self._refuse(sid, ErrorCode.UNAVAILABLE, "streaming is unavailable right now")
        if name is None:
            # Never log the key itself.
            log.warning("socket.io %s: start_stream refused: unknown stream key", peer)
            return self._refuse(sid, ErrorCode.NOT_ALLOWED, "wrong stream key")
        current = self.streams.get(sid)
        if current is not None:
            if current.channel.name == name:
                return {"ok": True, "roomKey": name}
            return self._refuse(sid, ErrorCode.NOT_ALLOWED, "already streaming: stop_stream first")
        try:
            await self.registry.admit(name)
        except PublishRefused as exc:
            log.warning("socket.io %s: start_stream to %s refused: %s", peer, name, exc)
            return self._refuse(sid, ErrorCode.NOT_ALLOWED, str(exc))
        limits = self.limits
        loop = asyncio.get_running_loop()
        burst = max(1, round(limits.max_fps / 2))
        flood = limits.max_fps * FLOOD_FACTOR
        channel = self.registry.open(name)
        stream = JpegStream(
            self,
            sid,
            peer,
            channel,
            rate=TokenBucket(limits.max_fps, burst, loop.time()),
            flood=TokenBucket(flood, max(burst, round(flood)), loop.time()),
        )
        try:
            channel.claim(stream)
        except ChannelBusy:
            log.warning("socket.io %s: start_stream to %s refused: already live", peer, name)
            self.registry.forget_if_idle(channel)
            return self._refuse(sid, ErrorCode.NOT_ALLOWED, f"channel {name} is already live")
        self.streams[sid] = stream
        door = self.door
        if door is not None:
            stream.relay = FrameRelay(
                limits.relay_fps,
                lambda: door.watches_frames(name),
                lambda picture: door.relay_frame(name, picture),
            )
        log.info("socket.io %s: streaming pictures to %s", peer, name)
        self._send_viewers(stream, loop.time())
        if self._ticker is None:
            self._ticker = loop.create_task(self._tick())
        return {"ok": True, "roomKey": name}

    def _refuse(self, sid: str, code: ErrorCode, reason: str) -> dict[str, Any]:
        self.emit_error(sid, code, reason)
        return {"ok": False, "error": reason}

    def frame(self, sid: str, data: Any) -> None:
        """A frame event: checked here, decoded and encoded in the stream's worker."""
        stream = self.streams.get(sid)
        if stream is None:
            return
        now = asyncio.get_running_loop().time()
        if stream.flood.take(now) > 0:
            log.warning("%s: disconnected: flooding with frame events", stream.label)
            self.emit_error(sid, ErrorCode.RATE_LIMITED, "far too many frames: disconnected")
            self.end(stream, lost=False)
            self.disconnect(sid)
            return
        if stream.rate.take(now) > 0:
            stream.dropped += 1
            stream.warn("fps", "frames above %g fps dropped (%d so far)",
                        self.limits.max_fps, stream.dropped)  # fmt: skip
            return
        try:
            picture, info = checked_picture(data, self.limits)
            transcoder = self._transcoder(stream, info)
        except FrameRefused as exc:
            stream.refused += 1
            reason = str(exc)
            stream.warn("refused", "frame refused: %s (%d so far)", reason, stream.refused)
            self.emit_error(sid, ErrorCode.BAD_REQUEST, reason)
            return
        if stream.started is None:
            stream.started = now
        stream.frames += 1
        ms = round((now - stream.started) * 1000)
        transcoder.feed(Frame(VIDEO_TRACK_ID, ms, ms, True, picture))
        if stream.relay is not None:
            stream.relay.offer(now, data, picture, info)

    def _transcoder(self, stream: JpegStream, info: PictureInfo) -> PictureTranscoder:
        """The stream's encoder, made for the format of its first picture; a picture of
        another format is refused (one decoder per stream)."""
        if stream.transcoder is not None:
            if info.codec != stream.transcoder.decoder_name:
                first = PictureInfo(stream.transcoder.decoder_name, 1, 1).format_name
                raise FrameRefused(
                    f"this stream's pictures are {first}; send every frame in that format, "
                    f"not {info.format_name}"
                )
            return stream.transcoder
        limits = self.limits
        stream.transcoder = PictureTranscoder(
            info.codec,
            1000,  # milliseconds of arrival time
            on_output=stream.on_output,
            on_error=stream.on_error,
            bitrate=limits.bitrate or None,
            queue_frames=limits.queue_frames,
            max_pixels=limits.max_pixels,
            frame_rate=max(1, round(limits.max_fps)),
            preset=limits.preset,
            intra_only=True,
            label=f"{stream.label} encoder",
        )
        log.info("%s: %s pictures", stream.label, info.format_name)
        return stream.transcoder

    def stop_stream(self, sid: str) -> dict[str, Any]:
        """``stop_stream``: end the broadcast."""
        stream = self.streams.get(sid)
        if stream is None:
            return self._refuse(sid, ErrorCode.NOT_FOUND, "not streaming")
        log.info("%s: stopped streaming (%d frames)", stream.label, stream.frames)
        self.end(stream, lost=False)
        return {"ok": True}

    def client_gone(self, sid: str) -> None:
        """The client disconnected: a stream it did not stop waits for it to come back."""
        stream = self.streams.get(sid)
        if stream is not None:
            log.info("%s: publisher lost (disconnected)", stream.label)
            self.end(stream, lost=True)

    def end(self, stream: JpegStream, *, lost: bool) -> None:
        """Stop ``stream``'s encoder and end (``lost``: suspend) its broadcast."""
        if self.streams.get(stream.sid) is stream:
            del self.streams[stream.sid]
        if stream.relay is not None:
            stream.relay.close()
        if stream.transcoder is not None:
            stream.transcoder.close()
            if stream.dropped or stream.transcoder.dropped:
                log.info("%s: %d frames dropped above the rate limit, %d behind the encoder",
                         stream.label, stream.dropped, stream.transcoder.dropped)  # fmt: skip
        if lost:
            stream.channel.publisher_lost(stream)
        else:
            stream.channel.release(stream)
            self.registry.forget_if_idle(stream.channel)

    async def close(self) -> None:
        """End every stream (server shutdown) and wait for their encoders to stop."""
        streams = list(self.streams.values())
        for stream in streams:
            self.end(stream, lost=False)
        if self._ticker is not None:
            self._ticker.cancel()
        for stream in streams:
            if stream.transcoder is not None:
                await stream.transcoder.wait_closed()

    def metrics(self) -> dict[str, Any]:
        return {
            "streams": len(self.streams),
            "frames": sum(s.frames for s in self.streams.values()),
            "dropped": sum(s.dropped for s in self.streams.values()),
            "refused": sum(s.refused for s in self.streams.values()),
        }
