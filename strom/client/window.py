"""The ``--preview`` window process: PPM pictures on standard input, shown with tkinter
until the pipe ends or the window is closed (see :mod:`strom.client.preview`).

Run as ``python -m strom.client.window TITLE``. Only the main thread talks to Tk; a
reader thread keeps the newest picture.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

#: how often the window shows the newest picture (ms)
REFRESH_MS = 100
#: bounds on one picture read from the pipe: its header line, each side
MAX_HEADER = 64
MAX_SIDE = 4096


def read_ppm(stream: IO[bytes]) -> bytes | None:
    """One PPM picture from ``stream`` as :func:`strom.client.preview.ppm` writes it; None
    at the end (or at anything else)."""
    header = stream.readline(MAX_HEADER)
    parts = header.split()
    if len(parts) != 4 or parts[0] != b"P6" or not all(p.isdigit() for p in parts[1:]):
        return None
    width, height = int(parts[1]), int(parts[2])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        return None
    body = stream.read(width * height * 3)
    if len(body) != width * height * 3:
        return None
    return header + body


def show(title: str) -> None:
    """The window process: pictures from standard input, shown until the pipe ends or
    the window is closed."""
    import tkinter  # noqa: PLC0415 - optional: only --preview needs it

    root = tkinter.Tk()
    root.title(title)
    label = tkinter.Label(root, text="waiting for the first picture…", bg="black", fg="white")
    label.configure(width=60, height=17)  # characters: about 480x270 until a picture comes
    label.pack()
    lock = threading.Lock()
    latest: list[bytes | None] = [None]
    ended = threading.Event()
    shown: list[Any] = []  # Tk forgets an image nobody holds a reference to

    def read() -> None:  # no Tk calls here: only the main thread talks to Tk
        while (picture := read_ppm(sys.stdin.buffer)) is not None:
            with lock:
                latest[0] = picture
        ended.set()

    def refresh() -> None:
        if ended.is_set():
            root.destroy()
            return
        with lock:
            picture, latest[0] = latest[0], None
        if picture is not None:
            photo = tkinter.PhotoImage(data=picture, format="PPM")
            label.configure(image=photo, text="", width=0, height=0)
            shown[:] = [photo]
        root.after(REFRESH_MS, refresh)

    threading.Thread(target=read, daemon=True).start()
    root.after(REFRESH_MS, refresh)
    root.mainloop()


if __name__ == "__main__":
    show(sys.argv[1] if len(sys.argv) > 1 else "Strom preview")
