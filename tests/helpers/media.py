"""Real media made by real ffmpeg, and real tools run without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from tests.helpers.servers import STREAM_KEY


def need_tool(name: str) -> str:
    """The tool's path; a skip on a developer machine without it, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (scripts/bootstrap test installs it)")
        pytest.skip(f"{name} not installed (run scripts/bootstrap test)")
    return path


@dataclass(frozen=True)
class MediaFile:
    path: Path
    frames: int
    audio: bool
    width: int
    height: int


def make_media(
    path: Path,
    *,
    seconds: float = 4.0,
    size: str = "640x360",
    fps: int | Fraction = 30,
    gop: int = 30,
    bframes: int = 2,
    audio: bool = True,
    bitrate: str = "800k",
    sample_rate: int = 44100,
) -> MediaFile:
    """An FLV file made by real ffmpeg: H.264 High (B-frames by default) + AAC. ``fps``
    may be NTSC's ``Fraction(30000, 1001)``."""
    ffmpeg = need_tool("ffmpeg")
    rate = f"{Fraction(fps).numerator}/{Fraction(fps).denominator}"
    cmd = [
        ffmpeg, "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
    ]  # fmt: skip
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}"]
    cmd += [
        "-t", str(seconds),
        "-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
        "-bf", str(bframes), "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-b:v", bitrate, "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    cmd += ["-c:a", "aac", "-b:a", "96k"] if audio else ["-an"]
    cmd += ["-f", "flv", str(path)]
    subprocess.run(cmd, check=True, timeout=120)
    w, h = (int(v) for v in size.split("x"))
    return MediaFile(path, int(seconds * fps), audio, w, h)


async def run_process(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run a real tool (ffmpeg...) without blocking the server's event loop."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:  # timeout or the test cancelled us: never leave it running
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.communicate())
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def publish_args(
    media: MediaFile, rtmp_port: int, key: str = STREAM_KEY, *, loop: bool = False
) -> list[str]:
    """ffmpeg publishing ``media`` in real time to a local node's RTMP port (``loop``:
    over and over, until the test stops it)."""
    return [
        need_tool("ffmpeg"), "-v", "error", "-re", *(["-stream_loop", "-1"] if loop else []),
        "-i", str(media.path),
        "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{key}",
    ]  # fmt: skip
