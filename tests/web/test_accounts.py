"""Accounts, sessions, CSRF, rate limits and the JSON API, against the real server."""

from __future__ import annotations

import logging
import re

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers.web import Browser


@pytest.fixture
async def alice(server: StromServer) -> Browser:
    browser = Browser(server)
    yield browser  # type: ignore[misc]
    await browser.close()


async def test_register_shows_key_once_and_it_publishes(
    server: StromServer, alice: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = await alice.register("Alice_1")
    assert await server.keys.resolve(key) == "Alice_1"
    # The dashboard after this does not show the key again.
    status, html = await alice.get("/dashboard")
    assert status == 200
    assert key not in html
    status, me = await alice.api("GET", "/api/v1/me")
    assert status == 200
    assert key not in str(me)
    assert key not in caplog.text  # never in logs


async def test_login_logout_and_wrong_password(server: StromServer, alice: Browser) -> None:
    await alice.register("bob_the_streamer")
    await alice.post("/logout", {})
    status, _ = await alice.api("GET", "/api/v1/me")
    assert status == 401
    await alice.get("/login")
    status, html = await alice.post(
        "/login", {"username": "bob_the_streamer", "password": "wrong password!"}
    )
    assert status == 401
    assert "Wrong username or password" in html
    status, _ = await alice.post(
        "/login", {"username": "BOB_THE_STREAMER", "password": "correct horse battery"}
    )
    assert status == 200  # redirected to the dashboard
    status, me = await alice.api("GET", "/api/v1/me")
    assert status == 200
    assert me["username"] == "bob_the_streamer"  # type: ignore[index]


async def test_csrf_is_refused(server: StromServer, alice: Browser) -> None:
    await alice.register("carol")
    status, _ = await alice.post("/dashboard/stream-key", {}, csrf=False)
    assert status == 403
    status, body = await alice.api(
        "PATCH", "/api/v1/me/channel", json={"title": "x"}, headers={"X-CSRF-Token": "forged"}
    )
    assert status == 403
    assert "CSRF" in body["error"]  # type: ignore[index]


async def test_login_rate_limit(server: StromServer, alice: Browser) -> None:
    await alice.get("/login")
    statuses = []
    for _ in range(server.settings.login_attempts_per_minute + 2):
        status, _ = await alice.post("/login", {"username": "dave", "password": "nope nope"})
        statuses.append(status)
    assert statuses[0] == 401
    assert statuses[-1] == 429


async def test_edit_channel_and_isolation(server: StromServer, alice: Browser) -> None:
    await alice.register("erin")
    mallory = Browser(server)
    try:
        await mallory.register("mallory")
        status, body = await alice.api(
            "PATCH",
            "/api/v1/me/channel",
            json={"title": "<script>alert(1)</script> Speedrun", "category": "just-chatting"},
        )
        assert status == 200, body
        # Mallory can only ever edit her own channel: there is no way to name another.
        status, body = await mallory.api(
            "PATCH", "/api/v1/me/channel", json={"title": "pwned", "username": "erin"}
        )
        assert status == 422
        status, erin = await mallory.api("GET", "/api/v1/channels/erin")
        assert erin["title"] == "<script>alert(1)</script> Speedrun"  # type: ignore[index]
        # Rendered inert on the channel page.
        status, html = await mallory.get("/erin")
        assert status == 200
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Speedrun" in html
        status, body = await alice.api("PATCH", "/api/v1/me/channel", json={"title": "x" * 500})
        assert status == 422
        assert "error" in body  # type: ignore[operator]
        # JSON nested deeper than the decoder recurses is a bad body, not a server error.
        status, body = await alice.api(
            "PATCH",
            "/api/v1/me/channel",
            data="[" * 50_000,
            headers={"Content-Type": "application/json"},
        )
        assert status == 400
        assert body == {"error": "the body must be a JSON object"}
    finally:
        await mallory.close()


async def test_api_token_auth(server: StromServer, alice: Browser) -> None:
    await alice.register("frank")
    _, html = await alice.post("/dashboard/tokens", {"name": "laptop"})
    token = re.search(r"(strom_[A-Za-z0-9_-]{20,})", html)
    assert token is not None
    async with aiohttp.ClientSession() as anonymous:
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        async with anonymous.get(f"{alice.base}/api/v1/me", headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["username"] == "frank"
        # Token clients need no CSRF token (no cookies involved).
        async with anonymous.post(f"{alice.base}/api/v1/me/stream-key", headers=headers) as resp:
            assert resp.status == 200
            new_key = (await resp.json())["stream_key"]
        assert await server.keys.resolve(new_key) == "frank"
        bad = {"Authorization": "Bearer strom_not-a-token"}
        async with anonymous.get(f"{alice.base}/api/v1/me", headers=bad) as resp:
            assert resp.status == 401


async def test_openapi_document(server: StromServer, alice: Browser) -> None:
    status, doc = await alice.api("GET", "/api/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")  # type: ignore[index]
    assert "/api/v1/streams" in doc["paths"]  # type: ignore[index]


async def test_suspension_ends_an_open_session(server: StromServer, alice: Browser) -> None:
    await alice.register("grace")
    status, _ = await alice.api("GET", "/api/v1/me")
    assert status == 200
    assert server.store is not None
    await server.store.users.set_suspended("grace", True)
    status, _ = await alice.api("GET", "/api/v1/me")
    assert status == 401
    async with alice.http.get(alice.base + "/dashboard", allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"].startswith("/login")


async def test_sign_up_refusals_are_sentences(server: StromServer, alice: Browser) -> None:
    """What the sign-up form says when it refuses: a sentence, capitalised, with its full
    stop, and the password rule the form's own hint states."""
    await alice.register("dora")
    await alice.post("/logout", {})
    await alice.get("/register")
    cases = [
        ("dora", "correct horse battery", "That username is taken."),
        ("x!", "correct horse battery", "A username has 3-25 characters"),
        ("eve_new", "too short", "A password has at least 10 characters."),
    ]
    for username, password, said in cases:
        status, html = await alice.post(
            "/register",
            {"username": username, "password": password, "password_confirm": password},
        )
        assert status == 422
        assert said in html, username
    status, html = await alice.get("/register")
    assert 'minlength="10"' in html
    assert "At least 10 characters." in html
