"""Real ffmpeg against a tiny asyncio server driven by the sans-IO RTMP session."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from strom.errors import ProtocolError
from strom.media.rtmp import (
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpServerSession,
    ServerEvent,
    UnpublishRequest,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg"),
]

DATA = Path(__file__).resolve().parents[1] / "data"
TIMEOUT = 10.0

Handler = Callable[[RtmpServerSession, ServerEvent, asyncio.StreamWriter], Awaitable[None]]


async def serve_one(handler: Handler) -> tuple[asyncio.Server, int, list[ServerEvent]]:
    """A one-connection server; returns (server, port, events seen)."""
    seen: list[ServerEvent] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtmpServerSession()
        try:
            while data := await reader.read(65536):
                for event in session.receive_data(data):
                    seen.append(event)
                    await handler(session, event, writer)
                writer.write(session.data_to_send())
                await writer.drain()
        except (ProtocolError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def run_ffmpeg(*args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def accept_publisher(
    session: RtmpServerSession, event: ServerEvent, _writer: asyncio.StreamWriter
) -> None:
    if isinstance(event, ConnectRequest):
        session.accept_connect()
    elif isinstance(event, PublishRequest):
        session.accept_publish(event.stream_id)


async def test_ffmpeg_publishes_h264_and_aac() -> None:
    server, port, events = await serve_one(accept_publisher)
    async with server:
        code, _, err = await run_ffmpeg(
            "-f", "lavfi", "-i", "testsrc=size=160x90:rate=30",
            "-f", "lavfi", "-i", "sine=sample_rate=44100",
            "-t", "1", "-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-g", "30",
            "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-c:a", "aac",
            "-f", "flv", f"rtmp://127.0.0.1:{port}/live/key?sig=1",
        )  # fmt: skip
    assert code == 0, err.decode(errors="replace")
    connect = events[0]
    assert isinstance(connect, ConnectRequest)
    assert connect.app == "live"
    assert PublishRequest(1, "key?sig=1", "live") in events
    metadata = [e for e in events if isinstance(e, DataMessage)]
    assert metadata[0].name == "onMetaData"
    video = [e for e in events if isinstance(e, MediaMessage) and e.message_type == 9]
    audio = [e for e in events if isinstance(e, MediaMessage) and e.message_type == 8]
    assert video[0].payload[:2] == b"\x17\x00"  # AVC sequence header
    assert audio[0].payload[:2] == b"\xaf\x00"  # AAC sequence header
    assert len(video) >= 30
    assert len(audio) >= 40
    assert isinstance(events[-1], UnpublishRequest)


def captured_media() -> tuple[list[DataMessage], list[MediaMessage]]:
    session = RtmpServerSession()
    events = session.receive_data((DATA / "ffmpeg_publish.rtmp").read_bytes())
    return (
        [e for e in events if isinstance(e, DataMessage)],
        [e for e in events if isinstance(e, MediaMessage)],
    )


async def test_ffmpeg_plays_captured_stream() -> None:
    metadata, media = captured_media()

    async def serve_player(
        session: RtmpServerSession, event: ServerEvent, writer: asyncio.StreamWriter
    ) -> None:
        if isinstance(event, ConnectRequest):
            session.accept_connect()
        elif isinstance(event, PlayRequest):
            session.accept_play(event.stream_id)
            session.send_data(event.stream_id, "onMetaData", *metadata[0].values)
            for m in media:
                session.send_media(event.stream_id, m.message_type, m.timestamp, m.payload)
            session.send_status(event.stream_id, "status", "NetStream.Play.Stop", "done")
            writer.write(session.data_to_send())
            await writer.drain()
            writer.close()

    server, port, events = await serve_one(serve_player)
    async with server:
        code, out, err = await run_ffmpeg(
            "-i", f"rtmp://127.0.0.1:{port}/live/mychannel", "-c", "copy", "-f", "framecrc", "-"
        )  # fmt: skip
    assert PlayRequest(1, "mychannel") in events
    assert code == 0, err.decode(errors="replace")
    packets = [line for line in out.decode().splitlines() if line and not line.startswith("#")]
    streams = [line.split(",")[0] for line in packets]
    video_frames = sum(1 for m in media if m.message_type == 9 and m.payload[1] == 1)
    audio_frames = sum(1 for m in media if m.message_type == 8 and m.payload[1] == 1)
    assert sorted(streams.count(s) for s in set(streams)) == sorted([video_frames, audio_frames])
