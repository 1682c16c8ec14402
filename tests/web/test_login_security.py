"""The log-in form against a stranger, over HTTP against the real server: password guessing
is slowed per (account, address) and per address without locking the owner out, the page
after log-in stays on this site, and static channel names cannot be registered."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.channels import ChannelNameClash
from strom.server import StromServer
from strom.store import Store
from tests.helpers import make_settings
from tests.helpers.web import Browser

PASSWORD = "correct horse battery"


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        await browser.close()


async def start(tmp_path: Path, **overrides: object) -> StromServer:
    server = StromServer(make_settings(tmp_path, **overrides))
    await server.start()
    return server


async def post_login(
    browser: Browser, username: str, password: str, next_url: str | None = None
) -> aiohttp.ClientResponse:
    form = {"username": username, "password": password, "csrf_token": browser.csrf}
    if next_url is not None:
        form["next"] = next_url
    async with browser.http.post(f"{browser.base}/login", data=form, allow_redirects=False) as resp:
        await resp.read()
        return resp


# --- guessing ---------------------------------------------------------------------------------


async def test_a_stranger_cannot_lock_an_account_out(
    server: StromServer, browsers: list[Browser]
) -> None:
    assert server.store is not None
    await server.store.users.create("alice_v", PASSWORD)
    stranger = Browser(server, "127.0.0.2")
    browsers.append(stranger)
    await stranger.get("/login")
    statuses = []
    for _ in range(12):
        resp = await post_login(stranger, "alice_v", "wrong password!")
        statuses.append(resp.status)
        retry_after = resp.headers.get("Retry-After")
    # Alice, from her own address, logs in (was 429: a lock on the account).
    alice = Browser(server, "127.0.0.3")
    browsers.append(alice)
    await alice.get("/login")
    resp = await post_login(alice, "alice_v", PASSWORD)
    assert resp.status == 303
    assert resp.headers["Location"] == "/dashboard"
    # The stranger's address is slowed after a few guesses, even with the right password.
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert retry_after is not None
    assert int(retry_after) >= 1
    resp = await post_login(stranger, "alice_v", PASSWORD)
    assert resp.status == 429


async def test_an_account_under_attack_is_slowed_never_refused(
    tmp_path: Path, browsers: list[Browser]
) -> None:
    delay = 3.0
    server = await start(
        tmp_path,
        login_failures_per_account_address=2,
        login_delay_after_failures=4,
        login_delay_max=delay,
    )
    try:
        assert server.store is not None
        await server.store.users.create("bella", PASSWORD)
        home = Browser(server, "127.0.0.9")
        browsers.append(home)
        await home.get("/login")
        assert (await post_login(home, "bella", PASSWORD)).status == 303  # a known address now
        # Guesses from several addresses, each within its own allowance.
        for n in range(2, 6):
            guesser = Browser(server, f"127.0.0.{n}")
            browsers.append(guesser)
            await guesser.get("/login")
            for _ in range(2):
                assert (await post_login(guesser, "bella", "wrong password!")).status == 401
        # A fresh address: delayed, then let in with the right password.
        fresh = Browser(server, "127.0.0.7")
        browsers.append(fresh)
        await fresh.get("/login")
        started = time.monotonic()
        resp = await post_login(fresh, "bella", PASSWORD)
        assert resp.status == 303
        assert time.monotonic() - started >= delay - 0.1
        # A wrong password from a fresh address waits just as long (the delay says nothing).
        other = Browser(server, "127.0.0.8")
        browsers.append(other)
        await other.get("/login")
        started = time.monotonic()
        assert (await post_login(other, "bella", "wrong password!")).status == 401
        assert time.monotonic() - started >= delay - 0.1
        # Where bella logged in before, no delay.
        await home.get("/login")
        started = time.monotonic()
        assert (await post_login(home, "bella", PASSWORD)).status == 303
        assert time.monotonic() - started < delay - 0.5
    finally:
        await server.stop()


async def test_one_address_trying_many_accounts_is_slowed(
    server: StromServer, browsers: list[Browser]
) -> None:
    stuffer = Browser(server, "127.0.0.4")
    browsers.append(stuffer)
    await stuffer.get("/login")
    limit = server.settings.login_attempts_per_minute
    statuses = [
        (await post_login(stuffer, f"user{n}", "some password")).status for n in range(limit + 1)
    ]
    assert statuses[:limit] == [401] * limit
    assert statuses[limit] == 429


# --- where to go after logging in -------------------------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example/",  # ?next=/%09/evil.example/ : browsers drop the tab
    "/\n/evil.example/",  # %0A
    "/\r\n/evil.example/",
    "\\\\evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/\\/evil.example/",
    " //evil.example/",
    "\x00//evil.example/",
    "https:evil.example",
    "https://evil.example/",
    "http://127.0.0.1:1/dashboard",
    "javascript:alert(1)",
    "evil.example",
    "///evil.example/",
]


async def test_the_page_after_log_in_stays_on_this_site(
    tmp_path: Path, browsers: list[Browser]
) -> None:
    server = await start(tmp_path, login_attempts_per_minute=100)
    try:
        assert server.store is not None
        await server.store.users.create("cleo", PASSWORD)
        browser = Browser(server)
        browsers.append(browser)
        for hostile in HOSTILE_NEXT:
            await browser.get("/login")
            resp = await post_login(browser, "cleo", PASSWORD, hostile)
            assert resp.status == 303, hostile
            assert resp.headers["Location"] == "/dashboard", hostile
            await browser.post("/logout", {})
            # The form does not carry it along either.
            async with browser.http.get(f"{browser.base}/login", params={"next": hostile}) as resp:
                html = await resp.text()
                assert resp.status == 200
                assert 'name="next"' not in html, hostile
        await browser.get("/login?next=/following%3Fsort%3Dlive")
        resp = await post_login(browser, "cleo", PASSWORD, "/following?sort=live")
        assert resp.headers["Location"] == "/following?sort=live"
    finally:
        await server.stop()


# --- static channel names ---------------------------------------------------------------------


async def test_sign_up_refuses_static_channel_names_in_any_case(
    server: StromServer, browsers: list[Browser]
) -> None:
    # The test server has static channels "alice" and "bob" (--stream-key).
    browser = Browser(server)
    browsers.append(browser)
    for name in ("alice", "ALICE", "Bob"):
        await browser.get("/register")
        status, html = await browser.post(
            "/register", {"username": name, "password": PASSWORD, "password_confirm": PASSWORD}
        )
        assert status == 422, name
        assert "belongs to a channel of this site" in html
    assert server.store is not None
    assert await server.store.users.get("alice") is None


async def test_a_static_key_for_an_existing_account_name_stops_the_server(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'strom.db').resolve()}"
    (tmp_path / "data").mkdir()
    store = await Store.open(url)
    await store.migrate()
    await store.users.create("Demo", PASSWORD)
    await store.close()
    server = StromServer(make_settings(tmp_path, stream_keys={"demo": "operator-key-123"}))
    with pytest.raises(ChannelNameClash, match=r"'demo'.*account 'Demo'"):
        await server.start()
    await server.stop()
