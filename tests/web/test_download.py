"""/download: the "Stream with the Strom client" page, and the client served by the site
itself as a wheel that installs and runs."""

from __future__ import annotations

import asyncio
import sys
import sysconfig
import zipfile
from pathlib import Path

import aiohttp

from strom import __version__
from strom.server import StromServer
from tests.helpers import run_process
from tests.helpers.web import Browser

WHEEL = f"strom-{__version__}-py3-none-any.whl"


async def test_page_gives_install_and_usage_for_three_platforms(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as resp:
            assert 'href="/download"' in await resp.text()  # every page links to it
        async with http.get(f"{base}/download") as resp:
            assert resp.status == 200
            html = await resp.text()
    assert "Stream with the Strom client" in html
    for platform in ('data-platform="linux"', 'data-platform="macos"', 'data-platform="windows"'):
        assert platform in html
    # The exact commands, with this site's address and the served wheel.
    assert f"~/strom-client/bin/pip install {base}/download/{WHEEL}" in html
    assert f"strom stream --server {base} --key YOUR_STREAM_KEY --screen" in html
    assert f'href="/download/{WHEEL}"' in html
    assert f"rtmp://127.0.0.1:{server.rtmp_port}/live" in html  # for OBS users
    assert "Log in" in html


async def test_logged_in_streamer_is_told_where_the_key_is_never_shown_it(
    server: StromServer,
) -> None:
    browser = Browser(server)
    try:
        key = await browser.register("streamer")
        status, html = await browser.get("/download")
    finally:
        await browser.close()
    assert status == 200
    assert 'href="/dashboard#key-title"' in html
    assert key not in html


async def test_served_wheel_installs_and_runs(server: StromServer, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    wheel = tmp_path / WHEEL
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/download/{WHEEL}") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/zip"
            wheel.write_bytes(await resp.read())
        async with http.get(f"{base}/download/strom-0.0.1-py3-none-any.whl") as resp:
            assert resp.status == 404
    names = zipfile.ZipFile(wheel).namelist()
    assert "strom/client/app.py" in names
    assert f"strom-{__version__}.dist-info/RECORD" in names
    assert not any("__pycache__" in n for n in names)

    # A fresh environment, as the download page has users make it (`python3 -m venv`,
    # then its own pip), offline: the wheel alone (no dependencies fetched), with this
    # environment's packages reachable for its imports.
    venv = tmp_path / "venv"
    code, out = await run_process(sys.executable, "-m", "venv", str(venv))
    assert code == 0, out
    python = venv / "bin" / "python"
    code, out = await run_process(
        str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
        "--disable-pip-version-check", str(wheel),
    )  # fmt: skip
    assert code == 0, out
    site = await asyncio.to_thread(lambda: next((venv / "lib").glob("python3*/site-packages")))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code, out = await run_process(str(venv / "bin" / "strom"), "stream", "--help")
    assert code == 0, out
    assert "--server URL" in out
    assert "--source {devices,test}" in out
    code, out = await run_process(
        str(python), "-I", "-c", "import strom.client; print(strom.__file__)"
    )
    assert code == 0, out
    assert out.strip().startswith(str(venv))  # the installed copy, not this checkout


async def test_ingest_api_says_where_to_publish(server: StromServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}/api/v1/ingest") as resp,
    ):
        assert resp.status == 200
        assert await resp.json() == {
            "rtmp_url": f"rtmp://127.0.0.1:{server.rtmp_port}/live",
            "rtmps_url": None,  # no certificate (tests/e2e/test_https.py has one)
            "whip_url": f"http://127.0.0.1:{server.http_port}/whip",
        }
