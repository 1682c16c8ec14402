"""The neutral media vocabulary every ingest produces and every delivery consumes.

A :class:`Track` describes one elementary stream and carries its decoder configuration;
a :class:`Frame` is one access unit of a track. Timestamps are integers in the track's
``timescale`` (RTMP/FLV and WebM ingest use milliseconds, ``timescale=1000``; MP4 keeps
each track's ``mdhd`` timescale; MPEG-TS gives video 90 kHz and audio its sample rate).

Sample data is stored the way ISO BMFF stores it, so muxing is a copy:

* H.264, HEVC: NAL units each prefixed by a 4-byte big-endian length
  (ingests normalise other length sizes and Annex B to this).
* AAC: one raw access unit (no ADTS header).
* VP8, VP9: one frame as the encoder wrote it (a VP9 superframe counts as one).
* AV1: one temporal unit of OBUs with size fields (the low-overhead format).
* Opus: one Opus packet (RFC 6716 3), as Ogg, Matroska and MP4 store it.

What :attr:`Track.config` holds, per codec (:mod:`strom.media.tracks` builds the
records from what each container carries):

=======  ========================================================================
H.264    AVCDecoderConfigurationRecord, the ``avcC`` body (ISO/IEC 14496-15 5.3.3.1)
HEVC     HEVCDecoderConfigurationRecord, the ``hvcC`` body (ISO/IEC 14496-15 8.3.3.1)
AAC      AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)
VP8      nothing (``b""``): the picture size is in the track, the rest in-band
VP9      VPCodecConfigurationRecord, the ``vpcC`` body after its version and flags
         (VP Codec ISO Media File Format Binding 2.3, version 1)
AV1      AV1CodecConfigurationRecord, the ``av1C`` body (AV1 Codec ISO Media File
         Format Binding 2.3), configOBUs possibly empty
Opus     OpusSpecificBox body, ``dOps`` (Encapsulation of Opus in ISO Base Media
         File Format 4.3.2): big-endian, unlike Matroska's OpusHead
=======  ========================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrackKind(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(enum.Enum):
    H264 = "h264"
    HEVC = "hevc"
    AAC = "aac"
    VP8 = "vp8"
    VP9 = "vp9"
    AV1 = "av1"
    OPUS = "opus"


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
    #: The decoder configuration record (see the table in the module docstring).
    config: bytes
    #: RFC 6381 codecs parameter: ``avc1.64001f``, ``hvc1.1.6.L93.B0``, ``mp4a.40.2``, ``vp8``,
    #: ``vp09.00.10.08``, ``av01.0.04M.08``, ``opus``.
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
