"""The ``strom stream --gui`` window: Tk, on the main thread only (the threads and how
they meet are described in :mod:`strom.client.gui`).

Left, the fields (server, stream key, source, screen area, camera, microphone, size, frame
rate, bitrate) and the Go live / Stop buttons; right, the preview of the pictures sent,
the status line (state, uptime, rates, viewers) and the last chat lines.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import tkinter as tk
from pathlib import Path
from tkinter import ttk

from strom.client.config import ClientError
from strom.client.devices import linux_cameras, linux_microphones, platform_name
from strom.client.form import (
    SOURCES,
    StreamForm,
    form_config,
    form_from_args,
    load_form,
    save_form,
    settings_path,
)
from strom.client.gui_broadcast import BroadcastThread, LatestPicture, WindowStatus
from strom.client.preview import ppm
from strom.client.status import TerminalStatus, render_status

#: how often the window reads the broadcast's status (ms), and shows a new picture
POLL_MS = 200
PREVIEW_MS = 100
#: the preview's size in pixels (the picture keeps its shape inside it)
PREVIEW_WIDTH, PREVIEW_HEIGHT = 384, 216
#: how long closing the window waits for the goodbye before it closes anyway (seconds)
CLOSE_TIMEOUT = 10.0
#: the buttons' colours: red for going live, as in most streaming apps
GO_LIVE_COLOUR = "#d32f2f"
STOP_COLOUR = "#37474f"
#: a button that cannot be pressed now is grey, whatever its colour when it can
IDLE_COLOUR = "#9e9e9e"
SIZES = ("", "1920x1080", "1280x720", "854x480", "640x360")
FRAME_RATES = ("15", "24", "30", "60")
BITRATES = ("800", "1500", "2500", "4500", "6000")


class StreamWindow:
    def __init__(
        self, root: tk.Tk, args: argparse.Namespace, form: StreamForm, remember_in: Path
    ) -> None:
        self.root = root
        self.args = args
        self.remember_in = remember_in
        # The status is also logged to standard output, as the terminal client logs it.
        self.status = WindowStatus(TerminalStatus(sys.stdout, tty=False) if sys.stdout else None)
        self.picture = LatestPicture()
        self.broadcast: BroadcastThread | None = None
        self._closing_since: float | None = None
        self._signalled = False
        self._photo: tk.PhotoImage | None = None  # Tk forgets an image nobody holds
        self._chat_shown: list[str] = []
        self.text: dict[str, tk.StringVar] = {
            name: tk.StringVar(root, value=str(getattr(form, name)))
            for name in StreamForm.__dataclass_fields__
            if name != "mic_on"
        }
        self.mic_on = tk.BooleanVar(root, value=form.mic_on)
        self.source_label = tk.StringVar(root, value=SOURCES.get(form.source, "Screen"))
        self.state_line = tk.StringVar(root, value="■ STOPPED")
        self.message_line = tk.StringVar(
            root, value="Fill in the server and your stream key, then Go live."
        )
        root.title("Strom stream")
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._build()
        self.source_label.trace_add("write", lambda *_: self._enable_fields())
        self.mic_on.trace_add("write", lambda *_: self._enable_fields())
        self._enable_fields()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        root.after(POLL_MS, self._poll)
        root.after(PREVIEW_MS, self._show_picture)

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        root = self.root
        fields = ttk.Frame(root, padding=8)
        fields.grid(row=0, column=0, sticky="nw")
        side = ttk.Frame(root, padding=8)
        side.grid(row=0, column=1, sticky="nsew")
        root.columnconfigure(1, weight=1)
        root.rowconfigure(0, weight=1)
        self.inputs: dict[str, list[ttk.Widget]] = {}

        def row(label: str, n: int, *widgets: ttk.Widget, group: str = "") -> None:
            ttk.Label(fields, text=label).grid(row=n, column=0, sticky="w", pady=2)
            for i, widget in enumerate(widgets):
                widget.grid(row=n, column=1 + i, sticky="we", padx=(0, 4), pady=2)
            self.inputs.setdefault(group or label, []).extend(widgets)

        def entry(name: str, width: int = 32, show: str = "") -> ttk.Entry:
            return ttk.Entry(fields, textvariable=self.text[name], width=width, show=show)

        def choice(name: str, values: tuple[str, ...], width: int = 10) -> ttk.Combobox:
            return ttk.Combobox(fields, textvariable=self.text[name], values=values, width=width)

        row("Server", 0, entry("server"))
        key = entry("key", show="•")
        row("Stream key", 1, key)
        shown = tk.BooleanVar(root, value=False)
        ttk.Checkbutton(
            fields, text="show", variable=shown,
            command=lambda: key.configure(show="" if shown.get() else "•"),
        ).grid(row=1, column=2, sticky="w")  # fmt: skip
        source = ttk.Combobox(
            fields, textvariable=self.source_label, values=tuple(SOURCES.values()),
            state="readonly", width=30,
        )  # fmt: skip
        row("Source", 2, source)
        row("Display", 3, entry("display", 12), group="display")
        area = ttk.Frame(fields)
        parts: list[ttk.Widget] = []
        for name in ("area_x", "area_y", "area_width", "area_height"):
            text = name[5]  # x, y, w, h
            ttk.Label(area, text=text).pack(side="left")
            part = ttk.Entry(area, textvariable=self.text[name], width=5)
            part.pack(side="left", padx=(1, 6))
            parts.append(part)
        row("Area", 4, area, group="area")
        self.inputs["area"] = parts
        cameras = tuple(device for device, _ in linux_cameras()) if self._linux else ()
        row("Camera", 5, choice("camera", cameras, 30), group="camera")
        microphones = tuple(d for d, _ in linux_microphones()) if self._linux else ("default",)
        mic_check = ttk.Checkbutton(fields, text="Microphone", variable=self.mic_on)
        mic_check.grid(row=6, column=0, sticky="w")
        mic = choice("mic", microphones, 30)
        mic.grid(row=6, column=1, sticky="we", padx=(0, 4), pady=2)
        self.inputs["mic"] = [mic]
        self.inputs["mic_check"] = [mic_check]
        row("Size", 7, choice("size", SIZES), group="how")
        row("Frame rate", 8, choice("fps", FRAME_RATES), group="how")
        row("Bitrate (kbit/s)", 9, choice("bitrate", BITRATES), group="how")
        ttk.Label(fields, text="Size empty: the source's own.", foreground="#555").grid(
            row=10, column=0, columnspan=3, sticky="w"
        )
        buttons = ttk.Frame(fields, padding=(0, 10, 0, 0))
        buttons.grid(row=11, column=0, columnspan=3, sticky="we")
        self.go_live = tk.Button(
            buttons, text="Go live", command=self.start, bg=GO_LIVE_COLOUR, fg="white",
            activebackground=GO_LIVE_COLOUR, activeforeground="white", width=12,
            font=("TkDefaultFont", 11, "bold"),
        )  # fmt: skip
        self.go_live.pack(side="left")
        self.stop_button = tk.Button(
            buttons, text="Stop", command=self.stop, bg=STOP_COLOUR, fg="white",
            activebackground=STOP_COLOUR, activeforeground="white", width=12,
            font=("TkDefaultFont", 11, "bold"),
        )  # fmt: skip
        self.stop_button.pack(side="left", padx=8)
        self._enable_button(self.stop_button, STOP_COLOUR, False)

        self.preview = tk.Label(
            side, text="preview: the pictures sent", bg="black", fg="#bbb",
            width=PREVIEW_WIDTH, height=PREVIEW_HEIGHT, image=self._blank(),
            compound="center",
        )  # fmt: skip
        self.preview.pack(anchor="nw")
        # Wrapped to the preview's width: a long status line never widens the window.
        ttk.Label(
            side, textvariable=self.state_line, font=("TkDefaultFont", 11, "bold"),
            wraplength=PREVIEW_WIDTH,
        ).pack(anchor="w", pady=(6, 2))  # fmt: skip
        ttk.Label(side, text="Chat").pack(anchor="w")
        self.chat = tk.Text(side, height=5, width=48, state="disabled", wrap="word")
        self.chat.pack(anchor="w")
        ttk.Label(root, textvariable=self.message_line, wraplength=760, padding=(8, 0, 8, 8)).grid(
            row=1, column=0, columnspan=2, sticky="w"
        )

    @property
    def _linux(self) -> bool:
        return platform_name() == "linux"

    def _blank(self) -> tk.PhotoImage:
        """An empty image sizes the label in pixels (without one, Tk counts characters)."""
        self._photo = tk.PhotoImage(master=self.root, width=PREVIEW_WIDTH, height=PREVIEW_HEIGHT)
        return self._photo

    # -- the fields --------------------------------------------------------------------------

    def read_form(self) -> StreamForm:
        values = {name: var.get() for name, var in self.text.items()}
        source = next((k for k, v in SOURCES.items() if v == self.source_label.get()), "screen")
        return StreamForm(**{**values, "source": source, "mic_on": self.mic_on.get()})  # type: ignore[arg-type]

    def _enable_fields(self) -> None:
        form = self.read_form()
        running = self.broadcast is not None
        wanted = {
            "display": form.uses_screen,
            "area": form.source == "area",
            "camera": form.uses_camera,
            "mic_check": form.source != "test",
            "mic": form.source != "test" and form.mic_on,
        }
        for group, widgets in self.inputs.items():
            on = wanted.get(group, True) and not running
            for widget in widgets:
                widget.state(["!disabled"] if on else ["disabled"])

    # -- Go live / Stop ----------------------------------------------------------------------

    def start(self) -> None:
        if self.broadcast is not None:
            return
        form = self.read_form()
        try:
            config = form_config(form, self.args)
        except ClientError as exc:
            self.message_line.set(str(exc))
            return
        try:
            save_form(self.remember_in, form)
        except OSError as exc:
            self.message_line.set(f"(could not remember the fields in {self.remember_in}: {exc})")
        self.status.clear()
        self.broadcast = BroadcastThread(config, self.status, self.picture)
        self.broadcast.start()
        self.state_line.set("… STARTING")
        self.message_line.set("Opening the sources…")
        self._set_running(True)

    def stop(self) -> None:
        if self.broadcast is not None:
            self.broadcast.stop()
            self._enable_button(self.stop_button, STOP_COLOUR, False)
            self.state_line.set("… STOPPING")

    def _set_running(self, running: bool) -> None:
        self._enable_button(self.go_live, GO_LIVE_COLOUR, not running)
        self._enable_button(self.stop_button, STOP_COLOUR, running)
        self._enable_fields()

    @staticmethod
    def _enable_button(button: tk.Button, colour: str, enabled: bool) -> None:
        shown = colour if enabled else IDLE_COLOUR
        button.configure(
            state="normal" if enabled else "disabled", bg=shown, activebackground=shown
        )

    def close(self) -> None:
        """The window's close button (and SIGINT/SIGTERM): end the broadcast first, so it
        ends at once for the viewers, then close."""
        if self.broadcast is None:
            self.root.destroy()
            return
        if self._closing_since is None:
            self._closing_since = time.monotonic()
            self.stop()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signalled = True  # acted on in _poll: no Tk calls in a signal handler

    # -- polling the broadcast ---------------------------------------------------------------

    def _poll(self) -> None:
        if self._signalled:
            self._signalled = False
            self.close()
        snapshot, chat, messages = self.status.read()
        if messages:
            self.message_line.set(messages[-1])
        if snapshot is not None and self.broadcast is not None:
            self.state_line.set(render_status(snapshot))
        if chat != self._chat_shown:
            self._chat_shown = chat
            self.chat.configure(state="normal")
            self.chat.delete("1.0", "end")
            self.chat.insert("end", "\n".join(chat))
            self.chat.configure(state="disabled")
        broadcast = self.broadcast
        if broadcast is not None and broadcast.done.is_set():
            broadcast.join(1.0)
            self.broadcast = None
            self.state_line.set("■ STOPPED")
            self._set_running(False)
        if self._closing_since is not None and (
            self.broadcast is None or time.monotonic() - self._closing_since > CLOSE_TIMEOUT
        ):
            self.root.destroy()
            return
        self.root.after(POLL_MS, self._poll)

    def _show_picture(self) -> None:
        frame = self.picture.take()
        if frame is not None:
            scale = min(PREVIEW_WIDTH / frame.width, PREVIEW_HEIGHT / frame.height)
            width = max(2, round(frame.width * scale))
            height = max(2, round(frame.height * scale))
            small = frame.reformat(width, height, format="rgb24")
            self._photo = tk.PhotoImage(master=self.root, data=ppm(small), format="PPM")
            self.preview.configure(image=self._photo, text="")
        self.root.after(PREVIEW_MS, self._show_picture)


def run_window(args: argparse.Namespace) -> int:
    """The window, until it is closed; 0, or :class:`ClientError` if it cannot open."""
    remember_in = settings_path()
    note = ""
    try:
        saved = load_form(remember_in)
    except ClientError as exc:
        saved, note = StreamForm(), str(exc)
    form = form_from_args(args, saved)
    try:
        root = tk.Tk(className="strom")
    except tk.TclError as exc:
        raise ClientError(f"--gui cannot open a window: {exc}") from exc
    window = StreamWindow(root, args, form, remember_in)
    if note:
        window.message_line.set(note)
    root.mainloop()
    return 0
