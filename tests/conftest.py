"""Fixtures shared by the whole suite: test media made by real ffmpeg, and a real Strom
server on loopback (random ports), stopped by the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strom.server import StromServer
from strom.settings import Settings

STREAM_KEY = "alice-secret-key-1234"
CHANNEL = "alice"


def need_tool(name: str) -> str:
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
    fps: int = 30,
    gop: int = 30,
    bframes: int = 2,
    audio: bool = True,
    bitrate: str = "800k",
) -> MediaFile:
    """An FLV file made by real ffmpeg: H.264 High (B-frames by default) + AAC."""
    ffmpeg = need_tool("ffmpeg")
    cmd = [
        ffmpeg, "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
    ]  # fmt: skip
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
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


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def av_media(media_dir: Path) -> MediaFile:
    """4 s of 640x360 30 fps H.264 High with B-frames + AAC."""
    return make_media(media_dir / "av.flv")


@pytest.fixture(scope="session")
def video_only_media(media_dir: Path) -> MediaFile:
    return make_media(media_dir / "video.flv", audio=False, seconds=3.0)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "rtmp_port": 0,
        "data_dir": tmp_path / "data",
        "stream_keys": {CHANNEL: STREAM_KEY, "bob": "bob-secret-key-5678"},
        "rtmp_handshake_timeout": 3.0,
        "rtmp_idle_timeout": 3.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


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


def publish_args(media: MediaFile, rtmp_port: int, key: str = STREAM_KEY) -> list[str]:
    return [
        need_tool("ffmpeg"), "-v", "error", "-re", "-i", str(media.path),
        "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{key}",
    ]  # fmt: skip
