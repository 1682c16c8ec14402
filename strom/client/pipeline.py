"""Capture and encode in threads, so the network never waits for a camera or x264.

:class:`MediaPipeline` opens the sources (on the caller's thread, so a missing device is
reported before anything connects), then runs one video thread (capture, compose, H.264)
and one audio thread (capture, AAC). Every encoded frame goes to ``sink``, which the
publisher makes thread-safe; the pipeline itself never blocks on the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import av

from strom.client import devices
from strom.client.capture import (
    Clock,
    Compositor,
    LatestFrame,
    TestPattern,
    TestTone,
    device_frames,
    open_input,
)
from strom.client.config import ClientConfig, ClientError, Size
from strom.client.encode import AudioEncoder, Encoded, VideoEncoder, VideoSettings
from strom.media.model import Track

log = logging.getLogger(__name__)

#: how often the preview window gets a picture (ms): a preview, not a second encoder
PREVIEW_INTERVAL_MS = 100
#: how long stop() waits for each thread
JOIN_TIMEOUT = 5.0


class PreviewSink(Protocol):
    def offer(self, frame: av.VideoFrame) -> None: ...


@dataclass
class CaptureStats:
    """Counters the capture threads update and the status line reads."""

    frames_encoded: int = 0
    #: frames the capture delivered too late for the frame rate (a slow machine)
    frames_late: int = 0
    audio_frames: int = 0


def _even(n: int) -> int:
    return max(16, n - n % 2)


class MediaPipeline:
    def __init__(
        self,
        config: ClientConfig,
        sink: Callable[[Encoded], None],
        *,
        on_error: Callable[[str], None],
        preview: PreviewSink | None = None,
    ) -> None:
        self.config = config
        self.stats = CaptureStats()
        self._sink = sink
        self._on_error = on_error
        self._preview = preview
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clock = Clock()
        self._containers: list[av.container.InputContainer] = []
        self._pattern: TestPattern | None = None
        self._tone: TestTone | None = None
        self._camera: LatestFrame | None = None
        self._main: av.container.InputContainer | None = None
        self._mic: av.container.InputContainer | None = None
        self.video: VideoEncoder | None = None
        self.audio: AudioEncoder | None = None
        self._compositor: Compositor | None = None
        self.description = ""

    @property
    def tracks(self) -> list[Track]:
        return [e.track for e in (self.video, self.audio) if e is not None]

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the sources and the encoders; :class:`ClientError` if one is missing."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        cfg = self.config
        crop = None
        if cfg.source == "test":
            assert cfg.size is not None
            size = cfg.size
            self._pattern = TestPattern(size, cfg.fps)
            self._tone = TestTone()
            self.description = f"test pattern and tone, {size} at {cfg.fps} fps"
        else:
            size, crop = self._open_devices()
        self._compositor = Compositor(size, crop)
        settings = VideoSettings(
            size.width, size.height, cfg.fps, cfg.bitrate, cfg.quality, cfg.preset,
            cfg.keyframe_seconds,
        )  # fmt: skip
        self.video = VideoEncoder(settings)
        if cfg.audio:
            self.audio = AudioEncoder(cfg.audio_bitrate, opus=cfg.whip)
        rate = f"{cfg.bitrate} kbit/s" if cfg.bitrate is not None else f"quality {cfg.quality}"
        self.description += f"; H.264 {size} {cfg.fps} fps {rate}, preset {cfg.preset}"

    def _open_devices(self) -> tuple[Size, tuple[int, int, int, int] | None]:
        cfg = self.config
        crop = None
        parts = []
        if cfg.screen is not None:
            spec = devices.screen_input(cfg.screen, cfg.fps)
            self._main = open_input(spec, "the screen")
            self._containers.append(self._main)
            crop = spec.crop
            if cfg.screen.area is not None:
                natural = Size(_even(cfg.screen.area.width), _even(cfg.screen.area.height))
            else:
                stream = self._main.streams.video[0]
                natural = Size(_even(stream.width), _even(stream.height))
            parts.append(f"screen {spec.url} ({natural})")
            if cfg.webcam:
                camera = open_input(devices.webcam_input(cfg.webcam, cfg.fps), "the camera")
                self._camera = LatestFrame(camera, self._stop)
                parts.append(f"camera {cfg.webcam} in the corner")
        else:
            assert cfg.webcam is not None
            self._main = open_input(devices.webcam_input(cfg.webcam, cfg.fps), "the camera")
            self._containers.append(self._main)
            stream = self._main.streams.video[0]
            natural = Size(_even(stream.width), _even(stream.height))
            parts.append(f"camera {cfg.webcam} ({natural})")
        if cfg.mic:
            self._mic = open_input(devices.mic_input(cfg.mic), "the microphone")
            self._containers.append(self._mic)
            parts.append(f"microphone {cfg.mic}")
        else:
            parts.append("no sound (add --mic DEVICE)")
        size = cfg.size or natural
        self.description = ", ".join(parts)
        return size, crop

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._spawn("strom-video", self._video_loop)
        if self.audio is not None:
            self._spawn("strom-audio", self._audio_loop)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._guard, args=(target,), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except (av.FFmpegError, OSError, ClientError) as exc:
            if not self._stop.is_set():
                log.warning("%s stopped: %s", threading.current_thread().name, exc)
                self._on_error(f"capture stopped: {exc}")
        except Exception as exc:
            log.exception("%s failed", threading.current_thread().name)
            self._on_error(f"capture failed: {exc}")

    def request_keyframe(self) -> None:
        if self.video is not None:
            self.video.request_keyframe()

    def _video_frames(self) -> Iterator[tuple[av.VideoFrame, float]]:
        if self._pattern is not None:
            yield from self._pattern.frames(self._clock, self._stop)
            return
        assert self._main is not None
        for frame in device_frames(self._main, self._stop):
            assert isinstance(frame, av.VideoFrame)
            yield frame, self._clock.ms()

    def _video_loop(self) -> None:
        assert self.video is not None
        assert self._compositor is not None
        interval = 1000 / self.config.fps
        start: float | None = None
        last_slot = -1
        last_preview: float = -PREVIEW_INTERVAL_MS
        stats = self.stats
        for frame, ms in self._video_frames():
            now = self._clock.ms()
            if now - ms > interval:
                stats.frames_late += 1  # behind the clock: a slow machine
                continue
            # Pictures go on a fixed grid of 1/fps (a constant frame rate, as players
            # expect): each takes the slot nearest to when it was captured. One that
            # falls in a slot already taken came from a device faster than --fps.
            if start is None:
                start = ms
            position = (ms - start) / interval
            if position < last_slot + 0.5:
                continue
            last_slot = max(last_slot + 1, round(position))
            pts = round(start + last_slot * interval)
            camera = self._camera.take() if self._camera is not None else None
            picture = self._compositor.compose(frame, pts, camera)
            if picture is None:
                continue
            for item in self.video.encode(picture, pts):
                stats.frames_encoded += 1
                self._sink(item)
            if self._preview is not None and ms - last_preview >= PREVIEW_INTERVAL_MS:
                last_preview = ms
                self._preview.offer(picture)
            if self._stop.is_set():
                return

    def _audio_loop(self) -> None:
        assert self.audio is not None
        if self._tone is not None:
            frames: Iterator[tuple[av.AudioFrame, float]] = self._tone.frames(
                self._clock, self._stop
            )
        else:
            frames = self._mic_frames()
        for frame, ms in frames:
            for item in self.audio.encode(frame, ms):
                self.stats.audio_frames += 1
                self._sink(item)

    def _mic_frames(self) -> Iterator[tuple[av.AudioFrame, float]]:
        assert self._mic is not None
        for frame in device_frames(self._mic, self._stop, "audio"):
            assert isinstance(frame, av.AudioFrame)
            # It arrived when its last sample was captured: it began one duration earlier.
            yield frame, self._clock.ms() - frame.samples * 1000 / frame.sample_rate

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        if self._camera is not None:
            self._camera.join(JOIN_TIMEOUT)
        if any(thread.is_alive() for thread in self._threads):
            # A device that never returns: closing it under the thread could crash;
            # the (daemon) thread ends with the process.
            log.warning("a capture device did not stop in time")
            return
        self.close()

    def close(self) -> None:
        for container in self._containers:
            container.close()
        self._containers.clear()
        for source in (self._pattern, self._tone):
            if source is not None:
                source.close()
        self._pattern = self._tone = None
