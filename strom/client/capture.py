"""Where pictures and sound come from: devices opened through PyAV, or a generated test
pattern and tone; and the compositor that scales (and crops, and puts the camera in a
corner of the screen) every picture to the size sent.

Everything here blocks: it runs in the client's capture threads, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import av.filter

from strom.client.config import ClientError, Size
from strom.client.devices import InputSpec

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)
#: the test tone: a 440 Hz beep every second, so a listener hears that it is live
TEST_TONE = "sine=frequency=440:beep_factor=4:sample_rate=48000"


class Clock:
    """Milliseconds since the client started: the one timeline of video and audio."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000

    def sleep_until(self, ms: float, stop: threading.Event) -> bool:
        """Wait until ``ms``; False when ``stop`` was set meanwhile."""
        delay = (ms - self.ms()) / 1000
        return not stop.wait(delay) if delay > 0 else not stop.is_set()


def open_input(spec: InputSpec, what: str) -> av.container.InputContainer:
    try:
        return av.open(spec.url, format=spec.format, options=spec.options)
    except (av.FFmpegError, OSError) as exc:
        raise ClientError(f"cannot open {what} ({spec.describe()}): {exc}") from exc


def device_frames(
    container: av.container.InputContainer, stop: threading.Event, kind: str = "video"
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Decoded frames of a device, as they come (the device sets the pace)."""
    stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
    for packet in container.demux(stream):
        if stop.is_set():
            return
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame | av.AudioFrame):
                yield frame


class TestPattern:
    """FFmpeg's ``testsrc2`` (moving colour bars, a frame counter) at the wall clock's
    pace: one frame every 1/fps seconds from the client's start."""

    def __init__(self, size: Size, fps: int) -> None:
        self.fps = fps
        self._container = av.open(f"testsrc2=size={size}:rate={fps}", format="lavfi")

    def frames(self, clock: Clock, stop: threading.Event) -> Iterator[tuple[av.VideoFrame, float]]:
        start = clock.ms()
        for n, frame in enumerate(self._container.decode(video=0)):
            due = start + n * 1000 / self.fps
            if not clock.sleep_until(due, stop):
                return
            assert isinstance(frame, av.VideoFrame)
            yield frame, due

    def close(self) -> None:
        self._container.close()


class TestTone:
    """FFmpeg's ``sine`` source at the wall clock's pace."""

    def __init__(self) -> None:
        self._container = av.open(TEST_TONE, format="lavfi")

    def frames(self, clock: Clock, stop: threading.Event) -> Iterator[tuple[av.AudioFrame, float]]:
        start = clock.ms()
        samples = 0
        for frame in self._container.decode(audio=0):
            assert isinstance(frame, av.AudioFrame)
            due = start + samples * 1000 / frame.sample_rate
            if not clock.sleep_until(due, stop):
                return
            samples += frame.samples
            yield frame, due

    def close(self) -> None:
        self._container.close()


class LatestFrame:
    """A camera read in its own thread, keeping only its newest frame: the screen sets
    the pace of a picture-in-picture stream, the camera just shows up in it."""

    def __init__(self, container: av.container.InputContainer, stop: threading.Event) -> None:
        self._container = container
        self._stop = stop
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self.error: str = ""
        self._thread = threading.Thread(target=self._run, name="strom-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in device_frames(self._container, self._stop):
                assert isinstance(frame, av.VideoFrame)
                with self._lock:
                    self._frame = frame
        except av.FFmpegError as exc:
            self.error = str(exc)
            log.warning("camera stopped: %s", exc)
        finally:
            self._container.close()

    def take(self) -> av.VideoFrame | None:
        with self._lock:
            return self._frame

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


#: the camera's width in a picture-in-picture stream, as a fraction of the picture's
PIP_FRACTION = 4
PIP_MARGIN = 16


class Compositor:
    """Turns captured pictures into the encoder's: crop, scale to the size sent, overlay
    the camera small in the bottom right corner, convert to yuv420p.

    The plain case (no crop, no camera) is one swscale call; otherwise an FFmpeg filter
    graph, built for the first pictures' sizes and rebuilt if they change.
    """

    def __init__(self, size: Size, crop: tuple[int, int, int, int] | None = None) -> None:
        self.size = size
        self.crop = crop
        self._graph: av.filter.Graph | None = None
        self._shape: tuple[object, ...] = ()
        self._main: av.filter.context.FilterContext | None = None
        self._overlay: av.filter.context.FilterContext | None = None
        self._sink: av.filter.context.FilterContext | None = None

    def compose(
        self, main: av.VideoFrame, ms: float, camera: av.VideoFrame | None = None
    ) -> av.VideoFrame | None:
        if camera is None and self.crop is None:
            return main.reformat(self.size.width, self.size.height, format="yuv420p")
        shape = (
            main.width, main.height, main.format.name,
            None if camera is None else (camera.width, camera.height, camera.format.name),
        )  # fmt: skip
        if shape != self._shape:
            self._build(main, camera)
            self._shape = shape
        assert self._main is not None
        assert self._sink is not None
        pts = round(ms)
        main.pts, main.time_base = pts, MS
        self._main.push(main)
        if camera is not None and self._overlay is not None:
            camera.pts, camera.time_base = pts, MS
            self._overlay.push(camera)
        out: av.VideoFrame | None = None
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            assert isinstance(frame, av.VideoFrame)
            out = frame
        return out

    def _build(self, main: av.VideoFrame, camera: av.VideoFrame | None) -> None:
        graph = av.filter.Graph()
        width, height = self.size.width, self.size.height
        source = graph.add_buffer(
            width=main.width, height=main.height, format=main.format, time_base=MS
        )
        last = source
        if self.crop is not None:
            w, h, x, y = self.crop
            crop = graph.add("crop", f"{w}:{h}:{x}:{y}")
            last.link_to(crop)
            last = crop
        scale = graph.add("scale", f"{width}:{height}")
        last.link_to(scale)
        last = scale
        self._overlay = None
        if camera is not None:
            cam = graph.add_buffer(
                width=camera.width, height=camera.height, format=camera.format, time_base=MS
            )
            small = graph.add("scale", f"{(width // PIP_FRACTION) & ~1}:-2")
            overlay = graph.add(
                "overlay",
                f"x=main_w-overlay_w-{PIP_MARGIN}:y=main_h-overlay_h-{PIP_MARGIN}"
                ":eof_action=repeat:repeatlast=1",
            )
            cam.link_to(small)
            last.link_to(overlay, 0, 0)
            small.link_to(overlay, 0, 1)
            last = overlay
            self._overlay = cam
        fmt = graph.add("format", "yuv420p")
        sink = graph.add("buffersink")
        last.link_to(fmt)
        fmt.link_to(sink)
        graph.configure()
        self._graph, self._main, self._sink = graph, source, sink
