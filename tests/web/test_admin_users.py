"""User management by site administrators, through ``/api/v1/admin`` and the
``/admin/users`` page: who may (403 for everyone else), search and paging, suspension
(no log-in, no publishing, no chat, sessions end), the administrator flag (never the
last one away), a stream key the streamer sees on their dashboard, a temporary password
shown once, and deletion with the recordings, confirmed by typing the name."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from strom.server import StromServer
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers.web import Browser

PASSWORD = "a long enough password"
ADMIN = "/api/v1/admin"


@pytest.fixture
async def people(server: StromServer) -> AsyncIterator[dict[str, Browser]]:
    """An administrator and a streamer, each logged in in their own browser."""
    store = server.store
    assert store is not None
    await store.users.create("operator", PASSWORD, admin=True)
    await store.users.create("streamer", PASSWORD)
    browsers = {"operator": Browser(server), "streamer": Browser(server)}
    for name, browser in browsers.items():
        await browser.get("/login")
        status, _ = await browser.post("/login", {"username": name, "password": PASSWORD})
        assert status == 200
    yield browsers
    for browser in browsers.values():
        await browser.close()


async def test_only_administrators_reach_the_admin_api(
    server: StromServer, people: dict[str, Browser]
) -> None:
    streamer = people["streamer"]
    calls = [
        ("GET", f"{ADMIN}/users", {}),
        ("PATCH", f"{ADMIN}/users/operator", {"json": {"is_admin": False}}),
        ("DELETE", f"{ADMIN}/users/operator?confirm=operator", {}),
        ("POST", f"{ADMIN}/users/operator/stream-key", {}),
        ("POST", f"{ADMIN}/users/operator/password", {}),
        ("POST", f"{ADMIN}/streams/operator/stop", {"json": {"reason": "x"}}),
        ("POST", f"{ADMIN}/categories", {"json": {"name": "Speedruns"}}),
        ("PATCH", f"{ADMIN}/categories/chess", {"json": {"name": "Xiangqi"}}),
        ("DELETE", f"{ADMIN}/categories/chess", {}),
        ("PUT", f"{ADMIN}/categories/chess/art", {"data": b"\xff\xd8\xff"}),
        ("POST", f"{ADMIN}/categories/chess/merge", {"json": {"into": "music"}}),
    ]
    async with aiohttp.ClientSession() as anonymous:
        for method, path, kwargs in calls:
            status, body = await streamer.api(method, path, **kwargs)
            assert (status, body) == (403, {"error": "only site administrators can do this"})
            # Anonymous: 401 (a change without the CSRF header is refused before: 403).
            url = streamer.base + path
            async with anonymous.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
                assert resp.status == (401 if method == "GET" else 403), path
    store = server.store
    assert store is not None
    operator = await store.users.get("operator")
    assert operator is not None
    assert operator.is_admin  # nothing changed
    assert await store.channels.category("chess") is not None
    for page in ("/admin/users", "/admin/categories"):
        status, _ = await streamer.get(page)
        assert status == 403
    for form in ("/admin/users/operator/suspend", "/admin/users/operator/delete",
                 "/admin/categories/chess/delete", "/admin/categories"):  # fmt: skip
        status, _ = await streamer.post(form, {"confirm": "operator", "name": "X"})
        assert status == 403, form
    operator = await store.users.get("operator")
    assert operator is not None
    assert not operator.suspended
    assert await store.channels.category("x") is None


async def test_search_page_promote_and_the_last_administrator(
    server: StromServer, people: dict[str, Browser]
) -> None:
    store = server.store
    assert store is not None
    for n in range(5):
        await store.users.create(f"viewer_{n}", PASSWORD)
    admin = people["operator"]
    status, body = await admin.api("GET", f"{ADMIN}/users?q=VIEWER_&limit=2&offset=2")
    assert status == 200
    assert isinstance(body, dict)
    assert body["total"] == 5
    assert [u["username"] for u in body["users"]] == ["viewer_2", "viewer_3"]
    status, body = await admin.api("GET", f"{ADMIN}/users?q=%25")  # no wildcard
    assert body == {"users": [], "total": 0}

    # The last administrator cannot step down; with a second one, they can.
    status, body = await admin.api("PATCH", f"{ADMIN}/users/operator", json={"is_admin": False})
    assert status == 409
    assert body == {"error": "operator is the last administrator of the site"}
    status, body = await admin.api("PATCH", f"{ADMIN}/users/streamer", json={"is_admin": True})
    assert status == 200
    assert isinstance(body, dict)
    assert body["is_admin"] is True
    status, html = await people["streamer"].get("/admin")  # at once: no cached session
    assert status == 200
    status, body = await admin.api("PATCH", f"{ADMIN}/users/streamer", json={"is_admin": False})
    assert status == 200
    assert isinstance(body, dict)
    assert body["is_admin"] is False
    status, body = await admin.api("PATCH", f"{ADMIN}/users/nobody", json={"is_admin": True})
    assert status == 404

    # The page lists, searches and pages the same accounts.
    status, html = await admin.get("/admin/users?q=viewer")
    assert status == 200
    assert "5 users matching" in html
    assert html.count('data-username="viewer_') == 5
    assert 'action="/admin/users/viewer_0/suspend"' in html


async def test_suspended_user_cannot_log_in_publish_or_chat(
    server: StromServer, people: dict[str, Browser]
) -> None:
    store = server.store
    assert store is not None
    key = await store.channels.reset_stream_key("streamer")
    streamer = people["streamer"]
    chat = await streamer.http.ws_connect(f"{streamer.base}/chat/streamer/ws")
    assert (await chat.receive_json(timeout=5))["type"] == "welcome"
    publisher = RtmpTestClient(server.rtmp_port)
    await publisher.connect()
    status = await publisher.publish(key)
    assert status.code == "NetStream.Publish.Start"

    code, body = await people["operator"].api(
        "PATCH", f"{ADMIN}/users/streamer", json={"suspended": True}
    )
    assert code == 200
    assert isinstance(body, dict)
    assert body["suspended"] is True
    # The broadcast stops, saying why; the chat socket closes; the session is over.
    async with asyncio.timeout(5):
        while (said_in_chat := await chat.receive()).type is not aiohttp.WSMsgType.CLOSE:
            pass
    assert (said_in_chat.data, said_in_chat.extra) == (1008, "account suspended")
    await publisher.read_until_closed()
    said = publisher.status()
    assert said is not None
    assert said.description == "Stopped by an administrator: account suspended"
    code, _ = await streamer.api("GET", "/api/v1/me")
    assert code == 401
    # No log-in, no publishing with the key.
    status_code, html = await streamer.post(
        "/login", {"username": "streamer", "password": PASSWORD}
    )
    assert status_code == 401 or "Wrong username or password" in html
    again = RtmpTestClient(server.rtmp_port)
    await again.connect()
    refused = await again.publish(key)
    assert refused.code != "NetStream.Publish.Start"
    await again.aclose()

    # Lifted: they log in again.
    code, body = await people["operator"].api(
        "PATCH", f"{ADMIN}/users/streamer", json={"suspended": False}
    )
    assert code == 200
    status_code, html = await streamer.post(
        "/login", {"username": "streamer", "password": PASSWORD}
    )
    assert status_code == 200
    assert "Dashboard" in html


async def test_stream_key_password_and_deletion(
    server: StromServer, people: dict[str, Browser]
) -> None:
    store = server.store
    assert store is not None
    admin, streamer = people["operator"], people["streamer"]
    old_key = await store.channels.reset_stream_key("streamer")

    code, body = await admin.api("POST", f"{ADMIN}/users/streamer/stream-key")
    assert (code, body) == (200, {"reset": True})  # the administrator never sees the key
    assert await store.channels.resolve(old_key) is None
    _, html = await streamer.get("/dashboard")
    assert "An administrator reset your stream key" in html
    found = re.search(r'data-role="stream-key" type="text"\s+value="([^"]+)"', html)
    assert found is not None
    new_key = found.group(1)
    assert await store.channels.resolve(new_key) == "streamer"
    _, html = await streamer.get("/dashboard")
    assert new_key not in html  # shown once

    code, body = await admin.api("POST", f"{ADMIN}/users/streamer/password")
    assert code == 200
    assert isinstance(body, dict)
    temporary = body["password"]
    assert len(temporary) >= 10
    assert await store.users.authenticate("streamer", PASSWORD) is None
    assert await store.users.authenticate("streamer", temporary) is not None
    code, _ = await streamer.api("GET", "/api/v1/me")
    assert code == 401  # their sessions ended

    recordings = server.settings.data_dir / "recordings" / "streamer" / "20261201-120000"
    recordings.mkdir(parents=True)
    (recordings / "meta.json").write_text("{}")
    code, body = await admin.api("DELETE", f"{ADMIN}/users/streamer?confirm=streamr")
    assert (code, body) == (422, {"error": "type the username (streamer) to confirm"})
    code, body = await admin.api("DELETE", f"{ADMIN}/users/operator?confirm=operator")
    assert code == 409
    status, html = await admin.post("/admin/users/streamer/delete", {"confirm": "streamer"})
    assert status == 200
    assert "streamer was deleted" in html
    assert await store.users.get("streamer") is None
    assert not recordings.parent.exists()
    status, _ = await admin.get("/streamer")
    assert status == 404
