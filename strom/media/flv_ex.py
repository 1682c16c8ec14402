"""Enhanced RTMP extended headers: the layout around a FourCC in VIDEODATA and AUDIODATA.

References: Enhanced RTMP v2 (veovera, "enhanced-rtmp-v2"), ExVideoTagHeader and
ExAudioTagHeader: the first byte's low nibble is the packet type; a ``ModEx`` packet type
wraps modifier data before the real one; a ``Multitrack`` packet type carries one or more
tracks, each with its id (0 is the default track) and, but for ``OneTrack``, its size.

:func:`video_packets` and :func:`audio_packets` undo that layout into :class:`ExPacket`
records, one per track; :class:`~strom.media.flv.FlvDemuxer` reads their bodies. Sans-IO,
and each raises :class:`~strom.errors.FlvError` on a payload that does not fit its header.
"""

from __future__ import annotations

from typing import NamedTuple

from strom.errors import FlvError

# VideoPacketType (Enhanced RTMP v2).
VIDEO_SEQUENCE_START = 0
VIDEO_CODED_FRAMES = 1
VIDEO_SEQUENCE_END = 2
VIDEO_CODED_FRAMES_X = 3  # no composition time: it is 0
VIDEO_METADATA = 4  # HDR colour information (AMF)
VIDEO_MPEG2TS_SEQUENCE_START = 5  # AV1 only: an MPEG-2 TS descriptor, not an av1C
VIDEO_MULTITRACK = 6
# AudioPacketType (Enhanced RTMP v2).
AUDIO_SEQUENCE_START = 0
AUDIO_CODED_FRAMES = 1
AUDIO_SEQUENCE_END = 2
AUDIO_MULTICHANNEL_CONFIG = 4
AUDIO_MULTITRACK = 5
MOD_EX = 7  # both: modifier extension data, then the real packet type

# AvMultitrackType (the high nibble after a Multitrack packet type).
ONE_TRACK = 0
MANY_TRACKS = 1
MANY_TRACKS_MANY_CODECS = 2

#: A publisher gains nothing from a chain of ModEx wrappers: a few is plenty.
_MAX_MOD_EX = 4


class ExPacket(NamedTuple):
    """One track's packet of an enhanced VIDEODATA or AUDIODATA payload. (A named tuple:
    one is made per media message, and a frozen dataclass costs a microsecond more.)"""

    packet_type: int
    #: The codec's FourCC as sent, e.g. ``"hvc1"`` or ``"Opus"`` (Latin-1 decoded).
    fourcc: str
    #: 0 is the default track; other ids are further tracks of a multitrack payload.
    track_id: int
    #: The whole payload; this packet's body is ``data[start:end]``: for ``avc1``/``hvc1``
    #: coded frames, the composition time (SI24) and then the NAL units. (Offsets, not a
    #: slice, so that a frame is copied once, by the demuxer, past what it skips.)
    data: bytes
    start: int
    end: int

    @property
    def body(self) -> bytes:
        return self.data[self.start : self.end]


def _fourcc(payload: bytes, pos: int, kind: str) -> str:
    if pos + 4 > len(payload):
        raise FlvError(f"Enhanced RTMP {kind} payload is truncated (no FourCC)")
    return payload[pos : pos + 4].decode("latin-1")


def _skip_mod_ex(payload: bytes, kind: str) -> tuple[int, int]:
    """Skip the ModEx wrappers after the first byte: ``(position, real packet type)``.

    Each is ``[size-1: UI8 (UI16 when that is 255)] data [ModExType:4 | PacketType:4]``;
    the only ModEx type defined (a nanosecond timestamp offset) does not matter at the
    millisecond precision Strom keeps, so the data is skipped."""
    pos = 1
    for _ in range(_MAX_MOD_EX):
        if pos + 1 > len(payload):
            break
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            if pos + 2 > len(payload):
                break
            size = int.from_bytes(payload[pos : pos + 2], "big") + 1
            pos += 2
        pos += size
        if pos + 1 > len(payload):
            break
        packet_type = payload[pos] & 0x0F
        pos += 1
        if packet_type != MOD_EX:
            return pos, packet_type
    else:
        raise FlvError(f"Enhanced RTMP {kind} payload nests more than {_MAX_MOD_EX} ModEx")
    raise FlvError(f"Enhanced RTMP {kind} ModEx data is truncated")


def _packets(payload: bytes, multitrack: int, kind: str) -> list[ExPacket]:
    packet_type = payload[0] & 0x0F
    pos = 1
    if packet_type == MOD_EX:
        pos, packet_type = _skip_mod_ex(payload, kind)
    if packet_type != multitrack:
        fourcc = _fourcc(payload, pos, kind)
        return [ExPacket(packet_type, fourcc, 0, payload, pos + 4, len(payload))]
    if pos + 1 > len(payload):
        raise FlvError(f"Enhanced RTMP multitrack {kind} payload is truncated")
    layout, packet_type = payload[pos] >> 4, payload[pos] & 0x0F
    pos += 1
    if layout > MANY_TRACKS_MANY_CODECS:
        raise FlvError(f"Enhanced RTMP multitrack type {layout} is unknown")
    if packet_type in (multitrack, MOD_EX):
        raise FlvError(f"Enhanced RTMP multitrack {kind} packet type {packet_type} is invalid")
    fourcc = ""
    if layout != MANY_TRACKS_MANY_CODECS:
        fourcc = _fourcc(payload, pos, kind)
        pos += 4
    packets = []
    while pos < len(payload):
        if layout == MANY_TRACKS_MANY_CODECS:
            fourcc = _fourcc(payload, pos, kind)
            pos += 4
        if pos + 1 > len(payload):
            raise FlvError(f"Enhanced RTMP multitrack {kind} payload is truncated")
        track_id = payload[pos]
        pos += 1
        if layout == ONE_TRACK:
            packets.append(ExPacket(packet_type, fourcc, track_id, payload, pos, len(payload)))
            break
        if pos + 3 > len(payload):
            raise FlvError(f"Enhanced RTMP multitrack {kind} payload is truncated")
        size = int.from_bytes(payload[pos : pos + 3], "big")
        pos += 3
        if pos + size > len(payload):
            raise FlvError(f"Enhanced RTMP {kind} track {track_id} runs past the payload")
        packets.append(ExPacket(packet_type, fourcc, track_id, payload, pos, pos + size))
        pos += size
    return packets


def video_packets(payload: bytes) -> list[ExPacket]:
    """The packets of an enhanced VIDEODATA payload (``payload[0] & 0x80`` set); the
    frame type is the first byte's bits 4-6, the same for every track."""
    return _packets(payload, VIDEO_MULTITRACK, "video")


def audio_packets(payload: bytes) -> list[ExPacket]:
    """The packets of an enhanced AUDIODATA payload (SoundFormat 9, ``ExHeader``)."""
    return _packets(payload, AUDIO_MULTITRACK, "audio")
