"""The text messages of the browser upload (``/ingest/ws``), parsed as data."""

from __future__ import annotations

import json

import pytest

from strom.errors import WS_POLICY, WS_UNSUPPORTED_DATA, UnsupportedMedia
from strom.ingest.upload import StartMessage, StartRefused, control_type, parse_start


def test_start_messages() -> None:
    assert parse_start('{"type":"start"}') == StartMessage("", None)
    assert parse_start(b'{"type":"start","mime":"Video/WebM; codecs=vp9","key":"k"}') == (
        StartMessage("Video/WebM; codecs=vp9", "k")
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"type":"stop"}',
        '{"type":"start","key":42}',
        "[" * 5000,  # deeper than json.loads recurses: used to raise RecursionError
        b"\xff\xfe",
    ],
)
def test_what_is_not_a_start_is_refused_with_1008(text: str | bytes) -> None:
    with pytest.raises(StartRefused) as caught:
        parse_start(text)
    assert caught.value.ws_close == WS_POLICY


@pytest.mark.parametrize("mime", ["image/png", 7, "text/html;video/webm"])
def test_unsupported_media_types_are_refused_with_1003(mime: object) -> None:
    with pytest.raises(StartRefused) as caught:
        parse_start(json.dumps({"type": "start", "mime": mime}))
    assert isinstance(caught.value, UnsupportedMedia)
    assert caught.value.ws_close == WS_UNSUPPORTED_DATA


def test_control_messages() -> None:
    assert control_type('{"type":"stop"}') == "stop"
    assert control_type('{"type":"start","mime":"video/mp4"}') == "start"
    assert control_type('{"type":7}') is None
    assert control_type("{" * 5000) is None
    assert control_type("[" * 5000) is None
