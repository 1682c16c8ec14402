"""What every page family shares: the logged-in user, the error page."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from strom.web.auth import get_session
from strom.web.render import render

#: first path segments that are not usernames
RESERVED = frozenset(
    {
        "admin", "api", "categories", "dashboard", "live", "login", "logout", "metrics",
        "register", "search", "static", "thumbnails", "settings", "help", "about", "following",
        "ingest", "chat", "download", "directory", "strom", "favicon.ico", "robots.txt", "golive",
        "embed", "oembed", "vod", "internal", "hls", "avatars",
    }
)  # fmt: skip


def require_user(request: web.Request) -> str:
    """The logged-in user's name (the session middleware found the session valid: a
    suspended account has none left); else off to the log-in page and back."""
    session = get_session(request)
    if not session.logged_in or session.username is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path)}")
    return session.username


def require_admin(request: web.Request) -> str:
    username = require_user(request)
    if not get_session(request).is_admin:
        raise web.HTTPForbidden(text="Only site administrators can do this.")
    return username


def sentence(text: str) -> str:
    """A message of the store's (``the username 'x' is reserved``) as a form shows it:
    a sentence, capitalised, with its full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, message=message)
