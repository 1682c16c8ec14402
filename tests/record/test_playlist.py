"""The recording's HLS playlist: whole while it fits the DVR window, sliding beyond it."""

from __future__ import annotations

from pathlib import Path

from strom.record import storage
from strom.record.storage import RecordingInfo, Segment


def info(durations: list[float], *, finished: bool, breaks: tuple[int, ...] = ()) -> RecordingInfo:
    segments, start, init = [], 0.0, 1
    for seq, duration in enumerate(durations):
        if seq in breaks:
            init += 1
        segments.append(Segment(seq, start, duration, 1000, init, seq in breaks))
        start += duration
    return RecordingInfo(
        channel="alice",
        id="20261123-120000",
        path=Path("/nowhere"),
        started=0.0,
        ended=None if not finished else start,
        status=storage.FINISHED if finished else storage.RECORDING,
        broadcast_id=None,
        error=None,
        segments=tuple(segments),
        bytes=1000 * len(segments),
    )


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_a_recording_that_fits_the_window_is_an_event_playlist_from_the_start() -> None:
    text = lines(storage.vod_playlist(info([2.0] * 5, finished=False), window=60))
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text
    assert "#EXT-X-MEDIA-SEQUENCE:0" in text
    assert [x for x in text if x.endswith(".m4s")] == [f"segments/{i}.m4s" for i in range(5)]
    assert "#EXT-X-ENDLIST" not in text


def test_a_longer_live_slides_to_the_last_window_seconds() -> None:
    # 20 segments of 2 s, an encoder restart (new init) at segment 8 and 15, window 10 s.
    rec = info([2.0] * 20, finished=False, breaks=(8, 15))
    text = lines(storage.vod_playlist(rec, window=10))
    assert [x for x in text if x.endswith(".m4s")] == [f"segments/{i}.m4s" for i in range(15, 20)]
    assert "#EXT-X-MEDIA-SEQUENCE:15" in text
    # Both restarts slid out with their segments (the one at 15 opens the window).
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2" in text
    assert "#EXT-X-DISCONTINUITY" not in text
    assert not any(x.startswith("#EXT-X-PLAYLIST-TYPE") for x in text)
    # The first listed segment names its init segment.
    assert text[text.index("#EXT-X-MEDIA-SEQUENCE:15") :].count('#EXT-X-MAP:URI="init-3.mp4"') == 1


def test_the_window_slides_across_a_restart_inside_it() -> None:
    rec = info([2.0] * 20, finished=False, breaks=(17,))
    text = lines(storage.vod_playlist(rec, window=10))
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in text
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert text.count('#EXT-X-MAP:URI="init-1.mp4"') == 1
    assert text.count('#EXT-X-MAP:URI="init-2.mp4"') == 1


def test_the_finished_recording_is_whole_whatever_the_window() -> None:
    text = lines(storage.vod_playlist(info([2.0] * 20, finished=True), window=10))
    assert len([x for x in text if x.endswith(".m4s")]) == 20
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
    assert text[-1] == "#EXT-X-ENDLIST"


def test_a_segment_longer_than_the_window_is_still_listed() -> None:
    text = lines(storage.vod_playlist(info([30.0, 30.0], finished=False), window=10))
    assert [x for x in text if x.endswith(".m4s")] == ["segments/1.m4s"]
