""":class:`~strom.media.model.Track` records for each codec, built from the configuration
record a container carries (or derives), with the checks and codecs string in one place.

Containers carry the same records in different wrappers: Matroska's CodecPrivate and an
MP4 sample entry's child box hold the same avcC, AudioSpecificConfig and av1C; Opus is
``OpusHead`` in Matroska but ``dOps`` in MP4 (:mod:`strom.media.opus` converts); VP9 has
``vpcC`` in MP4 and nothing usable in Matroska (:mod:`strom.media.vpx` derives it from
the first key frame). Every builder raises :class:`~strom.errors.CodecError` on a record
it cannot use.
"""

from __future__ import annotations

from strom.errors import CodecError
from strom.media import aac, av1, h264, hevc, opus, vpx
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Track, TrackKind

#: ISO/IEC 14496-12 8.5.2.2: a VisualSampleEntry's width and height are 16-bit (and the
#: hub muxes every track into fMP4), so a bigger picture cannot be carried.
MAX_PICTURE_SIDE = 0xFFFF


def _video(
    codec: Codec, timescale: int, config: bytes, codec_string: str, *, width: int, height: int
) -> Track:
    if not (0 < width <= MAX_PICTURE_SIDE and 0 < height <= MAX_PICTURE_SIDE):
        raise CodecError(f"{codec.value} picture size {width}x{height} is not 1..65535 pixels")
    return Track(
        id=VIDEO_TRACK_ID,
        kind=TrackKind.VIDEO,
        codec=codec,
        timescale=timescale,
        config=config,
        codec_string=codec_string,
        width=width,
        height=height,
    )


def h264_track(avcc: bytes, timescale: int) -> tuple[Track, int]:
    """The track for an avcC record, and the NAL length size its samples use (the track's
    record says 4: frames must be rewritten with :func:`h264.to_length_prefixed`)."""
    cfg = h264.parse_avcc(avcc)
    config = h264.normalize_avcc(avcc)
    track = _video(
        Codec.H264, timescale, config, h264.codec_string(cfg), width=cfg.width, height=cfg.height
    )
    return track, cfg.length_size


def hevc_track(
    hvcc: bytes, timescale: int, *, width: int = 0, height: int = 0
) -> tuple[Track, int]:
    """The track for an hvcC record, and the NAL length size its samples use (the track's
    record says 4, as for :func:`h264_track`). The picture size comes from the record's
    SPS; ``width``/``height`` (e.g. from ``onMetaData``) stand in when it has none."""
    cfg = hevc.parse_hvcc(hvcc)
    config = hevc.normalize_hvcc(hvcc)
    track = _video(
        Codec.HEVC,
        timescale,
        config,
        hevc.codec_string(cfg),
        width=cfg.width or width,
        height=cfg.height or height,
    )
    return track, cfg.length_size


def vp8_track(width: int, height: int, timescale: int) -> Track:
    return _video(Codec.VP8, timescale, b"", vpx.CODEC_STRING_VP8, width=width, height=height)


def vp9_track(vpcc: bytes, width: int, height: int, timescale: int) -> Track:
    """``vpcc`` is the vpcC body after its version and flags (version 1).

    A level that is no VP9 level (Chromium's MediaRecorder writes 0) is replaced by one
    for the picture size: ``vp09.00.00.08`` is refused by Chromium's own Media Source.
    """
    if vpx.parse_vpcc(vpcc).level not in vpx.VP9_LEVELS and width and height:
        vpcc = b"".join((vpcc[:1], bytes((vpx.vp9_level(width, height),)), vpcc[2:]))
    codec_string = vpx.vp9_codec_string(vpcc)
    return _video(Codec.VP9, timescale, vpcc, codec_string, width=width, height=height)


def av1_track(av1c: bytes, width: int, height: int, timescale: int) -> Track:
    cfg = av1.parse_av1c(av1c)
    codec_string = av1.codec_string(cfg)
    return _video(Codec.AV1, timescale, av1c, codec_string, width=width, height=height)


def aac_track(asc: bytes, timescale: int) -> Track:
    cfg = aac.parse_audio_specific_config(asc)
    return Track(
        id=AUDIO_TRACK_ID,
        kind=TrackKind.AUDIO,
        codec=Codec.AAC,
        timescale=timescale,
        config=asc,
        codec_string=aac.codec_string(cfg),
        sample_rate=cfg.sample_rate,
        channels=cfg.channels,
    )


def opus_track(dops: bytes, timescale: int) -> Track:
    """``dops`` is the OpusSpecificBox body (convert Matroska's OpusHead first)."""
    cfg = opus.parse_dops(dops)
    return Track(
        id=AUDIO_TRACK_ID,
        kind=TrackKind.AUDIO,
        codec=Codec.OPUS,
        timescale=timescale,
        config=dops,
        codec_string=opus.CODEC_STRING,
        sample_rate=opus.SAMPLE_RATE,
        channels=cfg.channels,
    )
