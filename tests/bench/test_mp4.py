"""The benchmark identifies each WebSocket message / LL-HLS chunk by its moof: track id,
tfdt and sync flag must match the frame Strom's muxer put in it."""

from __future__ import annotations

import struct

import pytest

from bench.mp4 import (
    Mp4Error,
    chunk_info,
    fast_chunk_info,
    is_init,
    iter_chunks,
    iter_moofs,
    ms,
    parse_init,
)
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID
from tests.helpers.muxed import Muxed


def test_init_segment_gives_tracks_handlers_and_timescales(muxed: Muxed) -> None:
    assert is_init(muxed.init)
    tracks = parse_init(muxed.init)
    assert set(tracks) == {VIDEO_TRACK_ID, AUDIO_TRACK_ID}
    assert tracks[VIDEO_TRACK_ID].video
    assert tracks[VIDEO_TRACK_ID].timescale == 90_000
    assert tracks[AUDIO_TRACK_ID].handler == "soun"
    assert tracks[AUDIO_TRACK_ID].timescale == muxed.tracks[AUDIO_TRACK_ID].sample_rate


def test_every_chunk_maps_back_to_its_frame(muxed: Muxed) -> None:
    tracks = parse_init(muxed.init)
    for frame, chunk in zip(muxed.frames, muxed.chunks, strict=True):
        assert not is_init(chunk)
        for info in (chunk_info(chunk), fast_chunk_info(chunk), fast_chunk_info(chunk[:256])):
            assert info.track_id == frame.track_id
            timescale = tracks[info.track_id].timescale
            # the exact time the publisher's milliseconds were rounded from: back to them
            # as the viewers compute it, to within the rounding
            assert abs(ms(info.decode_time, timescale) - frame.dts) <= 1
            if frame.track_id == VIDEO_TRACK_ID:
                assert info.sync == frame.keyframe
    video = [f for f in muxed.frames if f.track_id == VIDEO_TRACK_ID]
    assert sum(f.keyframe for f in video) >= 3  # 3 s, 1 s GOP: the flag was really tested


def test_a_part_of_many_chunks_is_walked_in_order(muxed: Muxed) -> None:
    part = b"".join(muxed.chunks[:40])
    infos = list(iter_chunks(part))
    assert [(i.track_id, i.decode_time) for i in infos] == [
        (c.track_id, c.decode_time) for c in (chunk_info(x) for x in muxed.chunks[:40])
    ]


def test_every_traf_of_a_chunk_is_read(muxed: Muxed) -> None:
    """The hub muxes a video frame and the audio before it into one moof, a traf each."""
    muxer = FragmentMuxer(sorted(muxed.tracks.values(), key=lambda t: t.id))
    video_at = next(
        i for i, f in enumerate(muxed.frames)
        if f.track_id == VIDEO_TRACK_ID and i and muxed.frames[i - 1].track_id == AUDIO_TRACK_ID
    )  # fmt: skip
    audio_from = max(i for i in range(video_at) if muxed.frames[i].track_id == VIDEO_TRACK_ID) + 1
    muxer.add_frames(muxed.frames[:audio_from])  # (the muxer's timeline up to there)
    chunk = muxer.add_frames(muxed.frames[audio_from : video_at + 1])
    fields = list(iter_moofs(chunk))
    assert [track for track, _, _ in fields] == [AUDIO_TRACK_ID, VIDEO_TRACK_ID]
    video = muxed.frames[video_at]
    assert abs(ms(fields[1][1], 90_000) - video.dts) <= 1
    assert fields[1][2] == video.keyframe


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_general_layout_tfdt_v0_and_default_sample_flags() -> None:
    # tfhd with base-data-offset and default-sample-flags (non-sync), tfdt version 0,
    # trun without per-sample flags: the slow path must get all three right
    tfhd = _box(b"tfhd", struct.pack(">IIQI", 0x000001 | 0x000020, 7, 0, 0x00010000))
    tfdt = _box(b"tfdt", struct.pack(">II", 0, 123456))
    trun = _box(b"trun", struct.pack(">IIi", 0x000001, 1, 0))
    moof = _box(
        b"moof", _box(b"mfhd", struct.pack(">II", 0, 1)) + _box(b"traf", tfhd + tfdt + trun)
    )
    for info in (chunk_info(moof), fast_chunk_info(moof + bytes(100))):
        assert (info.track_id, info.decode_time, info.sync) == (7, 123456, False)
    # first-sample-flags override the default: a sync sample
    trun = _box(b"trun", struct.pack(">IIiI", 0x000005, 1, 0, 0x02000000))
    moof = _box(b"moof", _box(b"traf", tfhd + tfdt + trun))
    assert chunk_info(moof).sync


def test_not_a_moof_is_an_error() -> None:
    with pytest.raises(Mp4Error):
        chunk_info(_box(b"mdat", b"x" * 10))
    with pytest.raises(Mp4Error):
        chunk_info(_box(b"moof", _box(b"mfhd", bytes(8))))
    with pytest.raises(Mp4Error):
        parse_init(_box(b"ftyp", b"iso6"))
