"""Sessions, CSRF protection and rate limits for the web application.

Sessions are signed cookies (HMAC-SHA256 over a small JSON document, with an issue time
and a maximum age), so any process that shares the secret can read them. Every session,
anonymous ones included, carries a CSRF token: a state-changing request made with the
cookie must echo it in the ``csrf_token`` form field or the ``X-CSRF-Token`` header.
API clients that authenticate with ``Authorization: Bearer`` tokens send no cookie and
are exempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

COOKIE = "strom_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: paths whose requests authenticate by a secret in the URL, never by the cookie
#: (``PUT /ingest/{stream key}`` from ffmpeg or curl): no CSRF token, bodies left unread
CSRF_EXEMPT_PREFIXES = ("/ingest/",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret, kept in the data directory (0600) so restarts keep sessions."""
    path = data_dir / "secret.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex())
    return secret


@dataclass(frozen=True)
class Session:
    csrf: str
    user_id: int | None = None
    username: str | None = None
    is_admin: bool = False
    issued: float = 0.0

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None


SESSION_KEY = web.RequestKey("strom_session", Session)
_DIRTY = web.RequestKey("strom_session_dirty", bool)
_FORM_CSRF = web.RequestKey("strom_form_csrf", str)


class SessionCodec:
    def __init__(self, secret: bytes, max_age: float = 30 * 86400) -> None:
        self._key = hashlib.sha256(b"strom-session\0" + secret).digest()
        self.max_age = max_age

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        doc = {
            "c": session.csrf,
            "u": session.user_id,
            "n": session.username,
            "a": session.is_admin,
            "t": int(session.issued),
        }
        body = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
        sig = base64.urlsafe_b64encode(self._sign(body))
        return (body + b"." + sig).decode()

    def decode(self, value: str, now: float) -> Session | None:
        try:
            body, _, sig = value.encode().partition(b".")
            if not hmac.compare_digest(base64.urlsafe_b64decode(sig), self._sign(body)):
                return None
            doc = json.loads(base64.urlsafe_b64decode(body))
            session = Session(
                csrf=str(doc["c"]),
                user_id=doc["u"] if isinstance(doc["u"], int) else None,
                username=doc["n"] if isinstance(doc["n"], str) else None,
                is_admin=doc["a"] is True,
                issued=float(doc["t"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if now - session.issued > self.max_age:
            return None
        return session


def new_session() -> Session:
    return Session(csrf=secrets.token_urlsafe(24), issued=time.time())


def get_session(request: web.Request) -> Session:
    return request[SESSION_KEY]


def set_session(request: web.Request, session: Session) -> None:
    """Replace the session (login, logout); the middleware writes the cookie."""
    request[SESSION_KEY] = session
    request[_DIRTY] = True


def login(request: web.Request, user_id: int, username: str, is_admin: bool) -> None:
    # A fresh CSRF token on login: a token seen before authentication is not reused.
    set_session(
        request,
        replace(new_session(), user_id=user_id, username=username, is_admin=is_admin),
    )


def logout(request: web.Request) -> None:
    set_session(request, new_session())


def json_error(status: int, reason: str, **extra: object) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def session_middleware(codec: SessionCodec, *, secure_cookies: bool) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = request.cookies.get(COOKIE)
        session = codec.decode(raw, time.time()) if raw else None
        fresh = session is None
        request[SESSION_KEY] = session or new_session()
        bearer = request.headers.get("Authorization", "").startswith("Bearer ")
        exempt = bearer or request.path.startswith(CSRF_EXEMPT_PREFIXES)
        if request.method in _UNSAFE and not exempt and not _csrf_ok(request):
            return json_error(403, "CSRF token missing or wrong; reload the page and retry")
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects after login/logout carry the cookie
            _store(request, exc, fresh)
            raise
        _store(request, response, fresh)
        return response

    def _store(request: web.Request, response: web.StreamResponse, fresh: bool) -> None:
        if (fresh or request.get(_DIRTY)) and not response.prepared:
            response.set_cookie(
                COOKIE,
                codec.encode(request[SESSION_KEY]),
                max_age=int(codec.max_age),
                httponly=True,
                samesite="Lax",
                secure=secure_cookies or request.secure,
                path="/",
            )

    return middleware


def _csrf_ok(request: web.Request) -> bool:
    expected = request[SESSION_KEY].csrf
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        # Form posts: the field is read by the handler via request.post(); peek here.
        supplied = request.get(_FORM_CSRF)
    return supplied is not None and hmac.compare_digest(supplied.encode(), expected.encode())


def csrf_form_middleware() -> web.middleware:  # type: ignore[valid-type]
    """Reads urlencoded form bodies early so the CSRF check can see the hidden field."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method in _UNSAFE
            and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            and not request.path.startswith(CSRF_EXEMPT_PREFIXES)
        ):
            form = await request.post()
            value = form.get(CSRF_FIELD)
            if isinstance(value, str):
                request[_FORM_CSRF] = value
        return await handler(request)

    return middleware


class RateLimiter:
    """Token buckets per key (client address, username), bounded in memory."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str) -> float:
        tokens, _ = self._buckets.get(key, (float(self.burst), 0.0))
        return max(0.0, (1.0 - tokens) / self.rate)
