"""Which FFmpeg input device captures what on this platform, and how it is named.

Linux: x11grab (screen), video4linux2 (cameras), PulseAudio or ALSA (microphones).
macOS: avfoundation for all three. Windows: gdigrab (screen) and dshow (camera, mic).
Each function returns an :class:`InputSpec` for PyAV's ``av.open(url, format, options)``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import av

from strom.client.config import ClientError, ScreenSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One FFmpeg input: what PyAV opens."""

    url: str
    format: str
    options: dict[str, str] = field(default_factory=dict)
    #: A crop (w, h, x, y) the capture cannot do itself (avfoundation has no area option).
    crop: tuple[int, int, int, int] | None = None

    def describe(self) -> str:
        return f"{self.format} {self.url}"


def platform_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    return sys.platform


def _need_format(name: str, what: str) -> str:
    for candidate in name.split("|"):
        if candidate in av.formats_available or any(
            candidate in f.split(",") for f in av.formats_available
        ):
            return candidate
    raise ClientError(
        f"{what}: this PyAV build has no {name.replace('|', ' or ')} input device "
        f"(install PyAV from PyPI: pip install --force-reinstall av)"
    )


def has_display() -> bool:
    """Whether a window can be shown: always on macOS and Windows, with $DISPLAY or
    $WAYLAND_DISPLAY elsewhere."""
    if platform_name() in ("macos", "windows"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def screen_input(spec: ScreenSpec, fps: int) -> InputSpec:
    system = platform_name()
    area = spec.area
    options = {"framerate": str(fps)}
    if system == "linux":
        display = spec.display or os.environ.get("DISPLAY", "")
        if not display:
            raise ClientError(
                "--screen: no X display (set DISPLAY or give one, e.g. --screen :0); "
                "on Wayland, log in to an X11 session or use XWayland"
            )
        fmt = _need_format("x11grab", "--screen")
        options["draw_mouse"] = "1"
        url = display
        if area is not None:
            options["video_size"] = f"{area.width}x{area.height}"
            url = f"{display}+{area.x},{area.y}"
        return InputSpec(url, fmt, options)
    if system == "windows":
        fmt = _need_format("gdigrab", "--screen")
        options["draw_mouse"] = "1"
        if area is not None:
            options |= {
                "video_size": f"{area.width}x{area.height}",
                "offset_x": str(area.x),
                "offset_y": str(area.y),
            }
        return InputSpec(spec.display or "desktop", fmt, options)
    if system == "macos":
        fmt = _need_format("avfoundation", "--screen")
        options |= {"capture_cursor": "1", "pixel_format": "uyvy422"}
        screen = spec.display or "0"
        crop = (area.width, area.height, area.x, area.y) if area is not None else None
        return InputSpec(f"Capture screen {screen}:none", fmt, options, crop)
    raise ClientError(f"--screen: screen capture is not supported on {system}")


def webcam_input(device: str, fps: int) -> InputSpec:
    system = platform_name()
    options = {"framerate": str(fps)}
    if system == "linux":
        return InputSpec(device, _need_format("video4linux2|v4l2", "--webcam"), options)
    if system == "windows":
        return InputSpec(f"video={device}", _need_format("dshow", "--webcam"), options)
    if system == "macos":
        return InputSpec(f"{device}:none", _need_format("avfoundation", "--webcam"), options)
    raise ClientError(f"--webcam: cameras are not supported on {system}")


#: Where Linux distributions keep ALSA's configuration. The alsa-lib inside PyAV's wheels
#: looks for it where it was built, finds nothing, and then knows no device at all.
ALSA_CONFIG = Path("/usr/share/alsa/alsa.conf")


def mic_input(device: str) -> InputSpec:
    system = platform_name()
    if system == "linux":
        fmt = _need_format("pulse|alsa", "--mic")
        if fmt == "alsa" and "ALSA_CONFIG_PATH" not in os.environ and ALSA_CONFIG.is_file():
            os.environ["ALSA_CONFIG_PATH"] = str(ALSA_CONFIG)
        return InputSpec(device, fmt)
    if system == "windows":
        return InputSpec(f"audio={device}", _need_format("dshow", "--mic"))
    if system == "macos":
        return InputSpec(f"none:{device}", _need_format("avfoundation", "--mic"))
    raise ClientError(f"--mic: microphones are not supported on {system}")


# -- listing ------------------------------------------------------------------------------


def list_devices() -> str:
    """A text listing of the screens, cameras and microphones found, for ``--list-devices``."""
    system = platform_name()
    if system == "linux":
        return _list_linux()
    if system in ("macos", "windows"):
        fmt = "avfoundation" if system == "macos" else "dshow"
        lines = _ffmpeg_device_list(fmt)
        head = "screens: --screen 0, 1, ... (see 'Capture screen N' below)\n"
        if system == "windows":
            head = "screens: --screen desktop (all), or --screen 'title=Window title'\n"
        return head + f"{fmt} devices:\n" + "\n".join(f"  {line}" for line in lines)
    return f"device capture is not supported on {system}"


def _list_linux() -> str:
    out = ["screens (--screen DISPLAY):"]
    sockets = Path("/tmp/.X11-unix")  # noqa: S108 - where X servers put their sockets
    displays = sorted(f":{p.name[1:]}" for p in sockets.glob("X*"))
    current = os.environ.get("DISPLAY", "")
    for name in displays or ([current] if current else []):
        out.append(f"  {name}{'  (current $DISPLAY)' if name == current.split('.')[0] else ''}")
    if len(out) == 1:
        out.append("  none found (no X server; on Wayland use an X11 session or XWayland)")
    out.append("cameras (--webcam DEVICE):")
    cameras = linux_cameras()
    out += [f"  {device}  {name}" for device, name in cameras] or ["  none found"]
    out.append("microphones (--mic DEVICE):")
    out += [f"  {device}  {name}" for device, name in linux_microphones()]
    return "\n".join(out)


def linux_cameras() -> list[tuple[str, str]]:
    """(device, name) of each video4linux camera, e.g. ``("/dev/video0", "HD Webcam")``."""
    entries = sorted(Path("/sys/class/video4linux").glob("video*"))
    return [(f"/dev/{entry.name}", _read(entry / "name")) for entry in entries]


def linux_microphones() -> list[tuple[str, str]]:
    """(device, name) of the default input and each ALSA card (``hw:N``)."""
    found = [("default", "(the system's default input)")]
    for line in _read(Path("/proc/asound/cards")).splitlines():
        card = re.match(r"\s*(\d+)\s+\[(\S+)\s*\]:\s*(.*)", line)
        if card:
            found.append((f"hw:{card[1]}", card[3].strip()))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _ffmpeg_device_list(fmt: str) -> list[str]:
    """What FFmpeg's ``-list_devices true`` prints for ``fmt``: it logs, then fails."""
    if fmt not in av.formats_available:
        return [f"this PyAV build has no {fmt} input"]
    url = "" if fmt == "avfoundation" else "dummy"
    with av.logging.Capture() as logs:
        try:
            av.open(url, format=fmt, options={"list_devices": "true"}).close()
        except (av.FFmpegError, OSError) as exc:
            log.debug("device listing ended: %s", exc)
    return [str(message).strip() for _, _, message in logs if str(message).strip()]
