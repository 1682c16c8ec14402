"""WHIP's HTTP resource (RFC 9725): ``POST /whip`` or ``/whip/{channel}`` with an SDP
offer and ``Authorization: Bearer {stream key}``; ``201 Created``, the SDP answer and a
``Location`` to ``DELETE`` when the broadcast is over.

Answers, all JSON ``{"error": reason}`` when refused: 401 unknown stream key, 415 not
``application/sdp``, 400 an offer without usable H.264, VP8 or Opus, 409 the channel is already
live, 413 an offer past ``whip_max_offer_bytes``, 429 too many sessions from one address,
503 too many sessions. ``PATCH`` (trickle ICE, RFC 9725 4.3) is not offered: 405, as the
RFC allows (the answer already holds every candidate). A browser page on another site may
publish: the resource answers CORS preflights and carries ``Access-Control-Allow-Origin:
*`` (the credential is the bearer header, never a cookie).
"""

from __future__ import annotations

from aiohttp import web

from strom.errors import ApiError
from strom.ingest.whip import WhipIngest, WhipLimits
from strom.web.errors import json_error
from strom.web.site import Site

WHIP_PATH = "/whip"
SESSION_PATH = WHIP_PATH + "/session/"
SDP = "application/sdp"

#: what every WHIP answer carries for a browser client on another origin
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Patch",
}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "86400",
}


def _refusal(exc: ApiError) -> web.Response:
    response = json_error(exc.http_status, exc.reason, headers={**_CORS, **exc.headers})
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer(request: web.Request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


class WhipHttp:
    def __init__(self, ingest: WhipIngest) -> None:
        self.ingest = ingest

    def routes(self, app: web.Application) -> None:
        for path in (WHIP_PATH, WHIP_PATH + "/{channel}"):
            app.router.add_post(path, self.post)
            app.router.add_route("OPTIONS", path, self.options)
        app.router.add_delete(SESSION_PATH + "{id}", self.delete)
        app.router.add_route("OPTIONS", SESSION_PATH + "{id}", self.options)
        app.router.add_patch(SESSION_PATH + "{id}", self.patch)

    async def options(self, request: web.Request) -> web.Response:
        """A CORS preflight, or a client asking what the endpoint takes (RFC 9725 4.2)."""
        return web.Response(status=204, headers={**_PREFLIGHT, "Accept-Post": SDP})

    async def post(self, request: web.Request) -> web.Response:
        try:
            return await self._post(request)
        except ApiError as exc:
            self.ingest.note_refusal(exc.http_status)
            return _refusal(exc)

    async def _post(self, request: web.Request) -> web.Response:
        if request.content_type != SDP:
            raise ApiError(415, f"the offer must be sent as {SDP}", headers={"Accept-Post": SDP})
        limit = self.ingest.limits.max_offer_bytes
        if (request.content_length or 0) > limit:
            raise ApiError(413, f"an SDP offer larger than {limit} bytes")
        body = await request.read()
        if len(body) > limit:
            raise ApiError(413, f"an SDP offer larger than {limit} bytes")
        try:
            offer = body.decode()
        except UnicodeDecodeError:
            raise ApiError(400, "the SDP offer is not UTF-8 text") from None
        if not offer.startswith("v=0"):
            raise ApiError(400, "not an SDP offer (RFC 8866 starts with v=0)")
        session = await self.ingest.publish(
            offer, _bearer(request), request.match_info.get("channel"), request.remote or ""
        )
        return web.Response(
            status=201,
            body=session.answer.encode(),
            headers={
                **_CORS,
                "Content-Type": SDP,
                "Location": SESSION_PATH + session.id,
                "Cache-Control": "no-store",
            },
        )

    async def delete(self, request: web.Request) -> web.Response:
        if not self.ingest.end(request.match_info["id"]):
            return _refusal(ApiError(404, "no such WHIP session"))
        return web.Response(status=200, headers=_CORS)

    async def patch(self, request: web.Request) -> web.Response:
        """Trickle ICE and ICE restarts are not supported (RFC 9725 4.3: 405)."""
        return _refusal(ApiError(405, "trickle ICE is not supported; send a complete offer"))


def routes(app: web.Application, site: Site) -> None:
    """WHIP ingest for ``app``: its sessions end when the app shuts down."""
    limits = WhipLimits.from_settings(site.settings)
    ingest = WhipIngest(site.registry, site.keys, limits, push=site.push)
    WhipHttp(ingest).routes(app)
    site.reports["whip"] = ingest.metrics

    async def close(app: web.Application) -> None:
        await ingest.close()

    app.on_shutdown.append(close)
