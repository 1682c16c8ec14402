"""HLS media playlists as a client reads them (RFC 8216 and draft-pantos-hls-rfc8216bis:
EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-SERVER-CONTROL), and the one question an LL-HLS
client asks of them: which part to block on next."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(text: str) -> dict[str, str]:
    """An attribute list (4.2), quotes stripped."""
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


@dataclass(frozen=True, slots=True)
class Part:
    msn: int
    index: int
    uri: str
    duration: float
    independent: bool


@dataclass(slots=True)
class Segment:
    msn: int
    #: None while the segment is still open (only its parts are listed yet)
    uri: str | None
    duration: float
    parts: list[Part] = field(default_factory=list)


@dataclass(slots=True)
class MediaPlaylist:
    target_duration: float = 0.0
    part_target: float | None = None
    media_sequence: int = 0
    can_block_reload: bool = False
    init_uri: str | None = None
    segments: list[Segment] = field(default_factory=list)
    preload_hint: str | None = None
    ended: bool = False

    @property
    def parts(self) -> list[Part]:
        return [p for s in self.segments for p in s.parts]

    @property
    def complete_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.uri is not None]

    def last_part(self) -> Part | None:
        for seg in reversed(self.segments):
            if seg.parts:
                return seg.parts[-1]
        return None

    def next_block(self) -> tuple[int, int | None]:
        """``(_HLS_msn, _HLS_part)`` of the first thing not in this playlist: the part
        after the last listed part, or, without parts, the next segment (6.2.5.2)."""
        last = self.last_part()
        if last is None or self.part_target is None:
            last_seg = self.segments[-1].msn if self.segments else self.media_sequence - 1
            return last_seg + 1, None
        open_seg = self.segments[-1]
        if open_seg.uri is not None:  # the last segment is complete: its parts are done
            return open_seg.msn + 1, 0
        return last.msn, last.index + 1

    def live_start_part(self) -> Part | None:
        """Where a client joining now starts: the newest independent part (it can start
        decoding there), as players do when they hold back little."""
        for part in reversed(self.parts):
            if part.independent:
                return part
        return None


def parse_media_playlist(text: str) -> MediaPlaylist:
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist")
    pl = MediaPlaylist()
    pending_parts: list[tuple[str, float, bool]] = []
    duration: float | None = None
    msn: int | None = None
    for line in lines[1:]:
        if not line:
            continue
        if line.startswith("#EXT-X-TARGETDURATION:"):
            pl.target_duration = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            pl.media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART-INF:"):
            pl.part_target = float(attributes(line.split(":", 1)[1])["PART-TARGET"])
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            attrs = attributes(line.split(":", 1)[1])
            pl.can_block_reload = attrs.get("CAN-BLOCK-RELOAD") == "YES"
        elif line.startswith("#EXT-X-MAP:"):
            pl.init_uri = attributes(line.split(":", 1)[1]).get("URI")
        elif line.startswith("#EXT-X-PART:"):
            attrs = attributes(line.split(":", 1)[1])
            pending_parts.append(
                (attrs["URI"], float(attrs["DURATION"]), attrs.get("INDEPENDENT") == "YES")
            )
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            attrs = attributes(line.split(":", 1)[1])
            if attrs.get("TYPE") == "PART":
                pl.preload_hint = attrs.get("URI")
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line == "#EXT-X-ENDLIST":
            pl.ended = True
        elif not line.startswith("#"):
            if msn is None:
                msn = pl.media_sequence
            pl.segments.append(_segment(msn, line, duration or 0.0, pending_parts))
            msn += 1
            pending_parts, duration = [], None
    if pending_parts:
        open_msn = pl.media_sequence if msn is None else msn
        pl.segments.append(
            _segment(open_msn, None, sum(d for _, d, _ in pending_parts), pending_parts)
        )
    return pl


def _segment(
    msn: int, uri: str | None, duration: float, parts: list[tuple[str, float, bool]]
) -> Segment:
    seg = Segment(msn, uri, duration)
    seg.parts = [Part(msn, i, u, d, ind) for i, (u, d, ind) in enumerate(parts)]
    return seg
