"""The neutral media vocabulary every ingest produces and every delivery consumes.

A :class:`Track` describes one elementary stream and carries its decoder configuration;
a :class:`Frame` is one access unit of a track. Timestamps are integers in the track's
``timescale`` (RTMP/FLV and WebM ingest use milliseconds, ``timescale=1000``).

Sample data is stored the way ISO BMFF stores it, so muxing is a copy:

* H.264: AVCC, i.e. NAL units each prefixed by a 4-byte big-endian length
  (ingests normalise other length sizes and Annex B to this).
* AAC: one raw access unit (no ADTS header).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrackKind(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(enum.Enum):
    H264 = "h264"
    AAC = "aac"


#: Track ids used by every ingest, so deliveries can rely on them.
VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2


@dataclass(frozen=True, slots=True)
class Track:
    """One elementary stream and its decoder configuration."""

    id: int
    kind: TrackKind
    codec: Codec
    #: Units per second of :attr:`Frame.dts` and :attr:`Frame.pts` for this track.
    timescale: int
    #: H.264: AVCDecoderConfigurationRecord (avcC). AAC: AudioSpecificConfig.
    config: bytes
    #: RFC 6381 codecs parameter, e.g. ``avc1.64001f`` or ``mp4a.40.2``.
    codec_string: str
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit of a track."""

    track_id: int
    #: Decode timestamp, in the track's timescale.
    dts: int
    #: Presentation timestamp, in the track's timescale (``pts >= dts`` with B-frames).
    pts: int
    #: True for a random access point (IDR for video; every AAC frame is one).
    keyframe: bool
    data: bytes


def mime_type(tracks: list[Track] | tuple[Track, ...]) -> str:
    """The MSE/HTML ``type`` for an fMP4 stream of ``tracks``."""
    codecs = ",".join(t.codec_string for t in sorted(tracks, key=lambda t: t.id))
    return f'video/mp4; codecs="{codecs}"'
