"""``strom stream --gui`` end to end: the real window in its own process on a private X
server (Xvfb), its buttons clicked with the X test extension (xdotool) where it shows
them, a real Strom server, a WebSocket viewer whose media real ffmpeg decodes. The
screen, live, is kept as ``test-artifacts/strom-stream-gui.png``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import av
import pytest

from strom.client.gui_window import GO_LIVE_COLOUR, STOP_COLOUR
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, need_tool, run_process
from tests.helpers.streaming import chat_as_guest, streaming, xvfb
from tests.helpers.watching import collect_ws, decode, wait_live

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: a button is a solid block of its colour: at least this many pixels of it exactly
BUTTON_PIXELS = 400


def grab(display: str) -> av.VideoFrame:
    """The whole X screen (1280x720, as :func:`xvfb` makes it) as one rgb24 picture."""
    options = {"video_size": "1280x720"}
    with av.open(display, format="x11grab", options=options) as screen:
        frame = next(screen.decode(video=0)).reformat(format="rgb24")
    assert isinstance(frame, av.VideoFrame)
    return frame


def find_colour(display: str, colour: str) -> tuple[int, int] | None:
    """The middle of the pixels of exactly ``colour`` (``#rrggbb``) on the screen, if
    there are enough of them to be a button: where a user would see it and click."""
    frame = grab(display)
    plane = frame.planes[0]
    data = bytes(plane)
    wanted = bytes.fromhex(colour[1:])
    xs: list[int] = []
    ys: list[int] = []
    for y in range(frame.height):
        row = data[y * plane.line_size : y * plane.line_size + frame.width * 3]
        at = row.find(wanted)
        while at != -1:
            if at % 3 == 0:
                xs.append(at // 3)
                ys.append(y)
            at = row.find(wanted, at + 1)
    if len(xs) < BUTTON_PIXELS:
        return None
    return sorted(xs)[len(xs) // 2], sorted(ys)[len(ys) // 2]


async def wait_for_button(display: str, colour: str, timeout: float = 10) -> tuple[int, int]:
    """Where the button of ``colour`` is, once the window shows it."""
    async with asyncio.timeout(timeout):
        while True:
            where = await asyncio.to_thread(find_colour, display, colour)
            if where is not None:
                return where
            await asyncio.sleep(0.2)


async def click(display: str, colour: str, what: str, timeout: float = 10) -> None:
    """Click the middle of the button of ``colour`` once the window shows it."""
    xdotool = need_tool("xdotool")
    x, y = await wait_for_button(display, colour, timeout)
    code, out = await run_process(
        "/usr/bin/env", f"DISPLAY={display}", xdotool, "mousemove", str(x), str(y), "click", "1"
    )
    assert code == 0, f"{what}: {out}"


async def screenshot(display: str, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    code, out = await run_process(
        need_tool("ffmpeg"), "-v", "error", "-y", "-f", "x11grab", "-draw_mouse", "0",
        "-video_size", "1280x720", "-i", display, "-frames:v", "1", str(path),
    )  # fmt: skip
    assert code == 0, out
    return path


async def test_gui_goes_live_is_watched_and_stop_ends_it(
    server: StromServer, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    config_home = tmp_path / "config"
    media = tmp_path / "gui.mp4"
    async with xvfb() as display:
        # The fields are filled in from the command line; the window shows at the top left
        # (no window manager) and its area of the screen is what is sent: the preview shows
        # the window itself.
        env = {"DISPLAY": display, "XDG_CONFIG_HOME": str(config_home)}
        async with streaming(
            "--gui", "--server", base, "--key", STREAM_KEY, "--screen", "880x400+0+0",
            "--size", "440x200", "--fps", "10", "--bitrate", "400", env=env,
        ) as client:  # fmt: skip
            await click(display, GO_LIVE_COLOUR, "Go live", timeout=40)  # a slow start-up
            await wait_live(server, timeout=20)
            viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", media, 30))
            # The window's status (also logged on standard output) counts the viewer and
            # shows the chat.
            assert "Ctrl-C" not in await client.wait_for("publishing to rtmp://")
            await client.wait_for("● LIVE")
            await client.wait_for("1 viewer")
            await chat_as_guest(base, "hello from a viewer")
            line = await client.wait_for("[chat] ")
            assert line.endswith(": hello from a viewer")
            await asyncio.sleep(1.0)  # the chat and the preview reach the window
            shot = await screenshot(display, "strom-stream-gui.png")
            assert shot.stat().st_size > 10_000
            live_screen = await asyncio.to_thread(grab, display)
            await click(display, STOP_COLOUR, "Stop")
            await client.wait_for("stopped: the broadcast has ended")
            texts = await viewer
            # Stop unpublished: the broadcast ended at once; the window stays open, ready
            # to go live again.
            assert [t["type"] for t in texts][-2:] == ["end", "closed"]
            assert client.proc.returncode is None
            await click(display, GO_LIVE_COLOUR, "Go live again")
            await wait_live(server, timeout=20)
            # Closing the window (here SIGTERM) while live ends the broadcast first.
            assert await client.finish(signal.SIGTERM) == 0, client.output
            assert client.output.count("stopped: the broadcast has ended") == 2
            assert not (channel := server.registry.get(CHANNEL)) or not channel.live
    assert "Traceback" not in client.output
    assert STREAM_KEY not in client.output
    frames, errors = await decode(str(media))
    assert errors == ""
    assert frames >= 10
    # While live the window showed something: not the blank screen of an empty X server.
    gray = live_screen.reformat(64, 36, format="gray")
    assert max(bytes(gray.planes[0])) > 200
    # The fields are remembered, the key with them, in a file only its owner can read.
    remembered = config_home / "strom" / "stream.json"
    saved = json.loads(remembered.read_text())
    assert saved["server"] == base
    assert saved["key"] == STREAM_KEY
    assert (saved["source"], saved["area_width"], saved["fps"]) == ("area", "880", "10")
    assert stat.S_IMODE(remembered.stat().st_mode) == 0o600


async def test_gui_without_a_display_is_refused_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "strom", "stream", "--gui",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    text = output.decode()
    assert text.startswith("strom stream: --gui needs a display, and there is none here")
    assert text.count("\n") == 1
