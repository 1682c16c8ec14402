"""Cross-origin reads of what is public: media, recordings, pictures, the read API.

A player on another site (an embed, a page on a CDN, a streamer's own website) fetches
the LL-HLS playlist and its parts, a recording or the directory API with ``fetch``; a
browser hands it the answer only when the answer says
``Access-Control-Allow-Origin`` (the Fetch standard's CORS protocol). Everything under
:data:`PUBLIC` is the same for every visitor, so ``*`` is right for it, as nginx's and
Owncast's HLS setups answer: no credentials are ever involved (with ``*`` a browser sends
no cookie and reads no credentialed answer), so nothing of an account leaks. The account
API (``/api/v1/me``), the pages, chat and ingest stay same-origin.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``, sent when a player adds
a ``Range`` header, say) on a public path is answered ``204`` with what may be asked and
for how long the answer holds; other ``OPTIONS`` requests go on to the router (405).
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

#: the paths anyone may read from any origin
PUBLIC = re.compile(r"/(?:live|vod|thumbnails|hls)/|/api/v1/(?!me(?:/|$))|/oembed$")
#: the methods a cross-origin read may use
METHODS = "GET, HEAD, OPTIONS"
#: the request headers a player may send (beyond the CORS-safelisted ones)
ALLOWED_HEADERS = "Range, If-None-Match, If-Modified-Since, Cache-Control"
#: the answer headers a player's script may read
EXPOSED = "Content-Length, Content-Range, ETag, Date, Age"
#: seconds a browser may keep a preflight's answer
PREFLIGHT_MAX_AGE = 86400

#: what every answer to a public read carries
READ_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED}
_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": METHODS,
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
}


def is_public(path: str) -> bool:
    return PUBLIC.match(path) is not None


def preflight_middleware() -> Middleware:
    """A preflight of a public path answered here, before routing would refuse it."""

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and is_public(request.path)
        ):
            return web.Response(status=204, headers=_PREFLIGHT)
        return await handler(request)

    return preflight


async def allow_reads(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer to a public read, streamed or not, refusals
    and errors included (a player on another origin can read why: a 404, a 503)."""
    if request.method in ("GET", "HEAD") and is_public(request.path):
        response.headers.update(READ_HEADERS)


def install(app: web.Application) -> None:
    """Cross-origin reads for ``app`` (its preflight middleware goes in the list the app
    is built with: :func:`preflight_middleware`)."""
    app.on_response_prepare.append(allow_reads)
