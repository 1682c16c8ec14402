"""Fragmented MP4 (ISO/IEC 14496-12), demuxed as a stream, sans-IO.

What arrives: ``ffmpeg -f mp4 -movflags frag_keyframe+empty_moov(+default_base_moof)``
(or ``+frag_every_frame``, or ``-f ismv``-like CMAF), and Chromium's MediaRecorder MP4
(``video/mp4;codecs=avc1,opus``): ``ftyp``, a ``moov`` with ``mvex`` and no samples, then
``moof`` + ``mdat`` pairs. Samples come out of the ``mdat`` as their bytes arrive (the
``moof`` says where each one lies), so only one sample is ever held, never a whole
fragment, and a frame leaves as soon as its last byte is in.

A progressive MP4 (samples in the ``moov``'s tables, usually after an ``mdat`` that
comes first) cannot be played before it ends, so it is refused: ``mdat`` before
``moov``, or a ``moov`` without ``mvex``, raise :class:`Mp4Error` saying how to make a
fragmented one. Edit lists are not applied (live fragmented output from ffmpeg and
Chromium has none): times are the tracks' decode times from ``tfdt`` and ``trun``, in
each track's ``mdhd`` timescale.

Boxes read whole (``moov``, ``moof``) and each sample are bounded by ``max_box_size`` and
``max_sample_size``; other boxes (``sidx``, ``free``, ``emsg``, ``mfra``...) are skipped
as they stream past, whatever their size.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from strom.errors import CodecError, LimitExceeded, LocalProtocolError, ProtocolError
from strom.media import av1, h264, tracks
from strom.media.containers.isobmff import (
    Mp4Error,
    UnsupportedMp4,
    boxes,
    child,
    esds_audio_config,
    need,
)
from strom.media.model import Frame, Track, TrackKind

DEFAULT_MAX_BOX_SIZE = 8 * 1024 * 1024
DEFAULT_MAX_SAMPLE_SIZE = 8 * 1024 * 1024
#: Samples one moof may describe: a minute of 60 fps video and 48 kHz AAC is ~6,400.
#: (A trun whose samples all take tfhd defaults costs no bytes per sample, so without
#: this bound 8 bytes could describe four billion of them.)
DEFAULT_MAX_FRAGMENT_SAMPLES = 20_000

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I32 = struct.Struct(">i")

# 8.8.7.1 tfhd flags
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
#: tfhd's optional fields, in order, and their sizes
_TFHD_FIELDS = (
    (_TFHD_BASE_DATA_OFFSET, 8),
    (_TFHD_DESCRIPTION_INDEX, 4),
    (_TFHD_DEFAULT_DURATION, 4),
    (_TFHD_DEFAULT_SIZE, 4),
    (_TFHD_DEFAULT_FLAGS, 4),
)
# 8.8.8.1 trun flags
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_COMPOSITION_OFFSET = 0x000800
#: 8.8.3.1 sample_is_non_sync_sample
_NON_SYNC = 0x00010000

_VISUAL_ENTRY_SIZE = 78  # 8.5.2.2 VisualSampleEntry fields before its child boxes
_AUDIO_ENTRY_SIZE = 28  # 8.5.2.2 AudioSampleEntry (v0)
#: QuickTime sound description versions 1 and 2 carry 16 and 36 more bytes (ffmpeg -f mov).
_AUDIO_ENTRY_EXTRA = {0: 0, 1: 16, 2: 36}
_HANDLERS = {b"vide": TrackKind.VIDEO, b"soun": TrackKind.AUDIO}
_UNSUPPORTED = {
    b"hev1": "HEVC with in-band parameter sets",
    b"encv": "encrypted video",
    b"enca": "encrypted audio",
    b"mp4v": "MPEG-4 Part 2 video",
    b"ac-3": "AC-3",
    b"ec-3": "E-AC-3",
    b".mp3": "MP3",
    b"fLaC": "FLAC",
}
_ACCEPTED = "H.264 (avc1/avc3), HEVC (hvc1), VP9, AV1 video and AAC or Opus audio"
_HOW_TO_FRAGMENT = "use -movflags frag_keyframe+empty_moov+default_base_moof"


@dataclass(slots=True)
class _TrackIn:
    """An MP4 track Strom demuxes."""

    mp4_id: int
    kind: TrackKind
    #: None until a key frame configures it (AV1 with an empty av1C: ffmpeg's empty_moov)
    track: Track | None
    length_size: int = 0  # H.264, HEVC: NAL length size of the samples (0: other codecs)
    #: for a track configured later: the sample entry's picture size and the timescale
    width: int = 0
    height: int = 0
    timescale: int = 0
    # 8.8.3 trex defaults
    default_duration: int = 0
    default_size: int = 0
    default_flags: int = 0
    #: decode time after the last sample, for a traf without tfdt
    next_dts: int = 0


@dataclass(slots=True)
class _Run:
    """Where a track fragment's runs stand: data offsets, decode time, tfhd defaults."""

    track: _TrackIn | None
    out: list[_Sample]
    base: int = 0
    offset: int = 0
    dts: int = 0
    duration: int = 0
    size: int = 0
    flags: int = 0


@dataclass(slots=True)
class _Sample:
    offset: int  # in the stream
    size: int
    track: _TrackIn | None  # None: a track Strom ignores (its bytes are skipped)
    dts: int
    pts: int
    keyframe: bool


class Mp4Demuxer:
    """Demuxes a fragmented MP4 byte stream into tracks and frames (see the module doc).

    The first video and first audio track of the ``moov`` are kept; others are ignored.
    """

    def __init__(
        self,
        max_box_size: int = DEFAULT_MAX_BOX_SIZE,
        max_sample_size: int = DEFAULT_MAX_SAMPLE_SIZE,
        max_fragment_samples: int = DEFAULT_MAX_FRAGMENT_SAMPLES,
    ) -> None:
        self.max_box_size = max_box_size
        self.max_sample_size = max_sample_size
        self.max_fragment_samples = max_fragment_samples
        #: Video samples dropped because no key frame had configured their track yet.
        self.skipped_frames = 0
        self._buf = bytearray()
        self._pos = 0  # stream offset of _buf[0]
        self._skip_to = 0  # stream offset where a skipped box ends
        self._mdat_end: int | None = None  # inside an mdat: where it ends
        self._in_mdat = False
        self._tracks: dict[int, _TrackIn] | None = None  # by MP4 track_ID, once moov came
        self._emitted: dict[int, Track] = {}
        self._pending: deque[_Sample] = deque()
        self._failed = False
        self._out: list[Track | Frame] = []

    def feed(self, data: bytes) -> list[Track | Frame]:
        """Buffer ``data``; return every track change and frame it completes."""
        if self._failed:
            raise LocalProtocolError("Mp4Demuxer.feed() called after the stream failed")
        self._buf += data
        try:
            self._parse()
        except ProtocolError:
            self._failed = True
            raise
        out, self._out = self._out, []
        return out

    def _consume(self, count: int) -> None:
        del self._buf[:count]
        self._pos += count

    def _parse(self) -> None:
        buf = self._buf
        while True:
            if self._skip_to > self._pos:
                self._consume(min(self._skip_to - self._pos, len(buf)))
                if self._skip_to > self._pos:
                    return
            if self._in_mdat:
                if not self._mdat_samples():
                    return
                continue
            if len(buf) < 8:
                return
            size, kind = struct.unpack_from(">I4s", buf, 0)
            header = 8
            if size == 1:
                if len(buf) < 16:
                    return
                size, header = _U64.unpack_from(buf, 8)[0], 16
            if size == 0 and kind != b"mdat":
                raise Mp4Error(f"top-level box {kind!r} of unbounded size")
            if size and size < header:
                raise Mp4Error(f"box {kind!r} has an invalid size {size}")
            if kind in (b"moov", b"moof"):
                if size > self.max_box_size:
                    raise LimitExceeded(
                        f"MP4 box {kind.decode('latin-1')!r} of {size} bytes exceeds the "
                        f"limit of {self.max_box_size}"
                    )
                if len(buf) < size:
                    return
                start = self._pos
                body = bytes(buf[header:size])
                self._consume(size)
                if kind == b"moov":
                    self._moov(body)
                else:
                    self._moof(body, start, start + size)
            elif kind == b"mdat":
                if self._tracks is None:
                    raise UnsupportedMp4(
                        f"not a fragmented MP4 ('mdat' before 'moov'): it cannot be "
                        f"streamed; {_HOW_TO_FRAGMENT}"
                    )
                self._consume(header)
                self._mdat_end = None if size == 0 else self._pos + size - header
                self._in_mdat = True
            else:
                if not self._pos and kind not in (b"ftyp", b"styp", b"free", b"skip"):
                    raise Mp4Error(f"not an MP4 stream (first box {kind!r})")
                self._skip_to = self._pos + size

    # -- sample data ----------------------------------------------------------------------

    def _mdat_samples(self) -> bool:
        """Cut the pending samples out of the mdat; True once the mdat is done."""
        buf, pending, end = self._buf, self._pending, self._mdat_end
        while pending and (end is None or pending[0].offset < end):
            sample = pending[0]
            if sample.offset < self._pos:
                raise Mp4Error("MP4 samples overlap or lie outside the mdat")
            if end is not None and sample.offset + sample.size > end:
                raise Mp4Error("MP4 sample runs past the end of its mdat")
            lead = sample.offset - self._pos
            if lead:
                self._consume(min(lead, len(buf)))
                if sample.offset > self._pos:
                    return False
            if len(buf) < sample.size:
                return False
            pending.popleft()
            if sample.track is not None:
                data = bytes(buf[: sample.size])
                self._frame(sample, data)
            self._consume(sample.size)
        if end is None:  # an mdat to the end of the stream: discard what is not a sample
            self._consume(len(buf))
            return False
        self._consume(min(end - self._pos, len(buf)))
        if self._pos < end:
            return False
        self._in_mdat = False
        return True

    def _frame(self, sample: _Sample, data: bytes) -> None:
        t = sample.track
        assert t is not None  # only called for kept tracks
        if t.track is None:
            t.track = self._av1_from_keyframe(t, sample, data)
            if t.track is None:
                self.skipped_frames += 1
                return
            self._emit(t.track)
        if t.length_size:
            try:
                data = h264.to_length_prefixed(data, t.length_size)
            except CodecError as exc:
                raise Mp4Error(f"malformed H.264 sample: {exc}") from exc
        self._out.append(Frame(t.track.id, sample.dts, sample.pts, sample.keyframe, data))

    @staticmethod
    def _av1_from_keyframe(t: _TrackIn, sample: _Sample, data: bytes) -> Track | None:
        """AV1 whose av1C was empty: the first key frame's sequence header configures it."""
        if not sample.keyframe:
            return None
        try:
            cfg = av1.config_from_temporal_unit(data)
            if cfg is None:
                return None
            av1c = av1.build_av1c(cfg)
            width, height = t.width or cfg.width, t.height or cfg.height
            return tracks.av1_track(av1c, width, height, t.timescale)
        except CodecError as exc:
            raise Mp4Error(f"malformed AV1 key frame: {exc}") from exc

    def _emit(self, track: Track) -> None:
        if self._emitted.get(track.id) != track:
            self._emitted[track.id] = track
            self._out.append(track)

    # -- moov -----------------------------------------------------------------------------

    def _moov(self, body: bytes) -> None:
        found: dict[TrackKind, _TrackIn] = {}
        mvex = None
        for kind, box in boxes(body):
            if kind == b"trak":
                parsed = self._trak(box, taken=set(found))
                if parsed is not None and parsed.kind not in found:
                    found[parsed.kind] = parsed
            elif kind == b"mvex":
                mvex = box
        if mvex is None:
            raise Mp4Error(
                f"not a fragmented MP4 (no 'mvex' in the 'moov'): it cannot be streamed; "
                f"{_HOW_TO_FRAGMENT}"
            )
        if not found:
            raise Mp4Error(f"MP4 stream has no audio or video track; Strom accepts {_ACCEPTED}")
        by_id = {t.mp4_id: t for t in found.values()}
        for kind, box in boxes(mvex):
            if kind == b"trex":
                need(box, "trex", 24)
                mp4_id, _, duration, size, flags = struct.unpack_from(">IIIII", box, 4)
                if mp4_id in by_id:
                    t = by_id[mp4_id]
                    t.default_duration, t.default_size, t.default_flags = duration, size, flags
        if self._pending:
            raise Mp4Error("a new 'moov' arrived before the last fragment's samples")
        self._tracks = by_id
        for t in found.values():
            if t.track is not None:
                self._emit(t.track)

    def _trak(self, body: bytes, taken: set[TrackKind]) -> _TrackIn | None:
        tkhd = need(child(body, b"tkhd"), "tkhd", 24)
        mp4_id = _U32.unpack_from(tkhd, 20 if tkhd[0] == 1 else 12)[0]
        mdia = need(child(body, b"mdia"), "mdia")
        hdlr = need(child(mdia, b"hdlr"), "hdlr", 12)
        kind = _HANDLERS.get(hdlr[8:12])
        if kind is None or kind in taken:
            return None  # not audio/video, or not the first of its kind
        mdhd = need(child(mdia, b"mdhd"), "mdhd", 24)
        timescale = _U32.unpack_from(mdhd, 20 if mdhd[0] == 1 else 12)[0]
        if timescale == 0:
            raise Mp4Error(f"track {mp4_id} has a zero timescale")
        minf = need(child(mdia, b"minf"), "minf")
        stbl = need(child(minf, b"stbl"), "stbl")
        stsd = need(child(stbl, b"stsd"), "stsd", 8)
        if _U32.unpack_from(stsd, 4)[0] == 0:
            raise Mp4Error(f"track {mp4_id} has no sample description")
        entry_type, entry = next(boxes(stsd[8:]), (b"", b""))
        if not entry_type:
            raise Mp4Error(f"track {mp4_id} has no sample description")
        try:
            if kind is TrackKind.VIDEO:
                return self._video_entry(mp4_id, entry_type, entry, timescale)
            return self._audio_entry(mp4_id, entry_type, entry, timescale)
        except CodecError as exc:
            raise Mp4Error(f"track {mp4_id} ({entry_type.decode('latin-1')}): {exc}") from exc

    def _video_entry(self, mp4_id: int, kind: bytes, entry: bytes, timescale: int) -> _TrackIn:
        need(entry, kind.decode("latin-1"), _VISUAL_ENTRY_SIZE)
        width, height = struct.unpack_from(">HH", entry, 24)
        boxes = entry[_VISUAL_ENTRY_SIZE:]
        if kind in (b"avc1", b"avc3"):
            avcc = need(child(boxes, b"avcC"), "avcC")
            track, length_size = tracks.h264_track(avcc, timescale)
            return _TrackIn(mp4_id, TrackKind.VIDEO, track, length_size=length_size)
        if kind == b"hvc1":
            hvcc = need(child(boxes, b"hvcC"), "hvcC")
            track, length_size = tracks.hevc_track(hvcc, timescale, width=width, height=height)
            return _TrackIn(mp4_id, TrackKind.VIDEO, track, length_size=length_size)
        if kind == b"vp09":
            vpcc = need(child(boxes, b"vpcC"), "vpcC", 4)
            if vpcc[0] != 1:
                raise Mp4Error(f"vpcC version {vpcc[0]} is not supported (only 1)")
            track = tracks.vp9_track(vpcc[4:], width, height, timescale)
            return _TrackIn(mp4_id, TrackKind.VIDEO, track)
        if kind == b"av01":
            av1c = need(child(boxes, b"av1C"), "av1C")
            if not av1c:  # configured by the first key frame's sequence header
                return _TrackIn(mp4_id, TrackKind.VIDEO, None, width=width, height=height,
                                timescale=timescale)  # fmt: skip
            track = tracks.av1_track(av1c, width, height, timescale)
            return _TrackIn(mp4_id, TrackKind.VIDEO, track)
        if kind == b"vp08":
            return _TrackIn(mp4_id, TrackKind.VIDEO, tracks.vp8_track(width, height, timescale))
        raise UnsupportedMp4(
            f"unsupported video codec {_describe(kind)}; Strom accepts {_ACCEPTED}"
        )

    def _audio_entry(self, mp4_id: int, kind: bytes, entry: bytes, timescale: int) -> _TrackIn:
        need(entry, kind.decode("latin-1"), _AUDIO_ENTRY_SIZE)
        version = _U16.unpack_from(entry, 8)[0]
        if version not in _AUDIO_ENTRY_EXTRA:
            raise Mp4Error(f"audio sample entry version {version} is not supported")
        boxes = entry[_AUDIO_ENTRY_SIZE + _AUDIO_ENTRY_EXTRA[version] :]
        if kind == b"mp4a":
            esds = need(child(boxes, b"esds"), "esds", 4)
            track = tracks.aac_track(esds_audio_config(esds[4:]), timescale)
            return _TrackIn(mp4_id, TrackKind.AUDIO, track)
        if kind == b"Opus":
            dops = need(child(boxes, b"dOps"), "dOps")
            return _TrackIn(mp4_id, TrackKind.AUDIO, tracks.opus_track(dops, timescale))
        raise UnsupportedMp4(
            f"unsupported audio codec {_describe(kind)}; Strom accepts {_ACCEPTED}"
        )

    # -- moof -----------------------------------------------------------------------------

    def _moof(self, body: bytes, start: int, end: int) -> None:
        if self._tracks is None:
            raise Mp4Error("'moof' before 'moov'")
        if self._pending:
            raise Mp4Error("a 'moof' arrived before the previous one's samples")
        samples: list[_Sample] = []
        data_end = start  # end of the previous traf's data (8.8.7.1 base data offset)
        for kind, box in boxes(body):
            if kind == b"traf":
                data_end = self._traf(box, start, data_end, samples)
        samples.sort(key=lambda s: s.offset)
        for sample in samples:
            if sample.offset < end:
                raise Mp4Error("MP4 sample data offset points before the 'mdat'")
        self._pending.extend(samples)

    def _traf(self, body: bytes, moof_start: int, data_end: int, out: list[_Sample]) -> int:
        """Queue a track fragment's samples (8.8.6); return where its data ends."""
        tracks_by_id = self._tracks
        assert tracks_by_id is not None
        tfhd = need(child(body, b"tfhd"), "tfhd", 8)
        flags = int.from_bytes(tfhd[1:4], "big")
        t = tracks_by_id.get(_U32.unpack_from(tfhd, 4)[0])
        run = _Run(track=t, out=out)
        if t is not None:
            run.dts = t.next_dts
            run.duration, run.size, run.flags = t.default_duration, t.default_size, t.default_flags
        # 8.8.7.1: without base-data-offset, a traf's data follows the previous traf's, or
        # starts at the moof (the first traf, or default-base-is-moof).
        run.base = moof_start if flags & _TFHD_DEFAULT_BASE_IS_MOOF else data_end
        pos = 8
        for flag, size in _TFHD_FIELDS:
            if not flags & flag:
                continue
            if pos + size > len(tfhd):
                raise Mp4Error("'tfhd' box is truncated")
            value = int.from_bytes(tfhd[pos : pos + size], "big")
            pos += size
            if flag == _TFHD_BASE_DATA_OFFSET:
                run.base = value
            elif flag == _TFHD_DEFAULT_DURATION:
                run.duration = value
            elif flag == _TFHD_DEFAULT_SIZE:
                run.size = value
            elif flag == _TFHD_DEFAULT_FLAGS:
                run.flags = value
        tfdt = child(body, b"tfdt")
        if tfdt is not None:
            need(tfdt, "tfdt", 12 if tfdt[:1] == b"\x01" else 8)
            unpack = _U64 if tfdt[0] == 1 else _U32
            run.dts = unpack.unpack_from(tfdt, 4)[0]
        run.offset = run.base
        for kind, trun in boxes(body):
            if kind == b"trun":
                self._trun(trun, run)
        if t is not None:
            t.next_dts = run.dts
        return run.offset

    def _trun(self, trun: bytes, run: _Run) -> None:
        """Queue one track run's samples (8.8.8), advancing ``run``."""
        need(trun, "trun", 8)
        version, flags = trun[0], int.from_bytes(trun[1:4], "big")
        count = _U32.unpack_from(trun, 4)[0]
        pos = 8
        if flags & _TRUN_DATA_OFFSET:
            need(trun, "trun", pos + 4)
            run.offset = run.base + _I32.unpack_from(trun, pos)[0]
            pos += 4
        first_flags = None
        if flags & _TRUN_FIRST_SAMPLE_FLAGS:
            need(trun, "trun", pos + 4)
            first_flags = _U32.unpack_from(trun, pos)[0]
            pos += 4
        has_duration = bool(flags & _TRUN_DURATION)
        has_size = bool(flags & _TRUN_SIZE)
        has_flags = bool(flags & _TRUN_FLAGS)
        has_cts = bool(flags & _TRUN_COMPOSITION_OFFSET)
        per_sample = 4 * (has_duration + has_size + has_flags + has_cts)
        if len(trun) < pos + count * per_sample:
            raise Mp4Error("'trun' box is shorter than its sample count says")
        if not per_sample and not run.size:
            # Samples that all take the tfhd/trex defaults and are empty: nothing to queue,
            # only time passes. A loop would cost a turn per sample for 8 bytes of trun.
            run.dts += count * run.duration
            return
        if len(run.out) + count > self.max_fragment_samples:
            raise LimitExceeded(
                f"MP4 fragment of more than {self.max_fragment_samples} samples exceeds the limit"
            )
        t = run.track
        video = t is not None and t.kind is TrackKind.VIDEO
        cts_format = _I32 if version else _U32  # v1: signed composition offsets
        offset, dts = run.offset, run.dts
        for i in range(count):
            duration, size, sample_flags = run.duration, run.size, run.flags
            if has_duration:
                duration = _U32.unpack_from(trun, pos)[0]
                pos += 4
            if has_size:
                size = _U32.unpack_from(trun, pos)[0]
                pos += 4
            if has_flags:
                sample_flags = _U32.unpack_from(trun, pos)[0]
                pos += 4
            if i == 0 and first_flags is not None:
                sample_flags = first_flags
            cts = 0
            if has_cts:
                cts = cts_format.unpack_from(trun, pos)[0]
                pos += 4
            if size > self.max_sample_size:
                raise LimitExceeded(
                    f"MP4 sample of {size} bytes exceeds the limit of {self.max_sample_size}"
                )
            if size:
                keyframe = not (video and sample_flags & _NON_SYNC)
                run.out.append(_Sample(offset, size, t, dts, dts + cts, keyframe))
            offset += size
            dts += duration
        run.offset, run.dts = offset, dts


def _describe(kind: bytes) -> str:
    name = kind.decode("latin-1")
    return f"{_UNSUPPORTED[kind]} ({name!r})" if kind in _UNSUPPORTED else repr(name)
