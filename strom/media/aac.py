"""AAC configuration: the MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.bits import BitReader

#: ISO/IEC 14496-3 1.6.3.4 Table 1.18, samplingFrequencyIndex 0x0-0xc.
SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
_EXPLICIT_FREQUENCY = 0xF
#: ISO/IEC 14496-3 1.6.3.5 Table 1.19 (as amended): channelConfiguration -> channel count.
_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}

AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29
_AOT_ESCAPE = 31
_AOT_ER_BSAC = 22
#: Object types whose config is a GASpecificConfig (14496-3 1.6.2.1, 4.4.1).
_GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
#: 14496-3 1.6.6.1: a backward-compatible SBR signal after the core config.
_SYNC_EXTENSION_SBR = 0x2B7
_SYNC_EXTENSION_PS = 0x548


@dataclass(frozen=True, slots=True)
class AacConfig:
    """A parsed AudioSpecificConfig."""

    #: The signalled audio object type: 2 for AAC-LC, 5 for HE-AAC, 29 for HE-AACv2.
    object_type: int
    #: Output sample rate (the SBR rate for HE-AAC).
    sample_rate: int
    #: Output channel count.
    channels: int
    #: Output samples per access unit at :attr:`sample_rate` (1024, 960, or twice with SBR).
    samples_per_frame: int = 1024


def _object_type(r: BitReader) -> int:
    # 1.6.2.1 GetAudioObjectType(): 31 escapes to 32 + a 6-bit extension.
    aot = r.u(5)
    if aot == _AOT_ESCAPE:
        aot = 32 + r.u(6)
    if aot == 0:
        raise CodecError("AudioSpecificConfig has the null object type")
    return aot


def _sample_rate(r: BitReader) -> int:
    index = r.u(4)
    if index == _EXPLICIT_FREQUENCY:
        rate = r.u(24)
        if rate == 0:
            raise CodecError("AudioSpecificConfig has a zero sample rate")
        return rate
    if index >= len(SAMPLE_RATES):
        raise CodecError(f"AudioSpecificConfig sampling frequency index {index} is reserved")
    return SAMPLE_RATES[index]


def _program_config_channels(r: BitReader) -> int:
    """Count the channels a program_config_element declares (14496-3 4.4.1.1, Table 4.2)."""
    r.u(4 + 2 + 4)  # element_instance_tag, object_type, sampling_frequency_index
    front, side, back = r.u(4), r.u(4), r.u(4)
    lfe = r.u(2)
    r.u(3 + 4)  # num_assoc_data_elements, num_valid_cc_elements
    if r.flag():  # mono_mixdown_present
        r.u(4)
    if r.flag():  # stereo_mixdown_present
        r.u(4)
    if r.flag():  # matrix_mixdown_idx_present
        r.u(3)
    channels = lfe
    for _ in range(front + side + back):
        is_cpe = r.u(1)
        r.u(4)  # element_tag_select
        channels += 1 + is_cpe
    if channels == 0:
        raise CodecError("AudioSpecificConfig program config declares no channels")
    return channels


def _sync_extension(r: BitReader) -> tuple[int, bool] | None:
    """Backward-compatible explicit SBR/PS signalling after the core config (1.6.2.1).

    Returns the SBR output rate and whether PS is present, or ``None`` without SBR.
    """
    if r.remaining < 16 or r.u(11) != _SYNC_EXTENSION_SBR:
        return None
    if _object_type(r) != AOT_SBR or not r.flag():  # sbrPresentFlag
        return None
    rate = _sample_rate(r)
    ps = r.remaining >= 12 and r.u(11) == _SYNC_EXTENSION_PS and r.flag()
    return rate, ps


def parse_audio_specific_config(asc: bytes) -> AacConfig:
    """Parse an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).

    Handles the escaped object type (31), an explicit 24-bit sample rate (index 15),
    hierarchical SBR/PS signalling (object types 5 and 29), backward-compatible SBR
    signalling (sync extension 0x2b7) and channelConfiguration 0 with a program config.
    """
    r = BitReader(asc, "AudioSpecificConfig")
    object_type = _object_type(r)
    sample_rate = _sample_rate(r)
    channel_config = r.u(4)
    sbr = ps = False
    core_type = object_type
    output_rate = sample_rate
    if object_type in (AOT_SBR, AOT_PS):
        sbr, ps = True, object_type == AOT_PS
        output_rate = _sample_rate(r)
        core_type = _object_type(r)
        if core_type == _AOT_ER_BSAC:
            r.u(4)  # extensionChannelConfiguration

    frame_length = 1024
    channels = 0
    if core_type in _GA_OBJECT_TYPES:
        # 4.4.1 GASpecificConfig(): frameLengthFlag selects 960-sample frames.
        if r.flag():
            frame_length = 960
        if r.flag():  # dependsOnCoreCoder
            r.u(14)  # coreCoderDelay
        r.u(1)  # extensionFlag
        if channel_config == 0:
            channels = _program_config_channels(r)
    if channel_config:
        if channel_config not in _CHANNELS:
            raise CodecError(
                f"AudioSpecificConfig channel configuration {channel_config} is reserved"
            )
        channels = _CHANNELS[channel_config]
    elif channels == 0:
        raise CodecError("AudioSpecificConfig declares no channel configuration")

    if not sbr:
        explicit = _sync_extension(r)
        if explicit is not None:
            sbr = True
            output_rate, ps = explicit
    if sbr and output_rate != sample_rate:
        frame_length *= 2
    if ps and channels == 1:
        channels = 2
    return AacConfig(
        object_type=object_type,
        sample_rate=output_rate,
        channels=channels,
        samples_per_frame=frame_length,
    )


def codec_string(cfg: AacConfig) -> str:
    """The RFC 6381 ``codecs`` value, ``mp4a.40.<object type>`` (RFC 6381 3.3)."""
    return f"mp4a.40.{cfg.object_type}"


# -- ADTS (ISO/IEC 14496-3 1.A.2, 1.A.3): the framing MPEG-TS carries AAC in ----------------

ADTS_HEADER_SIZE = 7
_ADTS_SYNC = 0xFFF


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    """One adts_fixed_header + adts_variable_header (1.A.2.2)."""

    object_type: int
    sampling_frequency_index: int
    channel_configuration: int
    #: header bytes before the raw data block (7, or 9 with a CRC)
    header_size: int
    #: the whole frame, header included (aac_frame_length)
    frame_size: int


def parse_adts_header(data: bytes, pos: int = 0) -> AdtsHeader:
    """Parse the ADTS header at ``pos``; :class:`CodecError` if there is none."""
    if pos + ADTS_HEADER_SIZE > len(data):
        raise CodecError("ADTS header is truncated")
    b = data[pos : pos + ADTS_HEADER_SIZE]
    if (b[0] << 4 | b[1] >> 4) != _ADTS_SYNC:
        raise CodecError("no ADTS syncword")
    protection_absent = b[1] & 1
    profile = b[2] >> 6  # object type - 1
    index = b[2] >> 2 & 0x0F
    channels = (b[2] & 1) << 2 | b[3] >> 6
    frame_size = (b[3] & 3) << 11 | b[4] << 3 | b[5] >> 5
    raw_blocks = b[6] & 3
    header_size = ADTS_HEADER_SIZE if protection_absent else ADTS_HEADER_SIZE + 2
    if index >= len(SAMPLE_RATES):
        raise CodecError(f"ADTS sampling frequency index {index} is reserved")
    if channels == 0:
        raise CodecError("ADTS channel configuration 0 (in-band program config) is not supported")
    if raw_blocks:
        raise CodecError("ADTS frames of several raw data blocks are not supported")
    if frame_size <= header_size:
        raise CodecError(f"ADTS frame length {frame_size} is invalid")
    return AdtsHeader(profile + 1, index, channels, header_size, frame_size)


def adts_audio_specific_config(header: AdtsHeader) -> bytes:
    """The two-byte AudioSpecificConfig an ADTS header implies (1.6.2.1)."""
    value = (
        header.object_type << 11
        | header.sampling_frequency_index << 7
        | header.channel_configuration << 3
    )
    return value.to_bytes(2, "big")
