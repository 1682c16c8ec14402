"""What the ``strom stream --gui`` window's fields hold: a :class:`StreamForm` of plain
strings, filled from the remembered file and the command line, and turned into the same
checked :class:`ClientConfig` the terminal client uses (:func:`form_config`), so both
front ends accept and refuse exactly the same things.

The fields are remembered between runs in a small JSON file (:func:`settings_path`:
``$XDG_CONFIG_HOME/strom/stream.json``, ``%APPDATA%\\strom\\stream.json`` on Windows),
written only by its owner (mode 0600), because it holds the stream key, as OBS's
``service.json`` does. The file is read as untrusted input: bounded in size, every field
type-checked; a broken file is reported and ignored, never fatal.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from strom.client.config import ClientConfig, ClientError, config_from_args, parse_screen

#: the sources the window offers, and how each is shown
SOURCES = {
    "screen": "Screen",
    "area": "Screen area",
    "camera": "Camera",
    "screen+camera": "Screen + camera",
    "test": "Test pattern and tone",
}
#: the remembered file: its largest size, and the longest value kept in a field
MAX_SETTINGS_BYTES = 64 << 10
MAX_FIELD = 1000
SETTINGS_VERSION = 1


@dataclass(frozen=True, slots=True)
class StreamForm:
    """The window's fields, as typed (checked only by :func:`form_config`)."""

    server: str = ""
    key: str = ""
    source: str = "screen"
    #: the X display (or macOS screen number, Windows ``desktop``); empty: the default
    display: str = ""
    area_x: str = "0"
    area_y: str = "0"
    area_width: str = "1280"
    area_height: str = "720"
    camera: str = ""
    mic_on: bool = False
    mic: str = "default"
    #: the picture size sent, ``WxH``; empty: the source's own
    size: str = ""
    fps: str = "30"
    bitrate: str = "2500"

    @property
    def uses_screen(self) -> bool:
        return self.source in ("screen", "area", "screen+camera")

    @property
    def uses_camera(self) -> bool:
        return self.source in ("camera", "screen+camera")


def form_from_args(args: argparse.Namespace, saved: StreamForm | None = None) -> StreamForm:
    """The remembered fields, with what the command line gave on top of them."""
    form = saved or StreamForm()
    changes: dict[str, object] = {}
    if args.server:
        changes["server"] = args.server.strip()
    if args.key:
        changes["key"] = args.key.strip()
    if args.source == "test":
        changes["source"] = "test"
    elif args.screen is not None or args.webcam:
        source = "screen"
        if args.screen is not None:
            spec = parse_screen(args.screen)
            changes["display"] = spec.display
            if spec.area is not None:
                source = "area"
                changes.update(
                    area_x=str(spec.area.x), area_y=str(spec.area.y),
                    area_width=str(spec.area.width), area_height=str(spec.area.height),
                )  # fmt: skip
        if args.webcam:
            changes["camera"] = args.webcam
            source = "screen+camera" if args.screen is not None else "camera"
        changes["source"] = source
    if args.mic:
        changes.update(mic_on=True, mic=args.mic)
    if args.size:
        changes["size"] = args.size
    if args.fps != 30:  # the parser's default: not asked for
        changes["fps"] = str(args.fps)
    if args.bitrate is not None:
        changes["bitrate"] = str(args.bitrate)
    return dataclasses.replace(form, **changes)  # type: ignore[arg-type]


def _whole(text: str, what: str) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 6:
        raise ClientError(f"{what}: a whole number, e.g. 30 (not {text[:20]!r})")
    return int(text)


def form_config(form: StreamForm, base: argparse.Namespace) -> ClientConfig:
    """The checked configuration the fields ask for. ``base`` is the command line the
    window was opened with: what the window has no field for (``--rtmp``, ``--preset``,
    ``--channel``...) comes from there. :class:`ClientError` says what is wrong."""
    args = copy.copy(base)
    args.server, args.key = form.server, form.key
    args.source = "test" if form.source == "test" else "devices"
    args.screen = args.webcam = args.mic = None
    if form.uses_screen:
        screen = form.display.strip()
        if form.source == "area":
            x, y = _whole(form.area_x, "Area x"), _whole(form.area_y, "Area y")
            width = _whole(form.area_width, "Area width")
            height = _whole(form.area_height, "Area height")
            area = f"{width}x{height}+{x}+{y}"
            screen = f"{screen}@{area}" if screen else area
        args.screen = screen
    if form.uses_camera:
        if not form.camera.strip():
            raise ClientError("Camera: choose or type a camera device, e.g. /dev/video0")
        args.webcam = form.camera.strip()
    if form.mic_on and form.source != "test":
        if not form.mic.strip():
            raise ClientError("Microphone: choose or type a device, e.g. default")
        args.mic = form.mic.strip()
    args.size = form.size.strip() or None
    args.fps = _whole(form.fps, "FPS")
    args.bitrate = _whole(form.bitrate, "Bitrate")
    args.quality = None
    args.preview = False  # the window has its own preview
    return config_from_args(args)


def settings_path() -> Path:
    """Where the fields are remembered (see the module's docstring)."""
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "strom" / "stream.json"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "strom" / "stream.json"


def load_form(path: Path) -> StreamForm:
    """The remembered fields; the defaults when there are none. :class:`ClientError` for
    a file that cannot be used (the caller says so and goes on with the defaults)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        return StreamForm()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_SETTINGS_BYTES:
        raise ClientError(f"{path} is larger than {MAX_SETTINGS_BYTES} bytes: ignored")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ClientError(f"{path} is not valid JSON ({exc}): ignored") from exc
    if not isinstance(data, dict) or data.get("version") != SETTINGS_VERSION:
        raise ClientError(f"{path} is not a strom stream settings file: ignored")
    values: dict[str, object] = {}
    for fld in dataclasses.fields(StreamForm):
        value = data.get(fld.name)
        wanted = bool if fld.type in (bool, "bool") else str
        if isinstance(value, wanted) and (wanted is bool or len(str(value)) <= MAX_FIELD):
            values[fld.name] = value
    if values.get("source") not in SOURCES:
        values.pop("source", None)
    return StreamForm(**values)  # type: ignore[arg-type]


def save_form(path: Path, form: StreamForm) -> None:
    """Remember the fields: written to a new file readable by its owner only, then
    moved over the old one (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": SETTINGS_VERSION, **dataclasses.asdict(form)}
    temporary = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)
