"""``strom stream`` options: what the streamer types becomes a checked configuration, and
a mistake becomes a sentence that says what to type instead."""

from __future__ import annotations

import argparse

import pytest

from strom.cli import build_parser
from strom.client.config import (
    Area,
    ClientError,
    ScreenSpec,
    Size,
    config_from_args,
    parse_area,
    parse_screen,
    parse_server,
    parse_size,
    publish_url,
    split_rtmp_url,
)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["stream", *argv])


BASE = ("--server", "https://strom.example", "--key", "k3y")


def test_size() -> None:
    assert parse_size("1280x720") == Size(1280, 720)
    assert parse_size(" 640X360 ") == Size(640, 360)
    with pytest.raises(ClientError, match="WIDTHxHEIGHT"):
        parse_size("1280*720")
    with pytest.raises(ClientError, match="even"):
        parse_size("641x360")
    with pytest.raises(ClientError, match="between 16 and 7680"):
        parse_size("19200x1080")


def test_area_and_screen() -> None:
    assert parse_area("800x600+10+20") == Area(800, 600, 10, 20)
    assert parse_area("800x600") == Area(800, 600, 0, 0)
    with pytest.raises(ClientError, match=r"WIDTHxHEIGHT\+X\+Y"):
        parse_area("800x600+10")
    assert parse_screen("") == ScreenSpec()
    assert parse_screen(":1") == ScreenSpec(":1")
    assert parse_screen(":0.0") == ScreenSpec(":0.0")
    assert parse_screen("1280x720+0+0") == ScreenSpec("", Area(1280, 720, 0, 0))
    assert parse_screen(":1@800x600+100+50") == ScreenSpec(":1", Area(800, 600, 100, 50))
    # Windows window titles may hold an '@' that is not an area.
    assert parse_screen("title=mail@home") == ScreenSpec("title=mail@home")


def test_server_addresses() -> None:
    server = parse_server("https://strom.example/")
    assert server.web == "https://strom.example"
    assert server.rtmp == ""
    assert server.websocket("/chat/a/ws") == "wss://strom.example/chat/a/ws"
    local = parse_server("localhost:8080")
    assert local.web == "http://localhost:8080"
    assert local.websocket("/x") == "ws://localhost:8080/x"
    direct = parse_server("rtmp://media.example:1936/live")
    assert direct.rtmp == "rtmp://media.example:1936/live"
    assert direct.web == "http://media.example"
    assert split_rtmp_url(direct.rtmp) == ("media.example", 1936, "live")
    assert split_rtmp_url("rtmp://h/live/") == ("h", 1935, "live")
    assert split_rtmp_url("rtmps://h:1936/live") == ("h", 1936, "live")
    assert split_rtmp_url("rtmps://h/live") == ("h", 443, "live")
    secure = parse_server("rtmps://media.example:1936/live")
    assert (secure.web, secure.rtmp) == ("https://media.example", "rtmps://media.example:1936/live")
    with pytest.raises(ClientError, match="site's address"):
        parse_server("ftp://strom.example")
    with pytest.raises(ClientError, match="port"):
        parse_server("http://strom.example:port")
    with pytest.raises(ClientError, match="rtmp://"):
        parse_server("https://strom.example", rtmp="http://x")
    assert parse_server("https://s.example", rtmp="rtmps://s.example:1936/live").rtmp == (
        "rtmps://s.example:1936/live"
    )


def test_defaults_and_choices() -> None:
    config = config_from_args(parse(*BASE, "--screen"))
    assert config.screen == ScreenSpec()
    assert config.webcam is None
    assert config.audio is False  # no --mic: no sound track
    assert (config.fps, config.bitrate, config.quality, config.size) == (30, 2500, None, None)
    config = config_from_args(parse(*BASE, "--source", "test"))
    assert config.size == Size(1280, 720)
    assert config.audio is True  # the test tone
    config = config_from_args(
        parse(*BASE, "--webcam", "/dev/video0", "--mic", "default", "--quality", "20",
              "--size", "640x360", "--fps", "25", "--preset", "faster")
    )  # fmt: skip
    assert (config.webcam, config.mic, config.quality, config.bitrate) == (
        "/dev/video0", "default", 20, None,
    )  # fmt: skip
    assert (config.size, config.fps, config.preset) == (Size(640, 360), 25, "faster")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--key", "k"), "--server is required"),
        (("--server", "x.example"), "--key is required"),
        ((*BASE,), "nothing to stream"),
        ((*BASE, "--source", "test", "--screen"), "no devices"),
        ((*BASE, "--screen", "--fps", "0"), "--fps must be between"),
        ((*BASE, "--screen", "--bitrate", "5"), "--bitrate must be between"),
        ((*BASE, "--screen", "--quality", "60"), "--quality must be between"),
        ((*BASE, "--screen", "--size", "3x3"), "between 16"),
        (("--server", "x.example", "--key", "a b", "--screen"), "no spaces"),
    ],
)
def test_mistakes_are_explained(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ClientError, match=message):
        config_from_args(parse(*argv))


def test_bitrate_and_quality_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*BASE, "--screen", "--bitrate", "2000", "--quality", "23")
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    for option in ("--server URL", "--key KEY", "--screen [DISPLAY|AREA]", "--webcam DEVICE",
                   "--mic DEVICE", "--size WxH", "--fps N", "--bitrate K", "--quality Q",
                   "--preview", "--list-devices", "--source {devices,test}"):  # fmt: skip
        assert option in text, option
    assert "picture in picture" in text


def test_an_https_site_is_published_to_over_rtmps_when_it_offers_it() -> None:
    both = {"rtmp_url": "rtmp://s.example:1935/live", "rtmps_url": "rtmps://s.example:1936/live"}
    assert publish_url("https://s.example", both) == "rtmps://s.example:1936/live"
    assert publish_url("http://s.example", both) == "rtmp://s.example:1935/live"
    plain = {"rtmp_url": "rtmp://s.example:1935/live", "rtmps_url": None}  # no certificate
    assert publish_url("https://s.example", plain) == "rtmp://s.example:1935/live"
    assert publish_url("https://s.example", {"rtmps_url": "http://x"}) is None
    assert publish_url("https://s.example", ["rtmp://x"]) is None
