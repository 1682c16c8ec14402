"""A viewer whose connection is gone but who is not unsubscribed yet (its handler has not
run since) must not break the publisher: uvloop raises on a write to a closed transport,
and the write happens in the publisher's callback. Seen while probing issue 11: a
WebSocket viewer leaving closed the RTMP publisher of its channel."""

from __future__ import annotations

from pathlib import Path

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.rtmp_play import RtmpPlayer
from strom.delivery.ws import WsViewer
from strom.live.channel import Channel
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.model import Frame, Track
from tests.helpers.hub import FakeSession

DATA = Path(__file__).resolve().parents[1] / "data"


class ClosedTransport:
    """A transport as uvloop leaves it once the peer has gone."""

    def is_closing(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")


def _broadcast() -> tuple[Channel, list[Frame]]:
    """A live channel, and frames still to come."""
    events = Mp4Demuxer().feed((DATA / "mediarecorder_h264_opus.mp4").read_bytes())
    frames = [e for e in events if isinstance(e, Frame)]
    channel = Channel("gone")
    channel.claim(object())
    for track in (e for e in events if isinstance(e, Track)):
        channel.set_track(track)
    half = len(frames) // 2
    for frame in frames[:half]:
        channel.add_frame(frame)
    assert channel.live
    return channel, frames[half:]


async def test_a_gone_websocket_viewer_does_not_break_the_publisher() -> None:
    channel, later = _broadcast()
    viewer = WsViewer(None, ClosedTransport(), ViewerLimits(), "gone")  # type: ignore[arg-type]
    channel.subscribe(viewer)
    for frame in later:
        channel.add_frame(frame)  # no RuntimeError into the publisher


def test_a_gone_rtmp_player_does_not_break_the_publisher() -> None:
    channel, later = _broadcast()
    drops: list[str] = []
    player = RtmpPlayer(
        FakeSession(),  # type: ignore[arg-type]
        1,
        ClosedTransport(),  # type: ignore[arg-type]
        limits=ViewerLimits(),
        chunk_size=4096,
        clock=lambda: 0.0,
        on_drop=drops.append,
        label="gone",
    )
    channel.subscribe(player)
    for frame in later:
        channel.add_frame(frame)
    assert drops == []
