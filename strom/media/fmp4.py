"""CMAF / fragmented MP4 muxer (ISO/IEC 14496-12, ISO/IEC 23000-19), sans-IO.

:meth:`FragmentMuxer.init_segment` is the ``ftyp`` + ``moov`` a player needs first;
:meth:`FragmentMuxer.add_frames` turns frames, the moment a chunk of them is complete (a
video frame and the audio since the previous one), into one ``moof`` + ``mdat`` chunk.
That chunk is the unit every delivery shares: WebSocket viewers, LL-HLS parts and
recordings all send the same ``bytes`` object.

Low latency means a video frame's duration is unknown when it is muxed; the
:class:`~strom.media.timeline.SampleClock` of its track writes the expected spacing as
its duration (14496-12 8.8.8 ``trun``) and starts the next frame exactly there (``tfdt``,
8.8.12), so players that sum durations and players that read ``tfdt`` agree.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from strom.errors import CodecError, LocalProtocolError, ProtocolError
from strom.media import aac, opus
from strom.media.model import Codec, Frame, Track, TrackKind
from strom.media.timeline import SampleClock

#: Media timescale of video tracks (ISO/IEC 23000-19 recommends 90 kHz for video).
VIDEO_TIMESCALE = 90_000
#: Duration given to the first video sample, before any decode-time delta is known.
DEFAULT_FRAME_RATE = 30
#: Duration given to the first Opus sample: 20 ms, libopus's default frame.
OPUS_DEFAULT_FRAME = 960

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_BOX_HEADER = struct.Struct(">I4s")
#: 14496-12 6.2.2: the unity transformation matrix of mvhd and tkhd.
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = (21 << 10) | (14 << 5) | 4  # 8.4.2.3: ISO 639-2/T "und", 5 bits a letter
_TKHD_ENABLED_IN_MOVIE = 0x000003

# -- the chunk: moof(mfhd, traf(tfhd, tfdt, trun)+) + mdat ---------------------------------

#: 8.8.7 tfhd flag default-base-is-moof: trun data offsets count from the moof.
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
#: 8.8.8 trun flags: data-offset, sample-duration, -size, -flags, -composition-time-offset.
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
# 8.8.3.1 sample flags: sample_depends_on (bits 24-25) and sample_is_non_sync_sample (16).
_SYNC_SAMPLE = 2 << 24  # depends on no other sample
_NON_SYNC_SAMPLE = (1 << 24) | (1 << 16)  # depends on others; not a sync sample

_MOOF_HEADER = struct.Struct(">I4sI4sII")  # moof; mfhd: version/flags, sequence_number
_TRAF_HEADER = struct.Struct(
    ">I4s"  # traf
    "I4sII"  # tfhd: version/flags, track_ID
    "I4sIQ"  # tfdt v1: version/flags, baseMediaDecodeTime
    "I4sIIi"  # trun v1: version/flags, sample_count, data_offset
)
#: trun sample: duration, size, flags, composition time offset (signed, version 1)
_TRUN_SAMPLE = struct.Struct(">IIIi")
_MFHD_SIZE, _TFHD_SIZE, _TFDT_SIZE, _TRUN_HEADER_SIZE = 16, 16, 20, 20
_MOOF_HEADER_SIZE = 8 + _MFHD_SIZE
_TRAF_HEADER_SIZE = 8 + _TFHD_SIZE + _TFDT_SIZE + _TRUN_HEADER_SIZE
_MAX_SAMPLE_SIZE = 0xFFFFFFFF - 8
_MIN_S32, _MAX_S32 = -(1 << 31), (1 << 31) - 1
_MAX_U32, _MAX_U64 = (1 << 32) - 1, (1 << 64) - 1


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return _BOX_HEADER.pack(8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, _U32.pack(version << 24 | flags), *parts)


def _descriptor(tag: int, *parts: bytes) -> bytes:
    """An MPEG-4 descriptor (ISO/IEC 14496-1 8.3.3): tag, 7-bit-group size, payload."""
    payload = b"".join(parts)
    size = len(payload)
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes((tag, *reversed(groups))) + payload


class _TrackState:
    """What :meth:`FragmentMuxer.add_frames` needs per track, precomputed."""

    __slots__ = ("clock", "codec", "fixed_duration", "media_timescale", "scale_den",
                 "scale_num", "track_id")  # fmt: skip

    def __init__(
        self, track: Track, media_timescale: int, first_duration: int, fixed_duration: bool
    ) -> None:
        self.track_id = track.id
        self.codec = track.codec
        self.media_timescale = media_timescale
        # media time = time * scale_num // scale_den (90 // 1 for millisecond video).
        common = math.gcd(media_timescale, track.timescale)
        self.scale_num = media_timescale // common
        self.scale_den = track.timescale // common
        #: AAC frames all last ``first_duration``; Opus packets say how long they are.
        self.fixed_duration = first_duration if fixed_duration else None
        unit = -(-self.scale_num // self.scale_den)  # one source tick, in media ticks
        self.clock = SampleClock(media_timescale, unit=unit, first_duration=first_duration)

    def sample_duration(self, frame: Frame) -> int | None:
        """The sample's duration when its codec states it, else None (guessed)."""
        if self.codec is Codec.OPUS:
            try:
                return opus.packet_samples(frame.data)
            except CodecError:
                return None  # the decoder will complain; the timeline need not
        return self.fixed_duration


class FragmentMuxer:
    """Muxes the frames of ``tracks`` into CMAF chunks, one ``moof`` + ``mdat`` per chunk.

    Video uses a 90 kHz media timescale and audio its sample rate. Each track's samples
    follow one exact timeline (:class:`~strom.media.timeline.SampleClock`): a sample's
    duration is the next one's decode time minus its own, unless the publisher's clock
    jumped; an AAC frame lasts 1024 samples, an Opus packet what its TOC says.
    """

    def __init__(self, tracks: Sequence[Track]) -> None:
        if not tracks:
            raise LocalProtocolError("an fMP4 stream needs at least one track")
        if len({t.id for t in tracks}) != len(tracks):
            raise LocalProtocolError("fMP4 track ids must be unique")
        self.tracks = tuple(tracks)
        self._states: dict[int, _TrackState] = {}
        traks = []
        for track in self.tracks:
            if track.timescale <= 0:
                raise LocalProtocolError(f"track {track.id} has no timescale")
            if track.codec is Codec.VP8:
                raise LocalProtocolError(
                    f"fMP4 cannot carry VP8 (track {track.id}): it has no ISO BMFF binding;"
                    " transcode it to H.264 first"
                )
            fixed = False
            if track.codec in _VIDEO_ENTRIES and track.kind is TrackKind.VIDEO:
                media_timescale = VIDEO_TIMESCALE
                first_duration = VIDEO_TIMESCALE // DEFAULT_FRAME_RATE
                traks.append(_video_trak(track))
            elif track.codec is Codec.AAC and track.kind is TrackKind.AUDIO:
                if track.sample_rate <= 0:
                    raise LocalProtocolError(f"audio track {track.id} has no sample rate")
                media_timescale = track.sample_rate
                first_duration = aac.parse_audio_specific_config(track.config).samples_per_frame
                fixed = True
                traks.append(_audio_trak(track, _mp4a_entry(track), track.sample_rate))
            elif track.codec is Codec.OPUS and track.kind is TrackKind.AUDIO:
                # Opus in ISO BMFF 4.3: the media timescale is the 48 kHz output rate.
                media_timescale = opus.SAMPLE_RATE
                first_duration = OPUS_DEFAULT_FRAME
                traks.append(_audio_trak(track, _opus_entry(track), opus.SAMPLE_RATE))
            else:
                raise LocalProtocolError(
                    f"fMP4 cannot carry {track.kind.value} track {track.id} ({track.codec.value})"
                )
            self._states[track.id] = _TrackState(track, media_timescale, first_duration, fixed)
        self._init = b"".join(
            (
                _ftyp(self.tracks),
                _box(
                    b"moov",
                    _mvhd(max(t.id for t in self.tracks) + 1),
                    *traks,
                    _box(b"mvex", *(_trex(t.id) for t in self.tracks)),
                ),
            )
        )
        self._sequence = 0
        #: per track: decode time and duration (media ticks) of its last sample
        self._placed: dict[int, tuple[int, int]] = {}

    @property
    def sequence_number(self) -> int:
        """The ``mfhd`` sequence number of the last chunk (0 before the first)."""
        return self._sequence

    def init_segment(self) -> bytes:
        """``ftyp`` + ``moov``: sample descriptions, no samples (14496-12 8.8.1)."""
        return self._init

    def add_frame(self, frame: Frame) -> bytes:
        """One chunk, ``moof`` + ``mdat``, holding ``frame`` alone."""
        return self.add_frames((frame,))

    def add_frames(self, frames: Sequence[Frame]) -> bytes:
        """One chunk, ``moof`` + ``mdat``, holding ``frames``: one ``traf`` per track, in
        the order the tracks first appear, and the samples in the ``mdat`` in frame order
        (so a track's frames must be consecutive: held audio, then a video frame).

        One fragment for all tracks is what lets a player start anywhere: VLC's MP4
        demuxer takes each track's time from ``tfdt`` only in the first fragment it reads
        and sums durations after, so a track missing from that fragment starts at zero.

        A frame's times come from the publisher: times that fMP4 cannot write (a decode
        time below zero or beyond 64 bits, a composition offset beyond 32 bits) raise
        :class:`~strom.errors.ProtocolError`, which ingest adapters answer by closing the
        publisher with a reason, as for any malformed input.
        """
        runs: list[tuple[_TrackState, list[Frame]]] = []
        for frame in frames:
            state = self._states.get(frame.track_id)
            if state is None:
                raise LocalProtocolError(f"frame for unknown track {frame.track_id}")
            if runs and runs[-1][0] is state:
                runs[-1][1].append(frame)
            elif any(run_state is state for run_state, _ in runs):
                raise LocalProtocolError("a chunk's frames of one track must be consecutive")
            else:
                runs.append((state, [frame]))
        if not runs:
            raise LocalProtocolError("a chunk needs at least one frame")
        trafs = []
        moof_size = _MOOF_HEADER_SIZE + sum(_TRAF_HEADER_SIZE + 16 * len(f) for _, f in runs)
        data_offset = moof_size + 8
        for state, run_frames in runs:
            trafs.append(self._traf(state, run_frames, data_offset))
            data_offset += sum(len(f.data) for f in run_frames)
        mdat_size = data_offset - moof_size
        if mdat_size > _MAX_SAMPLE_SIZE:
            raise LocalProtocolError(f"samples of {mdat_size - 8} bytes do not fit an mdat")
        self._sequence = sequence = (self._sequence + 1) & 0xFFFFFFFF
        return b"".join(
            (
                _MOOF_HEADER.pack(moof_size, b"moof", _MFHD_SIZE, b"mfhd", 0, sequence),
                *trafs,
                _BOX_HEADER.pack(mdat_size, b"mdat"),
                *(f.data for f in frames),
            )
        )

    def last_sample(self, track_id: int) -> tuple[float, float]:
        """Decode time and end (seconds) of the last sample muxed for ``track_id``: its end
        is where the track's next sample starts while the publisher's clock runs on."""
        dts, duration = self._placed[track_id]
        timescale = self._states[track_id].media_timescale
        return dts / timescale, (dts + duration) / timescale

    def _traf(self, state: _TrackState, frames: list[Frame], data_offset: int) -> bytes:
        num, den, clock = state.scale_num, state.scale_den, state.clock
        samples = []
        first_dts = -1
        for frame in frames:
            # Both times round down the same way, so order in either timeline is kept.
            source = frame.dts * num // den
            if not 0 <= source < _MAX_U64:
                raise ProtocolError(
                    f"decode time {frame.dts} of track {frame.track_id} is out of range"
                )
            dts, duration = clock.place(source, state.sample_duration(frame))
            if dts >= _MAX_U64:
                raise ProtocolError(f"decode time of track {frame.track_id} is out of range")
            offset = clock.snap_offset(frame.pts * num // den - source)
            if not _MIN_S32 <= offset <= _MAX_S32:
                raise ProtocolError(f"composition offset {offset} does not fit 32 bits")
            if first_dts < 0:
                first_dts = dts
            flags = _SYNC_SAMPLE if frame.keyframe else _NON_SYNC_SAMPLE
            samples.append(_TRUN_SAMPLE.pack(min(duration, _MAX_U32), len(frame.data), flags,
                                             offset))  # fmt: skip
            self._placed[state.track_id] = (dts, duration)
        count = len(frames)
        trun_size = _TRUN_HEADER_SIZE + 16 * count
        header = _TRAF_HEADER.pack(
            _TRAF_HEADER_SIZE + 16 * count, b"traf",
            _TFHD_SIZE, b"tfhd", _TFHD_DEFAULT_BASE_IS_MOOF, state.track_id,
            _TFDT_SIZE, b"tfdt", 1 << 24, first_dts,
            trun_size, b"trun", 1 << 24 | _TRUN_FLAGS, count, data_offset,
        )  # fmt: skip
        return header + b"".join(samples)


# -- init segment boxes --------------------------------------------------------------------


def _ftyp(tracks: Sequence[Track]) -> bytes:
    # 4.3: iso6 covers tfdt v1 and signed trun offsets; CMAF's cmfc is not claimed because
    # a CMAF track file holds one track and this stream may multiplex two. The AV1 and Opus
    # bindings ask for their brands among the compatible ones.
    codecs = {t.codec for t in tracks}
    extra = [brand for codec, brand in _CODEC_BRANDS if codec in codecs]
    return _box(b"ftyp", b"iso6", _U32.pack(0), b"iso6", b"isom", b"iso2", b"avc1", b"mp41", *extra)


def _mvhd(next_track_id: int) -> bytes:
    # 8.2.2 v0: times 0, movie timescale 1000, duration 0 (unknown: fragmented, live).
    return _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH", 0, 0, 1000, 0, 0x00010000, 0x0100),
        bytes(10),
        _MATRIX,
        bytes(24),
        _U32.pack(next_track_id),
    )


def _tkhd(track: Track) -> bytes:
    # 8.3.2 v0: enabled and in movie; audio at full volume; the visual size in 16.16.
    volume = 0x0100 if track.kind is TrackKind.AUDIO else 0
    return _full_box(
        b"tkhd",
        0,
        _TKHD_ENABLED_IN_MOVIE,
        struct.pack(">IIIII", 0, 0, track.id, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, volume, 0),
        _MATRIX,
        struct.pack(">II", track.width << 16, track.height << 16),
    )


def _trak(
    track: Track, *, timescale: int, handler: bytes, name: bytes, media_header: bytes, entry: bytes
) -> bytes:
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _LANGUAGE_UND, 0))
    hdlr = _full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12), name + b"\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, _U32.pack(1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, _U32.pack(1), entry),
        _full_box(b"stts", 0, 0, _U32.pack(0)),
        _full_box(b"stsc", 0, 0, _U32.pack(0)),
        _full_box(b"stsz", 0, 0, _U32.pack(0), _U32.pack(0)),
        _full_box(b"stco", 0, 0, _U32.pack(0)),
    )
    minf = _box(b"minf", media_header, dinf, stbl)
    return _box(b"trak", _tkhd(track), _box(b"mdia", mdhd, hdlr, minf))


def _video_trak(track: Track) -> bytes:
    if not (0 < track.width <= 0xFFFF and 0 < track.height <= 0xFFFF):
        raise LocalProtocolError(f"video track {track.id} has no picture size")
    kind, config_box = _VIDEO_ENTRIES[track.codec]
    # 8.5.2.2 VisualSampleEntry, and the codec's configuration box:
    # 14496-15 5.4.2.1 AVCSampleEntry ('avc1': parameter sets in the avcC, as every Strom
    # ingest delivers them); 14496-15 8.4.1.1 HEVCSampleEntry ('hvc1' + 'hvcC', likewise);
    # VP codec binding 2.2 'vp09' + 'vpcC' (a FullBox, version 1);
    # AV1 binding 2.2 'av01' + 'av1C'.
    entry = _box(
        kind,
        bytes(6),
        _U16.pack(1),  # data_reference_index
        bytes(16),  # pre_defined, reserved, pre_defined[3]
        struct.pack(">HHIII", track.width, track.height, 0x00480000, 0x00480000, 0),
        _U16.pack(1),  # frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        config_box(track.config),
    )
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))  # 12.1.2: graphicsmode copy, flags 1
    return _trak(
        track,
        timescale=VIDEO_TIMESCALE,
        handler=b"vide",
        name=b"Strom video",
        media_header=vmhd,
        entry=entry,
    )


def _audio_entry(kind: bytes, track: Track, rate: int, config: bytes) -> bytes:
    # 8.5.2.2 AudioSampleEntry: samplerate is 16.16, so rates above 65535 are written as 0
    # (the decoder takes the rate from its configuration record anyway).
    rate_field = rate << 16 if rate <= 0xFFFF else 0
    return _box(
        kind,
        bytes(6),
        _U16.pack(1),  # data_reference_index
        bytes(8),
        struct.pack(">HHHHI", max(track.channels, 1), 16, 0, 0, rate_field),
        config,
    )


def _opus_entry(track: Track) -> bytes:
    # Opus in ISO BMFF 4.3.1: 'Opus' entry, samplerate 48000, then 'dOps' (a plain Box
    # whose body starts with its own Version field, 4.3.2).
    return _audio_entry(b"Opus", track, opus.SAMPLE_RATE, _box(b"dOps", track.config))


def _mp4a_entry(track: Track) -> bytes:
    # 14496-14 5.6 esds: ES_Descriptor > DecoderConfigDescriptor (objectTypeIndication
    # 0x40 = MPEG-4 audio, streamType 5 = audio) > DecoderSpecificInfo (the ASC).
    esds = _full_box(
        b"esds",
        0,
        0,
        _descriptor(
            3,
            struct.pack(">HB", 0, 0),  # ES_ID (0 in files), flags
            _descriptor(
                4,
                struct.pack(">BB3sII", 0x40, (5 << 2) | 1, bytes(3), 0, 0),
                _descriptor(5, track.config),
            ),
            _descriptor(6, b"\x02"),  # SLConfigDescriptor: predefined for MP4
        ),
    )
    return _audio_entry(b"mp4a", track, track.sample_rate, esds)


def _audio_trak(track: Track, entry: bytes, timescale: int) -> bytes:
    smhd = _full_box(b"smhd", 0, 0, bytes(4))  # 12.2.2: balance 0
    return _trak(
        track,
        timescale=timescale,
        handler=b"soun",
        name=b"Strom audio",
        media_header=smhd,
        entry=entry,
    )


def _trex(track_id: int) -> bytes:
    # 8.8.3: defaults are unused, every trun states duration, size and flags per sample.
    return _full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))


#: Video codecs and their sample entry type and configuration box.
_VIDEO_ENTRIES: dict[Codec, tuple[bytes, Callable[[bytes], bytes]]] = {
    Codec.H264: (b"avc1", lambda config: _box(b"avcC", config)),
    Codec.HEVC: (b"hvc1", lambda config: _box(b"hvcC", config)),
    Codec.VP9: (b"vp09", lambda config: _full_box(b"vpcC", 1, 0, config)),
    Codec.AV1: (b"av01", lambda config: _box(b"av1C", config)),
}
_CODEC_BRANDS = ((Codec.AV1, b"av01"), (Codec.OPUS, b"Opus"))
