"""Operators: the admin page lists live broadcasts and stops one (CSRF-protected form);
only admins get there; a suspended user can neither publish nor log in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from strom.server import StromServer
from tests.helpers import MediaFile, make_media, publish_args, run_process
from tests.helpers.web import Browser

pytestmark = pytest.mark.e2e  # real ffmpeg publishes

PASSWORD = "a long enough password"


@pytest.fixture
async def browsers(server: StromServer) -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        await browser.close()


@pytest.fixture
def long_media(tmp_path: Path) -> MediaFile:
    """Long enough to still be live when the admin stops it."""
    return make_media(tmp_path / "long.flv", seconds=30.0, size="320x180", bitrate="300k")


async def logged_in(server: StromServer, browsers: list[Browser], username: str) -> Browser:
    """A browser that logged in through the /login form."""
    browser = Browser(server)
    browsers.append(browser)
    await browser.get("/login")
    status, html = await browser.post("/login", {"username": username, "password": PASSWORD})
    assert status == 200, html  # followed the redirect to the dashboard
    assert f"/{username}" in html
    return browser


@asynccontextmanager
async def publishing(
    server: StromServer, name: str, media: MediaFile, key: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Real ffmpeg publishing to ``name``'s channel; live when this yields, gone after."""
    publisher = await asyncio.create_subprocess_exec(
        *publish_args(media, server.rtmp_port, key),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            channel = server.registry.get(name)
            if (channel is not None and channel.live) or publisher.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert is_live(server, name), f"{name} did not go live"
        yield publisher
    finally:
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()


def is_live(server: StromServer, name: str) -> bool:
    channel = server.registry.get(name)
    return channel is not None and channel.live


async def test_admin_sees_and_stops_a_live_broadcast(
    server: StromServer,
    browsers: list[Browser],
    long_media: MediaFile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    store = server.store
    assert store is not None
    await store.users.create("operator", PASSWORD, admin=True)
    _, key = await store.users.create("streamer", PASSWORD)
    await store.channels.update("streamer", title="Speedrun <b>any%</b>")
    async with publishing(server, "streamer", long_media, key) as publisher:
        admin = await logged_in(server, browsers, "operator")
        status, html = await admin.get("/admin")
        assert status == 200
        assert 'data-username="streamer"' in html
        assert "Speedrun &lt;b&gt;any%&lt;/b&gt;" in html  # the title, inert
        assert 'action="/admin/streams/streamer/stop"' in html

        # The stop form needs the CSRF token: a forged post stops nothing.
        status, _ = await admin.post("/admin/streams/streamer/stop", {}, csrf=False)
        assert status == 403
        assert publisher.returncode is None
        assert is_live(server, "streamer")

        status, _ = await admin.post("/admin/streams/streamer/stop", {})
        assert status == 200  # back on /admin
        code = await asyncio.wait_for(publisher.wait(), 15)
        assert code != 0, "ffmpeg saw its connection closed"
        assert not is_live(server, "streamer")
        status, html = await admin.get("/admin")
        assert "Nobody is live" in html
    assert "admin operator stopped the broadcast of streamer" in caplog.text
    assert key not in caplog.text


async def test_only_admins_reach_the_admin_page(
    server: StromServer,
    browsers: list[Browser],
    long_media: MediaFile,
) -> None:
    store = server.store
    assert store is not None
    _, key = await store.users.create("viewer_one", PASSWORD)
    async with publishing(server, "viewer_one", long_media, key) as publisher:
        # A logged-in user who is not an admin: refused, even for their own broadcast.
        user = await logged_in(server, browsers, "viewer_one")
        status, html = await user.get("/admin")
        assert status == 403
        assert "Only site administrators" in html
        status, _ = await user.post("/admin/streams/viewer_one/stop", {})
        assert status == 403
        assert publisher.returncode is None
        assert is_live(server, "viewer_one")

        # Anonymous: sent to the log-in page, which brings them back afterwards.
        anonymous = Browser(server)
        browsers.append(anonymous)
        await anonymous.get("/login")  # an anonymous session with a CSRF token
        async with anonymous.http.get(anonymous.base + "/admin", allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/login?next=/admin"
        async with anonymous.http.post(
            anonymous.base + "/admin/streams/viewer_one/stop",
            data={"csrf_token": anonymous.csrf},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            assert resp.headers["Location"].startswith("/login")
        assert publisher.returncode is None
        assert is_live(server, "viewer_one")


async def test_suspended_user_cannot_publish_or_log_in(
    server: StromServer,
    browsers: list[Browser],
    av_media: MediaFile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    store = server.store
    assert store is not None
    _, key = await store.users.create("troll", PASSWORD)
    token = await store.tokens.create("troll", "bot")
    await store.users.set_suspended("troll", True)

    code, _ = await run_process(*publish_args(av_media, server.rtmp_port, key), timeout=30)
    assert code != 0
    assert "publish refused: unknown stream key" in caplog.text  # NetStream.Publish.BadName
    assert not is_live(server, "troll")

    browser = Browser(server)
    browsers.append(browser)
    await browser.get("/login")
    status, html = await browser.post("/login", {"username": "troll", "password": PASSWORD})
    assert status == 401
    assert "Wrong username or password" in html
    status, _ = await browser.api("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401

    # Reinstated: the same key and password work again.
    await store.users.set_suspended("troll", False)
    assert await server.keys.resolve(key) == "troll"
    await logged_in(server, browsers, "troll")


async def test_the_streamer_is_told_why_an_administrator_stopped_them(
    server: StromServer, browsers: list[Browser], long_media: MediaFile
) -> None:
    store = server.store
    assert store is not None
    await store.users.create("operator", PASSWORD, admin=True)
    _, key = await store.users.create("streamer", PASSWORD)
    publisher = await asyncio.create_subprocess_exec(
        *publish_args(long_media, server.rtmp_port, key),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(15):
            while not (is_live(server, "streamer") and await store.broadcasts.list("streamer")):
                assert publisher.returncode is None, "ffmpeg ended before going live"
                await asyncio.sleep(0.05)
        admin = await logged_in(server, browsers, "operator")
        reason = "Copyrighted music <b>again</b>"
        status, _ = await admin.post("/admin/streams/streamer/stop", {"reason": reason})
        assert status == 200
        assert publisher.stderr is not None
        said = (await asyncio.wait_for(publisher.stderr.read(), 15)).decode(errors="replace")
        # ffmpeg prints the onStatus description of an error ("Server error: ...").
        assert f"Stopped by an administrator: {reason}" in said
    finally:
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()
    streamer = await logged_in(server, browsers, "streamer")
    _, html = await streamer.get("/dashboard")
    assert "Stopped by an administrator: Copyrighted music &lt;b&gt;again&lt;/b&gt;" in html
