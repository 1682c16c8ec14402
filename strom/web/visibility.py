"""Private channels' media over HTTP: every media route's check (the token in the
query, :meth:`~strom.channels.access.WatchAccess.media_grant`) and the answer a viewer it
lets in gets (the token written into the playlist's URIs, ``private, no-store``). The
pages' side is :mod:`strom.web.pages.private`; the rules are :mod:`strom.channels.access`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from strom.channels.access import TOKEN_PARAM, Grant, Verdict, Viewer, WatchAccess
from strom.delivery.answer import Answer
from strom.errors import ApiError
from strom.media.uri_query import manifest_with_query, playlist_with_query
from strom.web.auth import get_session

log = logging.getLogger(__name__)

#: a private channel's pass, once its password was given: ``strom_pass_{channel}``
PASS_COOKIE = "strom_pass_"  # noqa: S105 - a cookie name


# -- media ----------------------------------------------------------------------------------


async def media_grant(access: WatchAccess, request: web.BaseRequest, channel: str) -> Grant | None:
    """The media route's check (403 for a private channel without a valid token)."""
    return await access.media_grant(channel, request.query.get(TOKEN_PARAM))


def granted(
    answer: Answer | web.StreamResponse, grant: Grant | None
) -> Answer | web.StreamResponse:
    """``answer`` as a private channel's viewer gets it: its playlist's or manifest's
    URIs carrying the token on, and for no shared cache. ``grant`` None: unchanged."""
    if grant is None:
        return answer
    if isinstance(answer, Answer):
        headers = dict(answer.headers)
        body = bytes(answer.body)
        kind = headers.get("Content-Type", "")
        if "mpegurl" in kind.lower():
            body = playlist_with_query(body, grant.query)
        elif "dash+xml" in kind:
            body = manifest_with_query(body, grant.query)
        headers["Cache-Control"] = grant.cache_control
        headers.pop("ETag", None)
        return Answer(body, headers)
    if not answer.prepared:
        answer.headers["Cache-Control"] = grant.cache_control
    return answer


def granted_response(response: web.StreamResponse, grant: Grant | None) -> web.StreamResponse:
    """:func:`granted` for a route's complete response (the recordings')."""
    if grant is None or response.prepared:
        return response
    if isinstance(response, web.Response) and response.body is not None:
        answer = granted(Answer(bytes(response.body), dict(response.headers)), grant)  # type: ignore[arg-type]
        assert isinstance(answer, Answer)
        fresh = web.Response(status=response.status, body=answer.body)
        fresh.headers.update(
            {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        )
        return fresh
    response.headers["Cache-Control"] = grant.cache_control
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def media_guarded(access: WatchAccess, handler: Handler) -> Handler:
    """``handler`` behind the check, for routes whose ``{channel}`` names the channel
    (the recordings: playlists, segments, the MP4, the thumbnail)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        grant = await media_grant(access, request, request.match_info["channel"])
        return granted_response(await handler(request), grant)

    return answer


def viewer_of(request: web.Request, channel: str, *, trusted: bool = True) -> Viewer:
    """Who asks for ``channel``, by the request's cookies. ``trusted`` False (a WebSocket
    opened by another site's page, which carries the visitor's cookies): nobody."""
    if not trusted:
        return Viewer()
    session = get_session(request)
    return Viewer(
        username=session.username if session.logged_in else None,
        is_admin=session.is_admin,
        channel_pass=request.cookies.get(PASS_COOKIE + channel.lower()),
    )


def with_token(recordings: list[dict[str, Any]], token: str | None) -> list[dict[str, Any]]:
    """The channel page's past broadcasts, their URLs carrying a private channel's media
    token (None: as they are)."""
    if token is None:
        return recordings
    urls = ("playlist_url", "mp4_url", "thumbnail_url")
    return [
        {**r, **{k: f"{r[k]}?{TOKEN_PARAM}={token}" for k in urls if r.get(k)}} for r in recordings
    ]


async def api_token(access: WatchAccess, request: web.Request, channel: str) -> str | None:
    """The API's check of a channel's details (its page's API, its recordings): 403 for
    a viewer a private channel does not let in; else the media token (None: the
    channel is not private)."""
    if await access.may_watch(channel, viewer_of(request, channel)) is not Verdict.WATCH:
        raise ApiError(403, "this stream is private", headers={"Cache-Control": "no-store"})
    return await access.media_token(channel)
