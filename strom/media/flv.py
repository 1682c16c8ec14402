"""FLV: audio/video tag payloads (what RTMP message types 8 and 9 carry) and FLV streams.

References: Adobe Flash Video File Format Specification v10.1, Annex E (E.2 header, E.3
body, E.4.2.1 AUDIODATA/AACAUDIODATA, E.4.3.1 VIDEODATA/AVCVIDEOPACKET), and Enhanced
RTMP (veovera, v1/v2) for the extended video/audio header with a FourCC.

:class:`FlvDemuxer` turns payloads into the neutral vocabulary of
:mod:`strom.media.model`; ``video_*``/``audio_*`` turn it back into payloads for RTMP
play; :class:`FlvReader` splits an FLV file or HTTP stream into tags. All sans-IO.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strom.errors import CodecError, FlvError, LimitExceeded, LocalProtocolError, ProtocolError
from strom.media import h264, tracks
from strom.media.model import (
    AUDIO_TRACK_ID,
    VIDEO_TRACK_ID,
    Codec,
    Frame,
    Track,
    TrackKind,
)
from strom.media.timeline import WrappingClock

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
_TAG_TYPES = frozenset({TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT})

#: Default bound on one audio/video payload, and on one FLV tag. A 4K keyframe at a high
#: bitrate is a few MB; FLV itself cannot exceed 16 MiB (a 24-bit DataSize).
DEFAULT_MAX_PAYLOAD_SIZE = 8 * 1024 * 1024
DEFAULT_MAX_TAG_SIZE = 8 * 1024 * 1024

_MS = 1000  # FLV and RTMP timestamps are milliseconds (E.4.1)

# E.4.3.1 VIDEODATA: FrameType (high nibble) and CodecID (low nibble).
_FRAME_KEY = 1
_FRAME_INTER = 2
_FRAME_COMMAND = 5  # "video info/command frame": no picture
_CODEC_AVC = 7
_VIDEO_CODECS = {
    1: "JPEG",
    2: "Sorenson H.263",
    3: "Screen video",
    4: "On2 VP6",
    5: "On2 VP6 with alpha",
    6: "Screen video v2",
    7: "AVC",
    12: "HEVC (non-standard codec id)",
    13: "AV1 (non-standard codec id)",
}
# AVCPacketType, and Enhanced RTMP VideoPacketType/AudioPacketType (same first values).
_SEQUENCE_HEADER = 0
_CODED_FRAMES = 1
_END_OF_SEQUENCE = 2
_CODED_FRAMES_X = 3  # Enhanced RTMP: coded frames without a composition time
_METADATA = 4  # Enhanced RTMP: HDR metadata (video) / multichannel config (audio)
_EX_VIDEO_HEADER = 0x80  # Enhanced RTMP: IsExHeader bit of the first VIDEODATA byte
#: Enhanced RTMP packet types that change the layout before the FourCC (v2):
#: video Multitrack 6 / ModEx 7, audio Multitrack 5 / ModEx 7.
_EX_VIDEO_UNSUPPORTED = {6: "multitrack", 7: "ModEx"}
_EX_AUDIO_UNSUPPORTED = {5: "multitrack", 7: "ModEx"}

# E.4.2.1 AUDIODATA: SoundFormat (high nibble).
_SOUND_AAC = 10
_SOUND_EX_HEADER = 9  # Enhanced RTMP v2: a FourCC follows
_SOUND_FORMATS = {
    0: "Linear PCM, platform endian",
    1: "ADPCM",
    2: "MP3",
    3: "Linear PCM, little endian",
    4: "Nellymoser 16 kHz mono",
    5: "Nellymoser 8 kHz mono",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    10: "AAC",
    11: "Speex",
    14: "MP3 8 kHz",
    15: "device-specific sound",
}
#: E.4.2.1: with AAC, SoundRate/SoundSize/SoundType are always 3/1/1 (the player ignores them).
_AAC_FLAGS = (_SOUND_AAC << 4) | 0x0F
_AAC_SEQUENCE_PREFIX = bytes((_AAC_FLAGS, _SEQUENCE_HEADER))
_AAC_RAW_PREFIX = bytes((_AAC_FLAGS, _CODED_FRAMES))

_SI24_MIN, _SI24_MAX = -(1 << 23), (1 << 23) - 1


class PayloadTooLarge(FlvError, LimitExceeded):
    """An audio/video payload beyond the configured size bound."""


def _si24(payload: bytes, pos: int) -> int:
    value = (payload[pos] << 16) | (payload[pos + 1] << 8) | payload[pos + 2]
    return value - (1 << 24) if value & 0x800000 else value


def _fourcc(payload: bytes) -> str:
    return payload[1:5].decode("latin-1")


class FlvDemuxer:
    """Turns FLV audio/video payloads into :class:`Track` and :class:`Frame` events.

    Timestamps are FLV/RTMP milliseconds, so tracks get ``timescale=1000``. A sequence
    header yields a :class:`Track` when it differs from the previous one; coded frames
    before any sequence header cannot be decoded and are counted in :attr:`skipped_frames`.
    """

    def __init__(self, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE) -> None:
        self.max_payload_size = max_payload_size
        #: Coded frames dropped because their track had no sequence header yet.
        self.skipped_frames = 0
        self._avcc: bytes | None = None  # as received, to recognise a repeat
        self._length_size = 4
        self._asc: bytes | None = None
        # RTMP 1.0 section 4: adjacent timestamps are within 2^31 - 1 ms; larger jumps wrapped.
        self._timeline = WrappingClock(32)

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self.max_payload_size:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_size}"
            )

    # -- video ----------------------------------------------------------------------------

    def video(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        """Demux one VIDEODATA payload (E.4.3.1, or the Enhanced RTMP extended header)."""
        if not payload:
            return []
        self._check_size(payload)
        first = payload[0]
        if first & _EX_VIDEO_HEADER:
            return self._enhanced_video(timestamp, payload)
        frame_type, codec_id = first >> 4, first & 0x0F
        if frame_type == _FRAME_COMMAND:
            return []
        if codec_id != _CODEC_AVC:
            name = _VIDEO_CODECS.get(codec_id, "unknown")
            raise FlvError(
                f"unsupported video codec id {codec_id} ({name}); Strom accepts H.264 (AVC)"
            )
        if len(payload) < 2:
            raise FlvError("AVC video payload is truncated")
        packet_type = payload[1]
        if packet_type == _END_OF_SEQUENCE:
            return []
        if len(payload) < 5:
            raise FlvError("AVC video payload is truncated")
        if packet_type == _SEQUENCE_HEADER:
            return self._avc_sequence_header(payload[5:])
        if packet_type == _CODED_FRAMES:
            cts = _si24(payload, 2)
            return self._avc_frame(timestamp, cts, frame_type == _FRAME_KEY, payload[5:])
        raise FlvError(f"unknown AVCPacketType {packet_type}")

    def _enhanced_video(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        # Enhanced RTMP: [IsExHeader|FrameType(3)|PacketType(4)] FourCC [body].
        frame_type, packet_type = (payload[0] >> 4) & 0x07, payload[0] & 0x0F
        if frame_type == _FRAME_COMMAND and packet_type != _METADATA:
            return []
        if packet_type in _EX_VIDEO_UNSUPPORTED:
            kind = _EX_VIDEO_UNSUPPORTED[packet_type]
            raise FlvError(f"Enhanced RTMP {kind} video is not supported")
        if len(payload) < 5:
            raise FlvError("Enhanced RTMP video payload is truncated")
        fourcc = _fourcc(payload)
        if fourcc != "avc1":
            raise FlvError(
                f"unsupported video codec {fourcc!r} (Enhanced RTMP); Strom accepts H.264 (avc1)"
            )
        if packet_type == _SEQUENCE_HEADER:
            return self._avc_sequence_header(payload[5:])
        if packet_type == _CODED_FRAMES:
            if len(payload) < 8:
                raise FlvError("Enhanced RTMP video payload is truncated")
            cts = _si24(payload, 5)
            return self._avc_frame(timestamp, cts, frame_type == _FRAME_KEY, payload[8:])
        if packet_type == _CODED_FRAMES_X:
            return self._avc_frame(timestamp, 0, frame_type == _FRAME_KEY, payload[5:])
        if packet_type in (_END_OF_SEQUENCE, _METADATA):
            return []
        raise FlvError(f"unsupported Enhanced RTMP video packet type {packet_type}")

    def _avc_sequence_header(self, record: bytes) -> list[Track | Frame]:
        if record == self._avcc:
            return []
        # CodecError on a malformed record; frames are normalised to 4-byte NAL lengths,
        # and the track's record says so.
        track, self._length_size = tracks.h264_track(record, _MS)
        self._avcc = record
        return [track]

    def _avc_frame(
        self, timestamp: int, cts: int, keyframe: bool, data: bytes
    ) -> list[Track | Frame]:
        if self._avcc is None:
            self.skipped_frames += 1
            return []
        try:
            data = h264.to_length_prefixed(data, self._length_size)
        except CodecError as exc:
            raise FlvError(f"malformed AVC frame: {exc}") from exc
        if not data:
            return []
        dts = self._timeline.extend(timestamp)
        return [Frame(VIDEO_TRACK_ID, dts, dts + cts, keyframe, data)]

    # -- audio ----------------------------------------------------------------------------

    def audio(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        """Demux one AUDIODATA payload (E.4.2.1, or the Enhanced RTMP v2 extended header)."""
        if not payload:
            return []  # some encoders send empty audio messages
        self._check_size(payload)
        sound_format = payload[0] >> 4
        if sound_format == _SOUND_AAC:
            if len(payload) < 2:
                raise FlvError("AAC audio payload is truncated")
            packet_type, body = payload[1], payload[2:]
        elif sound_format == _SOUND_EX_HEADER:
            # Enhanced RTMP v2: [SoundFormat=9|AudioPacketType(4)] FourCC [body].
            packet_type = payload[0] & 0x0F
            if packet_type in _EX_AUDIO_UNSUPPORTED:
                kind = _EX_AUDIO_UNSUPPORTED[packet_type]
                raise FlvError(f"Enhanced RTMP {kind} audio is not supported")
            if len(payload) < 5:
                raise FlvError("Enhanced RTMP audio payload is truncated")
            fourcc = _fourcc(payload)
            if fourcc != "mp4a":
                raise FlvError(
                    f"unsupported audio codec {fourcc!r} (Enhanced RTMP); Strom accepts AAC"
                )
            body = payload[5:]
        else:
            name = _SOUND_FORMATS.get(sound_format, "unknown")
            raise FlvError(
                f"unsupported audio codec {name} (SoundFormat {sound_format}); Strom accepts AAC"
            )
        if packet_type == _SEQUENCE_HEADER:
            return self._aac_sequence_header(body)
        if packet_type == _CODED_FRAMES:
            return self._aac_frame(timestamp, body)
        if packet_type in (_END_OF_SEQUENCE, _METADATA) and sound_format == _SOUND_EX_HEADER:
            return []
        raise FlvError(f"unknown AAC packet type {packet_type}")

    def _aac_sequence_header(self, asc: bytes) -> list[Track | Frame]:
        if asc == self._asc:
            return []
        track = tracks.aac_track(asc, _MS)  # CodecError on a malformed config
        self._asc = asc
        return [track]

    def _aac_frame(self, timestamp: int, data: bytes) -> list[Track | Frame]:
        if self._asc is None:
            self.skipped_frames += 1
            return []
        if not data:
            return []
        dts = self._timeline.extend(timestamp)
        return [Frame(AUDIO_TRACK_ID, dts, dts, True, data)]


# -- muxing: neutral vocabulary -> payloads for RTMP play ---------------------------------

#: The codecs classic FLV (and so RTMP play) carries.
FLV_CODECS = frozenset({Codec.H264, Codec.AAC})


def can_carry(track: Track) -> bool:
    """Can FLV carry ``track``? (VP9, AV1 and Opus need Enhanced RTMP, which players
    such as ffplay and VLC of this vintage do not speak.)"""
    return track.codec in FLV_CODECS


def video_sequence_header(track: Track) -> bytes:
    """The AVC sequence header payload (AVCPacketType 0) carrying ``track.config``."""
    return bytes((_FRAME_KEY << 4 | _CODEC_AVC, _SEQUENCE_HEADER, 0, 0, 0)) + track.config


def video_frame(frame: Frame) -> bytes:
    """An AVC NALU payload (AVCPacketType 1) for ``frame``, timestamps in milliseconds.

    The composition time is ``pts - dts`` (E.4.3.1 CompositionTime, signed 24 bits).
    """
    cts = frame.pts - frame.dts
    if not _SI24_MIN <= cts <= _SI24_MAX:
        raise LocalProtocolError(f"composition time {cts} ms does not fit FLV's 24 bits")
    first = (_FRAME_KEY if frame.keyframe else _FRAME_INTER) << 4 | _CODEC_AVC
    header = ((first << 32) | (_CODED_FRAMES << 24) | (cts & 0xFFFFFF)).to_bytes(5, "big")
    return header + frame.data


def audio_sequence_header(track: Track) -> bytes:
    """The AAC sequence header payload (AACPacketType 0) carrying ``track.config``."""
    return _AAC_SEQUENCE_PREFIX + track.config


def audio_frame(track: Track, frame: Frame) -> bytes:
    """A raw AAC payload (AACPacketType 1) for ``frame`` of ``track``.

    The flags byte is the same for every AAC track (E.4.2.1), so ``track`` only checks
    that the frame belongs to an AAC track.
    """
    if track.codec is not Codec.AAC:
        raise LocalProtocolError(f"FLV audio needs AAC, not {track.codec.value}")
    return _AAC_RAW_PREFIX + frame.data


def metadata(tracks: Iterable[Track], framerate: float | None = None) -> dict[str, object]:
    """``onMetaData`` values for players (E.5): sizes, frame rate (when known: GStreamer's
    caps and some players need it), codec ids, audio format."""
    values: dict[str, object] = {"duration": 0.0, "encoder": "Strom"}
    for track in tracks:
        if track.kind is TrackKind.VIDEO:
            values["width"] = float(track.width)
            values["height"] = float(track.height)
            if framerate:
                values["framerate"] = float(framerate)
            values["videocodecid"] = float(_CODEC_AVC)
        else:
            values["audiocodecid"] = float(_SOUND_AAC)
            values["audiosamplerate"] = float(track.sample_rate)
            values["audiosamplesize"] = 16.0
            values["audiochannels"] = float(track.channels)
            values["stereo"] = track.channels >= 2
    return values


# -- FLV files and streams -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlvHeader:
    """The FLV file header (E.2)."""

    version: int
    has_audio: bool
    has_video: bool


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLV tag (E.4.1): its type (8 audio, 9 video, 18 script data) and payload."""

    tag_type: int
    #: Milliseconds, with TimestampExtended as the upper 8 bits.
    timestamp: int
    payload: bytes


_HEADER_SIZE = 9
_MAX_HEADER_SIZE = 1024  # DataOffset beyond this is not a real FLV header
_TAG_HEADER_SIZE = 11
_PREVIOUS_TAG_SIZE = 4
_U32 = struct.Struct(">I")
_TAG_FILTER = 0x20  # E.4.1: the tag is encrypted
_TAG_RESERVED = 0xC0


class FlvReader:
    """Splits an FLV file or stream into tags, sans-IO (E.2 header, E.3 body).

    Feed bytes as they arrive, in any split. After an error the reader stays unusable.
    """

    def __init__(self, max_tag_size: int = DEFAULT_MAX_TAG_SIZE) -> None:
        self.max_tag_size = max_tag_size
        #: The file header, once it has been read.
        self.header: FlvHeader | None = None
        self._buf = bytearray()
        self._step: Callable[[list[FlvTag]], bool] = self._read_header

    def feed(self, data: bytes) -> list[FlvTag]:
        """Buffer ``data`` and return every tag it completes."""
        self._buf += data
        tags: list[FlvTag] = []
        try:
            while self._step(tags):
                pass
        except ProtocolError:
            self._step = self._failed
            raise
        return tags

    def _failed(self, tags: list[FlvTag]) -> bool:
        raise LocalProtocolError("FlvReader.feed() called after the stream failed")

    def _read_header(self, tags: list[FlvTag]) -> bool:
        buf = self._buf
        if buf[:3] != b"FLV"[: len(buf)]:
            raise FlvError("not an FLV stream (no 'FLV' signature)")
        if len(buf) < _HEADER_SIZE:
            return False
        (data_offset,) = _U32.unpack_from(buf, 5)
        if not _HEADER_SIZE <= data_offset <= _MAX_HEADER_SIZE:
            raise FlvError(f"FLV header DataOffset {data_offset} is invalid")
        # The header is followed by PreviousTagSize0 (E.3), always 0.
        if len(buf) < data_offset + _PREVIOUS_TAG_SIZE:
            return False
        flags = buf[4]
        self.header = FlvHeader(
            version=buf[3], has_audio=bool(flags & 4), has_video=bool(flags & 1)
        )
        del buf[: data_offset + _PREVIOUS_TAG_SIZE]
        self._step = self._read_tags
        return True

    def _read_tags(self, tags: list[FlvTag]) -> bool:
        buf = self._buf
        pos = 0
        end = len(buf)
        unpack = _U32.unpack_from
        while end - pos >= _TAG_HEADER_SIZE:
            word = unpack(buf, pos)[0]
            kind, size = word >> 24, word & 0xFFFFFF
            if kind & _TAG_RESERVED or kind & 0x1F not in _TAG_TYPES:
                raise FlvError(f"FLV tag type {kind} is invalid")
            if kind & _TAG_FILTER:
                raise FlvError("encrypted FLV tags are not supported")
            if size > self.max_tag_size:
                raise LimitExceeded(
                    f"FLV tag of {size} bytes exceeds the limit of {self.max_tag_size}"
                )
            tag_end = pos + _TAG_HEADER_SIZE + size
            if end < tag_end + _PREVIOUS_TAG_SIZE:
                break
            if unpack(buf, tag_end)[0] != _TAG_HEADER_SIZE + size:
                raise FlvError("FLV PreviousTagSize does not match the tag")
            stamp = unpack(buf, pos + 4)[0]  # Timestamp (24 bits) then TimestampExtended
            timestamp = (stamp >> 8) | ((stamp & 0xFF) << 24)
            tags.append(FlvTag(kind, timestamp, bytes(buf[pos + _TAG_HEADER_SIZE : tag_end])))
            pos = tag_end + _PREVIOUS_TAG_SIZE
        del buf[:pos]
        return False
