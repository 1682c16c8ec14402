"""Recordings over HTTP: the VOD playlist (HLS) and manifest (DASH) and their files, the
MP4 download, the JSON list and deletion by the streamer. File work runs in threads;
files go out with :class:`aiohttp.web.FileResponse` (sendfile, ranges)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers
from strom.delivery.dvr_audience import DvrAudience
from strom.errors import ApiError, CodecError, ProtocolError
from strom.media.dash import MIME_TYPE
from strom.record import storage
from strom.record.remux import remux
from strom.record.thumbnails import recording_thumbnail
from strom.record.vod_dash import track_file, vod_mpd
from strom.settings import valid_channel_name
from strom.web.auth import authenticated_user
from strom.web.site import Site
from strom.web.visibility import api_token, media_guarded, with_token

log = logging.getLogger(__name__)

_ID = r"{id:[0-9]{8}-[0-9]{6}(?:-[0-9]{1,3})?}"
_NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RecordingsHttp:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.recorder = site.recorder
        self.root = site.recorder.root
        self._remuxing: dict[Path, asyncio.Task[None]] = {}
        self._picturing: dict[Path, asyncio.Task[None]] = {}
        #: who watches a live channel rewound (its recording's playlist, ?viewer=)
        self.dvr_audience = DvrAudience(site.registry)

    def _path(self, request: web.Request) -> Path:
        channel = request.match_info["channel"]
        if not valid_channel_name(channel):
            raise _not_found()
        path = storage.recording_path(self.root, channel, request.match_info["id"])
        if path is None:
            raise _not_found()
        return path

    async def _load(self, path: Path) -> storage.RecordingInfo:
        info = await asyncio.to_thread(storage.load, path)
        if info is None:
            raise _not_found()
        return info

    async def playlist(self, request: web.Request) -> web.StreamResponse:
        info = await self._load(self._path(request))
        kind = AnswerKind.VOD_PLAYLIST if info.finished else AnswerKind.RECORDING_PLAYLIST
        viewer = request.query.get("viewer")
        if viewer is not None and not info.finished:
            self.dvr_audience.seen(info.channel, viewer)
        return web.Response(
            text=storage.vod_playlist(info, self.site.settings.dvr_window),
            content_type="application/vnd.apple.mpegurl",
            headers=cache_headers(kind),
        )

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        """The recording as a static MPEG-DASH presentation (over the same files)."""
        info = await self._load(self._path(request))
        kind = AnswerKind.VOD_PLAYLIST if info.finished else AnswerKind.RECORDING_PLAYLIST
        return web.Response(
            text=await asyncio.to_thread(vod_mpd, info),
            content_type=MIME_TYPE,
            headers=cache_headers(kind),
        )

    async def init(self, request: web.Request) -> web.StreamResponse:
        path = self._path(request) / storage.init_name(int(request.match_info["n"]))
        return _file(path, "video/mp4", cache_headers(AnswerKind.VOD_MEDIA))

    async def segment(self, request: web.Request) -> web.StreamResponse:
        path = await self._listed_segment(request)
        return _file(path, "video/iso.segment", cache_headers(AnswerKind.VOD_MEDIA))

    async def _listed_segment(self, request: web.Request) -> Path:
        """The segment file the request names. While the recording goes on, the segment
        being written is a file that still grows: only the segments the index lists
        (closed ones) go out, since every answer is cached for good."""
        recording = self._path(request)
        seq = int(request.match_info["seq"])
        if self.recorder.is_active(recording):
            info = await self._load(recording)
            if not any(s.seq == seq for s in info.segments):
                raise _not_found()
        return recording / storage.segment_name(seq)

    async def track_init(self, request: web.Request) -> web.StreamResponse:
        """One track of an init segment (the DASH manifest's Representations)."""
        name = storage.init_name(int(request.match_info["n"]))
        return await self._track_file(self._path(request) / name, request)

    async def track_segment(self, request: web.Request) -> web.StreamResponse:
        """One track of a segment the index lists (see :meth:`_listed_segment`)."""
        return await self._track_file(await self._listed_segment(request), request)

    async def _track_file(self, path: Path, request: web.Request) -> web.StreamResponse:
        try:
            body = await asyncio.to_thread(track_file, path, int(request.match_info["track"]))
        except (OSError, ProtocolError):
            raise _not_found() from None
        headers = {"Content-Type": "video/mp4", **cache_headers(AnswerKind.VOD_MEDIA)}
        return web.Response(body=body, headers=headers)

    async def download(self, request: web.Request) -> web.StreamResponse:
        path = self._path(request)
        info = await self._load(path)
        if not info.finished:
            raise ApiError(409, "the broadcast is still being recorded")
        if not info.segments:
            raise ApiError(404, "the recording is empty")
        out = path / storage.DOWNLOAD
        if not out.is_file():
            task = self._remuxing.get(path)
            if task is None:  # one remux per recording, however many ask at once
                task = asyncio.get_running_loop().create_task(
                    asyncio.to_thread(remux, path, info.segments, out)
                )
                self._remuxing[path] = task
                task.add_done_callback(lambda _t: self._remuxing.pop(path, None))
            try:
                await asyncio.shield(task)
            except Exception:
                log.exception("recording %s: could not make the MP4", path)
                raise ApiError(500, "could not make the MP4") from None
        filename = f"{info.channel}-{info.id}.mp4"
        return _file(
            out,
            "video/mp4",
            {
                "Content-Disposition": f'attachment; filename="{filename}"',
                **cache_headers(AnswerKind.VOD_DOWNLOAD),
            },
        )

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        """The finished recording's picture, made once (in a thread) and kept beside it."""
        path = self._path(request)
        out = path / storage.THUMBNAIL
        if not out.is_file():
            info = await self._load(path)
            if not info.finished or not info.segments:
                raise _not_found()
            task = self._picturing.get(path)
            if task is None:
                task = asyncio.get_running_loop().create_task(
                    asyncio.to_thread(_write_thumbnail, path, info.segments, out)
                )
                self._picturing[path] = task
                task.add_done_callback(lambda _t: self._picturing.pop(path, None))
            try:
                await asyncio.shield(task)
            except (CodecError, OSError) as exc:
                log.warning("recording %s: no thumbnail: %s", path, exc)
                raise _not_found() from exc
        return _file(out, "image/jpeg", cache_headers(AnswerKind.VOD_THUMBNAIL))

    async def list(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        if not valid_channel_name(name) or await self.site.directory.channel_view(name) is None:
            raise ApiError(404, f"no channel called {name!r}")
        token = await api_token(self.site.access, request, name)
        found = with_token(await site_recordings(self.site, name, request), token)
        cache = "private, no-store" if token else "no-cache"
        return web.json_response({"recordings": found}, headers={"Cache-Control": cache})

    async def delete(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)  # first: 401 for strangers
        path = storage.recording_path(self.root, username, request.match_info["id"])
        if path is None:  # not yours, or no such recording: the same answer
            raise ApiError(404, "no such recording")
        recorder = self.recorder
        if recorder.is_active(path):
            raise ApiError(409, "the broadcast is still being recorded")
        await asyncio.to_thread(storage.delete, path)
        log.info("user %s deleted recording %s", username, path.name)
        return web.json_response({"deleted": path.name}, headers=_NO_STORE)


def _write_thumbnail(path: Path, segments: tuple[storage.Segment, ...], out: Path) -> None:
    picture = recording_thumbnail(path, segments)
    part = out.with_name(out.name + ".part")
    part.write_bytes(picture.jpeg)
    os.replace(part, out)


async def site_recordings(site: Site, name: str, request: web.Request) -> list[dict[str, Any]]:
    """``name``'s recordings as the API lists them, newest first: this node's and every
    other node's of the site (each recording is on the node that ingested it)."""
    here = await asyncio.to_thread(storage.list_recordings, site.recorder.root, name)
    found = {r.id: r.json() for r in here}
    for item in await site.elsewhere.gather(request, "recordings"):
        if isinstance(item.get("id"), str) and isinstance(item.get("started"), int | float):
            found.setdefault(item["id"], item)
    return sorted(found.values(), key=lambda r: float(r["started"]), reverse=True)


def or_elsewhere(site: Site, handler: Handler) -> Handler:
    """``handler``, but a file this node does not have (404) is asked of the site's
    other nodes (:mod:`strom.cluster.elsewhere`) before the 404 goes out."""

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.http_status != 404:
                raise
            found = await site.elsewhere.forward(request)
            if found is None:
                raise
            return found

    return answer


def _not_found() -> ApiError:
    return ApiError(404, "no such recording")


def _file(path: Path, content_type: str, headers: dict[str, str] | None = None) -> web.FileResponse:
    if not path.is_file():
        raise _not_found()
    return web.FileResponse(path, headers={"Content-Type": content_type, **(headers or {})})


def routes(app: web.Application, site: Site) -> None:
    h = RecordingsHttp(site)
    r = app.router

    def here_or_elsewhere(handler: Handler) -> Handler:  # a private channel's: its token
        return media_guarded(site.access, or_elsewhere(site, handler))

    r.add_get(f"/vod/{{channel}}/{_ID}/index.m3u8", here_or_elsewhere(h.playlist))
    r.add_get(f"/vod/{{channel}}/{_ID}/index.mpd", here_or_elsewhere(h.manifest))
    r.add_get(f"/vod/{{channel}}/{_ID}/init-{{n:[0-9]{{1,6}}}}.mp4", here_or_elsewhere(h.init))
    r.add_get(
        f"/vod/{{channel}}/{_ID}/segments/{{seq:[0-9]{{1,9}}}}.m4s", here_or_elsewhere(h.segment)
    )
    track = "t{track:[0-9]{1,3}}-"
    r.add_get(
        f"/vod/{{channel}}/{_ID}/{track}init-{{n:[0-9]{{1,6}}}}.mp4",
        here_or_elsewhere(h.track_init),
    )
    r.add_get(
        f"/vod/{{channel}}/{_ID}/segments/{track}{{seq:[0-9]{{1,9}}}}.m4s",
        here_or_elsewhere(h.track_segment),
    )
    r.add_get(f"/vod/{{channel}}/{_ID}.mp4", here_or_elsewhere(h.download))
    r.add_get(f"/vod/{{channel}}/{_ID}/thumbnail.jpg", here_or_elsewhere(h.thumbnail))
    r.add_get("/api/v1/channels/{username}/recordings", h.list)
    r.add_delete("/api/v1/me/recordings/{id}", or_elsewhere(site, h.delete))
