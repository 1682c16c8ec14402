"""Template rendering: every page gets the session, its CSRF token and the version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from strom import __version__
from strom.store.security import PASSWORD_MIN
from strom.web.auth import get_session

TEMPLATES = Path(__file__).parent / "templates"

environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: web.Request,
    name: str,
    *,
    status: int = 200,
    frame_ancestors: str = "'none'",
    **context: Any,
) -> web.Response:
    """``name`` rendered for ``request``, with the site's strict headers. Pages may not be
    framed by anyone (``frame_ancestors``), except the embed page, framed by any site."""
    session = get_session(request)
    html = environment.get_template(name).render(
        version=__version__,
        password_min=PASSWORD_MIN,
        session=session,
        csrf_token=session.csrf,
        request_path=request.path,
        **context,
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={
            # No inline scripts anywhere: a strict policy costs nothing.
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                "connect-src 'self' ws: wss:; style-src 'self'; worker-src 'self' blob:; "
                "object-src 'none'; "
                f"base-uri 'none'; frame-ancestors {frame_ancestors}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
