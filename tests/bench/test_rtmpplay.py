"""The lean RTMP player: its chunk scanner must see the same messages (type, stream,
absolute timestamp, first bytes) as Strom's full chunk reader, on real captures from
ffmpeg and GStreamer (compressed headers, interleaving) and on synthetic streams, fed
in one lump and a byte at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.rtmpplay import ChunkScanner, Message, RtmpPlayClient
from strom.media.rtmp import ChunkReader, ConnectRequest, PlayRequest, RtmpServerSession
from strom.media.rtmp.chunk import encode_message
from strom.media.rtmp.handshake import HANDSHAKE_SIZE
from strom.media.rtmp.messages import MessageType, SetChunkSize

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = sorted(DATA.glob("*.rtmp"))


def scan(data: bytes, bytewise: bool) -> list[Message]:
    scanner = ChunkScanner()
    if not bytewise:
        return scanner.feed(memoryview(data))
    out: list[Message] = []
    for i in range(len(data)):
        out += scanner.feed(data[i : i + 1])
    return out


def expected(data: bytes) -> list[tuple[int, int, int, int, int, bytes]]:
    out = []
    for m in ChunkReader().receive_data(data):
        media = m.message_type in (8, 9)
        head = m.payload[:8] if media else m.payload
        out.append((m.message_type, m.csid, m.stream_id, m.timestamp, len(m.payload), head))
    return out


def seen(messages: list[Message]) -> list[tuple[int, int, int, int, int, bytes]]:
    return [(m.message_type, m.csid, m.stream_id, m.timestamp, m.length, m.head) for m in messages]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("bytewise", [False, True])
def test_real_captures_match_strom_reader(capture: Path, bytewise: bool) -> None:
    data = capture.read_bytes()[1 + 2 * HANDSHAKE_SIZE :]
    want = expected(data)
    assert sum(1 for w in want if w[0] in (8, 9)) > 10
    assert seen(scan(data, bytewise)) == want


@pytest.mark.parametrize("bytewise", [False, True])
def test_chunk_size_change_and_extended_timestamps(bytewise: bool) -> None:
    video = bytes((0x17, 1)) + bytes(range(256)) * 40  # a 10 KB "keyframe"
    stream = (
        encode_message(2, MessageType.SET_CHUNK_SIZE, 0, 0, bytes(SetChunkSize(4096)), 128)
        + encode_message(6, 9, 1, 1000, video, 4096)
        + encode_message(4, 8, 1, 1010, b"\xaf\x01" + bytes(300), 4096)
        # past 0xFFFFFF ms: extended timestamps, repeated on continuation chunks
        + encode_message(6, 9, 1, 0x1234567, video, 4096)
        + encode_message(6, 9, 1, 0x1234567 + 33, video[:100], 4096)
    )
    got = seen(scan(stream, bytewise))
    assert got == expected(stream)
    assert [g[3] for g in got] == [0, 1000, 1010, 0x1234567, 0x1234567 + 33]
    assert got[1][4] == len(video)
    assert got[1][5] == video[:8]


def test_play_client_against_strom_server_session() -> None:
    """Handshake, connect, createStream, play against Strom's own server session: the
    player sends what a server accepts, and reads its answers."""
    server = RtmpServerSession()
    client = RtmpPlayClient("live", "rtmp://127.0.0.1/live", "alice")
    events: list[object] = []
    to_server = client.start()
    for _ in range(20):
        for ev in server.receive_data(to_server):
            events.append(ev)
            if isinstance(ev, ConnectRequest):
                server.accept_connect()
            elif isinstance(ev, PlayRequest):
                server.accept_play(ev.stream_id)
        client.receive_data(server.data_to_send())
        to_server = client.data_to_send()
        if client.playing:
            break
    assert client.playing, client.statuses
    assert not client.error
    play = events[-1]
    assert isinstance(play, PlayRequest)
    assert play.name == "alice"
