"""Clips over HTTP: a signed-in viewer cuts the last 10-60 s of a live broadcast (from
its recording, the DVR window) or of a recording they watch; each clip gets a page
(``/clip/{slug}``), a file (``/clips/{slug}.mp4``) and a JSON record:

====================================  ==================================================
``POST /api/v1/channels/{name}/clips``  cut one: ``{"duration", "title", "recording",
                                        "end"}`` (all optional), 201 with the clip
``GET /api/v1/channels/{name}/clips``   the channel's clips, newest first
``GET /api/v1/clips/{slug}``            one clip
``PATCH /api/v1/clips/{slug}``          its creator renames it (``{"title"}``)
``DELETE /api/v1/clips/{slug}``         its creator, the streamer or an administrator
                                        deletes it (the row and the file)
====================================  ==================================================

The cut is :mod:`strom.record.clips` in a thread, a few at a time
(``clip_cuts_at_once``), each account a few an hour (``clips_per_hour``). The site's
clips are kept within ``clips_max_gb`` and ``clips_keep_days`` (oldest first), checked
when the app starts, after each cut and hourly. Who may see a channel's clips is asked
of :func:`may_watch`, the one place for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from strom.channels.access import PRIVATE_CACHE, Verdict
from strom.channels.directory import OFFLINE
from strom.errors import ApiError
from strom.live.channel import ChannelState
from strom.ratelimit import KeyedBuckets
from strom.record import clips as cutting
from strom.record import storage
from strom.record.clips import ClipRefused, ClipSettings, Cut
from strom.settings import valid_channel_name
from strom.store.access import PRIVATE
from strom.store.clips import ClipInfo
from strom.store.views import ChannelInfo
from strom.web.auth import authenticated_user, get_session
from strom.web.errors import json_body
from strom.web.paths import clock_text, is_text, site_url
from strom.web.recordings import or_elsewhere
from strom.web.render import render
from strom.web.site import Site
from strom.web.visibility import viewer_of

log = logging.getLogger(__name__)

#: how often retention runs (seconds)
RETENTION_INTERVAL = 3600.0
#: clips an account may make at once before the hourly rate applies
BURST = 5
#: requests that may wait for each cut in progress; more: 503
QUEUE_PER_CUT = 4
#: clips a channel's list shows
LIST_MAX = 100
_SLUG = "{slug:[A-Za-z0-9_-]{16}}"
_NO_STORE = {"Cache-Control": "no-store"}


async def may_watch(site: Site, request: web.Request, channel: str) -> None:
    """The one place a clip's access is checked: raises 403 when the visitor of
    ``request`` may not watch ``channel`` (a private channel that does not let them in:
    :mod:`strom.channels.access`). An unlisted channel's clips play by link."""
    if await site.access.may_watch(channel, viewer_of(request, channel)) is not Verdict.WATCH:
        raise ApiError(403, "this stream is private", headers=_NO_STORE)


def clip_json(clip: ClipInfo, base: str) -> dict[str, Any]:
    """The clip as the API and pages give it; ``base``: the site's address (the share
    link is a whole URL)."""
    return {
        "slug": clip.slug,
        "channel": clip.channel,
        "broadcast_id": clip.broadcast_id,
        "creator": clip.creator,
        "title": clip.title,
        "recording": clip.recording,
        "start": round(clip.start, 3),
        "duration": round(clip.duration, 3),
        "bytes": clip.bytes,
        "created_at": clip.created_at.timestamp(),
        "views": clip.views,
        "url": f"{base}/clip/{clip.slug}",
        "mp4_url": f"{base}/clips/{clip.slug}.mp4",
    }


class ClipsHttp:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = ClipSettings.from_settings(site.settings)
        self.recordings = site.recorder.root
        #: beside the recordings: data_dir/clips/{channel}/{slug}.mp4
        self.root = site.recorder.root.parent / "clips"
        per_hour = max(self.settings.per_hour, 1)
        self._rate = KeyedBuckets(per_hour / 3600, min(per_hour, BURST))
        self._cuts = asyncio.Semaphore(max(self.settings.cuts_at_once, 1))
        #: requests waiting for a cut to be free (bounded: QUEUE_PER_CUT per cut)
        self._waiting = 0

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v1/channels/{name}/clips", self.create)
        r.add_get("/api/v1/channels/{name}/clips", self.list)
        r.add_get(f"/api/v1/clips/{_SLUG}", self.get)
        r.add_patch(f"/api/v1/clips/{_SLUG}", self.rename)
        r.add_delete(f"/api/v1/clips/{_SLUG}", self.delete)
        r.add_get(f"/clips/{_SLUG}.mp4", or_elsewhere(self.site, self.file))
        r.add_get(f"/clip/{_SLUG}", self.page)
        app.cleanup_ctx.append(self._retention_loop)

    # -- the API ------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)  # guests may not (401)
        channel = await self._channel(request)
        await may_watch(self.site, request, channel.username)
        wait = self._rate.take(username.lower(), time.monotonic())
        if wait:
            log.info("user %s: clip refused, %d per hour at most", username, self.settings.per_hour)
            raise ApiError(
                429,
                f"you make clips too fast: try again in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        body = await json_body(request, {"duration", "title", "recording", "end"})
        seconds = self._duration(body.get("duration"))
        title = body.get("title")
        if title is not None and (not isinstance(title, str) or not is_text(title)):
            raise ApiError(422, "title must be a string")
        end = body.get("end")
        if end is not None and (
            isinstance(end, bool) or not isinstance(end, int | float) or not 0 <= end < 1e7
        ):
            raise ApiError(422, "end must be a number of seconds into the recording")
        info = await self._recording(channel.username, body.get("recording"))
        chosen = cutting.pick(info.segments, seconds, end, self.settings.max_seconds)
        slug = cutting.new_slug()
        size = await self._cut(info, chosen, channel.username, slug)
        try:
            clip = await self.site.store.clips.create(
                slug=slug,
                channel=channel.username,
                creator=username,
                broadcast_id=info.broadcast_id,
                title=title if title is not None else _stream_title(channel, info),
                recording=info.id,
                start=chosen.start,
                duration=chosen.duration,
                size=size,
            )
        except BaseException:
            await asyncio.to_thread(cutting.delete_file, self.root, channel.username, slug)
            raise
        log.info(
            "user %s clipped %s (%s, %.1f s at %.1f s): %s",
            username, channel.username, info.id, chosen.duration, chosen.start, slug,
        )  # fmt: skip
        asyncio.get_running_loop().create_task(self._retention_once())
        return web.json_response(
            clip_json(clip, self._base(request)),
            status=201,
            headers={"Location": f"/clip/{slug}", **_NO_STORE},
        )

    async def list(self, request: web.Request) -> web.Response:
        channel = await self._channel(request)
        await may_watch(self.site, request, channel.username)
        found = await self.site.store.clips.channel_clips(channel.username, LIST_MAX)
        s = self.settings
        return web.json_response(
            {
                "clips": [clip_json(c, self._base(request)) for c in found],
                "min_seconds": s.min_seconds,
                "max_seconds": s.max_seconds,
                "default_seconds": s.default,
            },
            headers={"Cache-Control": "no-cache"},
        )

    async def get(self, request: web.Request) -> web.Response:
        clip = await self.visible_clip(request)
        return web.json_response(
            clip_json(clip, self._base(request)), headers={"Cache-Control": "no-cache"}
        )

    async def rename(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)
        clip = await self.visible_clip(request)
        if clip.creator is None or clip.creator.lower() != username.lower():
            raise ApiError(403, "only the clip's creator can rename it")
        body = await json_body(request, {"title"})
        title = body.get("title")
        if not isinstance(title, str) or not is_text(title):
            raise ApiError(422, "title must be a string")
        clip = await self.site.store.clips.rename(clip.slug, title)
        return web.json_response(clip_json(clip, self._base(request)), headers=_NO_STORE)

    async def delete(self, request: web.Request) -> web.Response:
        username = authenticated_user(request)
        clip = await self.visible_clip(request)
        if not may_delete(request, clip):
            raise ApiError(403, "only the streamer, the clip's creator or an administrator")
        await self._remove(clip)
        log.info("user %s deleted clip %s of %s", username, clip.slug, clip.channel)
        return web.json_response({"deleted": clip.slug}, headers=_NO_STORE)

    async def file(self, request: web.Request) -> web.StreamResponse:
        clip = await self.visible_clip(request)
        path = cutting.clip_path(self.root, clip.channel, clip.slug)
        if not path.is_file():  # on another node (or gone): asked of them next
            raise ApiError(404, "no such clip")
        private = (await self.site.access.access(clip.channel)).visibility == PRIVATE
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "video/mp4",
                # revalidated (ETag) each time: a deleted clip, or a channel made
                # private, is not kept by a browser or a cache; a private channel's
                # clip is kept by no shared cache at all
                "Cache-Control": PRIVATE_CACHE if private else "no-cache",
            },
        )

    # -- the clip's page -----------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        """The clip's own player, its share link, and for its creator, streamer and the
        administrators the title and delete controls; OpenGraph tags for link previews."""
        try:
            clip = await self.visible_clip(request)
        except ApiError:
            raise web.HTTPNotFound() from None
        await self.site.store.clips.viewed(clip.slug)
        clip = dataclasses.replace(clip, views=clip.views + 1)  # this view too
        session = get_session(request)
        return render(
            request,
            "clip.html",
            clip=clip_json(clip, self._base(request)),
            clip_length=clock_text(clip.duration),
            can_delete=may_delete(request, clip),
            can_rename=bool(
                clip.creator and (session.username or "").lower() == clip.creator.lower()
            ),
        )

    async def visible_clip(self, request: web.Request) -> ClipInfo:
        """The clip the request names, if the visitor may watch its channel (else 404)."""
        clip = await self.site.store.clips.get(request.match_info["slug"])
        if clip is None:
            raise ApiError(404, "no such clip")
        await may_watch(self.site, request, clip.channel)
        return clip

    # -- the work -----------------------------------------------------------------------

    def _base(self, request: web.Request) -> str:
        return site_url(request, self.site.settings.public_url)

    async def _channel(self, request: web.Request) -> ChannelInfo:
        name = request.match_info["name"]
        info = await self.site.store.channels.get(name) if valid_channel_name(name) else None
        if info is None:
            raise ApiError(404, f"no channel called {name!r}")
        return info

    def _duration(self, value: object) -> float:
        s = self.settings
        if value is None:
            return s.default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(422, "duration must be a number of seconds")
        if not s.min_seconds <= value <= s.max_seconds:
            raise ApiError(
                422, f"duration must be between {s.min_seconds:g} and {s.max_seconds:g} seconds"
            )
        return float(value)

    async def _recording(self, channel: str, rec_id: object) -> storage.RecordingInfo:
        """The recording to cut: the one named, or the live broadcast's."""
        if rec_id is not None:
            if not isinstance(rec_id, str):
                raise ApiError(422, "recording must be a recording id")
            path = storage.recording_path(self.recordings, channel, rec_id)
            if path is None:
                raise ApiError(404, "no such recording")
        else:
            live = self.site.registry.get(channel)
            if live is None and self.site.directory.state(channel) != OFFLINE:
                raise ClipRefused(
                    "this broadcast is recorded on another node of the site", "elsewhere"
                )
            if live is None or live.state not in (ChannelState.LIVE, ChannelState.RECONNECTING):
                raise ClipRefused(
                    "the channel is not live: clip one of its recordings instead", "offline"
                )
            writing = self.site.recorder.recording_of(channel)
            if writing is None and live.origin is not None:
                raise ClipRefused(
                    "this broadcast is recorded on another node of the site", "elsewhere"
                )
            if writing is None:
                raise ClipRefused(
                    "Clips need the recording on: this broadcast is not recorded",
                    "not_recorded",
                )
            path = writing.path
        info = await asyncio.to_thread(storage.load, path)
        if info is None:
            raise ApiError(404, "no such recording")
        return info

    async def _cut(self, info: storage.RecordingInfo, chosen: Cut, channel: str, slug: str) -> int:
        out = cutting.clip_path(self.root, channel, slug)
        if self._waiting >= self.settings.cuts_at_once * QUEUE_PER_CUT:
            log.warning("clips: %d cuts waiting; one more refused", self._waiting)
            raise ApiError(503, "too many clips are being cut: try again shortly",
                           headers={"Retry-After": "5"})  # fmt: skip
        self._waiting += 1
        try:
            await self._cuts.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(cutting.cut, info.path, chosen, out)
        except Exception:
            log.exception("clip of %s (%s): the cut failed", channel, info.id)
            raise ApiError(500, "could not cut the clip") from None
        finally:
            self._cuts.release()

    async def _remove(self, clip: ClipInfo) -> None:
        await self.site.store.clips.delete(clip.slug)
        await asyncio.to_thread(cutting.delete_file, self.root, clip.channel, clip.slug)

    async def _retention_once(self) -> None:
        """Delete the oldest clips past ``clips_keep_days`` or beyond ``clips_max_gb``."""
        s = self.settings
        if s.keep_days <= 0 and s.max_bytes <= 0:
            return
        try:
            _count, used = await self.site.store.clips.usage()
            cutoff = datetime.now(UTC) - timedelta(days=s.keep_days)
            while True:
                batch = await self.site.store.clips.oldest(LIST_MAX)
                for clip in batch:
                    too_old = s.keep_days > 0 and clip.created_at < cutoff
                    too_big = s.max_bytes > 0 and used > s.max_bytes
                    if not (too_old or too_big):
                        return
                    await self._remove(clip)
                    used -= clip.bytes
                    log.info("clips: retention deleted %s of %s", clip.slug, clip.channel)
                if len(batch) < LIST_MAX:
                    return
        except Exception:
            log.exception("clips: retention failed")

    async def _retention_loop(self, _app: web.Application) -> AsyncIterator[None]:
        async def run() -> None:
            while True:
                await self._retention_once()
                await asyncio.sleep(RETENTION_INTERVAL)

        task = asyncio.get_running_loop().create_task(run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def may_delete(request: web.Request, clip: ClipInfo) -> bool:
    """The streamer, the clip's creator and the site's administrators."""
    session = get_session(request)
    me = (session.username or "").lower()
    if not me:
        return False
    return session.is_admin or me == clip.channel.lower() or me == (clip.creator or "").lower()


def _stream_title(channel: ChannelInfo, info: storage.RecordingInfo) -> str:
    """The broadcast's title when the clip is of the newest broadcast, else the
    channel's; a channel without a title: "Clip of NAME"."""
    last = channel.last_broadcast
    if last is not None and last.id == info.broadcast_id and last.title:
        return last.title
    return channel.title or f"Clip of {channel.username}"
