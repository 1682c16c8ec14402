"""AV1 configuration: the ``av1C`` record, built from a sequence header OBU when a
container carries none, and the ``av01.P.LLT.DD`` codecs parameter.

References: AV1 Bitstream & Decoding Process Specification (2019) 5.3 (OBU syntax),
5.5 (sequence header OBU), 5.5.2 (color config), 4.10.3 (uvlc) and 4.10.5 (leb128);
"AV1 Codec ISO Media File Format Binding" v1.2.0 2.3 (AV1CodecConfigurationRecord) and
its codecs parameter (Annex A). Matroska's V_AV1 CodecPrivate is the same record.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.bits import BitReader

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
_AV1C_MARKER_VERSION = 0x81  # marker bit 1, version 1
_SELECT = 2  # SELECT_SCREEN_CONTENT_TOOLS / SELECT_INTEGER_MV
_CP_BT_709, _TC_SRGB, _MC_IDENTITY = 1, 13, 0
_LEB128_MAX_BYTES = 8


@dataclass(frozen=True, slots=True)
class Av1Config:
    """A parsed AV1CodecConfigurationRecord, or what a sequence header says."""

    profile: int
    level: int
    #: 0 = Main tier, 1 = High tier
    tier: int
    bit_depth: int
    monochrome: bool = False
    subsampling_x: int = 1
    subsampling_y: int = 1
    chroma_sample_position: int = 0
    #: the sequence header OBU (with its size field), or empty
    config_obus: bytes = b""
    #: max_frame_{width,height}_minus_1 + 1; 0 when only the av1C record was read
    width: int = 0
    height: int = 0


def parse_av1c(record: bytes) -> Av1Config:
    """Parse an AV1CodecConfigurationRecord (the ``av1C`` body, 2.3)."""
    if len(record) < 4:
        raise CodecError("av1C is truncated")
    if record[0] != _AV1C_MARKER_VERSION:
        raise CodecError(f"av1C marker/version byte {record[0]:#04x} is not 0x81")
    b1, b2 = record[1], record[2]
    high_bitdepth, twelve_bit = b2 >> 6 & 1, b2 >> 5 & 1
    return Av1Config(
        profile=b1 >> 5,
        level=b1 & 0x1F,
        tier=b2 >> 7,
        bit_depth=12 if twelve_bit else 10 if high_bitdepth else 8,
        monochrome=bool(b2 >> 4 & 1),
        subsampling_x=b2 >> 3 & 1,
        subsampling_y=b2 >> 2 & 1,
        chroma_sample_position=b2 & 3,
        config_obus=record[4:],
    )


def build_av1c(cfg: Av1Config) -> bytes:
    """The ``av1C`` body for ``cfg`` (no initial presentation delay)."""
    high_bitdepth = cfg.bit_depth > 8
    twelve_bit = cfg.bit_depth == 12
    b2 = (
        cfg.tier << 7
        | high_bitdepth << 6
        | twelve_bit << 5
        | cfg.monochrome << 4
        | cfg.subsampling_x << 3
        | cfg.subsampling_y << 2
        | cfg.chroma_sample_position
    )
    return bytes((_AV1C_MARKER_VERSION, cfg.profile << 5 | cfg.level, b2, 0)) + cfg.config_obus


def codec_string(cfg: Av1Config) -> str:
    """``av01.P.LLT.DD`` (Annex A; the optional fields keep their defaults)."""
    tier = "H" if cfg.tier else "M"
    return f"av01.{cfg.profile}.{cfg.level:02d}{tier}.{cfg.bit_depth:02d}"


#: A temporal delimiter OBU as encoders write it: header with obu_has_size_field, size 0.
_TEMPORAL_DELIMITER = bytes((OBU_TEMPORAL_DELIMITER << 3 | 0x02, 0))


def strip_temporal_delimiter(data: bytes) -> bytes:
    """A temporal unit without its leading temporal delimiter OBU: the ISO BMFF binding
    (2.4) keeps them out of samples, and RTMP and WebM encoders leave them in."""
    return data[2:] if data[:2] == _TEMPORAL_DELIMITER else data


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(_LEB128_MAX_BYTES):
        if pos + i >= len(data):
            raise CodecError("AV1 OBU size is truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise CodecError("AV1 OBU size is too long")


def obus(data: bytes) -> list[tuple[int, bytes]]:
    """Split a temporal unit in the low-overhead format (5.2) into ``(obu_type, obu)``
    pairs, each ``obu`` whole (header and size field included)."""
    out = []
    pos = 0
    while pos < len(data):
        header = data[pos]
        if header & 0x80:
            raise CodecError("AV1 OBU forbidden bit is set")
        obu_type = header >> 3 & 0x0F
        start = pos
        pos += 2 if header & 0x04 else 1  # obu_extension_flag
        if not header & 0x02:  # obu_has_size_field: without it the OBU runs to the end
            out.append((obu_type, data[start:]))
            break
        size, pos = _leb128(data, pos)
        if pos + size > len(data):
            raise CodecError("AV1 OBU runs past the end of the temporal unit")
        pos += size
        out.append((obu_type, data[start:pos]))
    return out


def _payload(obu: bytes) -> bytes:
    if not obu:
        raise CodecError("AV1 OBU is empty")
    pos = 2 if obu[0] & 0x04 else 1
    if obu[0] & 0x02:
        _, pos = _leb128(obu, pos)
    return obu[pos:]


def _uvlc(r: BitReader) -> None:
    zeros = 0
    while not r.flag():
        zeros += 1
        if zeros >= 32:
            return
    r.u(zeros)


def parse_sequence_header(obu: bytes) -> Av1Config:
    """Parse a sequence header OBU (5.5) for the fields of an av1C record."""
    r = BitReader(_payload(obu), "AV1 sequence header")
    profile = r.u(3)
    if profile > 2:
        raise CodecError(f"AV1 seq_profile {profile} is reserved")
    r.u(1)  # still_picture
    reduced = r.flag()  # reduced_still_picture_header
    if reduced:
        level, tier = r.u(5), 0
    else:
        decoder_model_info = False
        buffer_delay_length = 0
        if r.flag():  # timing_info_present_flag: 5.5.3 timing_info()
            r.u(32)  # num_units_in_display_tick
            r.u(32)  # time_scale
            if r.flag():  # equal_picture_interval
                _uvlc(r)  # num_ticks_per_picture_minus_1
            decoder_model_info = r.flag()
            if decoder_model_info:  # 5.5.4 decoder_model_info()
                buffer_delay_length = r.u(5) + 1
                r.u(32)  # num_units_in_decoding_tick
                r.u(5 + 5)  # buffer_removal_time_length, frame_presentation_time_length
        initial_display_delay = r.flag()
        level = tier = 0
        for i in range(r.u(5) + 1):  # operating_points_cnt_minus_1
            r.u(12)  # operating_point_idc
            seq_level_idx = r.u(5)
            seq_tier = r.u(1) if seq_level_idx > 7 else 0
            if i == 0:  # av1C describes operating point 0
                level, tier = seq_level_idx, seq_tier
            if decoder_model_info and r.flag():  # decoder_model_present_for_this_op
                r.u(2 * buffer_delay_length + 1)  # operating_parameters_info()
            if initial_display_delay and r.flag():
                r.u(4)  # initial_display_delay_minus_1
    width_bits, height_bits = r.u(4) + 1, r.u(4) + 1
    width, height = r.u(width_bits) + 1, r.u(height_bits) + 1
    if not reduced and r.flag():  # frame_id_numbers_present_flag
        r.u(4 + 3)
    r.u(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if not reduced:
        r.u(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = r.flag()
        if order_hint:
            r.u(2)  # enable_jnt_comp, enable_ref_frame_mvs
        screen_content = _SELECT if r.flag() else r.u(1)  # seq_choose_screen_content_tools
        if screen_content > 0 and not r.flag():  # seq_choose_integer_mv
            r.u(1)  # seq_force_integer_mv
        if order_hint:
            r.u(3)  # order_hint_bits_minus_1
    r.u(3)  # enable_superres, enable_cdef, enable_restoration
    # 5.5.2 color_config()
    high_bitdepth = r.flag()
    bit_depth = 8
    if profile == 2 and high_bitdepth:
        bit_depth = 12 if r.flag() else 10
    elif high_bitdepth:
        bit_depth = 10
    monochrome = False if profile == 1 else r.flag()
    primaries = transfer = matrix = 2  # unspecified
    if r.flag():  # color_description_present_flag
        primaries, transfer, matrix = r.u(8), r.u(8), r.u(8)
    ssx = ssy = 1
    position = 0
    if monochrome:
        r.u(1)  # color_range
    elif primaries == _CP_BT_709 and transfer == _TC_SRGB and matrix == _MC_IDENTITY:
        ssx = ssy = 0
    else:
        r.u(1)  # color_range
        if profile == 1:
            ssx = ssy = 0
        elif profile == 2:
            if bit_depth == 12:
                ssx = r.u(1)
                ssy = r.u(1) if ssx else 0
            else:
                ssx, ssy = 1, 0
        if ssx and ssy:
            position = r.u(2)
    return Av1Config(
        profile=profile,
        level=level,
        tier=tier,
        bit_depth=bit_depth,
        monochrome=monochrome,
        subsampling_x=ssx,
        subsampling_y=ssy,
        chroma_sample_position=position,
        config_obus=obu,
        width=width,
        height=height,
    )


def config_from_temporal_unit(data: bytes) -> Av1Config | None:
    """The configuration a key frame's sequence header OBU gives, or ``None`` without one."""
    for obu_type, obu in obus(data):
        if obu_type == OBU_SEQUENCE_HEADER:
            return parse_sequence_header(obu)
    return None
