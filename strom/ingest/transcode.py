"""H.264 encoding with PyAV (libx264), and transcoding into H.264 off the event loop.

Most publishers send H.264, which goes into CMAF as it is. A few cannot: browsers that
record VP8 (which MP4 players do not take) and the original desktop app, which sends one
JPEG per frame. For those Strom encodes H.264 itself:

* :class:`H264Encoder` turns pictures (``av.VideoFrame``) into the neutral vocabulary of
  :mod:`strom.media.model`: a :class:`Track` with an avcC record whenever the picture size
  (and so the codec configuration) changes, and AVCC :class:`Frame` objects. Live
  settings: tune ``zerolatency`` (no lookahead: one picture in, one frame out), no
  B-frames, an IDR every ``keyframe_interval`` seconds of timestamps.
* :class:`PictureTranscoder` decodes coded pictures and re-encodes them in a worker thread
  with a bounded queue, and hands the results to the event loop with
  ``loop.call_soon_threadsafe``; :meth:`~PictureTranscoder.feed` never waits.
  :class:`VideoTranscoder` is the same for a :class:`Track` (VP8, VP9, AV1...).

Unlike the rest of :mod:`strom.media` the transcoders own a thread: encoding a 720p
picture takes milliseconds of CPU, which the event loop cannot spare. PyAV releases the
GIL while FFmpeg works, so the loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from av.codec.context import Flags
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from strom.errors import CodecError, LimitExceeded, ProtocolError
from strom.media import h264, vpx
from strom.media.model import VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind

log = logging.getLogger(__name__)

#: Seconds of timestamps between forced IDR frames (viewers join at keyframes).
DEFAULT_KEYFRAME_INTERVAL = 2.0
#: x264 speed preset: at 720p30, ``veryfast`` takes ~10 ms of CPU a frame, ``ultrafast``
#: ~3 ms for a somewhat worse picture at the same bitrate.
DEFAULT_PRESET = "veryfast"
#: Frames waiting for a transcoder's thread; beyond it frames are dropped.
DEFAULT_QUEUE_FRAMES = 30
#: Largest picture a transcoder decodes (4K UHD).
DEFAULT_MAX_PIXELS = 3840 * 2160
#: Frame rate the encoder assumes for its level and VUI timing; rate control follows the
#: timestamps (x264's ``b_vfr_input``), so a different real rate is fine.
NOMINAL_FRAME_RATE = 30
#: x264's keyint, a backstop: IDRs are forced by timestamp every ``keyframe_interval``.
_MAX_GOP_FRAMES = 600
#: Bitrate chosen from the picture size when none is given: ~3 bits per pixel per second
#: (720p: 2.8 Mbit/s), within these bounds.
_BITS_PER_PIXEL = 3
MIN_BITRATE = 300_000
MAX_BITRATE = 8_000_000

_LOG_EVERY = 10.0  # seconds between repeated warnings of one transcoder

#: PyAV decoder for each codec a transcoder takes (by :class:`Codec` value).
DECODERS = {"h264": "h264", "vp8": "vp8", "vp9": "vp9", "av1": "libdav1d"}


def default_bitrate(width: int, height: int) -> int:
    """The H.264 bitrate Strom uses for a ``width`` x ``height`` picture by default."""
    return max(MIN_BITRATE, min(MAX_BITRATE, width * height * _BITS_PER_PIXEL))


class H264Encoder:
    """Pictures in, an H.264 :class:`Track` and AVCC :class:`Frame` objects out.

    A picture's ``pts`` counts in ``1/timescale`` seconds (a picture without one follows
    the previous by one unit; a timestamp that does not increase is nudged forward, as
    x264 needs). The first picture, and every picture of a new size, opens a new encoder
    and yields a new :class:`Track` before its frames; the frame after a new track is
    always a keyframe. Odd sizes are cropped by one line to the even size 4:2:0 needs.

    Not thread-safe: one encoder belongs to one thread at a time.
    """

    def __init__(
        self,
        *,
        timescale: int = 1000,
        bitrate: int | None = None,
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
        frame_rate: int = NOMINAL_FRAME_RATE,
        preset: str = DEFAULT_PRESET,
        threads: int = 0,
        track_id: int = VIDEO_TRACK_ID,
    ) -> None:
        if timescale <= 0 or keyframe_interval <= 0 or frame_rate <= 0:
            raise ValueError("timescale, keyframe_interval and frame_rate must be positive")
        self.timescale = timescale
        self.bitrate = bitrate
        self.keyframe_interval = keyframe_interval
        self.frame_rate = frame_rate
        self.preset = preset
        self.threads = threads
        self.track_id = track_id
        #: The current track (``None`` before the first picture).
        self.track: Track | None = None
        self._codec: VideoCodecContext | None = None
        self._size = (0, 0)
        self._length_size = 0  # 0: the encoder writes Annex B
        self._last_pts: int | None = None
        self._next_keyframe: int | None = None

    def _open(self, width: int, height: int) -> Track:
        self.close()
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, VideoCodecContext)
        bitrate = self.bitrate or default_bitrate(width, height)
        codec.width = width
        codec.height = height
        codec.pix_fmt = "yuv420p"
        codec.time_base = Fraction(1, self.timescale)
        codec.framerate = Fraction(self.frame_rate)
        codec.bit_rate = bitrate
        codec.max_b_frames = 0
        codec.gop_size = _MAX_GOP_FRAMES
        codec.thread_count = self.threads
        # SPS/PPS once, in the extradata (our avcC), not in front of every keyframe.
        codec.flags |= Flags.global_header
        codec.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "forced-idr": "1",  # a picture marked I becomes an IDR (a join point)
            "sc_threshold": "0",  # no extra IDRs at scene cuts: segments stay regular
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),  # one second of VBV buffer: steady for live
        }
        codec.open()
        extradata = bytes(codec.extradata or b"")
        config = h264.avcc_from_extradata(extradata)
        # Packets follow the extradata's form: length-prefixed after an avcC, else Annex B.
        self._length_size = h264.parse_avcc(extradata).length_size if extradata[0] == 1 else 0
        cfg = h264.parse_avcc(config)
        self._codec = codec
        self._size = (width, height)
        self._next_keyframe = None  # the first picture of an encoder is an IDR
        self.track = Track(
            id=self.track_id,
            kind=TrackKind.VIDEO,
            codec=Codec.H264,
            timescale=self.timescale,
            config=config,
            codec_string=h264.codec_string(cfg),
            width=cfg.width,
            height=cfg.height,
        )
        return self.track

    def encode(self, picture: av.VideoFrame, keyframe: bool | None = None) -> list[Track | Frame]:
        """Encode one picture: a new :class:`Track` first if needed, then its frames.
        ``keyframe``: an IDR here or not (a ladder follows its source's keyframes, so
        segments line up); None: every ``keyframe_interval``."""
        width, height = picture.width & ~1, picture.height & ~1
        if width < 2 or height < 2:
            raise CodecError(f"picture of {picture.width}x{picture.height} is too small")
        pts = picture.pts
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + 1
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        out: list[Track | Frame] = []
        if self._codec is None or (width, height) != self._size:
            out.append(self._open(width, height))
        if picture.format.name != "yuv420p" or picture.width != width or picture.height != height:
            picture = picture.reformat(width=width, height=height, format="yuv420p")
        picture.pts = pts
        picture.time_base = Fraction(1, self.timescale)
        due = self._next_keyframe is None or pts >= self._next_keyframe
        if keyframe is not None:  # the first picture of an encoder is an IDR even so
            due = keyframe or self._next_keyframe is None
        if due:
            picture.pict_type = PictureType.I
        else:
            picture.pict_type = PictureType.NONE
        assert self._codec is not None
        out.extend(self._frames(self._codec.encode(picture)))
        return out

    def flush(self) -> list[Track | Frame]:
        """Whatever the encoder still holds (nothing, with zerolatency)."""
        if self._codec is None:
            return []
        return list(self._frames(self._codec.encode(None)))

    def _frames(self, packets: list[av.Packet[Any]]) -> list[Frame]:
        frames = []
        for packet in packets:
            data = bytes(packet)
            if not data or packet.pts is None:
                continue
            if self._length_size:
                data = h264.to_length_prefixed(data, self._length_size)
            else:
                data = h264.annexb_to_avcc(data)
            pts = int(packet.pts)
            dts = int(packet.dts) if packet.dts is not None else pts
            keyframe = bool(packet.is_keyframe)
            if keyframe:
                self._next_keyframe = pts + round(self.keyframe_interval * self.timescale)
            frames.append(Frame(self.track_id, dts, pts, keyframe, data))
        return frames

    def close(self) -> None:
        """Free the encoder (a later picture opens a new one)."""
        self._codec = None
        self._size = (0, 0)


class _FrameQueue:
    """A bounded queue between the event loop (puts, never waits) and one worker thread."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, maxsize)
        self._items: collections.deque[tuple[Frame, float]] = collections.deque()
        self._cond = threading.Condition()
        self.closed = False

    def put(self, frame: Frame, *, replace: bool, drop_oldest: bool) -> tuple[bool, int]:
        """Queue ``frame``; when full, make room (``replace``: drop everything queued,
        ``drop_oldest``: drop the oldest) or refuse. Returns (queued, frames dropped)."""
        with self._cond:
            dropped = 0
            if len(self._items) >= self.maxsize:
                if replace:
                    dropped = len(self._items)
                    self._items.clear()
                elif drop_oldest:
                    dropped = 1
                    self._items.popleft()
                else:
                    return False, 0
            self._items.append((frame, time.perf_counter()))
            self._cond.notify()
            return True, dropped

    def get(self) -> tuple[Frame, float] | None:
        """The next frame and when it was queued; ``None`` once closed."""
        with self._cond:
            while not self._items and not self.closed:
                self._cond.wait()
            if self.closed:
                return None
            return self._items.popleft()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class PictureTranscoder:
    """Decodes coded pictures with PyAV's ``decoder`` and encodes them as H.264, in a
    worker thread.

    :meth:`feed` queues a frame and returns at once. When the queue is full the frame is
    dropped and so is every frame after it until the next keyframe, which decodes again
    (a keyframe that finds the queue full replaces what is queued; with ``intra_only``
    input every frame is a keyframe and only the oldest queued one is dropped). Drops are
    counted in :attr:`dropped` and logged.

    Results go to ``on_output`` on the event loop that created the transcoder (through
    ``call_soon_threadsafe``), in order, timestamps unchanged and in ``timescale``: a
    :class:`Track` (track id ``track_id``) when the configuration changes, then frames.
    A frame that does not decode is skipped (and, unless ``intra_only``, what follows it
    until a keyframe) and reported to ``on_error`` with a reason.

    Create it on the event loop; :meth:`close` stops the thread (the frame being encoded
    finishes; nothing is delivered after ``close``).
    """

    def __init__(
        self,
        decoder: str,
        timescale: int,
        *,
        on_output: Callable[[list[Track | Frame]], None],
        on_error: Callable[[str], None] | None = None,
        bitrate: int | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        frame_rate: int = NOMINAL_FRAME_RATE,
        preset: str = DEFAULT_PRESET,
        intra_only: bool = False,
        track_id: int = VIDEO_TRACK_ID,
        extradata: bytes = b"",
        label: str = "transcode",
    ) -> None:
        self.label = label
        #: the decoder of the pictures fed ("mjpeg", "png", "vp8"...)
        self.decoder_name = decoder
        self.intra_only = intra_only
        self.max_pixels = max_pixels
        self._on_output = on_output
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        context = av.CodecContext.create(decoder, "r")
        if not isinstance(context, VideoCodecContext):
            raise TypeError(f"{decoder} is not a video decoder")
        self._decoder = context
        if extradata:
            self._decoder.extradata = extradata
        self._encoder = H264Encoder(
            timescale=timescale,
            bitrate=bitrate,
            frame_rate=frame_rate,
            preset=preset,
            track_id=track_id,
        )
        self._timescale = Fraction(1, timescale)
        self._queue = _FrameQueue(queue_frames)
        self._dropping = False
        self._closed = False
        self._last_warning = 0.0
        #: frames fed, dropped (queue full), taken by the worker and done with, that
        #: failed to decode, and frames delivered
        self.frames_in = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0
        self.frames_out = 0
        #: seconds from :meth:`feed` to the output's hand-over to the loop: last and max
        self.last_latency = 0.0
        self.max_latency = 0.0
        self.total_latency = 0.0
        self._thread = threading.Thread(target=self._run, name=f"strom-{label}", daemon=True)
        self._thread.start()

    # -- the event loop's side ----------------------------------------------------------

    def feed(self, frame: Frame) -> None:
        """Queue ``frame`` for transcoding; never waits (see the class docs for drops)."""
        if self._closed:
            return
        self.frames_in += 1
        keyframe = frame.keyframe or self.intra_only
        if self._dropping and not keyframe:
            self._drop(1)
            return
        queued, dropped = self._queue.put(
            frame, replace=keyframe and not self.intra_only, drop_oldest=self.intra_only
        )
        if queued:
            self._dropping = False
            if dropped:
                self._drop(dropped)
        else:
            self._dropping = True
            self._drop(1)

    def _drop(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning(
                "%s: transcoding falls behind: %d frames dropped so far", self.label, self.dropped
            )

    def close(self) -> None:
        """Stop the worker thread; returns at once."""
        self._closed = True
        self._queue.close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait (blocking) for the worker thread to end; True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        """:meth:`close`, then wait for the thread without blocking the loop."""
        self.close()
        return await asyncio.to_thread(self.join, timeout)

    @property
    def backlog(self) -> int:
        """Frames waiting for the worker."""
        return len(self._queue)

    def _deliver(self, items: list[Track | Frame]) -> None:
        if not self._closed:
            self._on_output(items)

    def _report(self, reason: str) -> None:
        if not self._closed and self._on_error is not None:
            self._on_error(reason)

    # -- the worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        resync = False  # after a frame that failed: skip to the next keyframe
        while True:
            got = self._queue.get()
            if got is None or self._closed:
                break
            frame, queued_at = got
            try:
                if resync and not (frame.keyframe or self.intra_only):
                    continue  # undecodable until the next keyframe
                if not self._work(frame, queued_at):
                    break
                resync = False
            except (av.FFmpegError, ProtocolError, ValueError) as exc:
                self.errors += 1
                resync = not self.intra_only
                self._warn(f"frame at {frame.dts} did not transcode: {exc}")
                if not self._call(self._report, f"the picture did not decode: {exc}"):
                    break
            except Exception:  # a bug must not silently end the stream's video
                self.errors += 1
                resync = not self.intra_only
                log.exception("%s: transcoding the frame at %d failed", self.label, frame.dts)
            finally:
                self.processed += 1
        self._encoder.close()

    def _work(self, frame: Frame, queued_at: float) -> bool:
        """Transcode one frame and hand the result over; False once the loop is gone."""
        items = self._transcode(frame)
        if not items:
            return True
        latency = time.perf_counter() - queued_at
        self.last_latency = latency
        self.max_latency = max(self.max_latency, latency)
        self.total_latency += latency
        self.frames_out += sum(isinstance(i, Frame) for i in items)
        return self._call(self._deliver, items)

    def _call(self, callback: Callable[..., None], *args: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody wants the results any more
            return False
        return True

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning("%s: %s", self.label, message)

    def _transcode(self, frame: Frame) -> list[Track | Frame]:
        self._check_size(frame)
        packet = av.Packet(frame.data)
        packet.pts = frame.pts
        packet.dts = frame.dts
        packet.time_base = self._timescale
        out: list[Track | Frame] = []
        for picture in self._decoder.decode(packet):
            if picture.width * picture.height > self.max_pixels:
                raise LimitExceeded(
                    f"picture of {picture.width}x{picture.height} exceeds the limit of "
                    f"{self.max_pixels} pixels"
                )
            if picture.pts is None:
                picture.pts = frame.pts
            out.extend(self._encoder.encode(picture))
        return out

    def _check_size(self, frame: Frame) -> None:
        """Refuse a VP8 keyframe declaring too large a picture before decoding it."""
        if self._decoder.name != "vp8" or not vpx.vp8_is_keyframe(frame.data):
            return
        size = vpx.vp8_picture_size(frame.data)
        if size[0] * size[1] > self.max_pixels:
            raise LimitExceeded(
                f"VP8 picture of {size[0]}x{size[1]} exceeds the limit of {self.max_pixels} pixels"
            )


class VideoTranscoder(PictureTranscoder):
    """A :class:`PictureTranscoder` for ``track`` (VP8, VP9, AV1, H.264), its output an
    H.264 track with id ``VIDEO_TRACK_ID`` and the same timescale and timestamps."""

    def __init__(
        self,
        track: Track,
        *,
        on_output: Callable[[list[Track | Frame]], None],
        bitrate: int | None = None,
        on_error: Callable[[str], None] | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        preset: str = DEFAULT_PRESET,
        label: str = "",
    ) -> None:
        decoder = DECODERS.get(track.codec.value)
        if decoder is None or track.kind is not TrackKind.VIDEO:
            raise CodecError(f"cannot transcode {track.codec.value} video")
        super().__init__(
            decoder,
            track.timescale,
            on_output=on_output,
            on_error=on_error,
            bitrate=bitrate,
            queue_frames=queue_frames,
            max_pixels=max_pixels,
            preset=preset,
            extradata=track.config if decoder == "h264" else b"",
            label=label or f"transcode {track.codec.value}",
        )
