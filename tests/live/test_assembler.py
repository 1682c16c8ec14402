"""The muxing front end of the hub, sans-IO: frames in, CMAF chunks out."""

from __future__ import annotations

import itertools

import pytest

from strom.live.assembler import ChunkAssembler
from strom.live.chunk import Chunk
from strom.media.model import AUDIO_TRACK_ID, Frame, Track, TrackKind
from tests.helpers import MediaFile
from tests.helpers.hub import read_flv


@pytest.fixture(scope="module")
def tracks_and_frames(av_media: MediaFile) -> tuple[dict[int, Track], list[Frame]]:
    items = read_flv(av_media.path)
    tracks = {i.id: i for i in items if isinstance(i, Track)}
    frames = [i for i in items if isinstance(i, Frame)]
    first_key = next(i for i, f in enumerate(frames) if f.track_id == 1 and f.keyframe)
    return tracks, frames[first_key:]


def assemble(
    assembler: ChunkAssembler, tracks: dict[int, Track], frames: list[Frame]
) -> list[Chunk]:
    out = []
    for n, frame in enumerate(frames):
        chunk = assembler.add_frame(tracks[frame.track_id], frame, now=1000.0 + n)
        if chunk is not None:
            out.append(chunk)
    return out


def test_audio_rides_with_the_next_video_frame(
    tracks_and_frames: tuple[dict[int, Track], list[Frame]],
) -> None:
    tracks, frames = tracks_and_frames
    assembler = ChunkAssembler(tracks.values(), coalesce_audio=True, max_held_audio=8)
    chunks = assemble(assembler, tracks, frames)
    video = [f for f in frames if f.track_id != AUDIO_TRACK_ID]
    # One chunk per video frame, each ending with its video frame; every frame muxed
    # once, in order, none lost but what is still held at the end.
    assert len(chunks) == len(video)
    assert all(c.track.kind is TrackKind.VIDEO and c.frame in video for c in chunks)
    sent = [f for c in chunks for _, f in c.frames]
    assert sent == frames[: len(sent)]
    assert len(sent) + assembler.held == len(frames)
    # A chunk is one fragment for all its frames (a traf per track), timed at its video
    # frame; it ends where the next chunk starts, on the muxed timeline.
    mixed = next(c for c in chunks if len(c.frames) > 1)
    assert mixed.data.count(b"moof") == 1
    assert mixed.data.count(b"traf") == 2
    last_track, last = mixed.frames[-1]
    assert abs(mixed.time - last.dts / last_track.timescale) < 0.001  # rounding of ms
    assert all(a.end == b.time for a, b in itertools.pairwise(chunks))
    assert chunks[0].keyframe
    assert [c.keyframe for c in chunks] == [bool(c.frame and c.frame.keyframe) for c in chunks]
    # What is held goes out on flush, once.
    rest = assembler.flush(now=2000.0)
    assert rest is not None
    assert not rest.keyframe
    assert [f for _, f in rest.frames] == frames[len(sent) :]
    assert assembler.flush(now=2001.0) is None


def test_held_audio_goes_alone_when_video_stalls(
    tracks_and_frames: tuple[dict[int, Track], list[Frame]],
) -> None:
    tracks, frames = tracks_and_frames
    assembler = ChunkAssembler(tracks.values(), coalesce_audio=True, max_held_audio=3)
    audio = [f for f in frames if f.track_id == AUDIO_TRACK_ID][:7]
    chunks = assemble(assembler, tracks, audio)
    assert [len(c.frames) for c in chunks] == [3, 3]
    assert all(c.track.kind is TrackKind.AUDIO and not c.keyframe for c in chunks)
    assert assembler.held == 1


def test_without_coalescing_or_video_each_frame_is_a_chunk(
    tracks_and_frames: tuple[dict[int, Track], list[Frame]],
) -> None:
    tracks, frames = tracks_and_frames
    separate = ChunkAssembler(tracks.values(), coalesce_audio=False, max_held_audio=8)
    assert len(assemble(separate, tracks, frames[:50])) == 50
    audio_track = tracks[AUDIO_TRACK_ID]
    radio = ChunkAssembler([audio_track], coalesce_audio=True, max_held_audio=8)
    audio = [f for f in frames if f.track_id == AUDIO_TRACK_ID][:20]
    chunks = assemble(radio, {AUDIO_TRACK_ID: audio_track}, audio)
    # Audio-only: every frame is a chunk a listener can start at.
    assert len(chunks) == 20
    assert all(c.keyframe for c in chunks)
    assert radio.tracks == (audio_track,)
    assert b"mp4a" in radio.init_segment
    assert b"avcC" not in radio.init_segment
