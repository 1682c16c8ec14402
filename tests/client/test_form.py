"""The ``--gui`` window's fields: filled from the command line over the remembered ones,
checked exactly as the terminal client checks its options, remembered in a file that is
private and read as untrusted input."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from strom.client.config import Area, ClientError, ScreenSpec, Size, add_arguments
from strom.client.form import (
    MAX_SETTINGS_BYTES,
    StreamForm,
    form_config,
    form_from_args,
    load_form,
    save_form,
    settings_path,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--gui", *argv])


def test_the_command_line_fills_in_the_fields_over_the_remembered_ones() -> None:
    saved = StreamForm(server="https://old.example", key="old-key", bitrate="1500", fps="24")
    form = form_from_args(
        parse("--server", "https://new.example", "--screen", ":1@640x480+10+20", "--mic", "hw:1"),
        saved,
    )
    assert (form.server, form.key) == ("https://new.example", "old-key")
    assert (form.source, form.display) == ("area", ":1")
    area = (form.area_x, form.area_y, form.area_width, form.area_height)
    assert area == ("10", "20", "640", "480")
    assert (form.mic_on, form.mic) == (True, "hw:1")
    assert (form.fps, form.bitrate) == ("24", "1500")  # not given: remembered
    both = form_from_args(parse("--screen", "--webcam", "/dev/video2"))
    assert (both.source, both.camera) == ("screen+camera", "/dev/video2")
    assert form_from_args(parse("--source", "test")).source == "test"


def test_the_fields_become_the_terminal_clients_config() -> None:
    form = StreamForm(
        server="localhost:8080", key="k1", source="area", display=":3", area_x="100",
        area_y="50", area_width="800", area_height="600", mic_on=True, mic="default",
        size="640x480", fps="25", bitrate="1200",
    )  # fmt: skip
    config = form_config(form, parse("--preset", "faster", "--channel", "alice"))
    assert config.server.web == "http://localhost:8080"
    assert config.screen == ScreenSpec(":3", Area(800, 600, 100, 50))
    assert (config.webcam, config.mic, config.size) == (None, "default", Size(640, 480))
    assert (config.fps, config.bitrate, config.quality) == (25, 1200, None)
    # What the window has no field for comes from the command line it was opened with.
    assert (config.preset, config.channel, config.preview) == ("faster", "alice", False)
    test = form_config(StreamForm(server="s.example", key="k", source="test", mic_on=True), parse())
    assert (test.source, test.mic, test.audio) == ("test", None, True)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"server": ""}, "--server is required"),
        ({"key": "has space"}, "a stream key has no spaces"),
        ({"fps": "thirty"}, "FPS: a whole number"),
        ({"fps": "500"}, "--fps must be between 1 and 120"),
        ({"bitrate": "-5"}, "Bitrate: a whole number"),
        ({"size": "641x480"}, "width and height must be even"),
        ({"source": "area", "area_width": "8"}, "each side must be between 16"),
        ({"source": "camera", "camera": " "}, "Camera: choose or type a camera device"),
        ({"mic_on": True, "mic": ""}, "Microphone: choose or type a device"),
    ],
)
def test_a_wrong_field_is_named(changes: dict[str, object], error: str) -> None:
    form = StreamForm(**{"server": "https://s.example", "key": "k", **changes})  # type: ignore[arg-type]
    with pytest.raises(ClientError, match=error):
        form_config(form, parse())


def test_the_fields_are_remembered_privately(tmp_path: Path) -> None:
    path = tmp_path / "config" / "strom" / "stream.json"
    form = StreamForm(server="https://s.example", key="secret-key", source="camera", mic_on=True)
    save_form(path, form)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_form(path) == form
    save_form(path, StreamForm(key="other"))  # replaced whole
    assert load_form(path).key == "other"
    assert [p.name for p in path.parent.iterdir()] == ["stream.json"]
    assert load_form(tmp_path / "missing.json") == StreamForm()


def test_settings_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert settings_path() == tmp_path / "strom" / "stream.json"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "is not a strom stream settings file"),
        (b'{"version": 99}', "is not a strom stream settings file"),
        (b" " * (MAX_SETTINGS_BYTES + 1), "is larger than"),
    ],
)
def test_a_broken_settings_file_is_refused(tmp_path: Path, content: bytes, error: str) -> None:
    path = tmp_path / "stream.json"
    path.write_bytes(content)
    with pytest.raises(ClientError, match=error):
        load_form(path)


def test_wrong_values_in_the_settings_file_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "stream.json"
    data = {
        "version": 1, "server": "https://s.example", "key": 42, "source": "everything",
        "mic_on": "yes", "fps": "x" * 5000, "bitrate": "900", "unknown": "ignored",
    }  # fmt: skip
    path.write_text(json.dumps(data))
    form = load_form(path)
    assert form == StreamForm(server="https://s.example", bitrate="900")
