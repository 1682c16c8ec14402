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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from strom.errors import (
    CodecError,
    FlvError,
    LimitExceeded,
    LocalProtocolError,
    ProtocolError,
    UnsupportedMedia,
)
from strom.media import av1, flv_ex, h264, opus, tracks
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
#: Classic VIDEODATA codec ids Strom takes: AVC, and the HEVC that encoders sent as codec
#: id 12 with AVC's layout (hvcC, composition time) before Enhanced RTMP gave it a FourCC.
_LEGACY_VIDEO_CODECS = {_CODEC_AVC: Codec.H264, 12: Codec.HEVC}
# AVCPacketType, and Enhanced RTMP VideoPacketType/AudioPacketType (same first values).
_SEQUENCE_HEADER = 0
_CODED_FRAMES = 1
_END_OF_SEQUENCE = 2
_EX_VIDEO_HEADER = 0x80  # Enhanced RTMP: IsExHeader bit of the first VIDEODATA byte
#: Enhanced RTMP packet types that carry nothing Strom uses (the codec's end of sequence,
#: HDR metadata, AV1's MPEG-2 TS descriptor; audio's multichannel layout).
_EX_VIDEO_IGNORED = frozenset(
    {flv_ex.VIDEO_SEQUENCE_END, flv_ex.VIDEO_METADATA, flv_ex.VIDEO_MPEG2TS_SEQUENCE_START}
)
_EX_AUDIO_IGNORED = frozenset({flv_ex.AUDIO_SEQUENCE_END, flv_ex.AUDIO_MULTICHANNEL_CONFIG})
#: Distinct notices one demuxer keeps (a hostile stream could invent track ids forever).
_MAX_NOTICES = 16

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


class UnsupportedFlvCodec(FlvError, UnsupportedMedia):
    """Well-formed FLV audio or video in a codec Strom does not take."""


#: Enhanced RTMP video FourCCs Strom takes, and the names of those it refuses.
_EX_VIDEO_CODECS = {"avc1": Codec.H264, "hvc1": Codec.HEVC, "av01": Codec.AV1}
_EX_VIDEO_NAMES = {"vp08": "VP8", "vp09": "VP9", "avc1": "H.264", "hvc1": "HEVC", "av01": "AV1"}
#: Enhanced RTMP v2 audio FourCCs Strom takes, and the names of those it refuses.
_EX_AUDIO_CODECS = {"mp4a": Codec.AAC, "Opus": Codec.OPUS}
_EX_AUDIO_NAMES = {"fLaC": "FLAC", ".mp3": "MP3", "ac-3": "AC-3", "ec-3": "E-AC-3"}
_VIDEO_ACCEPTED = "Strom accepts H.264 (avc1), HEVC (hvc1) and AV1 (av01)"
_AUDIO_ACCEPTED = "Strom accepts AAC (mp4a) and Opus"
#: The codecs whose coded frames carry a composition time (Enhanced RTMP v2:
#: CodedFrames of avc1 and hvc1; CodedFramesX and the other codecs have none).
_WITH_COMPOSITION_TIME = frozenset({Codec.H264, Codec.HEVC})


@dataclass(frozen=True, slots=True)
class _ExCodecs:
    """What the Enhanced RTMP header of one kind of media may carry."""

    kind: str
    codecs: dict[str, Codec]
    names: dict[str, str]
    accepted: str
    ignored: frozenset[int]


_EX_VIDEO = _ExCodecs("video", _EX_VIDEO_CODECS, _EX_VIDEO_NAMES, _VIDEO_ACCEPTED,
                      _EX_VIDEO_IGNORED)  # fmt: skip
_EX_AUDIO = _ExCodecs("audio", _EX_AUDIO_CODECS, _EX_AUDIO_NAMES, _AUDIO_ACCEPTED,
                      _EX_AUDIO_IGNORED)  # fmt: skip


def _fourcc_text(fourcc: str) -> str:
    return repr(fourcc) if fourcc.isprintable() else repr(fourcc.encode("latin-1"))


class FlvDemuxer:
    """Turns FLV audio/video payloads into :class:`Track` and :class:`Frame` events.

    Timestamps are FLV/RTMP milliseconds, so tracks get ``timescale=1000``. A sequence
    header yields a :class:`Track` when it differs from the previous one; coded frames
    before any sequence header cannot be decoded and are counted in :attr:`skipped_frames`.

    Classic FLV carries H.264 and AAC; Enhanced RTMP adds HEVC, AV1 and Opus (and AAC
    and H.264 by FourCC). Of a multitrack payload only the default track (id 0) is kept:
    what is left out is said once in :attr:`notices`, for the adapter to log.
    """

    def __init__(self, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE) -> None:
        self.max_payload_size = max_payload_size
        #: Coded frames dropped because their track had no sequence header yet.
        self.skipped_frames = 0
        #: What was left out (other tracks of a multitrack stream), each said once; the
        #: adapter logs and clears it.
        self.notices: list[str] = []
        self._noticed: set[str] = set()
        #: The picture size ``onMetaData`` declared: stands in where a record has none.
        self.declared_size = (0, 0)
        self._video_codec: Codec | None = None
        self._video_config: bytes | None = None  # as received, to recognise a repeat
        self._length_size = 4
        self._av1c_waiting: bytes | None = None  # an av1C without a size, until a key frame
        self._audio_codec: Codec | None = None
        self._audio_config: bytes | None = None
        # RTMP 1.0 section 4: adjacent timestamps are within 2^31 - 1 ms; larger jumps wrapped.
        self._timeline = WrappingClock(32)

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self.max_payload_size:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_size}"
            )

    def _notice(self, text: str) -> None:
        if text not in self._noticed and len(self._noticed) < _MAX_NOTICES:
            self._noticed.add(text)
            self.notices.append(text)

    def _default_track(
        self, table: _ExCodecs, packets: list[flv_ex.ExPacket]
    ) -> Iterator[tuple[flv_ex.ExPacket, Codec]]:
        """The packets of the default track that carry media, with their codec. Other
        tracks are said in :attr:`notices`; a codec Strom does not take raises."""
        for packet in packets:
            if packet.track_id != 0:
                self._notice(
                    f"{table.kind} track {packet.track_id} ({_fourcc_text(packet.fourcc)}) is"
                    " ignored: Strom takes the default track (0) of a multitrack stream"
                )
                continue
            if packet.packet_type in table.ignored:
                continue
            codec = table.codecs.get(packet.fourcc)
            if codec is None:
                name = table.names.get(packet.fourcc, "unknown")
                raise UnsupportedFlvCodec(
                    f"unsupported {table.kind} codec {_fourcc_text(packet.fourcc)} ({name},"
                    f" Enhanced RTMP); {table.accepted}"
                )
            yield packet, codec

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
        codec = _LEGACY_VIDEO_CODECS.get(codec_id)
        if codec is None:
            name = _VIDEO_CODECS.get(codec_id, "unknown")
            raise UnsupportedFlvCodec(
                f"unsupported video codec id {codec_id} ({name}); {_VIDEO_ACCEPTED}"
            )
        if len(payload) < 2:
            raise FlvError("AVC video payload is truncated")
        packet_type = payload[1]
        if packet_type == _END_OF_SEQUENCE:
            return []
        if len(payload) < 5:
            raise FlvError("AVC video payload is truncated")
        if packet_type == _SEQUENCE_HEADER:
            return self._video_sequence_start(codec, payload[5:])
        if packet_type == _CODED_FRAMES:
            cts = _si24(payload, 2)
            return self._video_frame(codec, timestamp, cts, frame_type == _FRAME_KEY,
                                     payload[5:])  # fmt: skip
        raise FlvError(f"unknown AVCPacketType {packet_type}")

    def _enhanced_video(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        # Enhanced RTMP: [IsExHeader|FrameType(3)|PacketType(4)] FourCC [body], or the
        # ModEx and Multitrack layouts around it (strom.media.flv_ex).
        frame_type = (payload[0] >> 4) & 0x07
        if frame_type == _FRAME_COMMAND:
            return []  # no picture: HDR metadata, seek commands
        keyframe = frame_type == _FRAME_KEY
        out: list[Track | Frame] = []
        for packet, codec in self._default_track(_EX_VIDEO, flv_ex.video_packets(payload)):
            kind = packet.packet_type
            data, start, end = packet.data, packet.start, packet.end
            if kind == flv_ex.VIDEO_SEQUENCE_START:
                out += self._video_sequence_start(codec, packet.body)
            elif kind == flv_ex.VIDEO_CODED_FRAMES and codec in _WITH_COMPOSITION_TIME:
                if end - start < 3:
                    raise FlvError("Enhanced RTMP video payload is truncated")
                cts = _si24(data, start)
                out += self._video_frame(codec, timestamp, cts, keyframe, data[start + 3 : end])
            elif kind in (flv_ex.VIDEO_CODED_FRAMES, flv_ex.VIDEO_CODED_FRAMES_X):
                out += self._video_frame(codec, timestamp, 0, keyframe, data[start:end])
            else:
                raise FlvError(f"unsupported Enhanced RTMP video packet type {kind}")
        return out

    def _video_sequence_start(self, codec: Codec, record: bytes) -> list[Track | Frame]:
        if codec is self._video_codec and record == self._video_config:
            return []
        # CodecError on a malformed record. H.264 and HEVC frames are normalised to 4-byte
        # NAL lengths, and the track's record says so.
        width, height = self.declared_size
        if codec is Codec.H264:
            track, self._length_size = tracks.h264_track(record, _MS)
        elif codec is Codec.HEVC:
            track, self._length_size = tracks.hevc_track(record, _MS, width=width, height=height)
        else:
            cfg = av1.parse_av1c(record)
            if cfg.config_obus:
                seq = av1.config_from_temporal_unit(cfg.config_obus)
                if seq is not None:
                    width, height = seq.width, seq.height
            self._video_codec, self._video_config = codec, record
            if not (width and height):
                # No sequence header in the record and no size declared: the first key
                # frame's sequence header says it.
                self._av1c_waiting = record
                return []
            self._av1c_waiting = None
            track = tracks.av1_track(record, width, height, _MS)
        self._video_codec, self._video_config = codec, record
        return [track]

    def _video_frame(
        self, codec: Codec, timestamp: int, cts: int, keyframe: bool, data: bytes
    ) -> list[Track | Frame]:
        if codec is not self._video_codec:
            self.skipped_frames += 1
            return []
        out: list[Track | Frame] = []
        if codec is Codec.AV1:
            if self._av1c_waiting is not None:
                seq = av1.config_from_temporal_unit(data) if keyframe else None
                if seq is None:
                    self.skipped_frames += 1
                    return []
                out.append(tracks.av1_track(self._av1c_waiting, seq.width, seq.height, _MS))
                self._av1c_waiting = None
            data = av1.strip_temporal_delimiter(data)
        else:
            try:
                data = h264.to_length_prefixed(data, self._length_size)
            except CodecError as exc:
                raise FlvError(f"malformed {codec.value} frame: {exc}") from exc
        if not data:
            return out
        dts = self._timeline.extend(timestamp)
        out.append(Frame(VIDEO_TRACK_ID, dts, dts + cts, keyframe, data))
        return out

    # -- audio ----------------------------------------------------------------------------

    def audio(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        """Demux one AUDIODATA payload (E.4.2.1, or the Enhanced RTMP v2 extended header)."""
        if not payload:
            return []  # some encoders send empty audio messages
        self._check_size(payload)
        sound_format = payload[0] >> 4
        if sound_format == _SOUND_EX_HEADER:
            return self._enhanced_audio(timestamp, payload)
        if sound_format != _SOUND_AAC:
            name = _SOUND_FORMATS.get(sound_format, "unknown")
            raise UnsupportedFlvCodec(
                f"unsupported audio codec {name} (SoundFormat {sound_format}); {_AUDIO_ACCEPTED}"
            )
        if len(payload) < 2:
            raise FlvError("AAC audio payload is truncated")
        packet_type = payload[1]
        if packet_type == _SEQUENCE_HEADER:
            return self._audio_sequence_start(Codec.AAC, payload[2:])
        if packet_type == _CODED_FRAMES:
            return self._audio_frame(Codec.AAC, timestamp, payload[2:])
        raise FlvError(f"unknown AAC packet type {packet_type}")

    def _enhanced_audio(self, timestamp: int, payload: bytes) -> list[Track | Frame]:
        # Enhanced RTMP v2: [SoundFormat=9|AudioPacketType(4)] FourCC [body], or the ModEx
        # and Multitrack layouts around it.
        out: list[Track | Frame] = []
        for packet, codec in self._default_track(_EX_AUDIO, flv_ex.audio_packets(payload)):
            kind = packet.packet_type
            if kind == flv_ex.AUDIO_SEQUENCE_START:
                out += self._audio_sequence_start(codec, packet.body)
            elif kind == flv_ex.AUDIO_CODED_FRAMES:
                out += self._audio_frame(codec, timestamp, packet.body)
            else:
                raise FlvError(f"unsupported Enhanced RTMP audio packet type {kind}")
        return out

    def _audio_sequence_start(self, codec: Codec, record: bytes) -> list[Track | Frame]:
        if codec is self._audio_codec and record == self._audio_config:
            return []
        # CodecError on a malformed config. Opus's is the OpusHead of Ogg (RFC 7845 5.1),
        # as ffmpeg sends it; fMP4 wants it as dOps.
        if codec is Codec.AAC:
            track = tracks.aac_track(record, _MS)
        else:
            track = tracks.opus_track(opus.dops_from_opus_head(record), _MS)
        self._audio_codec, self._audio_config = codec, record
        return [track]

    def _audio_frame(self, codec: Codec, timestamp: int, data: bytes) -> list[Track | Frame]:
        if codec is not self._audio_codec:
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
