"""MPEG-DASH manifests (ISO/IEC 23009-1, "the MPD") for Strom's CMAF segments, sans-IO.

Live: a dynamic MPD in the shape the DASH-IF guidelines give for low latency (IOP v5 part
"Low-latency Modes for DASH", "LL-DASH"): ``SegmentTemplate`` with ``$Number$`` and a
``SegmentTimeline`` (segments are GOPs, so their durations vary and a timeline states them
exactly), ``availabilityTimeOffset`` and ``availabilityTimeComplete="false"`` so a player
asks for the segment being written as soon as its first chunk exists and receives the
rest as it is muxed (chunked transfer), a ``ServiceDescription`` with the latency target,
and ``UTCTiming`` so the player's clock agrees with the server's. Recordings: a static MPD
over the same kind of segments.

Strom's segments carry video and audio in the same fragments (one ``moof`` with a
``traf`` per track, one init segment with both tracks). The MPD has one AdaptationSet
per track, each with one Representation whose id is the track's: the segment templates
name the single-track views of those segments (:mod:`strom.media.dash.tracks`) with
``$RepresentationID$`` (a multiplexed Representation is allowed by 23009-1, but DASH-IF
IOP asks for one media component per Representation, and ffmpeg's DASH demuxer cannot
take two). A place where the media clock breaks (a publisher back with new timestamps,
a new init segment) starts a new Period, with its own ``presentationTimeOffset``.

Times are integers of a timescale given by the caller (the LL-HLS store counts in
10 µs ticks); nothing here reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from strom.media.model import Track, TrackKind

NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
#: 23009-1 5.3.1.2 @profiles: ISOBMFF live (segments begin with a random access point);
#: the DASH-IF low-latency profile marks an MPD with chunked, early-available segments.
LIVE_PROFILES = (
    "urn:mpeg:dash:profile:isoff-live:2011,http://www.dashif.org/guidelines/low-latency-live-v5"
)
STATIC_PROFILES = "urn:mpeg:dash:profile:isoff-live:2011"
#: 23009-1 5.8.5.7: the client reads the server's time as an ISO 8601 string over HTTP.
UTC_HTTP_ISO = "urn:mpeg:dash:utc:http-iso:2014"
MIME_TYPE = "application/dash+xml"


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``S`` of a SegmentTimeline: segment ``number`` starts at media time ``time``."""

    number: int
    time: int
    duration: int


@dataclass(frozen=True, slots=True)
class Period:
    """Segments on one continuous media clock, and the files that hold them."""

    id: str
    #: where it starts on the presentation timeline (timescale units; 0 is the MPD's
    #: availabilityStartTime when live, the start of the recording when static)
    start: int
    #: the media time at ``start`` (23009-1 5.3.9.2 @presentationTimeOffset)
    media_start: int
    #: the init segment's URL template and the media segments', with
    #: ``$RepresentationID$`` (the track) and ``$Number$``
    initialization: str
    media: str
    #: in order, numbers consecutive (a gap in the numbers needs a new Period)
    segments: Sequence[Segment]
    #: every segment starts with a keyframe (not so for one split inside a long GOP)
    independent: bool = True
    #: more Representations of the video (a quality ladder's renditions), each on files
    #: and numbers of its own
    alternatives: Sequence[Alternative] = ()

    @property
    def end(self) -> int:
        """Where its last segment ends on the presentation timeline."""
        if not self.segments:
            return self.start
        last = self.segments[-1]
        return self.start + last.time + last.duration - self.media_start


@dataclass(frozen=True, slots=True)
class Content:
    """One Representation: one track, and what it holds (RFC 6381 codecs string)."""

    #: the Representation's id, which ``$RepresentationID$`` puts in segment URLs
    id: str
    codecs: str
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    #: bits per second; a guess is fine (one Representation per set leaves no choice)
    bandwidth: int = 0

    @property
    def has_video(self) -> bool:
        return bool(self.width)


def track_content(track: Track, bandwidth: int) -> Content:
    """The Representation of ``track`` (its id is the track's id)."""
    video = track.kind is TrackKind.VIDEO
    return Content(
        id=str(track.id),
        codecs=track.codec_string,
        width=track.width if video else 0,
        height=track.height if video else 0,
        sample_rate=track.sample_rate if not video else 0,
        bandwidth=bandwidth,
    )


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another Representation of a Period's video (a quality ladder's rendition), in the
    same AdaptationSet, with a SegmentTemplate of its own (DASH-IF IOP v4.3 3.2.9 lets a
    Representation number its segments its own way): its own files, its own numbers, and
    its times on the same media clock as the Period's (its keyframes are the source's)."""

    content: Content
    initialization: str
    media: str
    segments: Sequence[Segment]
    #: every segment starts with a keyframe
    independent: bool = True


@dataclass(frozen=True, slots=True)
class LiveTiming:
    """What makes a dynamic MPD live: the wall clock, the update rhythm, the latency."""

    #: UNIX time of presentation time 0 (5.3.1.2 @availabilityStartTime)
    availability_start: float
    #: UNIX time this MPD was made (@publishTime)
    publish_time: float
    #: how often a player fetches the MPD again (seconds)
    minimum_update_period: float
    #: how far back a player may go (seconds; @timeShiftBufferDepth)
    time_shift_buffer: float
    #: seconds behind the live edge a player aims for (ServiceDescription Latency target)
    target_latency: float
    #: seconds a segment is available before it is complete: its duration less one
    #: chunk's (5.3.9.5.3 @availabilityTimeOffset), with @availabilityTimeComplete false
    availability_time_offset: float
    #: absolute URL answering the server's time as ISO 8601
    time_url: str
    #: once the broadcast is over: no more updates, and its duration (seconds)
    ended_duration: float | None = None


def iso_duration(seconds: float) -> str:
    """An xs:duration in seconds, to the millisecond: ``PT2.5S``."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def iso_time(unix: float) -> str:
    """An xs:dateTime in UTC, to the millisecond: ``2026-12-07T11:30:00.123Z``."""
    text = datetime.fromtimestamp(unix, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def live_mpd(
    timing: LiveTiming, contents: Sequence[Content], periods: Sequence[Period], timescale: int
) -> str:
    """A dynamic MPD of ``periods`` (the last one's last segment may be the one being
    written, listed with the duration it is expected to have)."""
    mpd = _mpd("dynamic", LIVE_PROFILES)
    mpd.set("availabilityStartTime", iso_time(timing.availability_start))
    mpd.set("publishTime", iso_time(timing.publish_time))
    if timing.ended_duration is None:
        mpd.set("minimumUpdatePeriod", iso_duration(timing.minimum_update_period))
    else:
        # 23009-1 5.4.1: an MPD without @minimumUpdatePeriod is not updated again; its
        # @mediaPresentationDuration says where the presentation ends.
        mpd.set("mediaPresentationDuration", iso_duration(timing.ended_duration))
    mpd.set("timeShiftBufferDepth", iso_duration(timing.time_shift_buffer))
    mpd.set("suggestedPresentationDelay", iso_duration(timing.target_latency))
    mpd.set("minBufferTime", iso_duration(min(timing.target_latency, 1.0)))
    # DASH-IF IOP v5 low-latency 9.X.4.2: the service's latency target and the playback
    # rates a player may use to hold it.
    service = ET.SubElement(mpd, "ServiceDescription", id="0")
    target = round(timing.target_latency * 1000)
    ET.SubElement(
        service,
        "Latency",
        referenceId="0",
        target=str(target),
        min=str(target // 2),
        max=str(target * 3),
    )
    ET.SubElement(service, "PlaybackRate", min="0.96", max="1.04")
    for period in periods:
        _period(
            mpd,
            period,
            contents,
            timescale,
            ato=timing.availability_time_offset,
            reference=timing.availability_start,
        )
    ET.SubElement(mpd, "UTCTiming", schemeIdUri=UTC_HTTP_ISO, value=timing.time_url)
    return _text(mpd)


def static_mpd(contents: Sequence[Content], periods: Sequence[Period], timescale: int) -> str:
    """A static MPD (a recording): every segment is there, the presentation ends."""
    mpd = _mpd("static", STATIC_PROFILES)
    end = max((p.end for p in periods), default=0)
    mpd.set("mediaPresentationDuration", iso_duration(end / timescale))
    longest = max((s.duration for p in periods for s in p.segments), default=timescale)
    mpd.set("minBufferTime", iso_duration(max(longest / timescale, 1.0)))
    for period in periods:
        _period(mpd, period, contents, timescale)
    return _text(mpd)


def _mpd(kind: str, profiles: str) -> ET.Element:
    return ET.Element("MPD", xmlns=NAMESPACE, type=kind, profiles=profiles)


def _period(
    mpd: ET.Element,
    period: Period,
    contents: Sequence[Content],
    timescale: int,
    *,
    ato: float | None = None,
    reference: float | None = None,
) -> None:
    element = ET.SubElement(
        mpd, "Period", id=period.id, start=iso_duration(period.start / timescale)
    )
    for index, content in enumerate(contents):
        _adaptation_set(
            element, str(index), period, content, timescale, ato=ato, reference=reference
        )


def _adaptation_set(
    period_element: ET.Element,
    set_id: str,
    period: Period,
    content: Content,
    timescale: int,
    *,
    ato: float | None,
    reference: float | None,
) -> None:
    kind = "video" if content.has_video else "audio"
    alternatives = period.alternatives if content.has_video else ()
    adaptation = ET.SubElement(
        period_element,
        "AdaptationSet",
        id=set_id,
        contentType=kind,
        mimeType=f"{kind}/mp4",
        # 23009-1 5.3.3.2: the n-th segments of its Representations do not overlap (a
        # rendition lists its segments from where it started, not from the source's first)
        segmentAlignment="false" if alternatives else "true",
    )
    if period.independent and all(a.independent for a in alternatives):
        adaptation.set("startWithSAP", "1")  # 23009-1 5.3.3.2: each segment opens with a SAP
    shared = (period.initialization, period.media, period.segments)
    for each, (initialization, media, segments) in [(content, shared)] + [
        (a.content, (a.initialization, a.media, a.segments)) for a in alternatives
    ]:
        representation = _representation(adaptation, each, period, timescale, reference)
        template = ET.SubElement(
            representation,
            "SegmentTemplate",
            timescale=str(timescale),
            presentationTimeOffset=str(period.media_start),
            initialization=initialization,
            media=media,
            startNumber=str(segments[0].number if segments else 0),
        )
        if ato is not None:
            template.set("availabilityTimeOffset", f"{max(ato, 0.0):.3f}")
            template.set("availabilityTimeComplete", "false")
        _timeline(ET.SubElement(template, "SegmentTimeline"), segments)


def _representation(
    adaptation: ET.Element,
    content: Content,
    period: Period,
    timescale: int,
    reference: float | None,
) -> ET.Element:
    representation = ET.SubElement(
        adaptation,
        "Representation",
        id=content.id,
        codecs=content.codecs,
        bandwidth=str(max(content.bandwidth, 1)),
    )
    if content.has_video:
        representation.set("width", str(content.width))
        representation.set("height", str(content.height))
    if content.sample_rate:
        representation.set("audioSamplingRate", str(content.sample_rate))
    if reference is not None:
        # IOP v5 low-latency: the wall-clock time of a media time, which the
        # ServiceDescription's latency is measured against.
        ET.SubElement(
            representation,
            "ProducerReferenceTime",
            id="0",
            type="encoder",
            presentationTime=str(period.media_start),
            wallClockTime=iso_time(reference + period.start / timescale),
        )
    return representation


def _timeline(timeline: ET.Element, segments: Sequence[Segment]) -> None:
    """``S`` elements: @t where the time does not follow on, @r for equal durations
    (23009-1 5.3.9.6)."""
    expected: int | None = None
    last: ET.Element | None = None
    repeat = 0
    for seg in segments:
        if last is not None and seg.time == expected and str(seg.duration) == last.get("d"):
            repeat += 1
            last.set("r", str(repeat))
        else:
            at = {"t": str(seg.time)} if seg.time != expected else {}
            last = ET.SubElement(timeline, "S", at, d=str(seg.duration))
            repeat = 0
        expected = seg.time + seg.duration


def _text(mpd: ET.Element) -> str:
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
