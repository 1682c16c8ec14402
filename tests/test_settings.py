from __future__ import annotations

from pathlib import Path

import pytest

from strom.cli import build_parser, main
from strom.ingest.rtmp import RtmpServerConfig
from strom.media.rtmp import RtmpLimits
from strom.setting_sources import load
from strom.settings import Settings, SettingsError


def test_precedence_defaults_file_env_cli(tmp_path: Path) -> None:
    config = tmp_path / "strom.toml"
    config.write_text('http_port = 9001\nrtmp_port = 1940\n[stream_keys]\nalice = "k-123456789"\n')
    settings = load(
        cli={"rtmp_port": "1950"},
        environ={"STROM_HTTP_PORT": "9002", "STROM_HOST": "127.0.0.1"},
        config_file=config,
    )
    assert settings.http_port == 9002  # env beats file
    assert settings.rtmp_port == 1950  # cli beats file
    assert settings.host == "127.0.0.1"
    assert settings.stream_keys == {"alice": "k-123456789"}
    assert settings.hls_part_target == Settings().hls_part_target


def test_stream_keys_from_cli_and_env() -> None:
    args = build_parser().parse_args(
        ["serve", "--stream-key", "alice=aaaaaaaaaa", "--stream-key", "bob=bbbbbbbbbb"]
    )
    settings = load(cli={"stream_keys": args.stream_keys}, environ={})
    assert settings.stream_keys == {"alice": "aaaaaaaaaa", "bob": "bbbbbbbbbb"}
    env = load(environ={"STROM_STREAM_KEYS": "carol=cccccccccc,dave=dddddddddd"})
    assert env.stream_keys == {"carol": "cccccccccc", "dave": "dddddddddd"}


def test_keys_never_in_repr() -> None:
    settings = Settings(stream_keys={"alice": "super-secret-key"})
    assert "super-secret-key" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STROM_HTTP_PORT": "eighty"}, "http_port"),
        ({"STROM_HTTP_PORT": "70000"}, "http_port"),
        ({"STROM_STREAM_KEYS": "alice"}, "NAME=KEY"),
        ({"STROM_STREAM_KEYS": "al ice=abcdefghij"}, "channel name"),
        ({"STROM_STREAM_KEYS": "alice=short"}, "too short"),
        ({"STROM_ROLE": "relay"}, "unknown role"),
        ({"STROM_NODE_URL": "ftp://a"}, "node_url"),
        ({"STROM_CLUSTER_TTL": "1", "STROM_CLUSTER_HEARTBEAT": "2"}, "cluster_ttl"),
        ({"STROM_CLUSTER_HEARTBEAT": "0"}, "cluster_heartbeat"),
        ({"STROM_CHAT_RATE": "0"}, "chat_rate must be greater than 0"),
        ({"STROM_CHAT_BURST": "0"}, "chat_burst must be at least 1"),
    ],
)
def test_bad_values_are_refused_clearly(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(environ=environ)


def test_cli_reports_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--http-port", "nope"]) == 2
    assert "http_port" in capsys.readouterr().err


def test_rtmp_defaults_have_one_home() -> None:
    """The RTMP limits the server runs with by default are the sans-IO session's own
    defaults (issue 11: the settings said 8 MiB, RtmpLimits 16 MiB)."""
    assert RtmpServerConfig.from_settings(Settings()).limits == RtmpLimits()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rtmp_min_chunk_size": 0}, "rtmp_min_chunk_size"),
        ({"rtmp_min_chunk_size": 2 << 20}, "rtmp_min_chunk_size"),
        ({"rtmp_preauth_max_pending_bytes": 1000}, "rtmp_preauth_max_pending_bytes"),
        ({"rtmp_max_pending_bytes": 1 << 20}, "rtmp_max_pending_bytes"),
        ({"rtmp_start_timeout": 0}, "rtmp_start_timeout"),
        ({"rtmp_read_step_bytes": 0}, "rtmp_read_step_bytes"),
    ],
)
def test_rtmp_limits_that_cannot_work_are_refused(values: dict[str, int], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(**values)  # type: ignore[arg-type]


def test_services_take_their_defaults_and_values_from_the_settings() -> None:
    """Each service's limits mirror settings declared once: built from default settings
    they equal their own defaults, and a changed setting reaches them."""
    from strom.chat.limits import ChatLimits  # noqa: PLC0415
    from strom.delivery.backpressure import ViewerLimits  # noqa: PLC0415
    from strom.ingest.jpeg_socketio import JpegStreamLimits  # noqa: PLC0415
    from strom.ingest.push import PushLimits  # noqa: PLC0415
    from strom.notify.webhooks import WebhookLimits  # noqa: PLC0415
    from strom.record.recorder import RecorderSettings  # noqa: PLC0415
    from strom.store.sessions import SessionLimits  # noqa: PLC0415
    from strom.web.connections import HttpLimits  # noqa: PLC0415
    from strom.web.socketio.sessions import EngineIOLimits  # noqa: PLC0415
    from strom.web.throttle import LoginLimits  # noqa: PLC0415

    sections = (
        ChatLimits, ViewerLimits, JpegStreamLimits, PushLimits, WebhookLimits,
        RecorderSettings, SessionLimits, HttpLimits, EngineIOLimits, LoginLimits,
    )  # fmt: skip
    for cls in sections:
        assert cls.from_settings(Settings()) == cls(), cls.__name__
    changed = Settings(
        viewer_skip_bytes=123_456,
        session_days=2.0,
        recordings_max_gb_per_channel=1.5,
        connection_limit_exempt="10.0.0.0/8",
    )
    assert ViewerLimits.from_settings(changed).skip_bytes == 123_456
    assert SessionLimits.from_settings(changed).max_age == 2 * 86400
    assert RecorderSettings.from_settings(changed).max_bytes_per_channel == int(1.5 * (1 << 30))
    assert [str(n) for n in PushLimits.from_settings(changed).exempt] == ["10.0.0.0/8"]
