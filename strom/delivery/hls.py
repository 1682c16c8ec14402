"""LL-HLS delivery over HTTP: ``/live/{channel}/index.m3u8`` and its media.

Blocking playlist reloads (``_HLS_msn``/``_HLS_part``) and blocking preload-hinted part
requests wait, without polling, until the channel completes the part asked for
(draft-pantos-hls-rfc8216bis section 6.2.5.2). Requests for media too far ahead are
refused with 400, a wait longer than three target durations ends with 503 (section 6.2.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from strom.media.hls import LiveHlsStream, ResourceKind

if TYPE_CHECKING:
    from strom.live.channel import Channel
    from strom.live.registry import Registry

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
#: how long a blocking request may wait, in target durations (spec: 3)
_BLOCK_TARGET_DURATIONS = 3.0


def json_error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise web.HTTPBadRequest(
            text=f'{{"error": "{name} must be a non-negative integer"}}',
            content_type="application/json",
        )
    return int(raw)


class HlsDelivery:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def _stream(self, channel_name: str) -> tuple[Channel, LiveHlsStream] | None:
        channel = self._registry.get(channel_name)
        if channel is None or channel.hls is None:
            return None
        return channel, channel.hls

    async def playlist(self, request: web.Request, channel_name: str) -> web.StreamResponse:
        found = self._stream(channel_name)
        if found is None:
            return json_error(404, "channel is not live")
        channel, hls = found
        msn = _query_int(request, "_HLS_msn")
        part = _query_int(request, "_HLS_part")
        if part is not None and msn is None:
            return json_error(400, "_HLS_part requires _HLS_msn")
        if msn is not None:
            if hls.too_far_ahead(msn, part):
                return json_error(400, "_HLS_msn is too far ahead of the live edge")
            ready = await channel.wait_hls(
                lambda: hls.ended or hls.has(msn, part), self._block_timeout(hls)
            )
            if not ready:
                return json_error(503, "the requested part did not become available in time")
        return web.Response(
            text=hls.playlist(),
            content_type=PLAYLIST_TYPE,
            headers={"Cache-Control": "no-cache"},
        )

    async def media(self, request: web.Request, channel_name: str, name: str) -> web.StreamResponse:
        found = self._stream(channel_name)
        if found is None:
            return json_error(404, "channel is not live")
        channel, hls = found
        resource = hls.parse_name(name)
        if resource is None:
            return json_error(404, "no such file")
        if resource.kind is not ResourceKind.INIT and hls.pending(resource.msn, resource.part):
            # A preload-hinted part (or the next segment) requested before it exists:
            # block until it is complete, unless it is absurdly far ahead.
            if hls.too_far_ahead(resource.msn, resource.part):
                return json_error(404, "not available yet")
            await channel.wait_hls(
                lambda: not hls.pending(resource.msn, resource.part), self._block_timeout(hls)
            )
        data = hls.get(resource)
        if data is None:
            return json_error(404, "no longer or not yet available")
        return web.Response(
            body=data,
            content_type="video/mp4",
            # Names repeat across broadcasts (sequence numbers restart): cache briefly.
            headers={"Cache-Control": "public, max-age=10"},
        )

    @staticmethod
    def _block_timeout(hls: LiveHlsStream) -> float:
        # Until the first segment completes the target duration is a guess of 1 s.
        return _BLOCK_TARGET_DURATIONS * max(hls.target_duration, 2)
