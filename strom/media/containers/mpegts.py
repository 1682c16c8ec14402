"""MPEG-2 transport stream (ISO/IEC 13818-1), demuxed as a stream, sans-IO.

What arrives: ``ffmpeg -f mpegts`` pushes (SRT and UDP gateways, hardware encoders, OBS's
"custom output"): 188-byte packets, a PAT naming the PMT, a PMT naming the elementary
streams, and PES packets carrying H.264 (stream type 0x1B, an Annex B byte stream) and
AAC in ADTS framing (0x0F).

* H.264 access units become AVCC; the track's avcC is built from the in-band SPS and
  PPS (a new track when they change); key frame = an IDR slice in the access unit.
* ADTS frames become raw AAC access units with an AudioSpecificConfig from their header;
  each frame of a PES gets the PES time plus the frames before it.
* PTS/DTS (90 kHz, 33 bits) are unwrapped onto one timeline. Video keeps 90 kHz; audio
  tracks count samples (``timescale`` = sample rate), so frame durations are exact.
* A PES of unbounded length (every video PES from ffmpeg) ends at the next PES start
  of its PID, so a video frame leaves one frame late; :meth:`TsDemuxer.flush` ends the
  last one when the stream is over.
* A continuity-counter gap drops the PES it broke (the next one starts clean); a
  duplicate packet is ignored; the transport error indicator drops the packet.
* An audio or video stream Strom cannot carry (MPEG-1/2 audio, the ``ffmpeg -f mpegts``
  default; HEVC; AC-3; Opus) is refused with :class:`TsError` naming it, when the program
  has no supported stream of that kind; data streams (SCTE-35, ID3, subtitles) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.errors import (
    CodecError,
    LimitExceeded,
    LocalProtocolError,
    ProtocolError,
    UnsupportedMedia,
)
from strom.media import aac, h264, tracks
from strom.media.model import Frame, Track, TrackKind
from strom.media.timeline import WrappingClock

PACKET_SIZE = 188
SYNC_BYTE = 0x47
#: Default bound on one PES packet (one video access unit).
DEFAULT_MAX_PES_SIZE = 8 * 1024 * 1024

_PAT_PID = 0x0000
_NULL_PID = 0x1FFF
_TABLE_PAT = 0x00
_TABLE_PMT = 0x02
_MAX_SECTION_SIZE = 1024  # 2.4.4.4: section_length is at most 1021
_TIMESCALE = 90_000
_WRAP = 1 << 33
_HALF_WRAP = 1 << 32

_STREAM_H264 = 0x1B
_STREAM_AAC_ADTS = 0x0F
_STREAM_PRIVATE = 0x06
#: 2.4.4.9 Table 2-34 and common registrations: streams Strom refuses, by kind.
_UNSUPPORTED_VIDEO = {
    0x01: "MPEG-1 video",
    0x02: "MPEG-2 video",
    0x10: "MPEG-4 Part 2 video",
    0x24: "HEVC",
    0x33: "VVC",
    0x42: "AVS video",
    0xEA: "VC-1",
}
_UNSUPPORTED_AUDIO = {
    0x03: "MPEG-1 audio (MP2/MP3)",
    0x04: "MPEG-2 audio (MP2/MP3)",
    0x11: "AAC in LATM",
    0x81: "AC-3",
    0x87: "E-AC-3",
}
#: Descriptors that make a private (0x06) stream an audio stream Strom refuses:
#: registration ('Opus', 'AC-3'), DVB AC-3 (0x6A) and E-AC-3 (0x7A).
_REGISTRATION_DESCRIPTOR = 0x05
_PRIVATE_AUDIO_REGISTRATIONS = {b"Opus": "Opus", b"AC-3": "AC-3", b"EAC3": "E-AC-3"}
_PRIVATE_AUDIO_DESCRIPTORS = {0x6A: "AC-3", 0x7A: "E-AC-3"}
_ACCEPTED = "H.264 video (stream type 0x1B) and AAC audio in ADTS (0x0F)"
#: 2.4.3.7: stream_ids whose PES packets have no optional header.
_NO_PES_HEADER = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF})


class TsError(ProtocolError):
    """Malformed or unsupported MPEG-TS stream."""


class UnsupportedTs(TsError, UnsupportedMedia):
    """A codec or variant this demuxer recognises but Strom does not take."""


def _timestamp(data: bytes | bytearray, pos: int) -> int:
    """A 33-bit PTS/DTS field (2.4.3.7: 3 + 15 + 15 bits, each followed by a marker)."""
    b = data[pos : pos + 5]
    return (b[0] >> 1 & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


@dataclass(slots=True)
class _Stream:
    """One elementary stream: its PES being assembled and what its frames need."""

    pid: int
    kind: TrackKind
    pes: bytearray = field(default_factory=bytearray)
    #: 6 + PES_packet_length, or 0 for an unbounded PES
    pes_size: int = 0
    assembling: bool = False
    continuity: int | None = None
    track: Track | None = None
    # AAC: bytes of an ADTS frame cut by the PES end, and where the next frame starts
    adts_rest: bytes = b""
    next_time: int = 0
    samples_per_frame: int = 1024


class TsDemuxer:
    """Demuxes an MPEG-TS byte stream into tracks and frames (see the module doc).

    The first program of the PAT is read; in it, the first H.264 stream and the first
    ADTS AAC stream.
    """

    def __init__(self, max_pes_size: int = DEFAULT_MAX_PES_SIZE) -> None:
        self.max_pes_size = max_pes_size
        #: Access units or frames dropped: broken by a continuity gap, before the first
        #: SPS/PPS, or without a timestamp.
        self.skipped_frames = 0
        self._buf = bytearray()
        self._pmt_pid: int | None = None
        self._pmt_version: int | None = None
        self._sections: dict[int, bytearray] = {}
        self._streams: dict[int, _Stream] = {}
        self._timeline = WrappingClock(33)
        self._failed = False
        self._out: list[Track | Frame] = []

    def feed(self, data: bytes) -> list[Track | Frame]:
        """Buffer ``data``; return every track change and frame it completes."""
        if self._failed:
            raise LocalProtocolError("TsDemuxer.feed() called after the stream failed")
        buf = self._buf
        buf += data
        try:
            pos = 0
            end = len(buf) - PACKET_SIZE
            while pos <= end:
                if buf[pos] != SYNC_BYTE:
                    raise TsError("lost MPEG-TS sync (no 0x47 at a packet start)")
                self._packet(buf, pos)
                pos += PACKET_SIZE
            del buf[:pos]
        except ProtocolError:
            self._failed = True
            raise
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Track | Frame]:
        """The stream is over: end every PES still open (the last video frame)."""
        for stream in self._streams.values():
            if stream.assembling:
                self._end_pes(stream)
        out, self._out = self._out, []
        return out

    # -- packets --------------------------------------------------------------------------

    def _packet(self, buf: bytearray, pos: int) -> None:
        b1, b2, b3 = buf[pos + 1], buf[pos + 2], buf[pos + 3]
        if b1 & 0x80:  # transport_error_indicator: the packet is known to be damaged
            return
        pid = (b1 & 0x1F) << 8 | b2
        if pid == _NULL_PID:
            return
        start = b1 & 0x40  # payload_unit_start_indicator
        control = b3 >> 4 & 3  # adaptation_field_control
        payload = pos + 4
        discontinuity = False
        if control & 2:
            length = buf[payload]
            if length > PACKET_SIZE - 5:
                raise TsError(f"adaptation field of {length} bytes does not fit a packet")
            if length:
                discontinuity = bool(buf[payload + 1] & 0x80)
            payload += 1 + length
        if not control & 1:
            return  # no payload (and the continuity counter does not advance)
        data = bytes(buf[payload : pos + PACKET_SIZE])
        if pid in (_PAT_PID, self._pmt_pid):
            self._section(pid, bool(start), data)
            return
        stream = self._streams.get(pid)
        if stream is not None:
            self._pes_packet(stream, bool(start), b3 & 0x0F, discontinuity, data)

    def _section(self, pid: int, start: bool, data: bytes) -> None:
        """Assemble a PSI section (2.4.4): PAT or PMT."""
        if start:
            if not data:
                raise TsError("PSI packet without a pointer field")
            pointer = data[0]
            section = bytearray(data[1 + pointer :])
        elif pid in self._sections:
            section = self._sections[pid]
            section += data
        else:
            return
        if len(section) > _MAX_SECTION_SIZE:
            raise TsError("PSI section is too long")
        if len(section) < 3:
            self._sections[pid] = section
            return
        length = 3 + ((section[1] & 0x0F) << 8 | section[2])
        if len(section) < length:
            self._sections[pid] = section
            return
        self._sections.pop(pid, None)
        body = bytes(section[:length])
        if pid == _PAT_PID:
            self._pat(body)
        else:
            self._pmt(body)

    def _pat(self, section: bytes) -> None:
        # 2.4.4.3: 8-byte header, then (program_number, PID) entries, then a CRC_32.
        if section[0] != _TABLE_PAT or len(section) < 12:
            raise TsError("malformed PAT")
        for pos in range(8, len(section) - 4 - 3, 4):
            program = section[pos] << 8 | section[pos + 1]
            if program:  # 0 names the network PID
                pmt_pid = (section[pos + 2] & 0x1F) << 8 | section[pos + 3]
                if pmt_pid != self._pmt_pid:
                    self._pmt_pid, self._pmt_version = pmt_pid, None
                return

    def _pmt(self, section: bytes) -> None:
        # 2.4.4.8: header, PCR_PID, program_info, then the elementary stream loop.
        if section[0] != _TABLE_PMT or len(section) < 16:
            raise TsError("malformed PMT")
        version = section[5] >> 1 & 0x1F
        if version == self._pmt_version:
            return
        self._pmt_version = version
        pos = 12 + ((section[10] & 0x0F) << 8 | section[11])
        end = len(section) - 4
        chosen: dict[TrackKind, int] = {}
        refused: dict[TrackKind, str] = {}
        while pos + 5 <= end:
            stream_type = section[pos]
            pid = (section[pos + 1] & 0x1F) << 8 | section[pos + 2]
            info_length = (section[pos + 3] & 0x0F) << 8 | section[pos + 4]
            descriptors = section[pos + 5 : pos + 5 + info_length]
            pos += 5 + info_length
            kind, refusal = _classify(stream_type, descriptors)
            if kind is None:
                continue
            if refusal is None:
                chosen.setdefault(kind, pid)
            else:
                refused.setdefault(kind, refusal)
        for kind, name in refused.items():
            if kind not in chosen:
                raise UnsupportedTs(
                    f"unsupported {kind.value} codec {name}; Strom accepts {_ACCEPTED}"
                )
        if not chosen:
            raise TsError(
                f"MPEG-TS program has no audio or video stream; Strom accepts {_ACCEPTED}"
            )
        old = {s.kind: s for s in self._streams.values()}
        self._streams = {}
        for kind, pid in chosen.items():
            previous = old.get(kind)
            keep = previous is not None and previous.pid == pid
            self._streams[pid] = previous if keep and previous else _Stream(pid, kind)

    # -- PES ------------------------------------------------------------------------------

    def _pes_packet(
        self, stream: _Stream, start: bool, counter: int, discontinuity: bool, data: bytes
    ) -> None:
        expected = stream.continuity
        stream.continuity = counter
        if expected is not None and not discontinuity:
            if counter == expected:
                return  # 2.4.3.3: a duplicate packet
            if counter != (expected + 1) & 0x0F and stream.assembling:
                stream.assembling = False  # a gap: this PES is broken, drop it
                stream.pes = bytearray()
                self.skipped_frames += 1
        if start:
            if stream.assembling:
                self._end_pes(stream)
            stream.assembling = True
            stream.pes = bytearray(data)
            stream.pes_size = 0
            if len(data) >= 6:
                length = data[4] << 8 | data[5]
                stream.pes_size = 6 + length if length else 0
        elif stream.assembling:
            stream.pes += data
        else:
            return
        if len(stream.pes) > self.max_pes_size:
            raise LimitExceeded(
                f"MPEG-TS PES of more than {self.max_pes_size} bytes exceeds the limit"
            )
        if stream.pes_size and len(stream.pes) >= stream.pes_size:
            self._end_pes(stream)

    def _end_pes(self, stream: _Stream) -> None:
        pes = stream.pes
        stream.assembling = False
        stream.pes = bytearray()
        if stream.pes_size:
            del pes[stream.pes_size :]  # stuffing after a bounded PES
        if len(pes) < 6 or pes[0:3] != b"\x00\x00\x01":
            raise TsError("PES packet without a start code")
        pts = dts = None
        payload = 6
        if pes[3] not in _NO_PES_HEADER:
            if len(pes) < 9:
                raise TsError("PES header is truncated")
            flags = pes[7] >> 6
            payload = 9 + pes[8]
            if len(pes) < payload or (flags & 2 and pes[8] < 5) or (flags == 3 and pes[8] < 10):
                raise TsError("PES header is truncated")
            if flags & 2:
                pts = _timestamp(pes, 9)
                dts = _timestamp(pes, 14) if flags == 3 else pts
        es = bytes(pes[payload:])
        try:
            if stream.kind is TrackKind.VIDEO:
                self._video(stream, pts, dts, es)
            else:
                self._audio(stream, pts, es)
        except CodecError as exc:
            raise TsError(f"PID {stream.pid}: {exc}") from exc

    def _times(self, pts: int, dts: int) -> tuple[int, int]:
        """Unwrapped decode and presentation times (90 kHz)."""
        decode = self._timeline.extend(dts)
        offset = (pts - dts) % _WRAP
        if offset >= _HALF_WRAP:
            offset -= _WRAP
        return decode, decode + offset

    def _video(self, stream: _Stream, pts: int | None, dts: int | None, es: bytes) -> None:
        if not es:
            return
        if pts is None or dts is None:
            self.skipped_frames += 1
            return
        data = h264.annexb_to_avcc(es)
        scan = h264.scan_access_unit(data)
        if scan.sps is not None and scan.pps is not None:
            avcc = h264.build_avcc(scan.sps, scan.pps)
            if stream.track is None or stream.track.config != avcc:
                stream.track, _ = tracks.h264_track(avcc, _TIMESCALE)
                self._out.append(stream.track)
        if stream.track is None:
            self.skipped_frames += 1
            return
        decode, presentation = self._times(pts, dts)
        self._out.append(Frame(stream.track.id, decode, presentation, scan.idr, data))

    def _audio(self, stream: _Stream, pts: int | None, es: bytes) -> None:
        data = stream.adts_rest + es
        carried = len(stream.adts_rest)  # bytes of a frame the previous PES began
        start_time = None if pts is None else self._times(pts, pts)[1]
        pos = 0
        synced = True
        while pos + aac.ADTS_HEADER_SIZE <= len(data):
            try:
                header = aac.parse_adts_header(data, pos)
            except CodecError:
                if synced and pos == 0 and not carried:
                    raise
                pos += 1  # lost ADTS sync (a dropped packet): find the next frame
                synced = False
                continue
            synced = True
            if pos + header.frame_size > len(data):
                break
            track = self._aac_track(stream, header)
            if start_time is not None and pos >= carried:
                # The PES time belongs to the first frame that starts in this PES.
                stream.next_time = start_time * track.sample_rate // _TIMESCALE
                start_time = None
            frame = data[pos + header.header_size : pos + header.frame_size]
            self._out.append(Frame(track.id, stream.next_time, stream.next_time, True, frame))
            stream.next_time += stream.samples_per_frame
            pos += header.frame_size
        stream.adts_rest = data[pos:]
        if len(stream.adts_rest) > self.max_pes_size:
            raise LimitExceeded("ADTS data without a frame exceeds the PES limit")

    def _aac_track(self, stream: _Stream, header: aac.AdtsHeader) -> Track:
        asc = aac.adts_audio_specific_config(header)
        track = stream.track
        if track is None or track.config != asc:
            rate = aac.SAMPLE_RATES[header.sampling_frequency_index]
            track = stream.track = tracks.aac_track(asc, rate)
            stream.samples_per_frame = aac.parse_audio_specific_config(asc).samples_per_frame
            self._out.append(track)
        return track


def _classify(stream_type: int, descriptors: bytes) -> tuple[TrackKind | None, str | None]:
    """What an elementary stream is: its kind and, if Strom refuses it, its name."""
    if stream_type == _STREAM_H264:
        return TrackKind.VIDEO, None
    if stream_type == _STREAM_AAC_ADTS:
        return TrackKind.AUDIO, None
    if stream_type in _UNSUPPORTED_VIDEO:
        return (
            TrackKind.VIDEO,
            f"{_UNSUPPORTED_VIDEO[stream_type]} (stream type {stream_type:#04x})",
        )
    if stream_type in _UNSUPPORTED_AUDIO:
        return (
            TrackKind.AUDIO,
            f"{_UNSUPPORTED_AUDIO[stream_type]} (stream type {stream_type:#04x})",
        )
    if stream_type == _STREAM_PRIVATE:
        pos = 0
        while pos + 2 <= len(descriptors):
            tag, length = descriptors[pos], descriptors[pos + 1]
            body = descriptors[pos + 2 : pos + 2 + length]
            if tag == _REGISTRATION_DESCRIPTOR and body[:4] in _PRIVATE_AUDIO_REGISTRATIONS:
                return TrackKind.AUDIO, _PRIVATE_AUDIO_REGISTRATIONS[body[:4]]
            if tag in _PRIVATE_AUDIO_DESCRIPTORS:
                return TrackKind.AUDIO, _PRIVATE_AUDIO_DESCRIPTORS[tag]
            pos += 2 + length
    return None, None
