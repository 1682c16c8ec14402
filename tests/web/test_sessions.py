"""Log-in sessions end when they should, over HTTP against the real server: log-out, a
password change, a suspension, "log out everywhere" (dashboard and API), one session from
the list; on this node at once and on another node sharing the database within its cache
time. And the CSRF rule for API tokens: only a valid token skips it, and then the cookie
is not used at all."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from strom.server import StromServer
from strom.store import Store
from strom.store.models import UserSessionRow
from strom.web.auth import COOKIE, Session, SessionCodec
from tests.helpers import make_settings
from tests.helpers.web import KEY, Browser

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        await browser.close()


def open_browser(
    server: StromServer, browsers: list[Browser], address: str = "127.0.0.1"
) -> Browser:
    browser = Browser(server, address)
    browsers.append(browser)
    return browser


def cookie_of(browser: Browser) -> str:
    found = browser.http.cookie_jar.filter_cookies(URL(browser.base)).get(COOKIE)
    assert found is not None, "the browser has a session cookie"
    return found.value


async def me_with(server: StromServer, cookie: str) -> int:
    """``GET /api/v1/me`` with nothing but this cookie (a copy of a stolen one, say)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://127.0.0.1:{server.http_port}/api/v1/me",
            headers={"Cookie": f"{COOKIE}={cookie}"},
        ) as resp,
    ):
        return resp.status


async def log_in(browser: Browser, username: str, password: str = PASSWORD) -> None:
    await browser.get("/login")
    status, html = await browser.post("/login", {"username": username, "password": password})
    assert status == 200, html  # followed the redirect to the dashboard
    status, _ = await browser.api("GET", "/api/v1/me")
    assert status == 200


async def session_rows(server: StromServer) -> int:
    assert server.store is not None
    async with server.store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(UserSessionRow)) or 0)


async def test_logout_ends_the_session_for_a_copied_cookie_too(
    server: StromServer, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = open_browser(server, browsers)
    await alice.register("alice_s")
    stolen = cookie_of(alice)
    assert await me_with(server, stolen) == 200
    await alice.post("/logout", {})
    assert await me_with(server, stolen) == 401  # was 200: the signed cookie alone sufficed
    status, _ = await alice.api("GET", "/api/v1/me")
    assert status == 401
    async with aiohttp.ClientSession() as http:
        url = f"{alice.base}/dashboard"
        headers = {"Cookie": f"{COOKIE}={stolen}"}
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"].startswith("/login")
    assert await session_rows(server) == 0
    assert stolen not in caplog.text


async def test_anonymous_visitors_have_no_session_row(
    server: StromServer, browsers: list[Browser]
) -> None:
    visitor = open_browser(server, browsers)
    for path in ("/", "/login", "/register", "/alice"):
        status, _ = await visitor.get(path)
        assert status == 200
    assert cookie_of(visitor)  # the CSRF token's cookie
    assert await session_rows(server) == 0


async def test_password_change_ends_the_other_sessions_and_renews_this_one(
    server: StromServer, browsers: list[Browser]
) -> None:
    here = open_browser(server, browsers)
    await here.register("carla")
    there = open_browser(server, browsers, "127.0.0.2")
    await log_in(there, "carla")
    before = cookie_of(here)

    # A wrong current password changes nothing.
    status, html = await here.post(
        "/dashboard/password",
        {"current_password": "not my password", "new_password": NEW_PASSWORD,
         "new_password_confirm": NEW_PASSWORD},
    )  # fmt: skip
    assert status == 422
    assert "current password is not right" in html
    assert (await there.api("GET", "/api/v1/me"))[0] == 200

    status, html = await here.post(
        "/dashboard/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
         "new_password_confirm": NEW_PASSWORD},
    )  # fmt: skip
    assert status == 200, html
    assert "Password changed" in html
    # This browser stays logged in, with a new session (Django's update_session_auth_hash).
    assert (await here.api("GET", "/api/v1/me"))[0] == 200
    assert cookie_of(here) != before
    assert await me_with(server, before) == 401
    # The other browser is logged out.
    assert (await there.api("GET", "/api/v1/me"))[0] == 401
    status, _ = await there.get("/dashboard")
    assert "Log in" in _
    # The new password logs in, the old one does not.
    third = open_browser(server, browsers, "127.0.0.3")
    await third.get("/login")
    status, _ = await third.post("/login", {"username": "carla", "password": PASSWORD})
    assert status == 401
    await log_in(third, "carla", NEW_PASSWORD)


async def test_suspension_ends_sessions_for_good(
    server: StromServer, browsers: list[Browser]
) -> None:
    store = server.store
    assert store is not None
    one = open_browser(server, browsers)
    await one.register("dora")
    two = open_browser(server, browsers, "127.0.0.2")
    await log_in(two, "dora")
    cookies = [cookie_of(one), cookie_of(two)]
    await store.users.set_suspended("dora", True)
    assert [await me_with(server, c) for c in cookies] == [401, 401]
    await store.users.set_suspended("dora", False)
    # Reinstated: the password works again, but the sessions ended with the suspension.
    assert [await me_with(server, c) for c in cookies] == [401, 401]
    await log_in(open_browser(server, browsers, "127.0.0.3"), "dora")


async def test_log_out_everywhere_from_the_dashboard(
    server: StromServer, browsers: list[Browser]
) -> None:
    here = open_browser(server, browsers)
    await here.register("erik")
    there = open_browser(server, browsers, "127.0.0.2")
    await log_in(there, "erik")
    _, html = await here.get("/dashboard")
    assert len(re.findall(r'action="/dashboard/sessions/\d+/end"', html)) == 2  # both listed
    assert "This browser" in html
    async with here.http.post(
        f"{here.base}/dashboard/logout-everywhere",
        data={"csrf_token": here.csrf},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/login"
    assert (await there.api("GET", "/api/v1/me"))[0] == 401
    assert (await here.api("GET", "/api/v1/me"))[0] == 401
    assert await session_rows(server) == 0


async def test_log_out_everywhere_and_one_session_by_the_api(
    server: StromServer, browsers: list[Browser]
) -> None:
    store = server.store
    assert store is not None
    here = open_browser(server, browsers)
    await here.register("fiona")
    there = open_browser(server, browsers, "127.0.0.2")
    await log_in(there, "fiona")
    status, listed = await here.api("GET", "/api/v1/me/sessions")
    assert status == 200
    sessions = listed["sessions"]  # type: ignore[index]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    assert {s["address"] for s in sessions} == {"127.0.0.1", "127.0.0.2"}
    other = next(s for s in sessions if not s["current"])
    status, body = await here.api("DELETE", f"/api/v1/me/sessions/{other['id']}")
    assert (status, body) == (200, {"ended": 1})
    assert (await there.api("GET", "/api/v1/me"))[0] == 401
    assert (await here.api("GET", "/api/v1/me"))[0] == 200
    status, _ = await here.api("DELETE", f"/api/v1/me/sessions/{other['id']}")
    assert status == 404

    # With an API token: every browser session ends, the token goes on working.
    await log_in(there, "fiona")
    token = await store.tokens.create("fiona", "script")
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{here.base}/api/v1/me/sessions", headers=bearer) as resp:
            assert resp.status == 200
            assert await resp.json() == {"ended": 2}
            assert COOKIE not in resp.cookies
        async with http.get(f"{here.base}/api/v1/me", headers=bearer) as resp:
            assert resp.status == 200
    assert (await here.api("GET", "/api/v1/me"))[0] == 401
    assert (await there.api("GET", "/api/v1/me"))[0] == 401


# --- CSRF and API tokens ------------------------------------------------------------------


async def test_a_bogus_bearer_header_does_not_skip_csrf(
    server: StromServer, browsers: list[Browser]
) -> None:
    alice = open_browser(server, browsers)
    key = await alice.register("gwen")
    async with alice.http.post(
        f"{alice.base}/dashboard/stream-key", headers={"Authorization": "Bearer x"}
    ) as resp:
        assert resp.status == 403  # was 200 with a new key: CSRF skipped, the cookie used
    assert await server.keys.resolve(key) == "gwen"  # the key did not change
    async with alice.http.patch(
        f"{alice.base}/api/v1/me/channel",
        json={"title": "pwned"},
        headers={"Authorization": "Bearer strom_nope"},
    ) as resp:
        assert resp.status == 403
    # Without a cookie, a bad token is simply refused.
    async with aiohttp.ClientSession() as http:
        url = f"{alice.base}/api/v1/me/stream-key"
        async with http.post(url, headers={"Authorization": "Bearer strom_nope"}) as resp:
            assert resp.status == 401
    # And a bad token with a logged-in cookie is not the cookie's user either.
    status, _ = await alice.api("GET", "/api/v1/me", headers={"Authorization": "Bearer strom_nope"})
    assert status == 401


async def test_a_valid_token_acts_as_its_user_and_the_cookie_is_ignored(
    server: StromServer, browsers: list[Browser]
) -> None:
    store = server.store
    assert store is not None
    mallory = open_browser(server, browsers)
    mallory_key = await mallory.register("mallory")
    _, hanna_key = await store.users.create("hanna", PASSWORD)
    token = await store.tokens.create("hanna", "bot")
    bearer = {"Authorization": f"Bearer {token}"}
    # Mallory's logged-in cookie rides along; the token decides who acts.
    async with mallory.http.post(f"{mallory.base}/dashboard/stream-key", headers=bearer) as resp:
        assert resp.status == 200
        html = await resp.text()
        assert COOKIE not in resp.cookies  # no cookie written for a token request
    found = KEY.search(html)
    assert found is not None
    assert await server.keys.resolve(found.group(1)) == "hanna"
    assert await server.keys.resolve(hanna_key) is None
    assert await server.keys.resolve(mallory_key) == "mallory"  # hers is untouched
    status, me = await mallory.api("GET", "/api/v1/me", headers=bearer)
    assert (status, me["username"]) == (200, "hanna")  # type: ignore[index]
    status, me = await mallory.api("GET", "/api/v1/me")
    assert (status, me["username"]) == (200, "mallory")  # type: ignore[index]


# --- several nodes --------------------------------------------------------------------------


async def test_another_node_honours_a_log_out_within_its_cache_time(
    browsers: list[Browser], tmp_path: Path
) -> None:
    """Two nodes, one database: a session made on one works on the other, and ending it
    on one ends it on the other within ``session_cache_seconds``."""
    cache = 1.0
    shared = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    store = await Store.open(shared)
    await store.migrate()
    await store.close()
    nodes = []
    for name in ("a", "b"):
        node = StromServer(
            make_settings(
                tmp_path / name, database_url=shared, secret_key="one site, one secret",
                session_cache_seconds=cache,
            )
        )  # fmt: skip
        await node.start()
        nodes.append(node)
    try:
        a, b = nodes
        browser = open_browser(a, browsers)
        await browser.register("ines")
        cookie = cookie_of(browser)
        assert await me_with(b, cookie) == 200  # b looks it up, and caches it
        await browser.post("/logout", {})
        assert await me_with(a, cookie) == 401  # at once where it ended
        started = time.monotonic()
        while await me_with(b, cookie) == 200:
            assert time.monotonic() - started < cache + 2.0, "b still honours the session"
            await asyncio.sleep(0.1)
    finally:
        for node in nodes:
            await node.stop()


def test_session_cookie_carries_no_identity() -> None:
    """What the cookie says is a token and a CSRF token; who it is lives in the store."""
    codec = SessionCodec(b"k")
    session = Session(
        csrf="c", user_id=7, username="alice", is_admin=True, token="t", issued=time.time()
    )
    value = codec.encode(session)
    decoded = codec.decode(value, time.time())
    assert decoded is not None
    assert (decoded.user_id, decoded.username, decoded.is_admin) == (None, None, False)
    assert decoded.token == "t"
    assert re.fullmatch(r"[A-Za-z0-9_=.-]+", value)
