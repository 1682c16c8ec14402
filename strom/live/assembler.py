"""Frames in, CMAF chunks out: the hub's muxing front end, sans-IO.

:class:`ChunkAssembler` muxes each frame exactly once (:class:`~strom.media.fmp4.
FragmentMuxer`: one ``moof`` + ``mdat`` per frame) and groups the results into the
:class:`~strom.live.chunk.Chunk` objects the channel fans out.

Audio coalescing: in a stream with video, audio frames are held and travel in the chunk
of the next video frame, so a viewer gets one write per video frame instead of one per
frame, and audio waits at most one video frame. Should video stall, audio goes out on
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

    Feed frames with :meth:`add_frame`; each returns the chunk it completes, if any.
    :meth:`flush` sends what is held (the publisher went away).
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
        self._max_held = max_held_audio
        self._held: list[tuple[Track, Frame]] = []

    @property
    def held(self) -> int:
        """Audio frames waiting for the next video frame."""
        return len(self._held)

    def add_frame(self, track: Track, frame: Frame, now: float) -> Chunk | None:
        """Take ``frame`` (of ``track``, one of this assembler's tracks), which reached the
        server at ``now`` (UNIX seconds). Returns the chunk it completes: a video frame's
        chunk carries the audio held before it; a held audio frame completes none until
        ``max_held_audio`` of them are waiting."""
        is_video = track.kind is TrackKind.VIDEO
        if self._coalesce and not is_video:
            self._held.append((track, frame))
            if len(self._held) >= self._max_held:
                return self.flush(now)  # video stalled: audio goes out on its own
            return None
        # A viewer can start at a video keyframe, or at any frame of an audio-only stream.
        keyframe = frame.keyframe if is_video else not self._has_video
        held, self._held = self._held, []
        held.append((track, frame))
        return self._chunk(held, keyframe, now)

    def flush(self, now: float) -> Chunk | None:
        """The held audio frames as one chunk (None if nothing is held)."""
        held, self._held = self._held, []
        if not held:
            return None
        return self._chunk(held, False, now)

    def _chunk(self, frames: list[tuple[Track, Frame]], keyframe: bool, now: float) -> Chunk:
        track = frames[-1][0]
        data = self._muxer.add_frames([f for _, f in frames])
        time, end = self._muxer.last_sample(track.id)
        return Chunk(data, track, tuple(frames), keyframe, time, now, end=end)
