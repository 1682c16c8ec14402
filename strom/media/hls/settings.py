"""What shapes and bounds one live LL-HLS rendition: :class:`HlsSettings`, and the
constants the cutting of parts and the window follow (sections of
draft-pantos-hls-rfc8216bis, "rfc8216bis")."""

from __future__ import annotations

from dataclasses import dataclass

#: rfc8216bis 6.2.2: clients MUST be able to fetch a part for three Target Durations after
#: its EXT-X-PART tag left the playlist (which happens three Target Durations back).
PART_RETENTION_TARGET_DURATIONS = 6

#: The chunk spacing assumed when cutting parts is capped at this share of the part
#: target, so a stall never makes a part shorter than 85% of PART-TARGET (4.4.4.9).
MAX_SPACING_SHARE = 0.15
SPACING_SAMPLES = 16


@dataclass(frozen=True)
class HlsSettings:
    """Limits and shape of one live LL-HLS rendition."""

    #: Seconds; EXT-X-PART-INF PART-TARGET. Parts are cut at or just below it.
    part_target: float = 0.334
    #: Complete segments listed in the live playlist (more while they span < 3 targets).
    window_segments: int = 6
    #: Segments kept fetchable after they leave the playlist (rfc8216bis 6.2.2).
    grace_segments: int = 2
    #: A keyframe starts a new segment only once the current one is at least this long.
    min_segment: float = 1.0
    #: Without a keyframe a segment is closed anyway, at a part boundary, near this length.
    max_segment: float = 10.0
    #: Init segment name; a version goes before the suffix: ``init-0.mp4``, ``init-1.mp4``.
    init_uri: str = "init.mp4"
    #: EXT-X-PROGRAM-DATE-TIME follows the media clock; it is re-anchored to the arrival
    #: wall clock when the two drift further apart than this many seconds.
    pdt_resync: float = 1.0
    #: A part holding more bytes than this means the chunk times stopped advancing.
    max_part_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.part_target <= 0:
            raise ValueError("part_target must be positive")
        if self.window_segments < 1 or self.grace_segments < 0:
            raise ValueError("window_segments must be >= 1 and grace_segments >= 0")
        if not 0 < self.min_segment <= self.max_segment - self.part_target:
            raise ValueError("need 0 < min_segment <= max_segment - part_target")
