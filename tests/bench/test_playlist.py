"""The LL-HLS client's playlist reading, on playlists rendered by Strom's own HLS code
and on a plain (nginx-rtmp style) playlist."""

from __future__ import annotations

from bench.mp4 import iter_chunks
from bench.playlist import attributes, parse_media_playlist
from strom.media.hls import HlsSettings, LiveHlsStream
from strom.media.model import VIDEO_TRACK_ID
from tests.helpers.muxed import Muxed


def feed(muxed: Muxed, count: int) -> LiveHlsStream:
    hls = LiveHlsStream(HlsSettings(part_target=0.2, min_segment=1.0))
    hls.set_init(muxed.init)
    for frame, chunk in list(zip(muxed.frames, muxed.chunks, strict=True))[:count]:
        key = frame.keyframe and frame.track_id == VIDEO_TRACK_ID
        hls.add_chunk(chunk, frame.dts / 1000, key, 1_700_000_000 + frame.dts / 1000)
    return hls


def test_strom_playlist_parts_and_next_blocking_request(muxed: Muxed) -> None:
    hls = feed(muxed, len(muxed.frames) * 2 // 3)
    pl = parse_media_playlist(hls.playlist())
    assert pl.can_block_reload
    assert pl.part_target == 0.2
    assert pl.init_uri is not None
    assert pl.init_uri.startswith("init")
    assert pl.preload_hint is not None
    last = pl.last_part()
    assert last is not None
    assert (last.msn, last.index) == (hls.last_msn, hls.last_part)
    assert last.uri == f"part{last.msn}.{last.index}.m4s"
    # the next blocking reload asks for exactly the first part not yet published: the
    # one the server hints at
    msn, part = pl.next_block()
    assert pl.preload_hint == f"part{msn}.{part}.m4s"
    assert (msn, part) > (hls.last_msn, hls.last_part)
    assert part is not None
    assert not hls.has(msn, part)
    assert hls.too_far_ahead(msn, part) is False
    # segments: complete ones have a URI and parts summing to their duration
    done = pl.complete_segments
    assert done
    for seg in done:
        assert seg.uri == f"seg{seg.msn}.m4s"
        if seg.parts:
            assert abs(sum(p.duration for p in seg.parts) - seg.duration) < 1e-4
    start = pl.live_start_part()
    assert start is not None
    assert start.independent


def test_next_block_is_the_hinted_part_at_every_point(muxed: Muxed) -> None:
    cases = set()
    for count in range(40, len(muxed.frames), 5):
        hls = feed(muxed, count)
        pl = parse_media_playlist(hls.playlist())
        msn, part = pl.next_block()
        assert pl.preload_hint == f"part{msn}.{part}.m4s"
        cases.add(msn == hls.last_msn)  # inside the open segment, or the next one
    assert cases == {True, False}


def test_the_live_start_part_holds_a_keyframe(muxed: Muxed) -> None:
    hls = feed(muxed, len(muxed.frames))
    pl = parse_media_playlist(hls.playlist())
    start = pl.live_start_part()
    assert start is not None
    data = hls.part(start.msn, start.index)
    assert data is not None
    first = next(iter_chunks(data))
    assert first.track_id == VIDEO_TRACK_ID
    assert first.sync


def test_plain_hls_playlist() -> None:
    text = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-TARGETDURATION:2\n"
        "#EXTINF:2.000,\nbench-7.ts\n#EXTINF:2.002,\nbench-8.ts\n"
    )
    pl = parse_media_playlist(text)
    assert [(s.msn, s.uri, s.duration) for s in pl.segments] == [
        (7, "bench-7.ts", 2.0),
        (8, "bench-8.ts", 2.002),
    ]
    assert pl.part_target is None
    assert not pl.can_block_reload
    assert pl.next_block() == (9, None)
    assert pl.live_start_part() is None


def test_attribute_lists_with_quoted_commas() -> None:
    attrs = attributes('DURATION=0.33334,URI="part1.2.m4s?a=1,b=2",INDEPENDENT=YES')
    assert attrs == {"DURATION": "0.33334", "URI": "part1.2.m4s?a=1,b=2", "INDEPENDENT": "YES"}
