"""H.264 configuration: the AVC decoder configuration record (avcC) and the SPS inside it.

Frame data in Strom is AVCC: each NAL unit prefixed by a 4-byte big-endian length (see
:mod:`strom.media.model`). This module normalises other length sizes and Annex B byte
streams to that form, builds and parses avcC records (ISO/IEC 14496-15 5.3.3.1), and reads
just enough of the sequence parameter set (ISO/IEC 14496-10 7.3.2.1.1) for the picture size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.bits import BitReader

NAL_TYPE_IDR = 5
NAL_TYPE_SPS = 7
NAL_TYPE_PPS = 8

#: profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists
#: (ISO/IEC 14496-10 7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
#: profile_idc values whose avcC carries the chroma/bit-depth extension (14496-15 5.3.3.1.1).
_AVCC_EXTENSION_PROFILES = frozenset({100, 110, 122, 144})
#: ISO/IEC 14496-10 7.4.2.1.1: num_ref_frames_in_pic_order_cnt_cycle is at most 255.
_MAX_POC_CYCLE = 255
_LENGTH_SIZES = (1, 2, 4)

_START_CODE = b"\x00\x00\x00\x01"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Sps:
    """The fields of a sequence parameter set that Strom uses."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    #: Displayed size in luma samples, after the frame cropping rectangle.
    width: int
    height: int
    #: VUI max_num_reorder_frames (E.2.1): how many frames may precede a frame in decode
    #: order and follow it in output order; ``None`` when the SPS does not say.
    max_num_reorder_frames: int | None = None


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """A parsed AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1.2)."""

    profile_idc: int
    profile_compat: int
    level_idc: int
    #: Bytes in each NAL unit length field of the samples: 1, 2 or 4.
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    width: int
    height: int


def _rbsp(nal: bytes) -> bytes:
    """The NAL payload without its header byte and emulation prevention bytes (7.4.1)."""
    return nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(r: BitReader, size: int) -> None:
    # ISO/IEC 14496-10 7.3.2.1.1.1 scaling_list(): only the bit positions matter here.
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta_scale = r.se()
            if not -128 <= delta_scale <= 127:
                raise CodecError("SPS scaling list delta out of range")
            next_scale = (last_scale + delta_scale + 256) % 256
        last_scale = next_scale or last_scale


def parse_sps(nal: bytes) -> Sps:
    """Parse a sequence parameter set NAL unit (header byte included).

    ISO/IEC 14496-10 7.3.2.1.1; the size comes from the macroblock counts and the frame
    cropping rectangle (7.4.2.1.1, equations 7-19 to 7-22).
    """
    if not nal or nal[0] & 0x1F != NAL_TYPE_SPS:
        raise CodecError("not an SPS NAL unit")
    r = BitReader(_rbsp(nal), "SPS")
    profile_idc = r.u(8)
    constraint_flags = r.u(8)
    level_idc = r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_colour_plane = 1, False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise CodecError(f"SPS chroma_format_idc {chroma_format_idc} is invalid")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise CodecError("SPS bit depth is invalid")
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = r.ue()
    if pic_order_cnt_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        r.u(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        cycle = r.ue()
        if cycle > _MAX_POC_CYCLE:
            raise CodecError("SPS pic order count cycle is too long")
        for _ in range(cycle):
            r.se()  # offset_for_ref_frame[i]
    elif pic_order_cnt_type != 2:
        raise CodecError(f"SPS pic_order_cnt_type {pic_order_cnt_type} is invalid")
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if r.flag():  # frame_cropping_flag
        crop_left, crop_right, crop_top, crop_bottom = r.ue(), r.ue(), r.ue(), r.ue()

    # 7.4.2.1.1: crop offsets count in chroma sample units (Table 6-1 SubWidthC/SubHeightC).
    field_factor = 1 if frame_mbs_only else 2
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    if chroma_array_type == 0:
        crop_unit_x, crop_unit_y = 1, field_factor
    else:
        sub_width = 1 if chroma_array_type == 3 else 2
        sub_height = 2 if chroma_array_type == 1 else 1
        crop_unit_x, crop_unit_y = sub_width, sub_height * field_factor
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = field_factor * height_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    if width <= 0 or height <= 0:
        raise CodecError("SPS cropping leaves no picture")
    reorder = None
    if r.flag():  # vui_parameters_present_flag
        try:
            reorder = _vui_max_num_reorder_frames(r)
        except CodecError:
            reorder = None  # the picture size is what callers rely on; the VUI is a bonus
    return Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        width=width,
        height=height,
        max_num_reorder_frames=reorder,
    )


#: ISO/IEC 14496-10 E.2.2: cpb_cnt_minus1 is at most 31.
_MAX_CPB_COUNT = 32
_EXTENDED_SAR = 255


def _skip_hrd_parameters(r: BitReader) -> None:
    # E.1.2 hrd_parameters()
    count = r.ue() + 1
    if count > _MAX_CPB_COUNT:
        raise CodecError("SPS HRD cpb count is too large")
    r.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        r.ue()  # bit_rate_value_minus1
        r.ue()  # cpb_size_value_minus1
        r.u(1)  # cbr_flag
    r.u(20)  # four 5-bit delay lengths


def _vui_max_num_reorder_frames(r: BitReader) -> int | None:
    """Read vui_parameters() (E.1.1) up to max_num_reorder_frames."""
    if r.flag() and r.u(8) == _EXTENDED_SAR:  # aspect_ratio_info_present_flag, idc
        r.u(32)  # sar_width, sar_height
    if r.flag():  # overscan_info_present_flag
        r.u(1)
    if r.flag():  # video_signal_type_present_flag
        r.u(4)  # video_format, video_full_range_flag
        if r.flag():  # colour_description_present_flag
            r.u(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    if r.flag():  # timing_info_present_flag
        r.u(32 + 32 + 1)
    nal_hrd = r.flag()
    if nal_hrd:
        _skip_hrd_parameters(r)
    vcl_hrd = r.flag()
    if vcl_hrd:
        _skip_hrd_parameters(r)
    if nal_hrd or vcl_hrd:
        r.u(1)  # low_delay_hrd_flag
    r.u(1)  # pic_struct_present_flag
    if not r.flag():  # bitstream_restriction_flag
        return None
    r.u(1)  # motion_vectors_over_pic_boundaries_flag
    for _ in range(4):  # max_bytes_per_pic_denom ... log2_max_mv_length_vertical
        r.ue()
    return r.ue()


def _parameter_sets(
    record: bytes, pos: int, count: int, nal_type: int
) -> tuple[tuple[bytes, ...], int]:
    """``count`` length-prefixed parameter sets from ``pos``, and the offset after them."""
    sets = []
    for _ in range(count):
        if pos + 2 > len(record):
            raise CodecError("avcC is truncated")
        (size,) = _U16.unpack_from(record, pos)
        pos += 2
        if size == 0 or pos + size > len(record):
            raise CodecError("avcC parameter set is truncated")
        if record[pos] & 0x1F != nal_type:
            raise CodecError(f"avcC parameter set is NAL type {record[pos] & 0x1F}")
        sets.append(record[pos : pos + size])
        pos += size
    return tuple(sets), pos


def parse_avcc(record: bytes) -> AvcConfig:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1.2).

    The picture size comes from the first SPS. Reserved bits are not checked (encoders
    differ), and the optional high-profile extension after the PPS list is ignored.
    """
    if len(record) < 7:
        raise CodecError("avcC is truncated")
    if record[0] != 1:
        raise CodecError(f"avcC configurationVersion {record[0]} is not 1")
    length_size = (record[4] & 0x03) + 1
    if length_size not in _LENGTH_SIZES:
        raise CodecError(f"avcC NAL length size {length_size} is invalid")
    sps_count = record[5] & 0x1F
    if sps_count == 0:
        raise CodecError("avcC has no SPS")
    sps, pos = _parameter_sets(record, 6, sps_count, NAL_TYPE_SPS)
    if pos >= len(record):
        raise CodecError("avcC is truncated")
    pps, _ = _parameter_sets(record, pos + 1, record[pos], NAL_TYPE_PPS)
    info = parse_sps(sps[0])
    return AvcConfig(
        profile_idc=record[1],
        profile_compat=record[2],
        level_idc=record[3],
        length_size=length_size,
        sps=sps,
        pps=pps,
        width=info.width,
        height=info.height,
    )


def normalize_avcc(record: bytes) -> bytes:
    """``record`` declaring 4-byte NAL lengths, to match :func:`to_length_prefixed` output."""
    if len(record) < 5:
        raise CodecError("avcC is truncated")
    if record[4] & 0x03 == 3:
        return record
    return b"".join((record[:4], bytes((record[4] | 0x03,)), record[5:]))


def codec_string(cfg: AvcConfig) -> str:
    """The RFC 6381 ``codecs`` value, ``avc1.PPCCLL`` (ISO/IEC 14496-15 E.3)."""
    return f"avc1.{cfg.profile_idc:02x}{cfg.profile_compat:02x}{cfg.level_idc:02x}"


def to_length_prefixed(data: bytes, length_size: int) -> bytes:
    """``data`` with every NAL unit length field rewritten to 4 bytes.

    ``data`` holds NAL units each prefixed by a ``length_size``-byte big-endian length
    (ISO/IEC 14496-15 5.3.2). When that is already 4 the same object is returned after
    checking that the lengths tile the data exactly; otherwise :class:`CodecError`.
    """
    end = len(data)
    pos = 0
    if length_size == 4:
        unpack = _U32.unpack_from
        while pos + 4 <= end:
            pos += 4 + unpack(data, pos)[0]
        if pos != end:
            raise CodecError("NAL unit length runs past the end of the frame")
        return data
    if length_size not in _LENGTH_SIZES:
        raise CodecError(f"NAL length size {length_size} is invalid")
    parts: list[bytes] = []
    pack = _U32.pack
    while pos + length_size <= end:
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        parts.append(pack(size))
        parts.append(data[pos : pos + size])
        pos += size
    if pos != end:
        raise CodecError("NAL unit length runs past the end of the frame")
    return b"".join(parts)


def annexb_to_avcc(data: bytes) -> bytes:
    """Convert an Annex B byte stream (start codes) to 4-byte length-prefixed NAL units.

    ISO/IEC 14496-10 B.2: a start code is ``00 00 01``, optionally preceded by zero bytes
    that belong to no NAL unit; trailing zero bytes of a NAL unit are stripped likewise
    (7.4.1: the last byte of a NAL unit is never zero). Empty NAL units are dropped.
    """
    start = data.find(b"\x00\x00\x01")
    if start < 0:
        raise CodecError("no Annex B start code")
    if data[:start].strip(b"\x00"):
        raise CodecError("data before the first Annex B start code")
    parts: list[bytes] = []
    pos = start + 3
    while True:
        nxt = data.find(b"\x00\x00\x01", pos)
        nal = data[pos : nxt if nxt >= 0 else len(data)].rstrip(b"\x00")
        if nal:
            parts.append(_U32.pack(len(nal)))
            parts.append(nal)
        if nxt < 0:
            return b"".join(parts)
        pos = nxt + 3


def avcc_to_annexb(data: bytes, prefix: bytes = b"") -> bytes:
    """4-byte length-prefixed NAL units as an Annex B byte stream (4-byte start codes),
    after ``prefix`` (Annex B already: parameter sets a receiver learns in band).
    The lengths must tile ``data``; :class:`CodecError` otherwise."""
    parts = [prefix]
    pos, end = 0, len(data)
    while pos + 4 <= end:
        size = _U32.unpack_from(data, pos)[0]
        parts += (_START_CODE, data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    if pos != end:
        raise CodecError("NAL unit length runs past the end of the frame")
    return b"".join(parts)


def annexb_parameter_sets(record: bytes) -> bytes:
    """An avcC record's SPS and PPS as Annex B, to put before an IDR."""
    cfg = parse_avcc(record)
    return b"".join(_START_CODE + nal for nal in cfg.sps + cfg.pps)


def build_avcc(sps: bytes, pps: bytes) -> bytes:
    """Build an AVCDecoderConfigurationRecord with 4-byte NAL lengths (14496-15 5.3.3.1.2).

    ``sps`` and ``pps`` are NAL units including their header byte, without start codes.
    """
    info = parse_sps(sps)
    if not pps or pps[0] & 0x1F != NAL_TYPE_PPS:
        raise CodecError("not a PPS NAL unit")
    if len(sps) > 0xFFFF or len(pps) > 0xFFFF:
        raise CodecError("parameter set is too large for avcC")
    parts = [
        bytes((1, sps[1], sps[2], sps[3], 0xFC | 3, 0xE0 | 1)),
        _U16.pack(len(sps)),
        sps,
        b"\x01",
        _U16.pack(len(pps)),
        pps,
    ]
    if info.profile_idc in _AVCC_EXTENSION_PROFILES:
        parts.append(
            bytes(
                (
                    0xFC | info.chroma_format_idc,
                    0xF8 | (info.bit_depth_luma - 8),
                    0xF8 | (info.bit_depth_chroma - 8),
                    0,  # numOfSequenceParameterSetExt
                )
            )
        )
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class AccessUnitScan:
    """What the NAL unit headers of one access unit say."""

    #: holds an IDR slice: a random access point
    idr: bool
    #: the first SPS and PPS carried in-band, if any
    sps: bytes | None
    pps: bytes | None


def scan_access_unit(data: bytes) -> AccessUnitScan:
    """Scan an access unit of 4-byte length-prefixed NAL units (no copies but the
    parameter sets). Lengths must tile ``data``, as :func:`to_length_prefixed` checks."""
    idr = False
    sps = pps = None
    pos, end = 0, len(data)
    unpack = _U32.unpack_from
    while pos + 4 < end:
        size = unpack(data, pos)[0]
        nal_type = data[pos + 4] & 0x1F
        if nal_type == NAL_TYPE_IDR:
            idr = True
        elif nal_type == NAL_TYPE_SPS and sps is None:
            sps = data[pos + 4 : pos + 4 + size]
        elif nal_type == NAL_TYPE_PPS and pps is None:
            pps = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return AccessUnitScan(idr, sps, pps)


def avcc_from_extradata(extradata: bytes) -> bytes:
    """An avcC record with 4-byte NAL lengths from an H.264 encoder's extradata.

    libx264 with the global header flag gives Annex B SPS and PPS (and sometimes an SEI,
    which avcC has no room for); other encoders give an avcC record already.
    """
    if not extradata:
        raise CodecError("the encoder gave no SPS/PPS")
    if extradata[0] == 1:
        parse_avcc(extradata)
        return normalize_avcc(extradata)
    scan = scan_access_unit(annexb_to_avcc(extradata))
    if scan.sps is None or scan.pps is None:
        raise CodecError("the encoder's extradata lacks an SPS or a PPS")
    return build_avcc(scan.sps, scan.pps)
