"""Which FFmpeg device opens what, per platform, and what the streamer is told when a
device or a display is missing."""

from __future__ import annotations

import av
import pytest

from strom.client import devices
from strom.client.config import Area, ClientError, ScreenSpec
from strom.client.devices import mic_input, screen_input, webcam_input


def test_linux_screen_area_and_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "platform_name", lambda: "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    whole = screen_input(ScreenSpec(), 30)
    assert (whole.url, whole.format) == (":0", "x11grab")
    assert whole.options == {"framerate": "30", "draw_mouse": "1"}
    part = screen_input(ScreenSpec(":1", Area(800, 600, 10, 20)), 25)
    assert (part.url, part.options["video_size"], part.options["framerate"]) == (
        ":1+10,20", "800x600", "25",
    )  # fmt: skip
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(ClientError, match="no X display"):
        screen_input(ScreenSpec(), 30)


def test_linux_camera_and_microphone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "platform_name", lambda: "linux")
    camera = webcam_input("/dev/video0", 30)
    assert camera.url == "/dev/video0"
    assert camera.format in ("video4linux2", "v4l2")
    monkeypatch.setenv("ALSA_CONFIG_PATH", "")  # restored (unset) after the test
    monkeypatch.delenv("ALSA_CONFIG_PATH")
    mic = mic_input("null")
    assert (mic.url, mic.format) in (("null", "pulse"), ("null", "alsa"))
    if mic.format == "alsa" and devices.ALSA_CONFIG.is_file():
        # PyAV's own alsa-lib finds the system's devices (here ALSA's "null" one).
        with av.open(mic.url, format=mic.format) as capture:
            assert capture.streams.audio[0].rate > 0


def test_other_platforms_name_their_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    # This PyAV has no gdigrab/dshow/avfoundation: the streamer is told so, clearly.
    monkeypatch.setattr(devices, "platform_name", lambda: "windows")
    with pytest.raises(ClientError, match="this PyAV build has no gdigrab input device"):
        screen_input(ScreenSpec(), 30)
    monkeypatch.setattr(devices, "platform_name", lambda: "macos")
    with pytest.raises(ClientError, match="--webcam: this PyAV build has no avfoundation"):
        webcam_input("0", 30)
    # With the device present, the URLs are FFmpeg's.
    monkeypatch.setattr(devices, "_need_format", lambda name, what: name)
    mac = screen_input(ScreenSpec("1", Area(640, 480, 5, 6)), 30)
    assert mac.url == "Capture screen 1:none"
    assert mac.crop == (640, 480, 5, 6)  # avfoundation cannot crop: the compositor does
    assert mic_input("0").url == "none:0"
    monkeypatch.setattr(devices, "platform_name", lambda: "windows")
    win = screen_input(ScreenSpec("", Area(640, 480, 5, 6)), 30)
    assert (win.url, win.options["offset_x"], win.options["offset_y"]) == ("desktop", "5", "6")
    assert webcam_input("Integrated Camera", 30).url == "video=Integrated Camera"
    assert mic_input("Microphone (Realtek)").url == "audio=Microphone (Realtek)"


def test_list_devices_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "platform_name", lambda: "linux")
    text = devices.list_devices()
    for heading in ("screens (--screen DISPLAY):", "cameras (--webcam DEVICE):",
                    "microphones (--mic DEVICE):", "  default"):  # fmt: skip
        assert heading in text
