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
        out.extend(assembler.add_frame(tracks[frame.track_id], frame, now=1000.0 + n))
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
    [rest] = assembler.flush(now=2000.0)
    assert not rest.keyframe
    assert [f for _, f in rest.frames] == frames[len(sent) :]
    assert assembler.flush(now=2001.0) == []


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


def test_a_keyframe_without_audio_before_it_waits_for_the_next_audio_frame(
    tracks_and_frames: tuple[dict[int, Track], list[Frame]],
) -> None:
    """At more pictures per second than AAC frames (60 fps), a keyframe may come with no
    audio held; its fragment still carries both tracks, for players that join there."""
    tracks, frames = tracks_and_frames
    key = frames[0]
    picture = next(f for f in frames if f.track_id == key.track_id and not f.keyframe)
    sound = next(f for f in frames if f.track_id == AUDIO_TRACK_ID)
    video_track, audio_track = tracks[key.track_id], tracks[AUDIO_TRACK_ID]

    def at(frame: Frame, ms: int) -> Frame:
        return Frame(frame.track_id, ms, ms, frame.keyframe, frame.data)

    # No audio came yet: a keyframe does not wait for audio that may never come.
    assembler = ChunkAssembler(tracks.values(), coalesce_audio=True, max_held_audio=8)
    [alone] = assembler.add_frame(video_track, at(key, 0), 0.0)
    assert alone.frames == ((video_track, at(key, 0)),)
    assert assembler.add_frame(audio_track, at(sound, 10), 0.01) == []
    assert len(assembler.add_frame(video_track, at(picture, 17), 0.02)) == 1
    # Audio flows: a keyframe with none held waits for the next audio frame.
    assert assembler.add_frame(video_track, at(key, 33), 0.03) == []
    assert assembler.held == 1
    [chunk] = assembler.add_frame(audio_track, at(sound, 35), 0.04)
    assert chunk.keyframe
    assert chunk.frames == ((video_track, at(key, 33)), (audio_track, at(sound, 35)))
    assert (chunk.track, chunk.frame) == (video_track, at(key, 33))
    assert abs(chunk.time - 0.033) < 0.001
    assert chunk.data.count(b"traf") == 2
    # A picture first: the keyframe goes alone, then the picture's own chunk.
    assert assembler.add_frame(video_track, at(key, 50), 0.05) == []
    first, second = assembler.add_frame(video_track, at(picture, 67), 0.06)
    assert (first.frame, first.keyframe) == (at(key, 50), True)
    assert (second.frame, second.keyframe) == (at(picture, 67), False)
    # And one still waiting goes out on flush.
    assert assembler.add_frame(video_track, at(key, 83), 0.07) == []
    [last] = assembler.flush(0.08)
    assert last.frame == at(key, 83)
