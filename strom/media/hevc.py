"""HEVC (H.265) configuration: the ``hvcC`` record, the picture size from its SPS, and the
``hvc1.…`` codecs parameter.

Frame data is stored as for H.264 (see :mod:`strom.media.model`): NAL units each prefixed
by a 4-byte big-endian length, so :func:`strom.media.h264.to_length_prefixed` normalises
HEVC frames too; only the NAL header (two bytes) and the configuration differ.

References: ISO/IEC 14496-15 8.3.3.1 (HEVCDecoderConfigurationRecord) and E.3 (the codecs
parameter); ITU-T H.265 7.3.1.2 (NAL unit header), 7.3.2.2 (sequence parameter set),
7.3.3 (profile_tier_level) and 7.4.3.2.1 (conformance window, SubWidthC/SubHeightC in
table 6-1).
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.bits import BitReader

NAL_TYPE_VPS = 32
NAL_TYPE_SPS = 33
NAL_TYPE_PPS = 34

#: 14496-15 8.3.3.1.2: the fixed part of the record, before its arrays of NAL units.
_HVCC_HEADER_SIZE = 23
_LENGTH_SIZE_BYTE = 21
_LENGTH_SIZES = (1, 2, 4)
#: H.265 7.4.3.2.1: sps_max_sub_layers_minus1 is at most 6.
_MAX_SUB_LAYERS_MINUS1 = 6
_PROFILE_SPACES = ("", "A", "B", "C")


@dataclass(frozen=True, slots=True)
class HevcConfig:
    """A parsed HEVCDecoderConfigurationRecord and what its first SPS says."""

    profile_space: int
    tier: int
    profile_idc: int
    #: general_profile_compatibility_flags, flag 0 in the most significant bit
    compatibility: int
    #: the six bytes of general_constraint_indicator_flags
    constraints: bytes
    level_idc: int
    #: Bytes in each NAL unit length field of the samples: 1, 2 or 4.
    length_size: int
    #: Displayed size in luma samples, after the conformance window (0 without an SPS).
    width: int
    height: int


def _rbsp(nal: bytes) -> bytes:
    """The NAL payload without its two header bytes and emulation prevention bytes
    (H.265 7.3.1.1, 7.4.2)."""
    return nal[2:].replace(b"\x00\x00\x03", b"\x00\x00")


def nal_type(nal: bytes) -> int:
    """``nal_unit_type`` of a NAL unit (H.265 7.3.1.2)."""
    if not nal:
        raise CodecError("HEVC NAL unit is empty")
    return nal[0] >> 1 & 0x3F


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> None:
    # 7.3.3 with profilePresentFlag = 1: the general part (88 + 8 bits), then per sub-layer
    # two presence flags, padding to eight entries, and the present parts.
    r.u(32)
    r.u(32)
    r.u(32)
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.u(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        if profile_present:
            r.u(44)
            r.u(44)  # sub_layer profile space .. inbld/reserved: 88 bits
        if level_present:
            r.u(8)


def parse_sps(nal: bytes) -> tuple[int, int]:
    """The displayed picture size (width, height) from an SPS NAL unit (7.3.2.2)."""
    if nal_type(nal) != NAL_TYPE_SPS:
        raise CodecError(f"HEVC NAL unit type {nal_type(nal)} is not an SPS")
    r = BitReader(_rbsp(nal), "HEVC SPS")
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > _MAX_SUB_LAYERS_MINUS1:
        raise CodecError(f"HEVC SPS sps_max_sub_layers_minus1 {max_sub_layers_minus1} > 6")
    r.u(1)  # sps_temporal_id_nesting_flag
    _skip_profile_tier_level(r, max_sub_layers_minus1)
    r.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise CodecError(f"HEVC SPS chroma_format_idc {chroma_format_idc} is invalid")
    if chroma_format_idc == 3 and r.flag():  # separate_colour_plane_flag
        chroma_format_idc = 0  # ChromaArrayType 0: no chroma subsampling in the crop units
    width, height = r.ue(), r.ue()
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        # Table 6-1: SubWidthC is 2 for 4:2:0 and 4:2:2, SubHeightC 2 for 4:2:0 only.
        sub_width = 2 if chroma_format_idc in (1, 2) else 1
        sub_height = 2 if chroma_format_idc == 1 else 1
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    if width <= 0 or height <= 0:
        raise CodecError(f"HEVC SPS picture size {width}x{height} is invalid")
    return width, height


def parameter_sets(record: bytes) -> list[bytes]:
    """Every NAL unit in the record's arrays (VPS, SPS, PPS, SEI...), in order."""
    if len(record) < _HVCC_HEADER_SIZE:
        raise CodecError("hvcC is truncated")
    nals = []
    pos = _HVCC_HEADER_SIZE
    for _ in range(record[22]):  # numOfArrays
        if pos + 3 > len(record):
            raise CodecError("hvcC array is truncated")
        count = int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(record):
                raise CodecError("hvcC NAL unit is truncated")
            size = int.from_bytes(record[pos : pos + 2], "big")
            pos += 2
            if pos + size > len(record):
                raise CodecError("hvcC NAL unit runs past the end of the record")
            nals.append(record[pos : pos + size])
            pos += size
    return nals


def parse_hvcc(record: bytes) -> HevcConfig:
    """Parse an HEVCDecoderConfigurationRecord (the ``hvcC`` body, 14496-15 8.3.3.1.2).

    The picture size is read from the first SPS of its arrays; a record without one
    gives 0 x 0 (the caller may know the size otherwise, e.g. from ``onMetaData``)."""
    if len(record) < _HVCC_HEADER_SIZE:
        raise CodecError("hvcC is truncated")
    if record[0] != 1:
        raise CodecError(f"hvcC configurationVersion {record[0]} is not 1")
    length_size = (record[_LENGTH_SIZE_BYTE] & 0x03) + 1
    if length_size not in _LENGTH_SIZES:
        raise CodecError(f"hvcC NAL length size {length_size} is invalid")
    width = height = 0
    for nal in parameter_sets(record):
        if nal and nal_type(nal) == NAL_TYPE_SPS:
            width, height = parse_sps(nal)
            break
    return HevcConfig(
        profile_space=record[1] >> 6,
        tier=record[1] >> 5 & 1,
        profile_idc=record[1] & 0x1F,
        compatibility=int.from_bytes(record[2:6], "big"),
        constraints=record[6:12],
        level_idc=record[12],
        length_size=length_size,
        width=width,
        height=height,
    )


def normalize_hvcc(record: bytes) -> bytes:
    """``record`` declaring 4-byte NAL lengths, to match what
    :func:`strom.media.h264.to_length_prefixed` makes of the frames."""
    if len(record) < _HVCC_HEADER_SIZE:
        raise CodecError("hvcC is truncated")
    if record[_LENGTH_SIZE_BYTE] & 0x03 == 3:
        return record
    patched = bytes((record[_LENGTH_SIZE_BYTE] | 0x03,))
    return b"".join((record[:_LENGTH_SIZE_BYTE], patched, record[_LENGTH_SIZE_BYTE + 1 :]))


def codec_string(cfg: HevcConfig) -> str:
    """The RFC 6381 ``codecs`` value for an ``hvc1`` sample entry (14496-15 E.3), e.g.
    ``hvc1.1.6.L93.B0``: profile space and idc, the compatibility flags in reverse bit
    order (hex), tier and level, then the constraint bytes without the trailing zeros."""
    reversed_flags = int(f"{cfg.compatibility:032b}"[::-1], 2)
    tier = "H" if cfg.tier else "L"
    constraints = cfg.constraints.rstrip(b"\x00")
    parts = [
        "hvc1",
        f"{_PROFILE_SPACES[cfg.profile_space]}{cfg.profile_idc}",
        f"{reversed_flags:X}",
        f"{tier}{cfg.level_idc}",
        *(f"{byte:02X}" for byte in constraints),
    ]
    return ".".join(parts)
