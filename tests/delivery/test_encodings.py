"""A chunk's wire forms are made once per chunk, not once per viewer: the WebSocket frame
for every WebSocket viewer, the RTMP messages for every player on the shared stream id.
The hub keeps them on the chunk under the delivery's encoder, knowing neither."""

from __future__ import annotations

from pathlib import Path

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.rtmp_play import RtmpPlayer
from strom.delivery.ws import OPCODE_BINARY, WsViewer, frame_message, ws_frame
from strom.live.channel import Channel
from strom.live.chunk import Chunk
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.model import Frame, Track, TrackKind
from tests.helpers.hub import FakeSession, FakeTransport

DATA = Path(__file__).resolve().parents[1] / "data"
CHUNK_SIZE = 4096


def test_an_encoding_is_made_once_per_chunk_and_encoder() -> None:
    track = Track(1, TrackKind.VIDEO, codec=None, timescale=1000, config=b"", codec_string="")  # type: ignore[arg-type]
    chunk = Chunk(b"moof+mdat", track, (), True, 0.0, 0.0)
    calls: list[str] = []

    def upper(c: Chunk) -> bytes:
        calls.append("upper")
        return c.data.upper()

    def framed(c: Chunk) -> bytes:
        calls.append("framed")
        return b"[" + c.data + b"]"

    for _ in range(3):
        assert chunk.encoded(upper) == b"MOOF+MDAT"
        assert chunk.encoded(framed) == b"[moof+mdat]"
    assert calls == ["upper", "framed"]


def _live_channel() -> tuple[Channel, list[Frame]]:
    events = Mp4Demuxer().feed((DATA / "mediarecorder_h264_opus.mp4").read_bytes())
    frames = [e for e in events if isinstance(e, Frame)]
    channel = Channel("shared")
    channel.claim(object())  # type: ignore[arg-type]
    for track in (e for e in events if isinstance(e, Track)):
        channel.set_track(track)
    return channel, frames


async def test_every_websocket_viewer_is_written_the_same_frame() -> None:
    channel, frames = _live_channel()
    transports = [FakeTransport() for _ in range(3)]
    for transport in transports:
        channel.subscribe(WsViewer(None, transport, ViewerLimits(), "v"))  # type: ignore[arg-type]
    for frame in frames[:40]:
        channel.add_frame(frame)
    chunk = channel.gop[-1]
    first = transports[0].written[-1]
    assert first == frame_message(OPCODE_BINARY, chunk.data)
    assert all(t.written[-1] is first for t in transports)  # one object, framed once
    assert chunk.encodings == {ws_frame: first}


def test_rtmp_players_on_the_shared_stream_id_get_the_same_messages() -> None:
    channel, frames = _live_channel()

    def player(stream_id: int) -> FakeTransport:
        transport = FakeTransport()
        channel.subscribe(
            RtmpPlayer(
                FakeSession(),  # type: ignore[arg-type]
                stream_id,
                transport,  # type: ignore[arg-type]
                limits=ViewerLimits(),
                chunk_size=CHUNK_SIZE,
                clock=lambda: 0.0,
                on_drop=lambda reason: None,
                label="p",
            )
        )
        return transport

    shared = [player(1), player(1)]
    other = player(2)
    for frame in frames[:40]:
        channel.add_frame(frame)
    assert shared[0].written[-1] is shared[1].written[-1]
    assert other.written[-1] != shared[0].written[-1]  # another message stream id
    # Only the shared form is kept on the chunk: a rare stream id costs no memory.
    assert len(channel.gop[-1].encodings) == 1
