"""Opus configuration: Matroska's/Ogg's ``OpusHead`` and ISO BMFF's ``dOps``, and the
duration of a packet from its TOC byte.

References: RFC 7845 5.1 (the identification header, little-endian, "OpusHead"),
"Encapsulation of Opus in ISO Base Media File Format" 4.3.2 (``dOps``, the same fields
big-endian, version 0), RFC 6716 3.1 (the TOC byte) and 3.2.5 (code 3 frame count).
Opus always decodes at 48 kHz, whatever rate the encoder was fed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.errors import CodecError

#: Opus output rate: every timestamp of an Opus track in ISO BMFF counts 48 kHz samples.
SAMPLE_RATE = 48_000
CODEC_STRING = "opus"

_OPUS_HEAD = b"OpusHead"
_HEAD = struct.Struct("<BBHIhB")  # version, channels, pre-skip, input rate, gain, family
_DOPS = struct.Struct(">BBHIhB")
#: RFC 6716 3.1: samples at 48 kHz per frame for each TOC config (0-31).
_FRAME_SAMPLES = (
    (480, 960, 1920, 2880) * 3  # SILK-only, NB/MB/WB: 10, 20, 40, 60 ms
    + (480, 960) * 2  # hybrid, SWB/FB: 10, 20 ms
    + (120, 240, 480, 960) * 4  # CELT-only: 2.5, 5, 10, 20 ms
)
#: RFC 6716 3.2.5: a packet holds at most 120 ms of audio.
_MAX_PACKET_SAMPLES = 5760


@dataclass(frozen=True, slots=True)
class OpusConfig:
    """The fields both headers share."""

    channels: int
    pre_skip: int
    input_sample_rate: int
    output_gain: int
    mapping_family: int
    #: stream count, coupled count and channel mapping (empty for family 0)
    mapping: bytes = b""


def _check(cfg: OpusConfig) -> OpusConfig:
    if cfg.channels == 0:
        raise CodecError("Opus header declares no channels")
    if cfg.mapping_family == 0:
        if cfg.channels > 2:
            raise CodecError("Opus mapping family 0 carries at most 2 channels")
    elif len(cfg.mapping) != 2 + cfg.channels:
        raise CodecError("Opus channel mapping table is truncated")
    return cfg


def parse_opus_head(head: bytes) -> OpusConfig:
    """Parse an ``OpusHead`` identification header (RFC 7845 5.1), as Matroska's
    ``A_OPUS`` CodecPrivate carries it."""
    if not head.startswith(_OPUS_HEAD) or len(head) < len(_OPUS_HEAD) + _HEAD.size:
        raise CodecError("not an OpusHead header")
    version, channels, pre_skip, rate, gain, family = _HEAD.unpack_from(head, 8)
    if version >> 4:  # 5.1: the major version (upper nibble) must be 0
        raise CodecError(f"OpusHead version {version} is not supported")
    mapping = head[8 + _HEAD.size :][: 2 + channels] if family else b""
    return _check(OpusConfig(channels, pre_skip, rate, gain, family, mapping))


def parse_dops(body: bytes) -> OpusConfig:
    """Parse an OpusSpecificBox body (``dOps``, after the box header)."""
    if len(body) < _DOPS.size:
        raise CodecError("dOps is truncated")
    version, channels, pre_skip, rate, gain, family = _DOPS.unpack_from(body)
    if version != 0:
        raise CodecError(f"dOps version {version} is not 0")
    mapping = body[_DOPS.size :][: 2 + channels] if family else b""
    return _check(OpusConfig(channels, pre_skip, rate, gain, family, mapping))


def build_dops(cfg: OpusConfig) -> bytes:
    """The ``dOps`` body for ``cfg`` (what :attr:`Track.config` holds for Opus)."""
    fields = (0, cfg.channels, cfg.pre_skip, cfg.input_sample_rate, cfg.output_gain)
    return _DOPS.pack(*fields, cfg.mapping_family) + cfg.mapping


def dops_from_opus_head(head: bytes) -> bytes:
    return build_dops(parse_opus_head(head))


def packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) one Opus packet decodes to, from its TOC byte (RFC 6716 3.1)."""
    if not packet:
        raise CodecError("empty Opus packet")
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            raise CodecError("Opus code 3 packet is truncated")
        count = packet[1] & 0x3F
    samples = per_frame * count
    if not 0 < samples <= _MAX_PACKET_SAMPLES:
        raise CodecError(f"Opus packet of {count} frames is invalid")
    return samples
