"""Frames in, CMAF chunks out: the hub's muxing front end, sans-IO.

:class:`ChunkAssembler` muxes each frame exactly once, a chunk's frames together into one
fragment (:class:`~strom.media.fmp4.FragmentMuxer`: one ``moof`` with a ``traf`` per track,
one ``mdat``), as the :class:`~strom.live.chunk.Chunk` objects the channel fans out.

Audio coalescing: in a stream with video, audio frames are held and travel in the chunk
of the next video frame, so a viewer gets one write per video frame instead of one per
frame, audio waits at most one video frame, and a player starting at a keyframe's chunk
finds every track's decode time in its fragment. Should video stall, audio goes out on
its own once ``max_held_audio`` frames are held (8 frames of AAC at 44.1 kHz: 186 ms).

No clock and no I/O: the caller passes each frame's arrival time in.
"""

from __future__ import annotations

from collections.abc import Sequence

from strom.live.chunk import Chunk
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import Frame, Track, TrackKind


class ChunkAssembler:
    """The chunks of one set of tracks (one init segment).

    Feed frames with :meth:`add_frame`; each returns the chunks it completes (none, one,
    or two). :meth:`flush` sends what is held (the publisher went away).
    """

    def __init__(
        self, tracks: Sequence[Track], *, coalesce_audio: bool, max_held_audio: int
    ) -> None:
        self.tracks = tuple(sorted(tracks, key=lambda t: t.id))
        self._muxer = FragmentMuxer(self.tracks)
        #: ``ftyp`` + ``moov`` for these tracks
        self.init_segment = self._muxer.init_segment()
        self._has_video = any(t.kind is TrackKind.VIDEO for t in self.tracks)
        self._coalesce = coalesce_audio and self._has_video
        #: audio frames have come (a keyframe never waits for audio that does not)
        self._audio_flows = False
        self._max_held = max_held_audio
        self._held: list[tuple[Track, Frame]] = []
        #: a video keyframe waiting for the next audio frame (see :meth:`add_frame`)
        self._keyframe: tuple[Track, Frame] | None = None

    @property
    def held(self) -> int:
        """Frames waiting: audio for the next video frame, or a keyframe for audio."""
        return len(self._held) + (self._keyframe is not None)

    def add_frame(self, track: Track, frame: Frame, now: float) -> list[Chunk]:
        """Take ``frame`` (of ``track``, one of this assembler's tracks), which reached the
        server at ``now`` (UNIX seconds). Returns the chunks it completes: a video frame's
        chunk carries the audio held before it; a held audio frame completes none until
        ``max_held_audio`` of them are waiting.

        A keyframe starts a segment, where players join, so its fragment should carry
        every track (VLC takes each track's start from the first fragment it reads). When
        no audio came since the previous picture (video at more frames per second than
        AAC has frames), the keyframe waits for the next audio frame, which is due within
        one audio frame; should a picture come first (or no audio flow at all), the
        keyframe goes alone.
        """
        is_video = track.kind is TrackKind.VIDEO
        self._audio_flows |= not is_video
        pending, self._keyframe = self._keyframe, None
        if pending is not None:
            if not is_video:
                return [self._chunk([pending, (track, frame)], True, now)]
            out = [self._chunk([pending], True, now)]
        else:
            out = []
        if self._coalesce and not is_video:
            self._held.append((track, frame))
            if len(self._held) >= self._max_held:
                out.extend(self._flush(now))  # video stalled: audio goes out on its own
            return out
        if is_video and frame.keyframe and self._coalesce and self._audio_flows and not self._held:
            self._keyframe = (track, frame)
            return out
        # A viewer can start at a video keyframe, or at any frame of an audio-only stream.
        keyframe = frame.keyframe if is_video else not self._has_video
        held, self._held = self._held, []
        held.append((track, frame))
        out.append(self._chunk(held, keyframe, now))
        return out

    def flush(self, now: float) -> list[Chunk]:
        """What is held, as chunks (none if nothing is held)."""
        pending, self._keyframe = self._keyframe, None
        out = [self._chunk([pending], True, now)] if pending is not None else []
        out.extend(self._flush(now))
        return out

    def _flush(self, now: float) -> list[Chunk]:
        held, self._held = self._held, []
        return [self._chunk(held, False, now)] if held else []

    def _chunk(self, frames: list[tuple[Track, Frame]], keyframe: bool, now: float) -> Chunk:
        """One chunk of ``frames``, timed at its video frame (else at its last frame)."""
        track = next((t for t, _ in frames if t.kind is TrackKind.VIDEO), frames[-1][0])
        data = self._muxer.add_frames([f for _, f in frames])
        time, end = self._muxer.last_sample(track.id)
        return Chunk(data, track, tuple(frames), keyframe, time, now, end=end)
