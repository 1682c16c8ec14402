"""Record the bytes a real ffmpeg sends when publishing over RTMP (client to server).

Usage, from the repository root::

    .venv/bin/python tests/data/make_rtmp_captures.py

It runs a one-connection RTMP server on 127.0.0.1 driven by Strom's sans-IO
:class:`~strom.media.rtmp.RtmpServerSession` (accepting connect and publish), lets
``ffmpeg`` publish ~2 s of test pattern (H.264 High with B-frames, optional AAC) to it,
and writes every byte ffmpeg sent, handshake included, to:

* ``tests/data/ffmpeg_publish.rtmp``          video + audio
* ``tests/data/ffmpeg_publish_noaudio.rtmp``  video only

ffmpeg's C1 is random and its C2 answers our random S1, so the captures replay
against any fresh session that, like real servers, does not insist on an exact C2 echo.
Recorded with ffmpeg 5.1 (Debian).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from strom.media.rtmp import (  # noqa: E402 - after the path tweak above
    ConnectRequest,
    PublishRequest,
    RtmpServerSession,
)

DATA = Path(__file__).resolve().parent

VIDEO = [
    "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30",
    "-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-g", "30",
    "-s", "320x180", "-r", "30", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-b:v", "80k",
]  # fmt: skip
AUDIO = [
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
    "-c:a", "aac", "-b:a", "24k", "-ar", "44100", "-ac", "1",
]  # fmt: skip


async def record(with_audio: bool, seconds: float = 2.0) -> bytes:
    """Run ffmpeg against a one-shot server; returns what it sent."""
    captured = bytearray()
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtmpServerSession()
        try:
            while data := await reader.read(65536):
                captured.extend(data)
                for event in session.receive_data(data):
                    if isinstance(event, ConnectRequest):
                        session.accept_connect()
                    elif isinstance(event, PublishRequest):
                        session.accept_publish(event.stream_id)
                writer.write(session.data_to_send())
                await writer.drain()
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inputs = VIDEO[:4] + (AUDIO[:4] if with_audio else [])
    codecs = VIDEO[4:] + (AUDIO[4:] if with_audio else [])
    args = ["-hide_banner", "-loglevel", "error", "-nostdin", *inputs, "-t", str(seconds)]
    args += [*codecs, "-f", "flv", f"rtmp://127.0.0.1:{port}/live/key"]
    proc = await asyncio.create_subprocess_exec("ffmpeg", *args)
    if await proc.wait() != 0:
        raise SystemExit(f"ffmpeg failed with exit code {proc.returncode}")
    await asyncio.wait_for(done.wait(), 10)
    server.close()
    await server.wait_closed()
    return bytes(captured)


async def main() -> None:
    for name, with_audio in (("ffmpeg_publish", True), ("ffmpeg_publish_noaudio", False)):
        data = await record(with_audio)
        (DATA / f"{name}.rtmp").write_bytes(data)
        print(f"{name}.rtmp: {len(data)} bytes")


if __name__ == "__main__":
    asyncio.run(main())
