"""Depacketized RTP access units → the hub's neutral tracks and frames. Sans-IO.

WebRTC ingest (WHIP, RFC 9725) receives H.264 and Opus over RTP. Once the RTP layer has
put a frame's packets back together (aiortc's jitter buffer and depacketizers: RFC 6184
for H.264, which yields an Annex B byte stream, and RFC 7587 for Opus, whose payload is
one Opus packet), what is left is what every other ingest does:

* H.264: Annex B → AVCC (:func:`strom.media.h264.annexb_to_avcc`); the in-band SPS and
  PPS become the track's avcC (a WebRTC sender repeats them before every IDR, so a
  changed resolution shows up as a new track); an IDR slice makes a keyframe. WebRTC
  senders send no B-frames (the RTP timestamp is the presentation time, and RFC 6184
  has no composition offset), so ``pts == dts``.
* VP8 (RFC 7741: the payload descriptor already removed): one frame as the encoder
  wrote it; its keyframes carry the picture size, which makes the track. The hub's fMP4
  cannot carry VP8: the adapter sends it through a transcoder.
* Opus: one packet is one frame; the track is stereo at 48 kHz, as the SDP's
  ``opus/48000/2`` says (RFC 7587 7: always two channels signalled; a mono stream
  decodes fine through a stereo decoder).

Timestamps come in already unwrapped and in the track's clock (90 kHz video, 48 kHz
Opus), relative to whatever origin the adapter chose; nothing here reads a clock.
A frame that cannot be parsed is skipped and counted (``skipped``), never fatal: RTP
loses packets, and the next keyframe puts things right.
"""

from __future__ import annotations

from strom.errors import CodecError
from strom.media import h264, opus, tracks, vpx
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Frame, Track

#: RTP clock rates (RFC 6184 8.2.1: H.264 is 90 kHz; RFC 7587 4.1: Opus is 48 kHz)
VIDEO_CLOCK = 90_000
OPUS_CLOCK = opus.SAMPLE_RATE
#: RFC 7587 7: ``opus/48000/2``, whatever the sender encodes
OPUS_CHANNELS = 2


def opus_track() -> Track:
    """The Opus track of a WebRTC stream."""
    dops = opus.build_dops(
        opus.OpusConfig(
            channels=OPUS_CHANNELS,
            pre_skip=0,
            input_sample_rate=OPUS_CLOCK,
            output_gain=0,
            mapping_family=0,
        )
    )
    return tracks.opus_track(dops, OPUS_CLOCK)


class RtpFrames:
    """One WebRTC stream's access units in, tracks and frames out."""

    def __init__(self) -> None:
        self.video_track: Track | None = None
        self.audio_track: Track | None = None
        #: access units dropped: unparsable, or video before its first SPS/PPS
        self.skipped = 0
        #: the last error that made a frame be skipped (for the adapter's log)
        self.last_error: str | None = None

    def video(self, annexb: bytes, timestamp: int) -> list[Track | Frame]:
        """One H.264 access unit, Annex B, at ``timestamp`` (90 kHz)."""
        out: list[Track | Frame] = []
        try:
            data = h264.annexb_to_avcc(annexb)
            scan = h264.scan_access_unit(data)
            if scan.sps is not None and scan.pps is not None:
                avcc = h264.build_avcc(scan.sps, scan.pps)
                if self.video_track is None or self.video_track.config != avcc:
                    self.video_track, _ = tracks.h264_track(avcc, VIDEO_CLOCK)
                    out.append(self.video_track)
        except CodecError as exc:
            return self._skip(exc)
        if self.video_track is None:
            return self._skip(None)
        out.append(Frame(VIDEO_TRACK_ID, timestamp, timestamp, scan.idr, data))
        return out

    def vp8(self, frame: bytes, timestamp: int) -> list[Track | Frame]:
        """One VP8 frame at ``timestamp`` (90 kHz)."""
        out: list[Track | Frame] = []
        keyframe = vpx.vp8_is_keyframe(frame)
        if keyframe:
            try:
                width, height = vpx.vp8_picture_size(frame)
                track = tracks.vp8_track(width, height, VIDEO_CLOCK)
            except CodecError as exc:
                return self._skip(exc)
            if track != self.video_track:
                self.video_track = track
                out.append(track)
        if self.video_track is None:
            return self._skip(None)
        out.append(Frame(VIDEO_TRACK_ID, timestamp, timestamp, keyframe, frame))
        return out

    def expect_audio(self) -> Track:
        """The Opus track, known before its first packet (the SDP said audio comes):
        the hub's first init segment then holds it even if video starts first."""
        if self.audio_track is None:
            self.audio_track = opus_track()
        return self.audio_track

    def audio(self, packet: bytes, timestamp: int) -> list[Track | Frame]:
        """One Opus packet at ``timestamp`` (48 kHz)."""
        try:
            opus.packet_samples(packet)  # a TOC byte that says what it holds
        except CodecError as exc:
            return self._skip(exc)
        out: list[Track | Frame] = []
        if self.audio_track is None:
            self.audio_track = opus_track()
            out.append(self.audio_track)
        out.append(Frame(AUDIO_TRACK_ID, timestamp, timestamp, True, packet))
        return out

    def _skip(self, exc: CodecError | None) -> list[Track | Frame]:
        self.skipped += 1
        self.last_error = str(exc) if exc is not None else "video before its configuration"
        return []
