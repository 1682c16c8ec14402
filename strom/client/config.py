"""What ``strom stream`` was asked to do: one typed :class:`ClientConfig`, parsed from the
command line, plus the client's named limits.

Sizes, screen areas and server URLs are parsed here, once, into small records, so every
other module of the client works with checked values.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from strom.errors import StromError


class ClientError(StromError):
    """``strom stream`` cannot go on: a bad option, a refused key, a missing device."""


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Area:
    """A rectangle of the screen, X geometry style: ``WxH+X+Y``."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    """Which screen (``display``: empty for the default) and which part of it."""

    display: str = ""
    area: Area | None = None


#: The largest picture the client encodes (8K): a bound on typos such as 19200x1080.
MAX_DIMENSION = 7680
MAX_FPS = 120
MIN_BITRATE_KBPS, MAX_BITRATE_KBPS = 100, 100_000

_SIZE = re.compile(r"(\d{1,5})[xX](\d{1,5})")
_AREA = re.compile(r"(\d{1,5})[xX](\d{1,5})(?:\+(\d{1,5})\+(\d{1,5}))?")


def parse_size(text: str) -> Size:
    """``1280x720`` -> Size; H.264 in 4:2:0 needs even dimensions."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise ClientError(f"size {text!r}: write it as WIDTHxHEIGHT, e.g. 1280x720")
    width, height = int(found[1]), int(found[2])
    _check_dimensions(text, width, height)
    if width % 2 or height % 2:
        raise ClientError(f"size {text!r}: width and height must be even (H.264 4:2:0)")
    return Size(width, height)


def parse_area(text: str) -> Area:
    """``WxH`` or ``WxH+X+Y`` (pixels from the top left corner) -> Area."""
    found = _AREA.fullmatch(text.strip())
    if found is None:
        raise ClientError(f"screen area {text!r}: write it as WIDTHxHEIGHT+X+Y, e.g. 1280x720+0+0")
    width, height = int(found[1]), int(found[2])
    _check_dimensions(text, width, height)
    return Area(width, height, int(found[3] or 0), int(found[4] or 0))


def _check_dimensions(text: str, width: int, height: int) -> None:
    if not (16 <= width <= MAX_DIMENSION and 16 <= height <= MAX_DIMENSION):
        raise ClientError(f"{text!r}: each side must be between 16 and {MAX_DIMENSION} pixels")


def parse_screen(text: str) -> ScreenSpec:
    """``--screen`` values: empty (the default screen), ``DISPLAY``, ``AREA`` or
    ``DISPLAY@AREA``, e.g. ``:1``, ``1280x720+0+0``, ``:1@800x600+100+50``.

    DISPLAY is an X display (``:0.0``) on Linux, a screen number (``1``) on macOS and
    ``desktop`` or ``title=Window title`` on Windows.
    """
    text = text.strip()
    if not text:
        return ScreenSpec()
    display, at, tail = text.rpartition("@")
    if at and _AREA.fullmatch(tail.strip()):
        return ScreenSpec(display.strip(), parse_area(tail))
    if _AREA.fullmatch(text):
        return ScreenSpec("", parse_area(text))
    return ScreenSpec(text)


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """The site's address (``http(s)://host[:port]``, for the API and chat) and, when
    given, the RTMP ingest URL (``rtmp://host[:port]/live``); without it the client asks
    the site where to publish."""

    web: str
    rtmp: str = ""

    def api(self, path: str) -> str:
        return self.web + path

    def websocket(self, path: str) -> str:
        scheme = "wss" if self.web.startswith("https:") else "ws"
        return scheme + self.web[self.web.index(":") :] + path


def parse_server(text: str, rtmp: str = "") -> ServerAddress:
    """``--server``: the site's address as in the browser (``https://strom.example``,
    ``localhost:8080``), or an RTMP URL (``rtmp://host/live``: then the site is assumed
    at ``http://host``; ``rtmps://host:port/live``: at ``https://host``)."""
    text = text.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "rtmp", "rtmps") or not parts.hostname:
        raise ClientError(f"server {text!r}: give the site's address, e.g. https://strom.example")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ClientError(f"server {text!r}: the port is not a number") from None
    if parts.scheme in ("rtmp", "rtmps"):
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        web = "https" if parts.scheme == "rtmps" else "http"
        return ServerAddress(f"{web}://{host}", rtmp or text.rstrip("/"))
    web = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    if rtmp and not rtmp.startswith(("rtmp://", "rtmps://")):
        raise ClientError(
            f"--rtmp {rtmp!r}: an rtmp:// or rtmps:// URL, e.g. rtmps://strom.example:1936/live"
        )
    return ServerAddress(web, rtmp.rstrip("/"))


def split_rtmp_url(url: str) -> tuple[str, int, str]:
    """``rtmp://host[:port]/app`` (or ``rtmps://``: over TLS) -> (host, port, app)."""
    parts = urlsplit(url)
    if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
        raise ClientError(f"not an RTMP URL: {url!r}")
    app = parts.path.strip("/") or "live"
    return parts.hostname, parts.port or (443 if parts.scheme == "rtmps" else 1935), app


def publish_url(server: str, answer: object) -> str | None:
    """Where to publish, from the server's ``/api/v1/ingest`` ``answer``: its
    ``rtmps_url`` when the server was given as ``https://`` (the stream key then never
    crosses the network in the clear), else its ``rtmp_url``; None when it names none."""
    if not isinstance(answer, dict):
        return None
    secure = answer.get("rtmps_url")
    if server.startswith("https://") and isinstance(secure, str) and secure.startswith("rtmps://"):
        return secure
    url = answer.get("rtmp_url")
    return url if isinstance(url, str) and url.startswith("rtmp://") else None


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The client's bounds: what it holds for a slow uplink and how it reconnects."""

    #: Encoded media waiting for the socket, in seconds of stream: beyond it the queue is
    #: emptied and sending resumes at the next keyframe (the frames count as dropped).
    max_queue_seconds: float = 2.0
    #: ... and in bytes, whatever the duration.
    max_queue_bytes: int = 16 << 20
    #: Bytes handed to the socket that it has not sent yet, before the sender waits.
    write_high_water: int = 64 << 10
    #: The kernel's send buffer for the RTMP socket. Left to grow by itself it holds
    #: megabytes on a slow link: seconds of delay the client could not see or drop.
    socket_send_buffer: int = 128 << 10
    #: No byte leaves for this long while there is data to send: the link is dead.
    stall_timeout: float = 10.0
    #: Seconds to connect and be accepted, per attempt.
    connect_timeout: float = 10.0
    #: Seconds Ctrl-C waits for the goodbye (unpublish) to reach the socket.
    unpublish_timeout: float = 3.0
    #: Reconnect delays: first, growth factor, ceiling (seconds).
    backoff_first: float = 0.5
    backoff_factor: float = 1.5
    backoff_max: float = 5.0
    #: How often the viewer count is asked for, and how many chat lines are kept.
    viewers_interval: float = 5.0
    chat_lines: int = 5


@dataclass(frozen=True)
class ClientConfig:
    server: ServerAddress
    key: str
    #: "test" (generated pattern and tone) or "devices" (screen, webcam, mic).
    source: str = "devices"
    screen: ScreenSpec | None = None
    webcam: str | None = None
    mic: str | None = None
    size: Size | None = None
    fps: int = 30
    #: Video bitrate (kbit/s), or None with ``quality`` (x264 CRF).
    bitrate: int | None = 2500
    quality: int | None = None
    audio_bitrate: int = 128
    preset: str = "veryfast"
    keyframe_seconds: float = 2.0
    preview: bool = False
    #: The channel to show viewers and chat of; empty: the one the server names.
    channel: str = ""
    chat: bool = True
    #: publish over WHIP (WebRTC: H.264 and Opus) to the site's ``/whip`` instead of RTMP
    whip: bool = False
    limits: ClientLimits = field(default_factory=ClientLimits)

    @property
    def audio(self) -> bool:
        return self.source == "test" or self.mic is not None


PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")

_EPILOG = """\
examples:
  strom stream --server https://strom.example --key KEY --screen
  strom stream --server https://strom.example --key KEY --screen 1280x720+0+0 --mic default
  strom stream --server https://strom.example --key KEY --webcam /dev/video0 --mic default
  strom stream --server https://strom.example --key KEY --screen --webcam /dev/video0
      (both: the camera is shown small in a corner of the screen, picture in picture)
  strom stream --server http://localhost:8080 --key KEY --source test --preview
  strom stream --list-devices
  strom stream --gui
      (the window: the fields are remembered; any option above fills them in)

The stream key is on your Dashboard (shown once when it is made; make a new one there if
it is lost). The client reconnects by itself after a network loss; Ctrl-C ends the
broadcast.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``strom stream``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if parser.description:
        parser.description = textwrap.fill(parser.description, 88)
    parser.epilog = _EPILOG
    where = parser.add_argument_group("where to")
    where.add_argument(
        "--server",
        metavar="URL",
        help="the Strom site, as in the browser (https://strom.example, localhost:8080)",
    )
    where.add_argument("--key", metavar="KEY", help="your stream key (from your Dashboard)")
    where.add_argument(
        "--rtmp", metavar="URL", default="", help="RTMP ingest URL (default: asked from the site)"
    )
    where.add_argument(
        "--whip",
        action="store_true",
        help="publish over WHIP (WebRTC) to the site's /whip instead of RTMP; audio is Opus",
    )
    where.add_argument(
        "--channel", default="", help="channel whose viewers and chat to show (default: yours)"
    )
    what = parser.add_argument_group("what to stream")
    what.add_argument(
        "--source",
        choices=("devices", "test"),
        default="devices",
        help="'test': a generated test pattern and tone instead of devices",
    )
    what.add_argument(
        "--screen",
        nargs="?",
        const="",
        metavar="DISPLAY|AREA",
        help="capture the screen: all of it, a DISPLAY (:1 / 1 / desktop), an AREA "
        "WxH+X+Y, or DISPLAY@AREA",
    )
    what.add_argument(
        "--webcam",
        metavar="DEVICE",
        help="capture a camera (/dev/video0; macOS: 0; Windows: its name)",
    )
    what.add_argument(
        "--mic",
        metavar="DEVICE",
        help="capture a microphone (default / hw:1; macOS: 0; Windows: its name)",
    )
    what.add_argument(
        "--list-devices", action="store_true", help="list screens, cameras and microphones"
    )
    how = parser.add_argument_group("how")
    how.add_argument(
        "--size", metavar="WxH", help="picture size sent (default: the source's, test 1280x720)"
    )
    how.add_argument("--fps", type=int, default=30, metavar="N", help="frames per second (30)")
    rate = how.add_mutually_exclusive_group()
    rate.add_argument(
        "--bitrate", type=int, metavar="K", help="video bitrate in kbit/s (default 2500)"
    )
    rate.add_argument(
        "--quality",
        type=int,
        metavar="Q",
        help="constant quality instead of a bitrate: 18 (best) .. 35 (smallest)",
    )
    how.add_argument(
        "--audio-bitrate", type=int, default=128, metavar="K", help="AAC bitrate, kbit/s (128)"
    )
    how.add_argument(
        "--preset",
        choices=PRESETS,
        default="veryfast",
        help="x264 speed: faster presets use less CPU, slower ones compress better",
    )
    how.add_argument(
        "--keyframe-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between keyframes (2)",
    )
    show = parser.add_argument_group("while live")
    show.add_argument(
        "--preview", action="store_true", help="open a small preview window (needs a display)"
    )
    show.add_argument("--no-chat", action="store_true", help="do not show the chat")
    show.add_argument(
        "--gui",
        action="store_true",
        help="open the streaming window instead: fields (prefilled from these options and "
        "remembered), preview, Go live / Stop, viewers and chat (needs a display and tkinter)",
    )


def config_from_args(args: argparse.Namespace) -> ClientConfig:
    """A checked :class:`ClientConfig`; :class:`ClientError` says what is wrong."""
    if not args.server:
        raise ClientError("--server is required: the Strom site, e.g. https://strom.example")
    if not args.key:
        raise ClientError("--key is required: your stream key, from your Dashboard")
    key = args.key.strip()
    if not key or any(c.isspace() or c in "/?#" for c in key):
        raise ClientError("--key: a stream key has no spaces, '/', '?' or '#'")
    server = parse_server(args.server, args.rtmp)
    screen = parse_screen(args.screen) if args.screen is not None else None
    if args.source == "test":
        if screen is not None or args.webcam or args.mic:
            raise ClientError("--source test streams a generated picture and tone, no devices")
    elif screen is None and not args.webcam:
        raise ClientError(
            "nothing to stream: add --screen and/or --webcam DEVICE (or --source test); "
            "--list-devices shows what there is"
        )
    if not 1 <= args.fps <= MAX_FPS:
        raise ClientError(f"--fps must be between 1 and {MAX_FPS}")
    bitrate = args.bitrate
    if args.quality is None and bitrate is None:
        bitrate = 2500
    if bitrate is not None and not MIN_BITRATE_KBPS <= bitrate <= MAX_BITRATE_KBPS:
        raise ClientError(
            f"--bitrate must be between {MIN_BITRATE_KBPS} and {MAX_BITRATE_KBPS} kbit/s"
        )
    if args.quality is not None and not 0 <= args.quality <= 51:
        raise ClientError("--quality must be between 0 and 51 (x264 CRF; 23 is typical)")
    if not 32 <= args.audio_bitrate <= 320:
        raise ClientError("--audio-bitrate must be between 32 and 320 kbit/s")
    if not 0.25 <= args.keyframe_interval <= 10:
        raise ClientError("--keyframe-interval must be between 0.25 and 10 seconds")
    size = parse_size(args.size) if args.size else None
    if size is None and args.source == "test":
        size = Size(1280, 720)
    return ClientConfig(
        server=server,
        key=key,
        source=args.source,
        screen=screen,
        webcam=args.webcam or None,
        mic=args.mic or None,
        size=size,
        fps=args.fps,
        bitrate=bitrate,
        quality=args.quality,
        audio_bitrate=args.audio_bitrate,
        preset=args.preset,
        keyframe_seconds=args.keyframe_interval,
        preview=args.preview,
        channel=args.channel.strip(),
        chat=not args.no_chat,
        whip=bool(getattr(args, "whip", False)),  # the --gui form's namespace has none
    )
