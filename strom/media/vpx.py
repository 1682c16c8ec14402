"""VP8 and VP9: keyframes and picture sizes from the frame headers, and VP9's ``vpcC``.

References: RFC 6386 9.1 (the VP8 frame tag and key frame start code), the VP9 Bitstream
Specification v0.6 6.2 (uncompressed header) and Annex A (levels), and "VP Codec ISO
Media File Format Binding" v1.0 2.3 (VPCodecConfigurationRecord, version 1) and the
codecs parameter ``vp09.PP.LL.DD`` of its section 5.

Matroska and MediaRecorder carry no VP9 configuration (or a few "codec features" that
say less than the first keyframe), so Strom derives the record from the keyframe.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.bits import BitReader

CODEC_STRING_VP8 = "vp8"

_VP8_START_CODE = b"\x9d\x01\x2a"
_VP9_SYNC_CODE = 0x498342
_VP9_FRAME_MARKER = 2
_VP9_CS_RGB = 7
#: VP9 color_space (6.2.2) -> ISO/IEC 23091-2 MatrixCoefficients for the vpcC record
#: (unknown, BT.601, BT.709, SMPTE 170M, SMPTE 240M, BT.2020 NCL, reserved, sRGB).
_MATRIX = (2, 5, 1, 6, 7, 9, 2, 0)
_UNSPECIFIED = 2
#: vpcC chromaSubsampling: 4:2:0 (sited "vertical", the VP9 default), 4:2:2, 4:4:0,
#: 4:4:4. Indexed by (subsampling_x, subsampling_y).
_SUBSAMPLING = {(1, 1): 0, (1, 0): 2, (0, 1): 2, (0, 0): 3}
#: VP9 Annex A: (level, max luma picture size, max luma sample rate), smallest first.
_LEVELS = (
    (10, 36_864, 829_440),
    (11, 73_728, 2_764_800),
    (20, 122_880, 4_608_000),
    (21, 245_760, 9_216_000),
    (30, 552_960, 20_736_000),
    (31, 983_040, 36_864_000),
    (40, 2_228_224, 83_558_400),
    (41, 2_228_224, 160_432_128),
    (50, 8_912_896, 311_951_360),
    (51, 8_912_896, 588_251_136),
    (52, 8_912_896, 1_176_502_272),
    (60, 35_651_584, 1_176_502_272),
    (61, 35_651_584, 2_353_004_544),
    (62, 35_651_584, 4_706_009_088),
)
VP9_LEVELS = frozenset(level for level, _, _ in _LEVELS)
#: Frame rate assumed when choosing a level: a live frame's rate is not known up front.
_ASSUMED_FRAME_RATE = 30
_VPCC = struct.Struct(">BBBBBBH")


def vp8_is_keyframe(frame: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 on a key frame."""
    return bool(frame) and not frame[0] & 1


def vp8_picture_size(frame: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame header (RFC 6386 9.1), scaling bits dropped."""
    if len(frame) < 10 or frame[3:6] != _VP8_START_CODE or not vp8_is_keyframe(frame):
        raise CodecError("not a VP8 key frame")
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


@dataclass(frozen=True, slots=True)
class Vp9Header:
    """What a VP9 frame's uncompressed header says (6.2), as far as Strom reads it."""

    profile: int
    keyframe: bool
    #: the rest is known only for a key frame (zeros otherwise)
    bit_depth: int = 0
    color_space: int = 0
    full_range: bool = False
    subsampling: tuple[int, int] = (1, 1)
    width: int = 0
    height: int = 0


def parse_vp9_header(frame: bytes) -> Vp9Header:
    """The uncompressed header of the first frame in ``frame`` (a superframe's frames are
    in decode order, so the first one is the key frame when there is one)."""
    r = BitReader(frame[:16], "VP9 frame header")
    if r.u(2) != _VP9_FRAME_MARKER:
        raise CodecError("not a VP9 frame (bad frame marker)")
    profile = r.u(1) | r.u(1) << 1
    if profile == 3:
        r.u(1)  # reserved_zero
    if r.flag():  # show_existing_frame: a repeat of a decoded frame, never a key frame
        return Vp9Header(profile, keyframe=False)
    if r.u(1) != 0:  # frame_type: 0 is KEY_FRAME
        return Vp9Header(profile, keyframe=False)
    r.u(2)  # show_frame, error_resilient_mode
    if r.u(24) != _VP9_SYNC_CODE:
        raise CodecError("VP9 key frame has no sync code")
    # 6.2.2 color_config()
    bit_depth = (12 if r.flag() else 10) if profile >= 2 else 8
    color_space = r.u(3)
    if color_space != _VP9_CS_RGB:
        full_range = r.flag()
        subsampling = (r.u(1), r.u(1)) if profile in (1, 3) else (1, 1)
        if profile in (1, 3):
            r.u(1)  # reserved_zero
    else:
        full_range, subsampling = True, (0, 0)
        if profile in (1, 3):
            r.u(1)
    width = r.u(16) + 1
    height = r.u(16) + 1
    return Vp9Header(profile, True, bit_depth, color_space, full_range, subsampling, width, height)


def vp9_level(width: int, height: int) -> int:
    """The smallest VP9 level (Annex A) for the picture size at 30 frames a second."""
    size = width * height
    for level, max_size, max_rate in _LEVELS:
        if size <= max_size and size * _ASSUMED_FRAME_RATE <= max_rate:
            return level
    return _LEVELS[-1][0]


def build_vpcc(header: Vp9Header, level: int | None = None) -> bytes:
    """A version-1 VPCodecConfigurationRecord (2.3) for a key frame ``header``."""
    if not header.keyframe:
        raise CodecError("a VP9 configuration needs a key frame")
    if level is None:
        level = vp9_level(header.width, header.height)
    chroma = _SUBSAMPLING[header.subsampling]
    matrix = _MATRIX[header.color_space]
    return _VPCC.pack(
        header.profile,
        level,
        header.bit_depth << 4 | chroma << 1 | int(header.full_range),
        _UNSPECIFIED,  # colourPrimaries
        _UNSPECIFIED,  # transferCharacteristics
        matrix,
        0,  # codecIntializationDataSize: must be 0 for VP9
    )


@dataclass(frozen=True, slots=True)
class VpcConfig:
    profile: int
    level: int
    bit_depth: int


def parse_vpcc(record: bytes) -> VpcConfig:
    """Parse a version-1 VPCodecConfigurationRecord (the ``vpcC`` body after version and
    flags)."""
    if len(record) < _VPCC.size:
        raise CodecError("vpcC is truncated")
    profile, level, depth_byte = record[0], record[1], record[2]
    bit_depth = depth_byte >> 4
    if profile > 3 or bit_depth not in (8, 10, 12):
        raise CodecError(f"vpcC profile {profile} / bit depth {bit_depth} is invalid")
    return VpcConfig(profile, level, bit_depth)


def vp9_codec_string(record: bytes) -> str:
    """``vp09.PP.LL.DD`` (the short form: the optional fields keep their defaults)."""
    cfg = parse_vpcc(record)
    return f"vp09.{cfg.profile:02d}.{cfg.level:02d}.{cfg.bit_depth:02d}"


def matroska_vp9_level(private: bytes) -> int | None:
    """The level in a Matroska VP9 CodecPrivate ("codec feature" ID 2), if it has one.

    WebM's VP9 CodecPrivate is a list of (ID, length, value) byte triples: 1 profile,
    2 level, 3 bit depth, 4 chroma subsampling.
    """
    pos = 0
    while pos + 2 <= len(private):
        feature, length = private[pos], private[pos + 1]
        value = private[pos + 2 : pos + 2 + length]
        if feature == 2 and length == 1 and len(value) == 1:
            return value[0]
        pos += 2 + length
    return None
