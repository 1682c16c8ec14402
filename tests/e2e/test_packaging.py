"""Strom as ``pip install`` gets it: the sdist and wheel carry the web players (hls.js,
dash.js), and a wheel installed in a fresh virtualenv serves a watch page whose LL-HLS
(hls.js) plays in Chromium, and dash.js. A build without the players refuses, saying
what to do."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page

from tests.e2e.browser import PageLog, video_info, wait_for_player_state
from tests.helpers import CHANNEL, STREAM_KEY, make_media, publish_args, run_process
from tests.helpers.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv-tools" / "bin" / "uv"
PLAYERS = ("strom/web/static/vendor/hls.min.js", "strom/web/static/vendor/dash.all.min.js")


def uv(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    if not UV.exists():
        pytest.skip("uv is installed by scripts/bootstrap")
    done = subprocess.run(
        [str(UV), *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``uv build`` of this checkout: an sdist, then a wheel built from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--out-dir", str(out))
    [sdist] = out.glob("strom-*.tar.gz")
    [built] = out.glob("strom-*.whl")
    listing = subprocess.run(
        ["tar", "tzf", str(sdist)], capture_output=True, text=True, check=True
    ).stdout
    with zipfile.ZipFile(built) as z:
        for player in PLAYERS:
            assert f"/{player}" in listing
            assert z.read(player) == (ROOT / player).read_bytes()
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel in it (its dependencies at the lock's versions)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    uv("venv", str(venv), "--python", sys.executable)
    requirements = venv.parent / "requirements.txt"
    requirements.write_text(
        uv("export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements-txt")
    )
    python = str(venv / "bin" / "python")
    uv("pip", "install", "--python", python, "--require-hashes", "-r", str(requirements))
    uv("pip", "install", "--python", python, "--no-deps", str(wheel))
    # Not this checkout's code: the installed copy.
    found = subprocess.run(
        [python, "-c", "import strom; print(strom.__file__)"],
        capture_output=True, text=True, check=True, cwd=venv,
    ).stdout  # fmt: skip
    assert str(venv) in found
    return venv


@pytest.fixture
async def packaged_server(installed: Path, tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    http_port, rtmp_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        str(installed / "bin" / "strom"), "serve", "--host", "127.0.0.1",
        "--http-port", str(http_port), "--rtmp-port", str(rtmp_port),
        "--data-dir", str(tmp_path / "data"), "--stream-key", f"{CHANNEL}={STREAM_KEY}",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{http_port}/api/v1/streams") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, "the installed strom serve exited"
                await asyncio.sleep(0.1)
        yield http_port, rtmp_port
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_wheel_installed_elsewhere_plays_llhls(
    packaged_server: tuple[int, int], installed: Path, page: Page, page_log: PageLog,
    media_dir: Path,
) -> None:  # fmt: skip
    http_port, rtmp_port = packaged_server
    media = make_media(media_dir / "packaged.flv", seconds=14.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, rtmp_port)))
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(f"http://127.0.0.1:{http_port}/api/v1/streams") as r:
                if (await r.json())["streams"]:
                    break
            await asyncio.sleep(0.1)
    await page.goto(f"http://127.0.0.1:{http_port}/live/{CHANNEL}?transport=hls")
    await wait_for_player_state(page, "playing", timeout_ms=20_000)
    await page.wait_for_function(
        "() => document.querySelector('#player video').currentTime > 1.0", timeout=15_000
    )
    info = await video_info(page)
    assert info["transport"] == "LL-HLS"
    assert (info["videoWidth"], info["videoHeight"]) == (media.width, media.height)
    # dash.js comes from the installed package too (the page loads it for ?transport=dash).
    dash = await page.request.get(f"http://127.0.0.1:{http_port}/static/vendor/dash.all.min.js")
    assert dash.ok
    assert await dash.body() == (ROOT / PLAYERS[1]).read_bytes()
    code, log = await publisher
    assert code == 0, log
    assert page_log.errors == []


def test_a_build_without_the_players_refuses_saying_why(tmp_path: Path) -> None:
    """No vendored players and no npm: no silent player-less wheel."""
    tree = _mkdir(tmp_path / "src")
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "scripts" / "build_backend", tree / "scripts" / "build_backend")
    shutil.copytree(
        ROOT / "strom", tree / "strom", ignore=shutil.ignore_patterns("vendor", "__pycache__")
    )
    if not UV.exists():
        pytest.skip("uv is installed by scripts/bootstrap")
    env = {**os.environ, "PATH": str(_mkdir(tmp_path / "no-npm"))}
    done = subprocess.run(
        [str(UV), "build", "--wheel", "--python", sys.executable, "--out-dir",
         str(tmp_path / "out")],
        check=False, cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "the web players are not vendored" in done.stderr
    assert "scripts/vendor-frontend" in done.stderr
    assert not list(tmp_path.rglob("*.whl"))


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
