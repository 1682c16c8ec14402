"""The lean path of LL-HLS and LL-DASH: playlists, MPDs and media go straight to the
delivery.

An LL-HLS viewer asks about six times a second (a blocking playlist reload and a part,
per part), an LL-DASH viewer two or three (the MPD, a segment), and every answer is the
same bytes for every viewer. Such a request needs
nothing a page needs: no router walk, no session, no CSRF check, no body deadline, no
response signal. :class:`LeanMediaPath` sits in front of the application as the HTTP
server's request handler: a ``GET`` of ``/live/{channel}/index.m3u8``,
``/live/{channel}/index.mpd`` or ``/live/{channel}/{rendition}/{file}`` is answered by
:class:`~strom.delivery.hls.HlsDelivery` or :class:`~strom.delivery.dash.DashDelivery`
at once (cross-origin headers and JSON errors as
the application would add them; a complete answer written as prepared bytes,
:mod:`strom.web.raw_answer`); every other request, ``HEAD`` of the same URLs
included, goes on to the application unchanged. Same server, same port, same aiohttp:
only the per-request layers the answer does not use are skipped (about a third of a
request's CPU, ``bench/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from strom.delivery.answer import Answer
from strom.delivery.dash import TIME_PATH
from strom.errors import StromError
from strom.settings import valid_watch_name
from strom.web.cors import READ_HEADERS
from strom.web.errors import machine_error
from strom.web.paths import site_url
from strom.web.raw_answer import RawAnswers
from strom.web.site import Site
from strom.web.visibility import granted, media_grant

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_PREFIX = "/live/"
_PLAYLIST = "index.m3u8"
_MANIFEST = "index.mpd"


class LeanMediaPath:
    """The server's request handler: LL-HLS ``GET`` requests here, the rest to the app."""

    def __init__(self, site: Site, app_handler: RequestHandler) -> None:
        self._hls = site.hls
        self._dash = site.dash
        self._access = site.access
        self._demand = site.pulls.demand
        self._public_url = site.settings.public_url
        self._app_handler = app_handler
        self._raw = RawAnswers(READ_HEADERS)
        #: requests answered here (the rest went to the application)
        self.answered = 0

    @classmethod
    def install(cls, site: Site, server: web.Server) -> LeanMediaPath:
        """Put the lean path in front of ``server``'s application (before it listens)."""
        lean = cls(site, server.request_handler)
        server.request_handler = lean.handle
        return lean

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and (parts := _lean_parts(request.path)) is not None:
            return await self._answer(request, parts)
        return await self._app_handler(request)

    async def _answer(self, request: web.BaseRequest, parts: list[str]) -> web.StreamResponse:
        channel = parts[2]
        self.answered += 1
        answer: Answer | web.StreamResponse
        try:
            grant = await media_grant(self._access, request, channel)
            if len(parts) == 5:
                answer = await self._hls.media_answer(request, channel, parts[3], parts[4])
            elif parts[3] == _PLAYLIST:
                await self._demand.touch(channel)  # a channel pulled from elsewhere starts
                answer = await self._hls.playlist_answer(request, channel)
            else:
                await self._demand.touch(channel)
                time_url = site_url(request, self._public_url) + TIME_PATH
                answer = await self._dash.manifest_answer(request, channel, time_url)
            answer = granted(answer, grant)
        except StromError as exc:
            answer = machine_error(request, exc)
        if isinstance(answer, Answer):
            return self._raw.response(request, answer)
        answer.headers.update(READ_HEADERS)
        return answer


def _lean_parts(path: str) -> list[str] | None:
    """``path``'s segments if it is a playlist, an MPD or a media file of a channel
    (``"", "live", channel, ...``), else None."""
    if not path.startswith(_PREFIX):
        return None
    parts = path.split("/")
    if len(parts) == 4:
        ours = parts[3] in (_PLAYLIST, _MANIFEST)
    else:
        ours = len(parts) == 5 and all(parts[3:])
    return parts if ours and valid_watch_name(parts[2]) else None
