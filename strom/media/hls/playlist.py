"""Records of published parts and segments, and the LL-HLS media playlist text.

Durations are integers of 10 µs ("ticks"), so a printed segment ``EXTINF`` is exactly the
sum of its printed ``EXT-X-PART`` durations. Section numbers are those of
draft-pantos-hls-rfc8216bis ("rfc8216bis") unless RFC 8216 is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

#: Internal time unit: 10 µs, the precision durations are printed with (5 decimals).
TICKS_PER_SECOND = 100_000

#: EXT-X-MAP in a Media Playlist without EXT-X-I-FRAMES-ONLY needs version 6; no tag used
#: here needs more (section 8, "Protocol Version Compatibility").
PROTOCOL_VERSION = 6

#: 6.2.2: EXT-X-PART tags SHOULD be removed once more than three Target Durations from
#: the end of the Playlist. Common validators also reject parts on more than the last
#: three segments, so both limits apply.
PART_LISTING_TARGET_DURATIONS = 3
PART_LISTING_MAX_SEGMENTS = 3


def segment_uri(msn: int) -> str:
    return f"seg{msn}.m4s"


def part_uri(msn: int, index: int) -> str:
    return f"part{msn}.{index}.m4s"


def seconds(ticks: int) -> str:
    """Decimal seconds with exactly five decimals, from integer ticks (no float rounding)."""
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    return f"{sign}{ticks // TICKS_PER_SECOND}.{ticks % TICKS_PER_SECOND:05d}"


def date_time(unix: float) -> str:
    """4.4.4.6: an ISO/IEC 8601:2004 date/time with time zone, to the millisecond."""
    text = datetime.fromtimestamp(unix, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


class ResourceKind(Enum):
    INIT = "init"
    SEGMENT = "segment"
    PART = "part"


@dataclass(frozen=True)
class HlsName:
    """A parsed resource name from a request path (``seg12.m4s``, ``part12.3.m4s``...)."""

    kind: ResourceKind
    msn: int = -1
    #: None for a whole segment, so ``stream.pending(name.msn, name.part)`` just works.
    part: int | None = None
    version: int = -1


@dataclass(slots=True)
class PartRecord:
    #: a part's bytes; once its segment is complete, a view into the segment's bytes (no
    #: second copy); None once pruned
    data: bytes | memoryview | None
    duration: int
    independent: bool


@dataclass(frozen=True, slots=True)
class TimelineRun:
    """A run of segments on one continuous media clock: from the stream's first segment,
    a discontinuity, a new init segment or a gap in the media times, to the next. An
    LL-HLS playlist marks where one begins (EXT-X-DISCONTINUITY); a DASH MPD gives each
    its own Period, placed on the stream's wall-clock timeline by ``stream_start``."""

    #: the number of its first segment (a DASH Period id)
    first_msn: int
    #: broadcast time of its first segment, in ticks (a DASH presentationTimeOffset)
    media_start: int
    #: where it begins on the stream's timeline, in ticks since the stream's first segment:
    #: it counts the wall-clock time the stream was away (a publisher's reconnect), and is
    #: never before the end of the run before it
    stream_start: int


@dataclass(slots=True)
class SegmentRecord:
    msn: int
    #: Broadcast time of its first chunk, in ticks (restarts after a discontinuity).
    start: int
    #: Position in the life of the stream, in ticks (monotonic across discontinuities).
    offset: int
    independent: bool
    discontinuity: bool
    init_version: int
    program_date_time: float | None
    run: TimelineRun
    parts: list[PartRecord] = field(default_factory=list)
    duration: int = 0
    data: bytes | None = None  # set when complete

    @property
    def complete(self) -> bool:
        return self.data is not None

    @property
    def end(self) -> int:
        return self.offset + self.duration


@dataclass(frozen=True)
class PlaylistHeader:
    target_duration: int  # seconds
    part_target: int  # ticks
    media_sequence: int
    discontinuity_sequence: int
    init_uri_template: tuple[str, str]  # ("init", ".mp4") -> init-{v}.mp4
    #: put before every media URI: the rendition's own directory (``k3f9a21c/``), so
    #: names never repeat across broadcasts and HTTP caches may keep them for good
    uri_prefix: str = ""


def init_uri(template: tuple[str, str], version: int) -> str:
    stem, suffix = template
    return f"{stem}-{version}{suffix}"


def render(
    header: PlaylistHeader, listed: list[SegmentRecord], hint: str | None, ended: bool
) -> str:
    """The media playlist for ``listed`` segments (the last may be open: parts only).

    ``hint`` is the URI of the part being filled (EXT-X-PRELOAD-HINT, 4.4.5.3), omitted
    once the stream has ``ended`` (EXT-X-ENDLIST, 4.4.3.4).
    """
    td = header.target_duration
    prefix = header.uri_prefix
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{PROTOCOL_VERSION}",
        f"#EXT-X-TARGETDURATION:{td}",
        # 4.4.3.8: PART-HOLD-BACK >= 2x (SHOULD 3x) PART-TARGET; HOLD-BACK >= 3x
        # TARGETDURATION.
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"PART-HOLD-BACK={seconds(3 * header.part_target)},"
        f"HOLD-BACK={seconds(3 * td * TICKS_PER_SECOND)}",
        f"#EXT-X-PART-INF:PART-TARGET={seconds(header.part_target)}",
        f"#EXT-X-MEDIA-SEQUENCE:{header.media_sequence}",
    ]
    # 4.4.3.3: only needed once a discontinuity happened; absent means 0.
    if header.discontinuity_sequence or any(s.discontinuity for s in listed):
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{header.discontinuity_sequence}")
    # 4.4.2.1: claims every listed segment starts decodable. A segment split at
    # max_segment inside a GOP does not, so the tag is left out while one is listed.
    if all(s.independent for s in listed):
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")

    playlist_end = listed[-1].end if listed else 0
    part_window = PART_LISTING_TARGET_DURATIONS * td * TICKS_PER_SECOND
    with_parts = {
        s.msn for s in listed[-PART_LISTING_MAX_SEGMENTS:] if playlist_end - s.offset <= part_window
    }
    init_version = -1
    for seg in listed:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if seg.init_version >= 0 and seg.init_version != init_version:
            uri = prefix + init_uri(header.init_uri_template, seg.init_version)
            lines.append(f'#EXT-X-MAP:URI="{uri}"')
            init_version = seg.init_version
        if seg.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{date_time(seg.program_date_time)}")
        if seg.msn in with_parts:
            # 4.4.4.9: parts precede the segment they make up; an open segment has only
            # parts so far, and its EXTINF line is appended when it completes.
            for index, part in enumerate(seg.parts):
                independent = ",INDEPENDENT=YES" if part.independent else ""
                lines.append(
                    f"#EXT-X-PART:DURATION={seconds(part.duration)},"
                    f'URI="{prefix}{part_uri(seg.msn, index)}"{independent}'
                )
        if seg.complete:
            lines.append(f"#EXTINF:{seconds(seg.duration)},")
            lines.append(prefix + segment_uri(seg.msn))
    if ended:
        lines.append("#EXT-X-ENDLIST")
    elif hint is not None:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
    return "\n".join(lines) + "\n"
