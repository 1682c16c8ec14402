"""Errors as the web answers them: one JSON shape, one middleware, one origin policy.

Handlers raise :class:`~strom.errors.ApiError` (or let a :class:`~strom.errors.StromError`
with an ``http_status`` through); :func:`error_middleware` turns it into
``{"error": reason}`` with that status on API and media paths, and into the error page
for people. Nothing else builds an error body by hand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from strom.errors import ApiError, StromError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: paths whose answers are for programs: errors are JSON there, never a page
MACHINE_PREFIXES = (
    "/api/", "/live/", "/vod/", "/metrics", "/thumbnails/", "/chat/", "/ingest/", "/internal/",
    "/hls/", "/whip",
)  # fmt: skip


def json_error(
    status: int, reason: str, *, headers: dict[str, str] | None = None, **extra: object
) -> web.Response:
    """The one JSON error body: ``{"error": reason, ...extra}`` with ``status``."""
    return web.json_response({"error": reason, **extra}, status=status, headers=headers)


def _unstored(response: web.Response) -> web.Response:
    """A JSON error is kept by no HTTP cache (a CDN caches a 404 for a while by default),
    unless its raiser chose a lifetime (an offline channel's playlist: a second)."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def machine_error(request: web.BaseRequest, exc: StromError) -> web.Response:
    """The JSON answer of an error raised for a program (an API or media path)."""
    if isinstance(exc, ApiError):
        return _unstored(json_error(exc.http_status, exc.reason, headers=exc.headers, **exc.extra))
    if exc.http_status >= 500:
        log.warning("%s %s: %s", request.method, request.path, exc)
    return _unstored(json_error(exc.http_status, str(exc)))


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


#: renders the error page for people (set by the app: pages need templates)
ErrorPage = Callable[[web.Request, int, str], web.StreamResponse | None]


def error_middleware(error_page: ErrorPage) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """JSON errors for the API and media paths; never a stack trace for anyone."""
        machine = is_machine_path(request.path)
        try:
            return await handler(request)
        except ApiError as exc:
            return machine_error(request, exc)
        except StromError as exc:  # a store or protocol error with its status
            if machine or exc.http_status >= 500:
                return machine_error(request, exc)
            page = error_page(request, exc.http_status, str(exc))
            return page if page is not None else json_error(exc.http_status, str(exc))
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            if machine:
                return _unstored(json_error(exc.status, exc.reason.lower()))
            message = exc.text if exc.status == 403 and exc.text else "There is nothing here."
            page = error_page(request, exc.status, message)
            if page is None:
                raise
            return page
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            if machine:
                return _unstored(json_error(500, "internal server error"))
            return web.Response(status=500, text="Internal server error", content_type="text/plain")

    return middleware


def same_origin(request: web.Request, public_url: str) -> bool:
    """The one origin policy for browser WebSockets (chat, the browser's upload): a
    browser always sends ``Origin`` on a WebSocket, and it must be this site as the
    visitor reached it (``request.host``) or as configured (``public_url``), so no other
    site's page can act with a visitor's cookie. Scripts and apps send none: allowed,
    they carry their own credentials."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    allowed = {request.host.lower()}
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return netloc in allowed


async def json_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The request's body, a JSON object of ``allowed`` fields only: 400 for anything else
    than an object, 422 naming the unknown fields."""
    try:
        body = await request.json()
    # RecursionError: "[[[[..." nests deeper than the C decoder recurses.
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(422, f"unknown fields: {', '.join(sorted(unknown))}")
    return body
