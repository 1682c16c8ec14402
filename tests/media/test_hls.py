"""LL-HLS playlists and the part/segment store (strom.media.hls)."""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from strom.errors import LimitExceeded, LocalProtocolError
from strom.media.hls import HlsName, HlsSettings, LiveHlsStream, ResourceKind

FPS = 30
AUDIO_STEP = 0.0232
PART_TARGET = Decimal("0.33400")


# -- a synthetic stream: 30 fps video, keyframe every 2 s, audio every 23.2 ms ----------


@dataclass(frozen=True)
class Chunk:
    data: bytes
    time: float
    independent: bool


def av_stream(
    start: float, stop: float, gop: float | None = 2.0, first_frame: int = 0
) -> Iterator[Chunk]:
    """Chunks in arrival order; video and audio interleaved by time."""
    chunks: list[tuple[float, int, Chunk]] = []
    frame = first_frame
    while (t := frame / FPS) < stop:
        if t >= start:
            key = frame == 0 if gop is None else frame % round(gop * FPS) == 0
            chunks.append((t, 0, Chunk(f"v{frame};".encode(), t, key)))
        frame += 1
    n = 0
    while (t := n * AUDIO_STEP) < stop:
        if t >= start:
            chunks.append((t, 1, Chunk(f"a{n};".encode(), t, False)))
        n += 1
    chunks.sort(key=lambda c: (c[0], c[1]))
    return (c for _, _, c in chunks)


def feed(stream: LiveHlsStream, chunks: Iterator[Chunk], wallclock0: float | None = None) -> None:
    for c in chunks:
        wall = None if wallclock0 is None else wallclock0 + c.time
        stream.add_chunk(c.data, c.time, c.independent, wall)


# -- a small playlist reader -----------------------------------------------------------


@dataclass
class Part:
    duration: Decimal
    uri: str
    independent: bool


@dataclass
class Segment:
    tags: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    duration: Decimal | None = None
    uri: str | None = None


@dataclass
class Playlist:
    lines: list[str]
    header: dict[str, str]
    segments: list[Segment]  # complete ones
    open: Segment  # parts after the last complete segment
    hint: str | None
    ended: bool

    @property
    def media_sequence(self) -> int:
        return int(self.header["EXT-X-MEDIA-SEQUENCE"])

    @property
    def target_duration(self) -> int:
        return int(self.header["EXT-X-TARGETDURATION"])


def attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', text)}


def parse(text: str) -> Playlist:
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    header: dict[str, str] = {}
    segments: list[Segment] = []
    current = Segment()
    hint = None
    ended = False
    for line in lines[1:]:
        name, _, value = line[1:].partition(":")
        if line.startswith("#EXT-X-PART:"):
            a = attrs(value)
            current.parts.append(Part(Decimal(a["DURATION"]), a["URI"], "INDEPENDENT" in a))
        elif line.startswith("#EXTINF:"):
            current.duration = Decimal(value.rstrip(","))
        elif not line.startswith("#"):
            current.uri = line
            segments.append(current)
            current = Segment()
        elif name == "EXT-X-PRELOAD-HINT":
            hint = attrs(value)["URI"]
        elif name == "EXT-X-ENDLIST":
            ended = True
        elif name in ("EXT-X-DISCONTINUITY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME"):
            current.tags.append(line)
        else:
            assert not segments, f"header tag {line} after a segment"
            assert not current.tags, f"header tag {line} after a segment tag"
            header[name] = value
    return Playlist(lines, header, segments, current, hint, ended)


def live(settings: HlsSettings | None = None) -> LiveHlsStream:
    stream = LiveHlsStream(settings)
    stream.set_init(b"init-A")
    return stream


# -- playlist shape --------------------------------------------------------------------


def test_header_lines() -> None:
    stream = live()
    feed(stream, av_stream(0, 7))
    lines = stream.playlist().splitlines()
    assert lines[:7] == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.00200,HOLD-BACK=6.00000",
        "#EXT-X-PART-INF:PART-TARGET=0.33400",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    assert lines[7] == '#EXT-X-MAP:URI="init-0.mp4"'
    assert lines[-1].startswith("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=")


GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.50000,HOLD-BACK=3.00000
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.250Z
#EXT-X-PART:DURATION=0.50000,URI="part0.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="part0.1.m4s"
#EXTINF:1.00000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.250Z
#EXT-X-PART:DURATION=0.50000,URI="part1.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="part1.1.m4s"
#EXTINF:1.00000,
seg1.m4s
"""


def test_whole_playlist_line_by_line() -> None:
    """10 fps video, a keyframe every second, 0.5 s parts: every line is predictable."""
    stream = LiveHlsStream(HlsSettings(part_target=0.5))
    stream.set_init(b"init")
    texts = []
    for i in range(28):
        stream.add_chunk(b"v%d;" % i, i / 10, i % 10 == 0, wallclock=1_700_000_000.25 + i / 10)
        texts.append(stream.playlist())
    assert texts[23] == GOLDEN + '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part2.0.m4s"\n'
    assert texts[25] == GOLDEN + (
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.250Z\n"
        '#EXT-X-PART:DURATION=0.50000,URI="part2.0.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part2.1.m4s"\n'
    )
    # rfc8216bis 6.2.1: until the window slides, a live playlist only grows at the end
    # (the preload hint, last line, is replaced).
    for before, after in itertools.pairwise(texts):
        assert after.startswith(before.rsplit("#EXT-X-PRELOAD-HINT", 1)[0])
    stream.end()
    assert stream.playlist() == GOLDEN + (
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.250Z\n"
        '#EXT-X-PART:DURATION=0.50000,URI="part2.0.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PART:DURATION=0.30000,URI="part2.1.m4s"\n'
        "#EXTINF:0.80000,\n"
        "seg2.m4s\n"
        "#EXT-X-ENDLIST\n"
    )


def test_segments_are_gops_and_parts_sum_to_them() -> None:
    stream = live()
    feed(stream, av_stream(0, 7.1))
    pl = parse(stream.playlist())
    assert [s.uri for s in pl.segments] == ["seg0.m4s", "seg1.m4s", "seg2.m4s"]
    for seg in pl.segments:
        assert seg.duration == Decimal("2.00000")
    # Parts are listed for the last three target durations only (rfc8216bis 6.2.2).
    assert pl.segments[0].parts == []
    for seg in [*pl.segments[1:], pl.open]:
        assert seg.parts, seg
        for i, part in enumerate(seg.parts):
            assert part.independent == (i == 0)
            assert part.duration <= PART_TARGET
            if i < len(seg.parts) - 1:
                assert part.duration >= PART_TARGET * Decimal("0.85")
        if seg.duration is not None:
            assert sum(p.duration for p in seg.parts) == seg.duration
    msn = 1
    assert [p.uri for p in pl.segments[1].parts] == [
        f"part{msn}.{i}.m4s" for i in range(len(pl.segments[1].parts))
    ]
    assert next(p.uri for p in pl.open.parts) == "part3.0.m4s"


def test_segment_bytes_are_the_gop_chunks_in_order() -> None:
    stream = live()
    chunks = list(av_stream(0, 6.5))
    feed(stream, iter(chunks))
    segment1 = stream.segment(1)
    assert segment1 is not None
    expected = b"".join(c.data for c in chunks if 2.0 <= c.time < 4.0)
    assert segment1 == expected
    assert segment1.startswith(b"v60;")
    # The segment is the concatenation of its parts.
    parts = []
    index = 0
    while (p := stream.part(1, index)) is not None:
        parts.append(p)
        index += 1
    assert b"".join(parts) == segment1
    # ~0.31-0.334 s parts, then a shorter last one up to the next keyframe.
    assert len(parts) in (6, 7)
    assert stream.part(1, index) is None
    assert stream.segment(3) is None  # open


def test_preload_hint_names_the_next_part() -> None:
    stream = live()
    chunks = list(av_stream(0, 3))
    for c in chunks:
        stream.add_chunk(c.data, c.time, c.independent)
        pl = parse(stream.playlist())
        if pl.open.parts:
            next_index = len(pl.open.parts)
            msn = int(pl.open.parts[0].uri.split(".")[0].removeprefix("part"))
        else:
            msn, next_index = len(pl.segments), 0
        assert pl.hint == f"part{msn}.{next_index}.m4s"
        assert stream.part(msn, next_index) is None
        if next_index:
            assert stream.part(msn, next_index - 1) is not None


def test_chunks_before_the_first_keyframe_are_dropped() -> None:
    stream = live()
    feed(stream, av_stream(0.02, 1.99))  # joined mid-GOP: nothing decodable yet
    assert stream.last_msn == -1
    assert stream.revision == 1
    assert parse(stream.playlist()).segments == []
    feed(stream, av_stream(1.99, 4.5, first_frame=59))
    first = stream.segment(0)
    assert first is not None
    assert first.startswith(b"v60;")
    assert b"v59;" not in first
    assert b"a85;" not in first


def test_target_duration_never_decreases_and_media_sequence_slides() -> None:
    stream = live()
    seen: list[Playlist] = []
    for c in av_stream(0, 40):
        before = stream.revision
        stream.add_chunk(c.data, c.time, c.independent)
        if stream.revision != before:
            seen.append(parse(stream.playlist()))
    # Stable from the first complete segment on (before it, only parts are listed).
    assert {pl.target_duration for pl in seen if pl.segments} == {2}
    last = seen[-1]
    assert len(last.segments) == 6
    assert last.media_sequence == 19 - 6 + 0  # seg0..seg18 complete, 6 listed
    assert [s.uri for s in last.segments] == [f"seg{n}.m4s" for n in range(13, 19)]
    sequences = [pl.media_sequence for pl in seen]
    assert sequences == sorted(sequences)


def test_target_duration_follows_the_longest_segment() -> None:
    stream = live()
    feed(stream, av_stream(0, 8, gop=4.0))
    feed(stream, av_stream(8, 14, gop=2.0, first_frame=240))
    pl = parse(stream.playlist())
    assert [s.duration for s in pl.segments] == [Decimal(4), Decimal(4), Decimal(2), Decimal(2)]
    assert pl.target_duration == 4
    assert pl.header["EXT-X-SERVER-CONTROL"].endswith("HOLD-BACK=12.00000")


def test_long_gop_is_split_at_max_segment() -> None:
    stream = live(HlsSettings(max_segment=4.0))
    feed(stream, av_stream(0, 13, gop=None))
    stream.end()
    pl = parse(stream.playlist())
    assert all(s.duration is not None and s.duration <= 4 for s in pl.segments)
    assert len(pl.segments) == 4
    assert pl.target_duration == 4
    # Only the first segment starts decodable, so the playlist must not claim more.
    assert "EXT-X-INDEPENDENT-SEGMENTS" not in pl.header
    assert all(not p.independent for s in pl.segments[1:] for p in s.parts)


def test_audio_only_stream() -> None:
    stream = live()
    n = 0
    while (t := n * AUDIO_STEP) < 5:
        stream.add_chunk(f"a{n};".encode(), t, True)
        n += 1
    pl = parse(stream.playlist())
    assert len(pl.segments) == 4
    for seg in pl.segments:
        assert seg.duration is not None
        assert Decimal(1) <= seg.duration < Decimal("1.03")
    assert all(p.independent for s in pl.segments for p in s.parts)
    assert "EXT-X-INDEPENDENT-SEGMENTS" in pl.header


def test_roughly_ordered_times_never_give_negative_durations() -> None:
    stream = live()
    for c in av_stream(0, 9):
        # audio arrives 15 ms ahead of the video it goes with
        time = c.time + 0.015 if c.data.startswith(b"a") else c.time
        stream.add_chunk(c.data, time, c.independent)
    pl = parse(stream.playlist())
    for seg in [*pl.segments, pl.open]:
        assert all(Decimal(0) < p.duration <= PART_TARGET for p in seg.parts)
        if seg.duration is not None:
            assert abs(seg.duration - 2) < Decimal("0.03")
        if seg.duration is not None and seg.parts:
            assert sum(p.duration for p in seg.parts) == seg.duration


def test_program_date_time_follows_media_time() -> None:
    stream = live()
    feed(stream, av_stream(0, 6.5), wallclock0=1_700_000_000.0)
    pl = parse(stream.playlist())
    dates = [t for s in pl.segments for t in s.tags if "PROGRAM-DATE-TIME" in t]
    assert dates == [
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z",
    ]
    assert pl.open.tags == ["#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z"]


def test_no_program_date_time_without_wallclock() -> None:
    stream = live()
    feed(stream, av_stream(0, 5))
    assert "PROGRAM-DATE-TIME" not in stream.playlist()


# -- end, discontinuity, init versions -------------------------------------------------


def test_end_closes_everything_and_adds_endlist() -> None:
    stream = live()
    feed(stream, av_stream(0, 5))
    stream.end()
    pl = parse(stream.playlist())
    assert pl.ended
    assert pl.hint is None
    assert pl.lines[-1] == "#EXT-X-ENDLIST"
    assert [s.uri for s in pl.segments] == ["seg0.m4s", "seg1.m4s", "seg2.m4s"]
    assert pl.segments[-1].duration is not None
    assert 1 < pl.segments[-1].duration < Decimal("1.1")
    assert not pl.open.parts
    assert stream.ended
    assert stream.has(99, 0)  # nobody waits on an ended stream
    assert not stream.pending(3, 0)
    with pytest.raises(LocalProtocolError):
        stream.add_chunk(b"x", 5.0, True)


def test_flush_closes_the_open_segment() -> None:
    stream = live()
    feed(stream, av_stream(0, 3))
    stream.flush()
    assert stream.segment(1) is not None
    pl = parse(stream.playlist())
    assert len(pl.segments) == 2
    assert not pl.ended
    assert pl.hint == "part2.0.m4s"


def test_discontinuity_and_init_versions() -> None:
    stream = live(HlsSettings(window_segments=3))
    feed(stream, av_stream(0, 6.5))
    assert stream.init_uri == "init-0.mp4"
    stream.set_init(b"init-A")  # same bytes: nothing changes
    assert stream.init_uri == "init-0.mp4"

    stream.discontinuity()
    stream.set_init(b"init-B")
    assert stream.init == b"init-B"
    assert stream.init_uri == "init-1.mp4"
    feed(stream, av_stream(0, 4.5))  # the new broadcast's clock starts again at 0
    pl = parse(stream.playlist())
    # Window of 3, stretched to span 3 target durations (6 s): seg3 is only 0.5 s long.
    assert [s.uri for s in pl.segments] == [f"seg{n}.m4s" for n in range(2, 6)]
    assert pl.header["EXT-X-DISCONTINUITY-SEQUENCE"] == "0"
    new = pl.segments[2]  # seg4
    assert new.tags == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init-1.mp4"']
    seg3 = pl.segments[1].duration  # flushed by the discontinuity
    assert seg3 is not None
    assert Decimal("0.5") < seg3 < Decimal("0.6")
    assert stream.init_segment(0) == b"init-A"  # still listed
    assert stream.get(HlsName(ResourceKind.INIT, version=1)) == b"init-B"

    feed(stream, av_stream(4.5, 14, first_frame=135))
    pl = parse(stream.playlist())
    assert pl.media_sequence >= 5
    assert pl.header["EXT-X-DISCONTINUITY-SEQUENCE"] == "1"
    assert "#EXT-X-DISCONTINUITY" not in pl.lines
    assert pl.segments[0].tags == ['#EXT-X-MAP:URI="init-1.mp4"']
    assert stream.init_segment(0) is None  # no segment uses it any more


# -- what an LL-DASH manifest reads: the timeline, its runs, the segment being written --


def test_the_timeline_lists_the_window_and_the_segment_being_written() -> None:
    stream = live(HlsSettings(window_segments=3))
    feed(stream, av_stream(0, 9.1), wallclock0=1000.0)
    listed = stream.timeline()
    assert [s.msn for s in listed] == [1, 2, 3, 4]  # the playlist's window, seg4 open
    assert [s.complete for s in listed] == [True] * 3 + [False]
    assert {id(s.run) for s in listed} == {id(listed[0].run)}  # one clock: one run
    assert stream.epoch == 1000.0
    assert listed[0].run.first_msn == 0  # the run began before the window
    assert listed[0].run.stream_start == 0
    assert 0 < stream.chunk_duration <= round(100_000 / FPS)


def test_the_segment_being_written_reads_as_it_grows() -> None:
    stream = live()
    feed(stream, av_stream(0, 2.5))
    sent = b""
    for chunk in av_stream(2.5, 3.99):  # seg1 is 2 s to 4 s
        so_far = stream.segment_so_far(1)
        assert so_far is not None
        assert so_far[1] is False
        data = b"".join(bytes(p) for p in so_far[0])
        assert data.startswith(sent)  # pieces only ever grow at the end
        sent = data
        stream.add_chunk(chunk.data, chunk.time, chunk.independent)
    feed(stream, av_stream(3.99, 4.5))
    complete = stream.segment_so_far(1)
    assert complete is not None
    assert complete[1] is True
    assert complete[0] == [stream.segment(1)]
    assert bytes(complete[0][0]).startswith(sent)
    assert stream.started(1)
    assert stream.started(2)
    assert not stream.started(3)
    assert stream.segment_so_far(3) is None


def test_a_new_clock_starts_a_run_placed_by_the_wall_clock() -> None:
    stream = live()
    feed(stream, av_stream(0, 4.5), wallclock0=1000.0)
    stream.discontinuity()
    stream.set_init(b"init-B")
    # The publisher is back 10 s after it started, its clock at 0 again.
    feed(stream, av_stream(0, 2.5), wallclock0=1010.0)
    first, *_, last = stream.timeline()
    assert last.run is not first.run
    assert last.run.first_msn == 3  # seg2 was flushed by the discontinuity
    assert last.run.media_start == 0
    assert last.run.stream_start == 10 * 100_000
    # A restart sooner than the media already sent is placed after it, never over it.
    stream.discontinuity()
    feed(stream, av_stream(0, 2.5), wallclock0=1011.0)
    newest = stream.timeline()[-1].run
    assert newest.stream_start >= last.run.stream_start + 2 * 100_000


def test_new_init_without_discontinuity_starts_a_segment() -> None:
    stream = live()
    feed(stream, av_stream(0, 3))
    stream.set_init(b"init-B")
    feed(stream, av_stream(3, 7, first_frame=90))  # waits for the keyframe at 4 s
    pl = parse(stream.playlist())
    first, second = (s.duration for s in pl.segments[:2])
    assert first == 2
    assert second is not None
    assert 1 < second < Decimal("1.06")
    assert pl.segments[2].tags == ['#EXT-X-MAP:URI="init-1.mp4"']
    assert "#EXT-X-DISCONTINUITY" not in pl.lines


def test_a_clock_jump_is_taken_as_a_discontinuity() -> None:
    stream = live()
    feed(stream, av_stream(0, 5))
    feed(stream, av_stream(3600, 3605, first_frame=3600 * FPS))  # forwards
    feed(stream, av_stream(0, 5))  # and back
    pl = parse(stream.playlist())
    assert pl.target_duration == 2
    assert all(s.duration is not None and s.duration <= 2 for s in pl.segments)
    assert [s.tags for s in pl.segments if "#EXT-X-DISCONTINUITY" in s.tags] == [
        ["#EXT-X-DISCONTINUITY"],
        ["#EXT-X-DISCONTINUITY"],
    ]


def test_a_stuck_clock_cannot_grow_memory() -> None:
    stream = live(HlsSettings(max_part_bytes=10_000))
    stream.add_chunk(b"k" * 1000, 0.0, True)
    for _ in range(9):
        stream.add_chunk(b"p" * 1000, 0.0, False)
    with pytest.raises(LimitExceeded):
        stream.add_chunk(b"p" * 1000, 0.0, False)
    assert stream.stored_bytes < 10_000 + 100


# -- blocking requests -----------------------------------------------------------------


def test_has_for_blocking_playlist_reload() -> None:
    stream = live()
    assert not stream.has(0)
    assert not stream.has(0, 0)
    feed(stream, av_stream(0, 2.5))
    assert (stream.last_msn, stream.last_part) == (1, 0)
    assert stream.has(0)
    assert stream.has(0, 5)
    assert stream.has(1, 0)
    assert not stream.has(1)
    assert not stream.has(1, 1)
    assert stream.pending(1, 1)
    assert stream.pending(1)
    assert stream.pending(2, 0)
    assert not stream.pending(1, 0)
    assert not stream.pending(0)
    before = stream.revision
    feed(stream, av_stream(2.5, 2.8))
    assert stream.revision > before
    assert stream.has(1, 1)
    assert not stream.pending(1, 1)


def test_the_hinted_part_comes_even_when_a_keyframe_ends_the_segment() -> None:
    stream = live()
    feed(stream, av_stream(0, 1.999))
    hint = parse(stream.playlist()).hint
    assert hint is not None
    msn, index = (int(n) for n in hint.removeprefix("part").removesuffix(".m4s").split("."))
    assert (msn, index) == (stream.last_msn, stream.last_part + 1)
    assert stream.pending(msn, index)
    assert stream.pending(msn, index + 1)
    feed(stream, av_stream(1.999, 2.2, first_frame=59))  # keyframe at 2 s closes seg0
    # The part being filled became the (short) last part of the segment...
    assert stream.part(msn, index) is not None
    pl = parse(stream.playlist())
    assert pl.segments[0].parts[-1].uri == hint
    # ...and a request for one more part of that segment is answered 404 at once.
    assert stream.part(msn, index + 1) is None
    assert not stream.pending(msn, index + 1)
    assert pl.hint == "part1.0.m4s"


def test_requests_too_far_ahead() -> None:
    stream = live()
    feed(stream, av_stream(0, 4.5))
    assert (stream.last_msn, stream.last_part) == (2, 0)
    assert not stream.too_far_ahead(4)
    assert stream.too_far_ahead(5)
    # Advance Part Limit: 3 / 0.334 parts (rfc8216bis 6.2.5.2)
    assert not stream.too_far_ahead(2, 8)
    assert stream.too_far_ahead(2, 9)
    assert not stream.too_far_ahead(3, 0)
    assert not stream.too_far_ahead(1, 40)  # behind the edge is never too far


def test_a_rendition_with_a_prefix_and_a_first_sequence_number() -> None:
    """What the delivery gives each broadcast: a directory of its own before every URI,
    and media sequence numbers going on from the broadcast before (HTTP caches keep
    URLs, so none may name something of an earlier broadcast)."""
    stream = LiveHlsStream(uri_prefix="k3f9/", first_msn=40)
    stream.set_init(b"init-A")
    assert not stream.has(40, 0)
    assert not stream.pending(39)  # before this rendition: 404 at once, never a wait
    assert stream.pending(40, 0)
    assert not stream.too_far_ahead(41)
    assert stream.too_far_ahead(42)
    feed(stream, av_stream(0, 2.5))
    assert (stream.last_msn, stream.last_part) == (41, 0)
    assert stream.next_msn == 42
    pl = parse(stream.playlist())
    assert pl.header["EXT-X-MEDIA-SEQUENCE"] == "40"
    assert [s.uri for s in pl.segments] == ["k3f9/seg40.m4s"]  # seg41 is open
    assert pl.segments[0].tags == ['#EXT-X-MAP:URI="k3f9/init-0.mp4"']
    assert all(p.uri.startswith("k3f9/part40.") for p in pl.segments[0].parts)
    assert pl.hint == "k3f9/part41.1.m4s"
    assert stream.init_uri == "k3f9/init-0.mp4"
    # Requests name the file within the directory (the route takes the directory off).
    assert stream.get(HlsName(ResourceKind.SEGMENT, msn=40)) == stream.segment(40)
    assert stream.parse_name("part41.0.m4s") == HlsName(ResourceKind.PART, msn=41, part=0)


def test_parse_names() -> None:
    stream = live()
    feed(stream, av_stream(0, 3))
    assert stream.parse_name("seg0.m4s") == HlsName(ResourceKind.SEGMENT, msn=0)
    assert stream.parse_name("part1.2.m4s") == HlsName(ResourceKind.PART, msn=1, part=2)
    assert stream.parse_name("init-0.mp4") == HlsName(ResourceKind.INIT, version=0)
    for bad in ["seg.m4s", "part1.m4s", "init.mp4", "../seg0.m4s", "seg0.m4s?x", "seg" + "9" * 40]:
        assert stream.parse_name(bad) is None
    segment = stream.parse_name("seg1.m4s")
    assert segment is not None
    assert segment.part is None  # so pending(name.msn, name.part) asks about the segment
    assert stream.pending(segment.msn, segment.part)
    name = stream.parse_name("part1.2.m4s")
    assert name is not None
    assert stream.get(name) == stream.part(1, 2)
    assert stream.get(HlsName(ResourceKind.SEGMENT, msn=0)) == stream.segment(0)


def test_memory_is_bounded_after_ten_minutes() -> None:
    stream = live()
    chunk = b"\0" * 2000
    stored = []
    for minute in range(10):
        for c in av_stream(minute * 60, (minute + 1) * 60, first_frame=minute * 60 * FPS):
            stream.add_chunk(chunk, c.time, c.independent)
        stored.append(stream.stored_bytes)
    # 6 listed + 2 grace segments of 2 s at ~73 chunks/s * 2 kB, plus the parts of the
    # last 12 s (6 target durations): about 15 segments' worth, whatever the uptime.
    assert stored[-1] <= stored[1] * 1.05
    assert stored[-1] < 16 * 2 * 74 * 2000
    assert stream.segment(0) is None
    assert stream.is_past_window(0)
    assert stream.last_msn == 299  # seg0 .. seg298 complete, parts of seg299
    pl = parse(stream.playlist())
    assert len(pl.segments) == 6
    first = pl.media_sequence
    assert stream.segment(first - 2) is not None  # grace for clients that just left
    assert not stream.is_past_window(first - 2)
    assert stream.is_past_window(first - 3)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="part_target"):
        HlsSettings(part_target=0)
    with pytest.raises(ValueError, match="min_segment"):
        HlsSettings(min_segment=5, max_segment=4)


# -- a real client: ffmpeg plays what we wrote -----------------------------------------


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the ISO BMFF boxes in data[start:end]."""
    end = len(data) if end is None else end
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        yield kind, start + 8, start + size
        start += size


def find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> list[int]:
    """Payload starts of the boxes at ``path`` under data[start:end]."""
    found = []
    for kind, body, stop in boxes(data, start, end):
        if kind == path[0]:
            found += [body] if len(path) == 1 else find(data, path[1:], body, stop)
    return found


def u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", data, offset)[0])


@dataclass(frozen=True)
class Sample:
    """One moof+mdat of a fragmented MP4 written with frag_every_frame."""

    data: bytes
    time: float  # decode time of its first sample, seconds
    track: int
    sync: bool  # its first sample is a sync sample

    @property
    def independent(self) -> bool:
        return self.track == VIDEO and self.sync


VIDEO = 1  # ffmpeg numbers the tracks in input order: video first


def split_fragmented_mp4(data: bytes) -> tuple[bytes, list[Sample]]:
    """The init segment (ftyp+moov) and the moof+mdat chunks (ISO/IEC 14496-12 8.8)."""
    top = list(boxes(data))
    init_end = next(stop for kind, _, stop in top if kind == b"moov")
    timescales: dict[int, int] = {}
    for trak in find(data, [b"moov", b"trak"]):
        (tkhd,) = find(data, [b"tkhd"], trak, init_end)
        (mdhd,) = find(data, [b"mdia", b"mdhd"], trak, init_end)
        track_id = u32(data, tkhd + (20 if data[tkhd] == 1 else 12))
        timescales[track_id] = u32(data, mdhd + (20 if data[mdhd] == 1 else 12))
    trex_flags = {
        u32(data, t + 4): u32(data, t + 20) for t in find(data, [b"moov", b"mvex", b"trex"])
    }

    samples = []
    for (kind, body, stop), (next_kind, _, next_stop) in itertools.pairwise(top):
        if kind != b"moof":
            continue
        assert next_kind == b"mdat"
        (traf,) = find(data, [b"traf"], body, stop)
        (tfhd,) = find(data, [b"tfhd"], traf, stop)
        (tfdt,) = find(data, [b"tfdt"], traf, stop)
        (trun,) = find(data, [b"trun"], traf, stop)
        tf_flags, track_id = u32(data, tfhd) & 0xFFFFFF, u32(data, tfhd + 4)
        flags = trex_flags[track_id]
        if tf_flags & 0x20:  # default-sample-flags-present
            skip = sum(n for bit, n in ((1, 8), (2, 4), (8, 4), (0x10, 4)) if tf_flags & bit)
            flags = u32(data, tfhd + 8 + skip)
        tr_flags = u32(data, trun) & 0xFFFFFF
        pos = trun + 8 + (4 if tr_flags & 1 else 0)
        if tr_flags & 4:  # first-sample-flags-present
            flags = u32(data, pos)
        elif tr_flags & 0x400:  # sample-flags-present
            flags = u32(data, pos + (4 if tr_flags & 0x100 else 0) + (4 if tr_flags & 0x200 else 0))
        dts = struct.unpack_from(">Q" if data[tfdt] == 1 else ">I", data, tfdt + 4)[0]
        samples.append(
            Sample(
                data[body - 8 : next_stop],
                dts / timescales[track_id],
                track_id,
                not flags & 0x10000,  # sample_is_non_sync_sample
            )
        )
    return data[:init_end], samples


def make_fragmented_mp4(tmp_path: Path, seconds: int) -> Path:
    out = tmp_path / "src.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-t", str(seconds),
            "-f", "mp4", "-movflags", "frag_every_frame+empty_moov+default_base_moof",
            str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return out


def write_out(stream: LiveHlsStream, directory: Path) -> Path:
    """Write the playlist and every resource it names into ``directory``."""
    directory.mkdir()
    text = stream.playlist()
    for line in text.splitlines():
        uris = re.findall(r'URI="([^"]+)"', line) if line.startswith("#") else [line]
        for uri in uris:
            name = stream.parse_name(uri)
            assert name is not None, uri
            data = stream.get(name)
            assert data is not None, uri
            (directory / uri).write_bytes(data)
    playlist = directory / "index.m3u8"
    playlist.write_text(text)
    return playlist


def count(playlist: Path, stream: str, what: str = "frames") -> int:
    """Frames decoded from (or packets read of) ``stream`` ("v" or "a") by ffprobe."""
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", f"-count_{what}", "-select_streams", stream,
            "-show_entries", f"stream=nb_read_{what}", "-of", "csv=p=0", str(playlist),
        ],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stderr == ""
    # HLS streams are listed twice: in their program and on their own.
    counts = {int(line) for line in result.stdout.split()}
    assert len(counts) == 1, result.stdout
    return counts.pop()


def decode_errors(playlist: Path) -> str:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(playlist), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="needs ffmpeg"
)


@needs_ffmpeg
@pytest.mark.e2e
def test_ffmpeg_plays_the_playlist(tmp_path: Path) -> None:
    init, samples = split_fragmented_mp4(make_fragmented_mp4(tmp_path, 6).read_bytes())
    assert len([s for s in samples if s.track == VIDEO]) == 180
    assert len([s for s in samples if s.independent]) == 3  # keyframes every 2 s
    stream = LiveHlsStream()
    stream.set_init(init)
    for s in samples:
        stream.add_chunk(s.data, s.time, s.independent, wallclock=1_700_000_000 + s.time)
    stream.end()
    pl = parse(stream.playlist())
    assert len(pl.segments) == 3
    playlist = write_out(stream, tmp_path / "hls")

    assert decode_errors(playlist) == ""
    assert count(playlist, "v") == 180
    # Audio that arrived before the first keyframe was dropped; the rest is all there.
    first_key = next(i for i, s in enumerate(samples) if s.independent)
    audio = [s for s in samples[first_key:] if s.track != VIDEO]
    assert count(playlist, "a", "packets") == len(audio)


@needs_ffmpeg
@pytest.mark.e2e
def test_ffmpeg_plays_a_live_window(tmp_path: Path) -> None:
    """A window taken mid-stream plays from its first listed segment, keyframe first."""
    init, samples = split_fragmented_mp4(make_fragmented_mp4(tmp_path, 10).read_bytes())
    stream = LiveHlsStream(HlsSettings(window_segments=2, grace_segments=0))
    stream.set_init(init)
    fed = []
    for s in samples:
        stream.add_chunk(s.data, s.time, s.independent)
        fed.append(s)
        if s.time >= 8.5:
            break
    pl = parse(stream.playlist())
    assert not pl.ended
    assert pl.open.parts
    # Window of 2, stretched to span 3 target durations (6 s).
    assert [s.uri for s in pl.segments] == ["seg1.m4s", "seg2.m4s", "seg3.m4s"]
    assert stream.segment(0) is None
    stream.end()  # so ffmpeg reads it to the end and stops
    playlist = write_out(stream, tmp_path / "hls")
    second_gop = [s.time for s in fed if s.independent][1]
    video = [s for s in fed if s.track == VIDEO and s.time >= second_gop]
    assert decode_errors(playlist) == ""
    assert count(playlist, "v") == len(video)


@needs_ffmpeg
@pytest.mark.e2e
def test_ffmpeg_plays_across_a_discontinuity(tmp_path: Path) -> None:
    """The publisher reconnects with the same settings: its clock starts from 0 again.

    (ffmpeg's HLS demuxer does not apply a changed init segment mid-stream, so only
    the same codec parameters can be checked with it; hls.js and Safari handle both.)
    """
    init, samples = split_fragmented_mp4(make_fragmented_mp4(tmp_path, 4).read_bytes())
    stream = LiveHlsStream()
    stream.set_init(init)
    for s in samples:
        stream.add_chunk(s.data, s.time, s.independent)
    stream.discontinuity()
    stream.set_init(bytes(init))  # same bytes: same version, caches stay valid
    for s in samples:
        stream.add_chunk(s.data, s.time, s.independent)
    stream.end()
    pl = parse(stream.playlist())
    assert [s.tags for s in pl.segments] == [
        ['#EXT-X-MAP:URI="init-0.mp4"'],
        [],
        ["#EXT-X-DISCONTINUITY"],
        [],
    ]
    playlist = write_out(stream, tmp_path / "hls")
    assert decode_errors(playlist) == ""
    assert count(playlist, "v", "packets") == 2 * 120
    # ffmpeg's mov demuxer flags the frame where its clock goes back to 0 as discardable.
    assert count(playlist, "v") >= 2 * 120 - 1


def test_a_part_is_listed_with_its_last_frame_not_a_frame_later() -> None:
    """30 fps video alone (audio rides with video): the tenth frame completes a 0.333 s
    part, and a blocking reload for that part is answerable the moment it arrives."""
    stream = LiveHlsStream(HlsSettings(part_target=0.334))
    stream.set_init(b"init")
    for frame in range(10):
        assert not stream.has(0, 0)
        stream.add_chunk(b"v%d;" % frame, frame / FPS, frame == 0)
    assert stream.has(0, 0)
    assert stream.part(0, 0) == b"".join(b"v%d;" % f for f in range(10))
    playlist = parse(stream.playlist())
    assert [p.duration for p in playlist.open.parts] == [Decimal("0.33333")]
    assert playlist.hint == "part0.1.m4s"
    # The frame that was expected next starts the next part.
    stream.add_chunk(b"v10;", 10 / FPS, False)
    stream.flush()
    assert stream.part(0, 1) == b"v10;"


@pytest.mark.parametrize("fps", [Fraction(30), Fraction(30_000, 1001), Fraction(60)])
def test_parts_closed_at_the_chunk_end_make_segments_exactly_one_gop(fps: Fraction) -> None:
    """Chunks as the hub muxes them: timed at their video frame, ending where the next one
    starts. Parts close at that end, so a segment of 60 pictures lasts exactly 60 frame
    durations (2.00000 s at 30 fps), whatever the rounding of 1/fps to 10 µs ticks."""
    stream = live()
    for n in range(60 * 4 + 1):
        time, end = float(n / fps), float((n + 1) / fps)
        stream.add_chunk(b"v", time, n % 60 == 0, end=end)
    pl = parse(stream.playlist())
    gop = Decimal(f"{float(60 / fps):.5f}")
    assert [s.duration for s in pl.segments] == [gop] * 4
    assert pl.segments[-1].parts  # the parts listed add up to their segment
    for seg in pl.segments:
        assert not seg.parts or sum(p.duration for p in seg.parts) == seg.duration
