"""A cookie-keeping HTTP client that behaves like a person's browser (forms, CSRF, JSON API)."""

from __future__ import annotations

import re

import aiohttp

from strom.server import StromServer

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


KEY = re.compile(r'data-role="stream-key"\s+type="text"\s+value="([^"]+)"')


class Browser:
    """A cookie-keeping HTTP client that behaves like a person's browser."""

    def __init__(self, server: StromServer, address: str = "127.0.0.1") -> None:
        """``address``: the client's own (127.0.0.2 etc.: Linux routes all of 127/8 to the
        loopback, so one machine plays several clients the server tells apart)."""
        self.base = f"http://127.0.0.1:{server.http_port}"
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(local_addr=(address, 0)),
        )
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path) as resp:
            text = await resp.text()
            if m := CSRF.search(text):
                self.csrf = m.group(1)
            return resp.status, text

    async def post(self, path: str, data: dict[str, str], csrf: bool = True) -> tuple[int, str]:
        if not self.csrf:
            await self.get("/login")
        form = {**data, **({"csrf_token": self.csrf} if csrf else {})}
        async with self.http.post(self.base + path, data=form) as resp:
            text = await resp.text()
            if m := CSRF.search(text):
                self.csrf = m.group(1)
            return resp.status, text

    async def api(self, method: str, path: str, **kwargs: object) -> tuple[int, object]:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
        async with self.http.request(
            method,
            self.base + path,
            headers=headers,
            **kwargs,  # type: ignore[arg-type]
        ) as resp:
            return resp.status, await resp.json()

    async def register(self, username: str, password: str = "correct horse battery") -> str:
        await self.get("/register")
        status, html = await self.post(
            "/register",
            {"username": username, "password": password, "password_confirm": password},
        )
        assert status == 200, html
        found = KEY.search(html)
        assert found is not None, "the new stream key is shown once after sign-up"
        return found.group(1)

    async def close(self) -> None:
        await self.http.close()
