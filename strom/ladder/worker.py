"""A ladder's worker process: decode the source once (H.264, HEVC, AV1, VP8/VP9),
encode every rung in H.264.

``python -m strom.ladder.worker CONFIG`` (``CONFIG`` a JSON object: the rungs, the x264
preset) reads the source's video track and frames from its stdin and writes each rung's
tracks and frames to its stdout, in the :mod:`strom.media.frame_pipe` format, the rung's
index as the message's lane. It runs in a process of its own so that the hub's event
loop never waits for a decoder or an encoder; the hub bounds what it queues for it.

Each rung's picture is the decoded source scaled down once, then encoded by an
:class:`~strom.ingest.transcode.H264Encoder` (``tune=zerolatency``: one picture in, one
frame out) with an IDR exactly where the source has one, so every rendition's segments
start where the source's do. A frame that does not decode is skipped, and what follows
it until the next keyframe. The process ends when its stdin does.
"""

from __future__ import annotations

import logging
import sys
import time
from fractions import Fraction
from typing import BinaryIO

import av
from av.video.codeccontext import VideoCodecContext
from av.video.reformatter import Interpolation

from strom.errors import ProtocolError
from strom.ingest.transcode import DECODERS, H264Encoder
from strom.ladder.config import WorkerConfig
from strom.media import frame_pipe
from strom.media.model import Frame, Track, TrackKind

log = logging.getLogger("strom.ladder.worker")

_READ = 1 << 16
_LOG_EVERY = 10.0
#: what the ladder decodes: whatever a channel may carry (HEVC and AV1 too, from
#: Enhanced RTMP: a browser that cannot play the source plays an H.264 rendition)
_DECODERS = {**DECODERS, "hevc": "hevc"}
#: decoders whose frames need the track's record (AVCC/HVCC: its NAL length size)
_WITH_RECORD = frozenset({"h264", "hevc"})


class LadderEncoder:
    """Source frames in, every rung's tracks and frames out (lane = rung index)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._decoder: VideoCodecContext | None = None
        self._encoders: list[H264Encoder] = []
        self._timescale = 1000
        self._resync = False
        self.errors = 0
        self._last_warning = 0.0

    def set_track(self, track: Track) -> None:
        name = _DECODERS.get(track.codec.value)
        if name is None or track.kind is not TrackKind.VIDEO:
            raise ProtocolError(f"the ladder cannot decode {track.codec.value}")
        context = av.CodecContext.create(name, "r")
        assert isinstance(context, VideoCodecContext)
        if name in _WITH_RECORD and track.config:
            context.extradata = track.config
        context.thread_count = 1  # frame threads would hold pictures back: latency
        self._decoder = context
        self._timescale = track.timescale
        for encoder in self._encoders:
            encoder.close()
        self._encoders = [
            H264Encoder(
                timescale=track.timescale,
                bitrate=rung.bitrate,
                preset=self.config.preset,
                keyframe_interval=3600.0,  # IDRs follow the source's (see encode)
                track_id=track.id,
            )
            for rung in self.config.rungs
        ]
        self._resync = False

    def add_frame(self, frame: Frame) -> list[tuple[int, Track | Frame]]:
        if self._decoder is None or (self._resync and not frame.keyframe):
            return []
        packet = av.Packet(frame.data)
        packet.pts, packet.dts = frame.pts, frame.dts
        packet.time_base = Fraction(1, self._timescale)
        try:
            pictures = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            self.errors += 1
            self._resync = True
            self._warn(f"frame at {frame.dts} did not decode: {exc}")
            return []
        self._resync = False
        out: list[tuple[int, Track | Frame]] = []
        for picture in pictures:
            if picture.width * picture.height > self.config.max_pixels:
                raise ProtocolError(f"picture of {picture.width}x{picture.height} is too large")
            if picture.pts is None:
                picture.pts = frame.pts
            keyframe = bool(picture.key_frame)
            pairs = zip(self.config.rungs, self._encoders, strict=True)
            for lane, (rung, encoder) in enumerate(pairs):
                width, height = rung.size(picture.width, picture.height)
                scaled = picture.reformat(
                    width=width, height=height, format="yuv420p",
                    interpolation=Interpolation.BILINEAR,
                )  # fmt: skip
                scaled.pts = picture.pts
                out.extend((lane, item) for item in encoder.encode(scaled, keyframe=keyframe))
        return out

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning("%s: %s", self.config.label, message)


def serve(config: WorkerConfig, source: BinaryIO, sink: BinaryIO) -> None:
    """Read messages from ``source`` until it ends, write the rungs' to ``sink``."""
    reader = frame_pipe.PipeReader()
    ladder = LadderEncoder(config)
    while data := source.read1(_READ) if hasattr(source, "read1") else source.read(_READ):
        for message in reader.feed(data):
            item = message.item
            if isinstance(item, Track):
                ladder.set_track(item)
                continue
            out = ladder.add_frame(item)
            if out:
                sink.write(b"".join(frame_pipe.encode(i, lane) for lane, i in out))
                sink.flush()


def main(argv: list[str]) -> int:
    # A process of its own: its log lines go to the node's stderr.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = WorkerConfig.from_json(argv[0])
    try:
        serve(config, sys.stdin.buffer, sys.stdout.buffer)
    except (ProtocolError, BrokenPipeError) as exc:
        log.warning("%s: worker stops: %s", config.label, exc)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
