"""``--preview``: a small window showing what is being sent.

PyAV has no window of its own; the standard library's tkinter shows the pictures (as PPM
images, which Tk reads without any imaging library). It is optional: where tkinter or a
display is missing, :func:`check_preview` says so before anything starts.

Tk wants to live in a main thread, and the client's main thread runs the event loop; so
the window is its own small process (:mod:`strom.client.window`), fed through a
pipe by :class:`PreviewWindow` with the newest picture ten times a second. A slow window
never holds up capture (only the newest picture is kept), and closing it does not stop
the stream.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import subprocess
import sys
import threading

import av

from strom.client.config import ClientError
from strom.client.devices import has_display, platform_name

log = logging.getLogger(__name__)

#: the preview's width in pixels (the height follows the picture's shape)
PREVIEW_WIDTH = 480


def check_preview() -> None:
    """:class:`ClientError` with the reason when no preview window can be shown here."""
    check_window("--preview", "stream without --preview, or watch your channel page instead")


def check_window(option: str, instead: str) -> None:
    """:class:`ClientError` when ``option`` cannot open a Tk window here: no display (then
    ``instead`` says what to do), or a Python without tkinter (then what to install)."""
    if not has_display():
        raise ClientError(
            f"{option} needs a display, and there is none here ($DISPLAY and "
            f"$WAYLAND_DISPLAY are unset); {instead}"
        )
    if importlib.util.find_spec("tkinter") is None:
        hint = {
            "linux": "install your system's Tk for Python, e.g. apt install python3-tk",
            "macos": "install a Python with Tk, e.g. from python.org, or brew install python-tk",
        }.get(platform_name(), "install Python with the tcl/tk option")
        raise ClientError(f"{option} needs tkinter, which this Python lacks: {hint}")


def ppm(frame: av.VideoFrame) -> bytes:
    """A binary PPM (P6) of an rgb24 frame, its rows unpadded."""
    plane = frame.planes[0]
    row = frame.width * 3
    data = bytes(plane)
    if plane.line_size != row:
        data = b"".join(
            data[y * plane.line_size : y * plane.line_size + row] for y in range(frame.height)
        )
    return f"P6 {frame.width} {frame.height} 255\n".encode() + data


class PreviewWindow:
    """The sending side: :meth:`offer` from the video thread; a thread of its own scales
    the newest picture and writes it to the window process."""

    def __init__(self, title: str = "Strom preview") -> None:
        self.title = title
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._feed, name="strom-preview", daemon=True)

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", "strom.client.window", self.title],
            stdin=subprocess.PIPE,
        )
        self._thread.start()

    def offer(self, frame: av.VideoFrame) -> None:
        with self._lock:
            self._frame = frame
        self._ready.set()

    def close(self) -> None:
        self._closed.set()
        self._ready.set()
        self._thread.join(2.0)
        process = self._process
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(2.0)

    def _feed(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        while not self._closed.is_set():
            self._ready.wait()
            self._ready.clear()
            with self._lock:
                frame, self._frame = self._frame, None
            if frame is None or self._closed.is_set():
                continue
            height = max(2, round(frame.height * PREVIEW_WIDTH / frame.width) & ~1)
            small = frame.reformat(PREVIEW_WIDTH, height, format="rgb24")
            try:
                process.stdin.write(ppm(small))
                process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                log.info("the preview window was closed")
                return
