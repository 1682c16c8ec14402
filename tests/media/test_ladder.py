"""The ladder's plain data: rungs from settings text, renditions' names, the master
playlist's text."""

from __future__ import annotations

import pytest

from strom.media.ladder import (
    LadderError,
    Rung,
    Variant,
    master_playlist,
    parse_rungs,
    rendition_name,
    split_rendition,
)
from strom.settings import Settings, SettingsError, valid_channel_name, valid_watch_name


def test_rungs_parse_highest_first_with_or_without_a_bitrate() -> None:
    rungs = parse_rungs("360p, 720p=2500k,480p=1m")
    assert [r.name for r in rungs] == ["720p", "480p", "360p"]
    assert rungs[0].bitrate == 2_500_000
    assert rungs[1].bitrate == 1_000_000
    assert 300_000 < rungs[2].bitrate < 1_000_000  # chosen from the size
    assert parse_rungs("") == ()


@pytest.mark.parametrize(
    "text",
    [
        "720",
        "720p=fast",
        "100p",
        "4320p",
        "480p,480p",
        "360p=10k",
        "1p,2p",
        ",".join(f"{h}p" for h in range(200, 1000, 100)),
    ],
)
def test_bad_rungs_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(LadderError):
        parse_rungs(text)


def test_the_setting_is_checked_when_read() -> None:
    with pytest.raises(SettingsError, match="ladder rendition"):
        Settings(ladder_renditions="720x")
    with pytest.raises(SettingsError, match="ladder mode"):
        Settings(ladder="sometimes")


def test_a_rung_keeps_the_source_aspect_and_never_grows_it() -> None:
    assert Rung(480, 1).size(1280, 720) == (854, 480)
    assert Rung(360, 1).size(1920, 1080) == (640, 360)
    assert Rung(720, 1).size(640, 360) == (640, 360)  # not larger than the source
    assert Rung(360, 1).size(720, 1280) == (202, 360)  # portrait, even sides


def test_rendition_names_cannot_be_channel_names() -> None:
    name = rendition_name("alice", Rung(480, 1))
    assert name == "alice~480p"
    assert split_rendition(name) == ("alice", "480p")
    assert not valid_channel_name(name)  # nobody publishes to it
    assert valid_watch_name(name)  # everybody may watch it
    for other in ("alice", "alice~", "~480p", "alice~480", "alice~480p~360p", "a b~480p"):
        assert split_rendition(other) is None or not valid_watch_name(other)
    assert not valid_watch_name("../x~480p")


def test_the_master_playlist_lists_variants_in_order() -> None:
    text = master_playlist(
        [
            Variant("index.m3u8", 2_800_000, 1280, 720, "avc1.64001f,mp4a.40.2", "Source"),
            Variant("../alice~360p/index.m3u8", 900_000, 640, 360, "avc1.64001e,mp4a.40.2"),
        ]
    )
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,CODECS="avc1.64001f,'
        'mp4a.40.2",NAME="Source"\nindex.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,'
        'mp4a.40.2"\n../alice~360p/index.m3u8\n'
    )
