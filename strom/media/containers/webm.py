"""WebM / Matroska, demuxed as a stream (what MediaRecorder uploads and ``ffmpeg -f webm``
or ``-f matroska`` pushes), sans-IO.

References: RFC 8794 (EBML: variable-size integers 4, element IDs 5, unknown sizes 6.2),
RFC 9559 (Matroska: the element tree 5.1, SimpleBlock and Block 10, lacing 10.3,
timestamps 11, codec mappings in the Matroska codec specifications) and the WebM
byte-stream rules MediaRecorder follows: a Segment and Clusters of unknown size, no Cues,
no duration.

Only what a live stream needs is held in memory: the EBML header, Info, Tracks, one
SimpleBlock or BlockGroup at a time, each bounded by ``max_element_size``. Everything
else (SeekHead, Cues, Tags, Chapters, Attachments, Void, unknown elements) is skipped as
it streams past, whatever its size.

Timestamps become milliseconds (``timescale=1000``): cluster Timestamp plus the block's
relative timestamp, times TimestampScale. Matroska stores presentation times only, so
H.264 with B-frames gets decode times reconstructed the way ffmpeg does: the sorted
presentation times, delayed by the SPS's ``max_num_reorder_frames`` (see
:class:`DecodeTimes`), every timestamp then moved by :attr:`WebmDemuxer.timestamp_offset`
so none is negative. CodecDelay is left to the decoder: the Opus pre-skip travels in the
track's ``dOps`` and timestamps stay as the muxer wrote them (ffmpeg subtracts it, which
puts the first frame at -6.5 ms; keeping it costs at most that much A/V offset).

MediaRecorder's quirks: Chromium's ``video/webm;codecs=h264`` has no CodecPrivate and an
Annex B byte stream with the SPS/PPS in-band (the avcC is built from the first key
frame); VP9 has no usable CodecPrivate (the vpcC comes from each key frame's header);
AV1's CodecPrivate may be the 4-byte av1C without configOBUs; canvas captures with alpha
carry it in BlockAdditions, which are ignored. Key frames of VP8 and VP9 are read from the
frame header, of H.264 from the flag or an IDR slice, of AV1 from the flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError, LimitExceeded, LocalProtocolError, ProtocolError
from strom.media import aac, av1, h264, opus, tracks, vpx
from strom.media.containers.decode_times import DecodeTimes, reorder_depth
from strom.media.containers.ebml import (
    LACING_NONE,
    UnsupportedWebm,
    WebmError,
    children,
    read_float,
    read_id,
    read_size,
    read_uint,
    unlace,
)
from strom.media.model import Codec, Frame, Track, TrackKind

#: Default bound on an element held in memory whole: one block (a 4K keyframe is a few
#: MB) or the Tracks/Info/EBML header elements.
DEFAULT_MAX_ELEMENT_SIZE = 8 * 1024 * 1024

_MS = 1000
_NS_PER_MS = 1_000_000

# Element IDs (RFC 8794 11.2, RFC 9559 5.1), with their length marker bits kept.
EBML = 0x1A45DFA3
_DOC_TYPE = 0x4282
_DOC_TYPE_READ_VERSION = 0x4285
SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_NUMBER = 0xD7
_TRACK_TYPE = 0x83
_FLAG_ENABLED = 0xB9
_CODEC_ID = 0x86
_CODEC_PRIVATE = 0x63A2
_DEFAULT_DURATION = 0x23E383
_CONTENT_ENCODINGS = 0x6D80
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_AUDIO = 0xE1
_SAMPLING_FREQUENCY = 0xB5
_CHANNELS = 0x9F
CLUSTER = 0x1F43B675
_TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_REFERENCE_BLOCK = 0xFB
_VOID = 0xEC

#: Elements that end an unknown-sized Cluster (RFC 8794 6.2: an element that is not a
#: valid child ends it): the Segment's other children, and the top level.
_SEGMENT_CHILDREN = frozenset(
    {0x114D9B74, _INFO, _TRACKS, CLUSTER, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367}
)
_TOP_LEVEL = frozenset({EBML, SEGMENT})
#: Elements read whole, at the level where they may appear.
_BUFFERED = frozenset({EBML, _INFO, _TRACKS, _TIMESTAMP, SIMPLE_BLOCK, _BLOCK_GROUP})

_TRACK_TYPE_VIDEO = 1
_TRACK_TYPE_AUDIO = 2
_DOC_TYPES = (b"webm", b"matroska")
#: Matroska CodecID -> Strom codec (Matroska codec specifications).
_CODEC_IDS = {
    "V_MPEG4/ISO/AVC": Codec.H264,
    "V_VP8": Codec.VP8,
    "V_VP9": Codec.VP9,
    "V_AV1": Codec.AV1,
    "A_OPUS": Codec.OPUS,
    "A_AAC": Codec.AAC,
    # Old-style AAC IDs say the profile instead of carrying an AudioSpecificConfig.
    "A_AAC/MPEG4/LC": Codec.AAC,
    "A_AAC/MPEG2/LC": Codec.AAC,
}
_ACCEPTED = "H.264, VP8, VP9 or AV1 video and Opus or AAC audio"

# RFC 9559 10.2 SimpleBlock flags.
_FLAG_KEYFRAME = 0x80
_LACING_MASK = 0x06

#: Decode-time reconstruction: frame step assumed before the first frames are seen
#: (only the first ``reorder`` frames use it), when the track has no DefaultDuration.
_ASSUMED_STEP_MS = 100
#: max_num_reorder_frames assumed for H.264 beyond Baseline whose SPS does not say
#: (x264's B-pyramid needs 2).
_ASSUMED_REORDER = 2


# -- tracks ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _TrackIn:
    """One Matroska track Strom demuxes, and what its blocks need."""

    number: int
    codec: Codec
    private: bytes
    width: int
    height: int
    #: DefaultDuration in nanoseconds (0: not given)
    default_duration: int
    track: Track | None = None
    length_size: int = 4
    #: H.264 without CodecPrivate (Chrome's MediaRecorder): Annex B frames carrying
    #: their SPS and PPS in-band
    annexb: bool = False
    #: AAC samples per frame / rate, for laced AAC blocks
    aac_frame_ns: int = 0
    decode_times: DecodeTimes | None = None


# -- the demuxer ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Open:
    """A master element being read: its ID and absolute end (``None``: unknown size)."""

    ident: int
    end: int | None


class WebmDemuxer:
    """Demuxes a WebM/Matroska byte stream into tracks and frames (see the module doc).

    The first video and the first audio track are kept (as
    :data:`~strom.media.model.VIDEO_TRACK_ID` and :data:`AUDIO_TRACK_ID`); other tracks
    are ignored. An unsupported codec in either is refused with :class:`WebmError`.
    """

    def __init__(self, max_element_size: int = DEFAULT_MAX_ELEMENT_SIZE) -> None:
        self.max_element_size = max_element_size
        #: Milliseconds added to every timestamp so that reconstructed decode times of an
        #: H.264 track with B-frames never go below zero (0 for every other stream).
        self.timestamp_offset = 0
        #: Video frames dropped because no key frame had configured their track yet.
        self.skipped_frames = 0
        self._buf = bytearray()
        self._pos = 0  # stream offset of _buf[0]
        self._skip = 0  # bytes of a skipped element still to discard
        self._stack: list[_Open] = []
        self._scale = _NS_PER_MS  # TimestampScale, nanoseconds per tick
        self._cluster_time: int | None = None
        self._tracks: dict[int, _TrackIn] = {}
        self._emitted: dict[int, Track] = {}
        self._failed = False
        self._out: list[Track | Frame] = []

    def feed(self, data: bytes) -> list[Track | Frame]:
        """Buffer ``data``; return every track change and frame it completes."""
        if self._failed:
            raise LocalProtocolError("WebmDemuxer.feed() called after the stream failed")
        self._buf += data
        try:
            self._parse()
        except ProtocolError:
            self._failed = True
            raise
        out, self._out = self._out, []
        return out

    # -- element walk ---------------------------------------------------------------------

    def _consume(self, count: int) -> None:
        del self._buf[:count]
        self._pos += count

    def _parse(self) -> None:
        buf = self._buf
        while True:
            if self._skip:
                count = min(self._skip, len(buf))
                self._consume(count)
                self._skip -= count
                if self._skip:
                    return
            stack = self._stack
            while stack and stack[-1].end is not None and self._pos >= stack[-1].end:
                self._close(stack.pop())
            ident_len = read_id(buf, 0)
            if ident_len is None:
                return
            ident, id_length = ident_len
            size_len = read_size(buf, id_length)
            if size_len is None:
                return
            size, size_length = size_len
            header = id_length + size_length
            parent = stack[-1] if stack else None
            if parent is not None and parent.end is None and self._ends(parent.ident, ident):
                self._close(stack.pop())
                continue
            if (
                parent is not None
                and parent.end is not None
                and size is not None
                and self._pos + header + size > parent.end
            ):
                raise WebmError(f"element {ident:#x} runs past its parent {parent.ident:#x}")
            if not self._allowed(ident, parent):
                raise WebmError(f"not a WebM/Matroska stream (element {ident:#x} at top level)")
            if ident in (SEGMENT, CLUSTER) and self._in_place(ident, parent):
                self._consume(header)
                end = None if size is None else self._pos + size
                stack.append(_Open(ident, end))
                if ident == CLUSTER:
                    self._cluster_time = None
                continue
            if size is None:
                raise WebmError(f"element {ident:#x} has an unknown size")
            if ident in _BUFFERED and self._in_place(ident, parent):
                if size > self.max_element_size:
                    raise LimitExceeded(
                        f"WebM element {ident:#x} of {size} bytes exceeds the limit of "
                        f"{self.max_element_size}"
                    )
                if len(buf) < header + size:
                    return
                body = bytes(buf[header : header + size])
                self._consume(header + size)
                self._element(ident, body)
                continue
            self._consume(header)  # skipped: discard the body as it streams past
            self._skip = size

    @staticmethod
    def _ends(open_ident: int, ident: int) -> bool:
        """Does element ``ident`` end the unknown-sized ``open_ident``?"""
        if open_ident == CLUSTER:
            return ident in _SEGMENT_CHILDREN or ident in _TOP_LEVEL
        return ident in _TOP_LEVEL  # a Segment ends where a new stream starts

    @staticmethod
    def _allowed(ident: int, parent: _Open | None) -> bool:
        return parent is not None or ident in _TOP_LEVEL or ident == _VOID

    @staticmethod
    def _in_place(ident: int, parent: _Open | None) -> bool:
        where = None if parent is None else parent.ident
        if ident in (EBML, SEGMENT):
            return where is None
        if ident in (_INFO, _TRACKS, CLUSTER):
            return where == SEGMENT
        return where == CLUSTER  # Timestamp, SimpleBlock, BlockGroup

    def _close(self, element: _Open) -> None:
        if element.ident == CLUSTER:
            self._cluster_time = None
        elif element.end is not None and self._pos > element.end:
            raise WebmError(f"element {element.ident:#x} overran its size")

    def _element(self, ident: int, body: bytes) -> None:
        if ident == SIMPLE_BLOCK:
            self._block(body, None)
        elif ident == _BLOCK_GROUP:
            self._block_group(body)
        elif ident == _TIMESTAMP:
            self._cluster_time = read_uint(body)
        elif ident == EBML:
            self._ebml_header(body)
        elif ident == _INFO:
            self._info(body)
        else:
            self._tracks_element(body)

    # -- header elements ------------------------------------------------------------------

    def _ebml_header(self, body: bytes) -> None:
        doc_type = b""
        read_version = 1
        for ident, value in children(body):
            if ident == _DOC_TYPE:
                doc_type = value.rstrip(b"\x00")
            elif ident == _DOC_TYPE_READ_VERSION:
                read_version = read_uint(value)
        if doc_type not in _DOC_TYPES:
            raise WebmError(f"EBML DocType {doc_type!r} is not webm or matroska")
        if read_version > 4:
            raise WebmError(f"Matroska DocTypeReadVersion {read_version} is not supported")
        # A new EBML stream (a publisher's recorder restarted): its own tracks follow.
        self._scale = _NS_PER_MS
        self._tracks = {}

    def _info(self, body: bytes) -> None:
        for ident, value in children(body):
            if ident == _TIMESTAMP_SCALE:
                scale = read_uint(value)
                if scale == 0:
                    raise WebmError("TimestampScale is 0")
                self._scale = scale

    def _tracks_element(self, body: bytes) -> None:
        found: dict[TrackKind, _TrackIn] = {}
        for ident, entry in children(body):
            if ident != _TRACK_ENTRY:
                continue
            kind, track = self._track_entry(entry, taken=set(found))
            if kind is not None and track is not None:
                found[kind] = track
        self._tracks = {t.number: t for t in found.values()}
        reorder = [t.decode_times.reorder for t in found.values() if t.decode_times]
        if reorder and not self.timestamp_offset:
            video = found[TrackKind.VIDEO]
            self.timestamp_offset = reorder[0] * self._step_ms(video)
        for t in found.values():
            if t.track is not None:
                self._emit_track(t.track)

    def _step_ms(self, track: _TrackIn) -> int:
        if track.default_duration:
            return -(-track.default_duration // _NS_PER_MS)
        return _ASSUMED_STEP_MS

    def _track_entry(
        self, entry: bytes, taken: set[TrackKind]
    ) -> tuple[TrackKind | None, _TrackIn | None]:
        """The track an entry describes, unless it is not audio/video or its kind is
        ``taken`` by an earlier entry (then its codec does not matter)."""
        number = track_type = 0
        enabled = True
        codec_id = ""
        private = b""
        default_duration = width = height = channels = 0
        rate = 0.0
        encoded = False
        for ident, value in children(entry):
            if ident == _TRACK_NUMBER:
                number = read_uint(value)
            elif ident == _TRACK_TYPE:
                track_type = read_uint(value)
            elif ident == _FLAG_ENABLED:
                enabled = read_uint(value) != 0
            elif ident == _CODEC_ID:
                codec_id = value.rstrip(b"\x00").decode("ascii", "replace")
            elif ident == _CODEC_PRIVATE:
                private = value
            elif ident == _DEFAULT_DURATION:
                default_duration = read_uint(value)
            elif ident == _CONTENT_ENCODINGS:
                encoded = bool(value)
            elif ident == _VIDEO:
                for sub, v in children(value):
                    if sub == _PIXEL_WIDTH:
                        width = read_uint(v)
                    elif sub == _PIXEL_HEIGHT:
                        height = read_uint(v)
            elif ident == _AUDIO:
                for sub, v in children(value):
                    if sub == _SAMPLING_FREQUENCY:
                        rate = read_float(v)
                    elif sub == _CHANNELS:
                        channels = read_uint(v)
        kinds = {_TRACK_TYPE_VIDEO: TrackKind.VIDEO, _TRACK_TYPE_AUDIO: TrackKind.AUDIO}
        kind = kinds.get(track_type)
        if kind is None or kind in taken or not enabled or number == 0:
            return None, None
        codec = _CODEC_IDS.get(codec_id)
        if codec is None:
            raise UnsupportedWebm(
                f"unsupported {kind.value} codec {codec_id!r}; Strom accepts {_ACCEPTED}"
            )
        if encoded:
            raise UnsupportedWebm("compressed or encrypted Matroska tracks are not supported")
        t = _TrackIn(number, codec, private, width, height, default_duration)
        try:
            self._configure(t, codec_id, rate, channels)
        except CodecError as exc:
            raise WebmError(f"track {number} ({codec_id}): {exc}") from exc
        return kind, t

    def _configure(self, t: _TrackIn, codec_id: str, rate: float, channels: int) -> None:
        """Build the track now if its CodecPrivate says enough (VP9 waits for a key frame)."""
        if t.codec is Codec.H264:
            if not t.private:
                t.annexb = True  # the track is built from the first key frame's SPS/PPS
                return
            t.track, t.length_size = tracks.h264_track(t.private, _MS)
            reorder = reorder_depth(t.private, assumed=_ASSUMED_REORDER)
            if reorder:
                t.decode_times = DecodeTimes(reorder, self._step_ms(t))
        elif t.codec is Codec.VP8:
            if t.width and t.height:
                t.track = tracks.vp8_track(t.width, t.height, _MS)
        elif t.codec is Codec.AV1:
            if len(t.private) >= 4 and t.width and t.height:
                t.track = tracks.av1_track(t.private, t.width, t.height, _MS)
        elif t.codec is Codec.OPUS:
            t.track = tracks.opus_track(opus.dops_from_opus_head(t.private), _MS)
        elif t.codec is Codec.AAC:
            asc = t.private
            if codec_id != "A_AAC":  # old-style ID: an AAC-LC config from the Audio element
                asc = _aac_lc_config(rate, channels)
            t.track = tracks.aac_track(asc, _MS)
            cfg = aac.parse_audio_specific_config(asc)
            t.aac_frame_ns = cfg.samples_per_frame * 1_000_000_000 // cfg.sample_rate

    def _emit_track(self, track: Track) -> None:
        """Announce ``track`` unless the same parameters were announced last."""
        old = self._emitted.get(track.id)
        self._emitted[track.id] = track
        if old != track:
            self._out.append(track)

    # -- blocks ---------------------------------------------------------------------------

    def _block_group(self, body: bytes) -> None:
        block = None
        referenced = False
        for ident, value in children(body):
            if ident == _BLOCK:
                block = value
            elif ident == _REFERENCE_BLOCK:
                referenced = True
        if block is not None:
            # RFC 9559 10.1: a Block without ReferenceBlock needs no other frame.
            self._block(block, not referenced)

    def _block(self, body: bytes, keyframe: bool | None) -> None:
        """A SimpleBlock (``keyframe`` None: the flag says) or a BlockGroup's Block."""
        number = read_size(body, 0)
        if number is None or number[0] is None or len(body) < number[1] + 3:
            raise WebmError("block header is truncated")
        t = self._tracks.get(number[0])
        if t is None:
            return  # a track Strom does not demux
        pos = number[1]
        relative = int.from_bytes(body[pos : pos + 2], "big", signed=True)
        flags = body[pos + 2]
        if keyframe is None:
            keyframe = bool(flags & _FLAG_KEYFRAME)
        if self._cluster_time is None:
            raise WebmError("block before its Cluster's Timestamp")
        time_ns = (self._cluster_time + relative) * self._scale
        payload = body[pos + 3 :]
        lacing = flags & _LACING_MASK
        frames = [payload] if lacing == LACING_NONE else unlace(payload, lacing)
        try:
            for data in frames:
                self._frame(t, time_ns, keyframe, data)
                time_ns += self._frame_ns(t, data)
        except CodecError as exc:
            raise WebmError(f"track {t.number}: {exc}") from exc

    def _inband_h264(self, t: _TrackIn, avcc: bytes) -> None:
        if t.track is not None and t.track.config == avcc:
            return
        t.track, _ = tracks.h264_track(avcc, _MS)
        # Decode times cannot be shifted after the first frames went out, so only a
        # reorder depth the SPS states is believed (browsers' encoders make no B-frames).
        reorder = reorder_depth(avcc, assumed=0)
        if reorder and t.decode_times is None:
            t.decode_times = DecodeTimes(reorder, self._step_ms(t))

    def _frame_ns(self, t: _TrackIn, data: bytes) -> int:
        """How long a laced frame lasts: the next one in the lace starts after it."""
        if t.codec is Codec.OPUS:
            return opus.packet_samples(data) * 1_000_000_000 // opus.SAMPLE_RATE
        if t.codec is Codec.AAC:
            return t.aac_frame_ns
        return t.default_duration

    def _frame(self, t: _TrackIn, time_ns: int, keyframe: bool, data: bytes) -> None:
        if not data:
            return
        codec = t.codec
        if codec is Codec.H264:
            if t.annexb:
                data = h264.annexb_to_avcc(data)
            else:
                data = h264.to_length_prefixed(data, t.length_size)
            scan = h264.scan_access_unit(data)
            keyframe = keyframe or scan.idr
            if t.annexb and scan.sps is not None and scan.pps is not None:
                self._inband_h264(t, h264.build_avcc(scan.sps, scan.pps))
            if t.track is None:
                self.skipped_frames += 1
                return
        elif codec is Codec.VP8:
            keyframe = vpx.vp8_is_keyframe(data)
            if t.track is None:
                if not keyframe:
                    self.skipped_frames += 1
                    return
                width, height = vpx.vp8_picture_size(data)
                t.track = tracks.vp8_track(width, height, _MS)
        elif codec is Codec.VP9:
            header = vpx.parse_vp9_header(data)
            keyframe = header.keyframe
            if keyframe:
                # Every key frame may change the picture size or format (a resized window).
                level = vpx.matroska_vp9_level(t.private)
                vpcc = vpx.build_vpcc(header, level if level in vpx.VP9_LEVELS else None)
                fresh = tracks.vp9_track(vpcc, header.width, header.height, _MS)
                if fresh != t.track:
                    t.track = fresh
            elif t.track is None:
                self.skipped_frames += 1
                return
        elif codec is Codec.AV1 and t.track is None:
            cfg = av1.config_from_temporal_unit(data) if keyframe else None
            if cfg is None:
                self.skipped_frames += 1
                return
            width, height = t.width or cfg.width, t.height or cfg.height
            t.track = tracks.av1_track(av1.build_av1c(cfg), width, height, _MS)
        elif codec in (Codec.OPUS, Codec.AAC):
            keyframe = True
        track = t.track
        if track is None:
            return
        if self._emitted.get(track.id) is not track:
            self._emit_track(track)
        pts = time_ns // _NS_PER_MS + self.timestamp_offset
        decode_times = t.decode_times
        dts = pts if decode_times is None else decode_times.dts(pts)
        self._out.append(Frame(track.id, dts, pts, keyframe, data))


def _aac_lc_config(rate: float, channels: int) -> bytes:
    """An AAC-LC AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) for an old-style CodecID."""
    try:
        index = aac.SAMPLE_RATES.index(int(rate))
    except (ValueError, OverflowError):  # not a table rate, NaN, infinite
        raise CodecError(f"AAC sampling frequency {rate} has no index") from None
    if not 0 < channels <= 7:
        raise CodecError(f"AAC channel count {channels} has no configuration")
    value = aac.AOT_AAC_LC << 11 | index << 7 | channels << 3
    return value.to_bytes(2, "big")
