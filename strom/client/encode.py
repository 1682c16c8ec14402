"""The client's encoders: PyAV frames in, Strom's neutral :class:`Track` and :class:`Frame`
out (see :mod:`strom.media.model`), timestamps in milliseconds on the client's clock.

Video is H.264 from libx264 tuned for live streaming (``zerolatency``: no B-frames, no
look-ahead, so a frame leaves the encoder as soon as it is captured), with a fixed keyframe
interval and either a capped bitrate or a constant quality. Audio is AAC-LC from FFmpeg's
own encoder, 48 kHz stereo, or Opus (libopus) for WHIP, where WebRTC carries no AAC.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.audio.resampler import AudioResampler
from av.video.frame import PictureType

from strom.media import aac, h264, opus
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind

MS = Fraction(1, 1000)
AUDIO_RATE = 48_000
AUDIO_LAYOUT = "stereo"
#: how far the sound card's clock may wander from the system's before it is corrected
MAX_AUDIO_DRIFT_MS = 150


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded access unit and the track it belongs to."""

    track: Track
    frame: Frame


@dataclass(frozen=True, slots=True)
class VideoSettings:
    width: int
    height: int
    fps: int
    #: kbit/s, or None for constant quality
    bitrate: int | None = 2500
    #: x264 CRF when ``bitrate`` is None
    quality: int | None = None
    preset: str = "veryfast"
    keyframe_seconds: float = 2.0

    def x264_params(self) -> str:
        keyint = max(1, round(self.fps * self.keyframe_seconds))
        # A fixed GOP (no scene-cut keyframes) gives regular segments to the server.
        params = [f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0"]
        if self.bitrate is not None:
            # A one-second VBV: the rate holds over any second, as an uplink needs.
            params += [f"vbv-maxrate={self.bitrate}", f"vbv-bufsize={self.bitrate}"]
        return ":".join(params)


class VideoEncoder:
    """H.264 encoder; :meth:`request_keyframe` may be called from any thread."""

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        ctx = av.CodecContext.create("libx264", "w")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width, ctx.height = settings.width, settings.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = MS
        ctx.framerate = Fraction(settings.fps, 1)
        ctx.gop_size = max(1, round(settings.fps * settings.keyframe_seconds))
        ctx.flags |= av.codec.context.Flags.global_header
        # forced-idr: a picture marked I (request_keyframe) is an IDR, a point to join at.
        options = {"preset": settings.preset, "tune": "zerolatency", "forced-idr": "1"}
        options["x264-params"] = settings.x264_params()
        if settings.bitrate is not None:
            ctx.bit_rate = settings.bitrate * 1000
        else:
            options["crf"] = str(settings.quality if settings.quality is not None else 23)
        ctx.options = options
        ctx.open()
        config = h264.avcc_from_extradata(bytes(ctx.extradata or b""))
        self.track = Track(
            id=VIDEO_TRACK_ID,
            kind=TrackKind.VIDEO,
            codec=Codec.H264,
            timescale=1000,
            config=config,
            codec_string=h264.codec_string(h264.parse_avcc(config)),
            width=settings.width,
            height=settings.height,
        )
        self._ctx = ctx
        self._keyframe = threading.Event()
        self._last_pts = -1

    def request_keyframe(self) -> None:
        """The next frame is encoded as an IDR (after a reconnect, or a dropped queue)."""
        self._keyframe.set()

    def encode(self, frame: av.VideoFrame, ms: int) -> list[Encoded]:
        """Encode ``frame`` (yuv420p, the encoder's size) captured at ``ms``."""
        ms = max(ms, self._last_pts + 1)  # strictly increasing, whatever the clock did
        self._last_pts = ms
        frame.pts = ms
        frame.time_base = MS
        # A decoded source frame may say "I": libx264 would make every such frame an IDR.
        frame.pict_type = PictureType.NONE
        if self._keyframe.is_set():
            self._keyframe.clear()
            frame.pict_type = PictureType.I
        return self._packets(self._ctx.encode(frame))

    def flush(self) -> list[Encoded]:
        return self._packets(self._ctx.encode(None))

    def _packets(self, packets: list[av.Packet[Any]]) -> list[Encoded]:
        out = []
        for packet in packets:
            if packet.pts is None or packet.dts is None:
                continue
            data = h264.annexb_to_avcc(bytes(packet))
            frame = Frame(VIDEO_TRACK_ID, packet.dts, packet.pts, packet.is_keyframe, data)
            out.append(Encoded(self.track, frame))
        return out


class AudioEncoder:
    """AAC-LC (or Opus: ``opus=True``), 48 kHz stereo; any input format is resampled to it."""

    def __init__(self, bitrate_kbps: int, *, opus: bool = False) -> None:
        ctx = av.CodecContext.create("libopus" if opus else "aac", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        sample_format = "flt" if opus else "fltp"  # libopus takes interleaved samples only
        ctx.sample_rate = AUDIO_RATE
        ctx.layout = AUDIO_LAYOUT
        ctx.format = sample_format
        ctx.bit_rate = bitrate_kbps * 1000
        ctx.time_base = Fraction(1, AUDIO_RATE)
        ctx.open()
        self.track = _opus_track() if opus else _aac_track(bytes(ctx.extradata or b""))
        self._ctx = ctx
        self._resampler = AudioResampler(
            format=sample_format, layout=AUDIO_LAYOUT, rate=AUDIO_RATE, frame_size=ctx.frame_size
        )
        #: samples handed to the encoder so far: the audio clock
        self._samples = 0
        self._start_ms: float | None = None
        #: how much sound was captured (ms), to compare with the capture times
        self._fed_ms = 0.0
        #: corrections of the audio clock (a gap or a dropped frame)
        self.resyncs = 0
        self._last_ms = -1

    def encode(self, frame: av.AudioFrame | None, ms: float) -> list[Encoded]:
        """Encode ``frame``, whose first sample was captured at ``ms``.

        The audio clock is the sample count from the first frame: capture jitter does not
        bend it, so the sound stays continuous; the first frame's time anchors it to video.
        A sound card's clock drifts from the system's: past :data:`MAX_AUDIO_DRIFT_MS` a
        late card gets a gap, an early one loses a frame, so sound stays with the picture.
        """
        if self._start_ms is None:
            self._start_ms = ms
        if frame is not None:
            drift = ms - (self._start_ms + self._fed_ms)
            if drift > MAX_AUDIO_DRIFT_MS:
                self._start_ms += drift
                self.resyncs += 1
            elif drift < -MAX_AUDIO_DRIFT_MS:
                self.resyncs += 1
                return []
            self._fed_ms += frame.samples * 1000 / frame.sample_rate
        frame_in = frame
        if frame_in is not None:
            frame_in.pts = None
        packets: list[av.Packet[Any]] = []
        for out in self._resampler.resample(frame_in):
            out.pts = self._samples
            out.time_base = Fraction(1, AUDIO_RATE)
            self._samples += out.samples
            packets += self._ctx.encode(out)
        if frame is None:
            packets += self._ctx.encode(None)
        return self._packets(packets)

    def _packets(self, packets: list[av.Packet[Any]]) -> list[Encoded]:
        out = []
        start = self._start_ms or 0.0
        for packet in packets:
            if packet.pts is None:
                continue
            # The encoder's priming packet comes before the first sample: never before
            # zero, never on the previous packet's timestamp.
            ms = max(0, self._last_ms + 1, round(start + packet.pts * 1000 / AUDIO_RATE))
            self._last_ms = ms
            out.append(Encoded(self.track, Frame(AUDIO_TRACK_ID, ms, ms, True, bytes(packet))))
        return out


def _aac_track(asc: bytes) -> Track:
    cfg = aac.parse_audio_specific_config(asc)
    return Track(
        id=AUDIO_TRACK_ID,
        kind=TrackKind.AUDIO,
        codec=Codec.AAC,
        timescale=1000,
        config=asc,
        codec_string=aac.codec_string(cfg),
        sample_rate=cfg.sample_rate,
        channels=cfg.channels,
    )


def _opus_track() -> Track:
    channels = 2
    dops = opus.build_dops(opus.OpusConfig(channels, 0, AUDIO_RATE, 0, 0))
    return Track(
        id=AUDIO_TRACK_ID,
        kind=TrackKind.AUDIO,
        codec=Codec.OPUS,
        timescale=1000,
        config=dops,
        codec_string=opus.CODEC_STRING,
        sample_rate=AUDIO_RATE,
        channels=channels,
    )
