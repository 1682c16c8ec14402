"""LL-DASH delivery: ``/live/{channel}/index.mpd`` over the LL-HLS rendition's segments.

There is no second mux and no second store: a channel's :class:`~strom.delivery.hls.
HlsRendition` already holds its CMAF segments (one GOP each, starting at a keyframe) and
init segments under URLs unique to the broadcast. The MPD (rendered by the sans-IO
:mod:`strom.media.dash`) has one Representation per track, and names the single-track
views of those very segments (``{rendition}/t$RepresentationID$-seg$Number$.m4s``,
``{rendition}/t$RepresentationID$-init-0.mp4``, :mod:`strom.delivery.track_views`):
the bytes are taken apart, not muxed again, once for every viewer. The segment being
written is listed too, with the duration the last one had, and a player asking for it
gets it as it grows (:mod:`strom.delivery.chunked`): that, with
``availabilityTimeOffset``, is what makes the latency about one chunk plus the player's
buffer rather than a segment.

A channel with a quality ladder (:mod:`strom.ladder`) has its renditions' video listed
as more Representations of the video AdaptationSet, each with a SegmentTemplate of its
own naming the rendition channel's track views (``../alice~480p/{rendition}/t1-seg$Number$.m4s``):
their keyframes are the source's, on the same media clock, so a player switches between
them at segment boundaries. The audio stays the source's.

The MPD is rendered once per change of the rendition or of one of its ladder's (and per
site address, which the ``UTCTiming`` URL names), and revalidated by players and caches
with its ETag.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aiohttp import web

from strom.delivery.answer import Answer, respond
from strom.delivery.caching import AnswerKind, cache_headers
from strom.delivery.track_views import MEDIA_TEMPLATE, init_template
from strom.errors import ApiError
from strom.media.dash import (
    MIME_TYPE,
    Alternative,
    Content,
    LiveTiming,
    Period,
    Segment,
    iso_time,
    live_mpd,
    track_content,
)
from strom.media.hls.playlist import TICKS_PER_SECOND
from strom.media.ladder import Rung, parse_rungs, rendition_name
from strom.media.model import TrackKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from strom.delivery.hls import HlsDelivery, HlsRendition
    from strom.media.hls import LiveHlsStream
    from strom.media.hls.playlist import SegmentRecord
    from strom.media.model import Track
    from strom.settings import Settings

#: where the server's clock is read (DASH ``UTCTiming``, ``urn:mpeg:dash:utc:http-iso:2014``)
TIME_PATH = "/live/time"
#: MPDs kept per revision, one per address the site is reached at (UTCTiming names it)
_MAX_SITE_ADDRESSES = 4
#: bits per second an audio track is announced at (its share of a segment is not counted)
_AUDIO_RATE = 128_000
#: the MPD's media type (its XML is UTF-8)
_CONTENT_TYPE = MIME_TYPE + "; charset=utf-8"


@dataclass(frozen=True)
class DashSettings:
    #: seconds behind the live edge players aim for (ServiceDescription, DASH-IF LL)
    target_latency: float = 1.0
    #: seconds between a player's MPD reloads: a new segment is known at most this late
    update_period: float = 0.5


class DashDelivery:
    """The LL-DASH manifests of the channels the LL-HLS delivery has renditions of."""

    def __init__(
        self,
        hls: HlsDelivery,
        settings: DashSettings | None = None,
        clock: Callable[[], float] = time.time,
        rungs: Sequence[Rung] = (),
    ) -> None:
        self._hls = hls
        #: the quality ladder's rungs: whose renditions a channel's MPD lists when live
        self.rungs = tuple(rungs)
        self.settings = settings or DashSettings()
        self._clock = clock
        #: by rendition: the revision rendered (its own and its ladder's), its MPD by time URL
        self._rendered: weakref.WeakKeyDictionary[HlsRendition, tuple[str, dict[str, bytes]]]
        self._rendered = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls, hls: HlsDelivery, settings: Settings) -> DashDelivery:
        return cls(hls, rungs=parse_rungs(settings.ladder_renditions))

    async def manifest(
        self, request: web.BaseRequest, channel_name: str, time_url: str
    ) -> web.StreamResponse:
        return respond(await self.manifest_answer(request, channel_name, time_url))

    async def manifest_answer(
        self, request: web.BaseRequest, channel_name: str, time_url: str
    ) -> Answer | web.StreamResponse:
        """The channel's live MPD (a 304 when the player has it)."""
        rendition = self._hls.rendition(channel_name)
        if rendition is None or not rendition.stream.timeline():
            raise ApiError(404, "channel is not live", headers=cache_headers(AnswerKind.OFFLINE))
        etag = f'"{self._revision(rendition, self._ladder(channel_name))}"'
        headers = {**cache_headers(AnswerKind.LIVE_MANIFEST), "ETag": etag}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = _CONTENT_TYPE
        return Answer(self.mpd(rendition, time_url), headers)

    def mpd(self, rendition: HlsRendition, time_url: str) -> bytes:
        """The rendition's MPD now (rendered and encoded once per revision and time URL:
        every viewer gets the same bytes)."""
        ladder = self._ladder(rendition.channel.name)
        revision = self._revision(rendition, ladder)
        done = self._rendered.get(rendition)
        if done is None or done[0] != revision:
            done = (revision, {})
            self._rendered[rendition] = done
        by_url = done[1]
        body = by_url.get(time_url)
        if body is None:
            if len(by_url) >= _MAX_SITE_ADDRESSES:  # Host headers are the client's to choose
                by_url.clear()
            body = by_url[time_url] = self._render(rendition, ladder, time_url).encode()
        return body

    def _ladder(self, name: str) -> list[HlsRendition]:
        """The LL-HLS renditions of ``name``'s ladder live here now, best first."""
        found = (self._hls.rendition(rendition_name(name, rung)) for rung in self.rungs)
        return [r for r in found if r is not None and not r.stream.ended and r.stream.timeline()]

    @staticmethod
    def _revision(rendition: HlsRendition, ladder: Sequence[HlsRendition]) -> str:
        """What changes when the MPD does (its ETag)."""
        return "-".join(f"{r.token}.{r.stream.revision}" for r in (rendition, *ladder))

    def _render(
        self, rendition: HlsRendition, ladder: Sequence[HlsRendition], time_url: str
    ) -> str:
        stream = rendition.stream
        listed = stream.timeline()
        durations = _durations(stream, listed)
        periods = _with_ladder(_periods(stream, listed, durations), ladder)
        first, last = periods[0], periods[-1]
        end = last.end
        start = first.start + first.segments[0].time - first.media_start
        now = self._clock()
        epoch = stream.epoch if stream.epoch is not None else now - end / TICKS_PER_SECOND
        timing = LiveTiming(
            availability_start=epoch,
            publish_time=now,
            minimum_update_period=self.settings.update_period,
            time_shift_buffer=(end - start) / TICKS_PER_SECOND,
            target_latency=self.settings.target_latency,
            availability_time_offset=(durations[-1] - stream.chunk_duration) / TICKS_PER_SECOND,
            time_url=time_url,
            ended_duration=end / TICKS_PER_SECOND if stream.ended else None,
        )
        version = listed[-1].init_version
        tracks = rendition.tracks.get(version) or tuple(rendition.channel.tracks.values())
        return live_mpd(timing, _contents(tracks, listed, durations), periods, TICKS_PER_SECOND)


def _durations(stream: LiveHlsStream, listed: Sequence[SegmentRecord]) -> list[int]:
    """Each listed segment's duration; for the one being written, the duration it is
    expected to have, erring long: the longest of what it holds, what the one before it
    had and the target duration, and a part more. (dash.js fetches a segment a second
    time when its media runs past the end the MPD gave it; the next MPD corrects it.)"""
    durations = [seg.duration for seg in listed]
    last = listed[-1]
    if not last.complete:
        before = listed[-2].duration if len(listed) > 1 and listed[-2].run is last.run else 0
        longest = max(last.duration, before, stream.target_duration * TICKS_PER_SECOND)
        durations[-1] = round(longest + stream.settings.part_target * TICKS_PER_SECOND)
    return durations


def _periods(
    stream: LiveHlsStream, listed: Sequence[SegmentRecord], durations: Sequence[int]
) -> list[Period]:
    """One Period per run of segments on one media clock (see ``TimelineRun``)."""
    runs: list[tuple[SegmentRecord, list[Segment]]] = []
    for seg, duration in zip(listed, durations, strict=True):
        if not runs or runs[-1][0].run is not seg.run:
            runs.append((seg, []))
        runs[-1][1].append(Segment(seg.msn, seg.start, duration))
    return [
        Period(
            id=str(first.run.first_msn),
            start=first.run.stream_start,
            media_start=first.run.media_start,
            initialization=init_template(stream.init_uri_for(first.init_version)),
            media=stream.uri_prefix + MEDIA_TEMPLATE,
            segments=segments,
            independent=all(s.independent for s in listed if s.run is first.run),
        )
        for first, segments in runs
    ]


def _with_ladder(periods: list[Period], ladder: Sequence[HlsRendition]) -> list[Period]:
    """``periods`` with each rendition of the ladder as an :class:`Alternative` of the
    video, in the Periods its segments fall in (the media clock is the source's: a
    rendition's frames keep the source's times)."""
    if not ladder:
        return periods
    alternatives: list[list[Alternative]] = [[] for _ in periods]
    for rendition in ladder:
        stream = rendition.stream
        listed = stream.timeline()
        durations = _durations(stream, listed)
        version = listed[-1].init_version
        tracks = rendition.tracks.get(version) or tuple(rendition.channel.tracks.values())
        video = next((t for t in tracks if t.kind is TrackKind.VIDEO), None)
        if video is None:
            continue
        bandwidth = max(_rates(listed, durations), default=0) - _AUDIO_RATE
        content = replace(track_content(video, max(bandwidth, 1)), id=rendition.channel.name)
        for index, period in enumerate(periods):
            segments = _within(period, listed, durations, version)
            if segments:
                alternatives[index].append(
                    Alternative(
                        content=content,
                        initialization=_track_uri(
                            rendition, init_template(stream.init_uri_for(version)), video.id
                        ),
                        media=_track_uri(rendition, stream.uri_prefix + MEDIA_TEMPLATE, video.id),
                        segments=segments,
                        independent=all(s.independent for s in listed),
                    )
                )
    return [replace(p, alternatives=a) for p, a in zip(periods, alternatives, strict=True)]


def _within(
    period: Period, listed: Sequence[SegmentRecord], durations: Sequence[int], version: int
) -> list[Segment]:
    """The rendition's segments that fall in ``period``'s media times: numbers
    consecutive, on one run and init version of the rendition, the latest such."""
    if not period.segments:
        return []
    first = period.segments[0]
    last = period.segments[-1]
    # A keyframe's decode time may differ a little between source and rendition (the
    # source's B-frames): half a segment either side is the same segment.
    slack = first.duration // 2
    low, high = first.time - slack, last.time + last.duration - slack
    found: list[Segment] = []
    for seg, duration in zip(listed, durations, strict=True):
        if not low <= seg.start < high or seg.init_version != version:
            continue
        if found and (seg.msn != found[-1].number + 1 or seg.discontinuity):
            found = []
        found.append(Segment(seg.msn, seg.start, duration))
    return found


def _track_uri(rendition: HlsRendition, template: str, track_id: int) -> str:
    """A template of ``rendition``'s track views for an MPD of another channel: from its
    directory (``../alice~480p/``), the track named."""
    return f"../{rendition.channel.name}/" + template.replace("$RepresentationID$", str(track_id))


def _rates(listed: Sequence[SegmentRecord], durations: Sequence[int]) -> list[int]:
    """Bits per second of each complete segment."""
    return [
        len(seg.data) * 8 * TICKS_PER_SECOND // d
        for seg, d in zip(listed, durations, strict=True)
        if seg.data is not None and d > 0
    ]


def _contents(
    tracks: Sequence[Track], listed: Sequence[SegmentRecord], durations: Sequence[int]
) -> list[Content]:
    """A Representation per track, video first. Their bandwidths: the highest rate of a
    complete segment (a player's buffer needs no more), the audio's counted at its
    usual rate and the rest given to the video."""
    ordered = sorted(tracks, key=lambda t: (t.kind is not TrackKind.VIDEO, t.id))
    total = max(_rates(listed, durations), default=0)
    audio = sum(_AUDIO_RATE for t in ordered if t.kind is TrackKind.AUDIO)
    return [
        track_content(t, _AUDIO_RATE if t.kind is TrackKind.AUDIO else max(total - audio, 1))
        for t in ordered
    ]


async def server_time(request: web.Request) -> web.Response:
    """``UTCTiming`` (``urn:mpeg:dash:utc:http-iso:2014``): the server's clock as an ISO
    8601 date and time, so a player places the live edge by the server, not its own clock."""
    return web.Response(
        text=iso_time(time.time()),
        content_type="text/plain",
        headers=cache_headers(AnswerKind.CLOCK),
    )
