"""Feeding the hub real media, and fakes of what a delivery writes to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strom.live.channel import Channel
from strom.media.flv import FlvDemuxer, FlvReader
from strom.media.model import Frame, Track


class Publisher:
    """A channel's publisher that does nothing (a channel claimed by a test)."""

    def disconnect(self, reason: str) -> None:
        return


class Viewer:
    """A counted viewer that ignores what it is sent."""

    def on_live(self, channel: Channel) -> None:
        return

    def on_chunk(self, chunk: object) -> None:
        return

    def on_end(self) -> None:
        return


def read_flv(path: Path) -> list[Track | Frame]:
    demuxer = FlvDemuxer()
    items: list[Track | Frame] = []
    for tag in FlvReader().feed(path.read_bytes()):
        if tag.tag_type == 9:
            items += demuxer.video(tag.timestamp, tag.payload)
        elif tag.tag_type == 8:
            items += demuxer.audio(tag.timestamp, tag.payload)
    return items


def feed(channel: Channel, items: list[Track | Frame]) -> None:
    for item in items:
        if isinstance(item, Track):
            channel.set_track(item)
        else:
            channel.add_frame(item)


def video_frames(items: list[Track | Frame]) -> list[Frame]:
    return [i for i in items if isinstance(i, Frame) and i.track_id == 1]


class FakeSession:
    """What RtmpPlayer calls on its RtmpServerSession, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def send_data(self, *args: Any) -> None:
        self.calls.append(("data", args))

    def send_media(self, *args: Any) -> None:
        self.calls.append(("media", args))

    def send_status(self, *args: Any) -> None:
        self.calls.append(("status", args))

    def data_to_send(self) -> bytes:
        return b""


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0
