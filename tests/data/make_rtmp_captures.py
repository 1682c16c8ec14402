"""Record the bytes real RTMP clients send when publishing (client to server).

Usage, from the repository root::

    .venv/bin/python tests/data/make_rtmp_captures.py            # the ffmpeg captures
    .venv/bin/python tests/data/make_rtmp_captures.py gstreamer  # the GStreamer captures
    .venv/bin/python tests/data/make_rtmp_captures.py all
    .venv/bin/python tests/data/make_rtmp_captures.py gst_rtmpsink_publish  # just one

It runs a one-connection RTMP server on 127.0.0.1 driven by Strom's sans-IO
:class:`~strom.media.rtmp.RtmpServerSession` (accepting connect and publish), lets the
client publish ~2 s of test pattern (H.264 High with B-frames, optional AAC) to it,
and writes every byte the client sent, handshake included, to ``tests/data/NAME.rtmp``:

* ``ffmpeg_publish``           ffmpeg (libavformat's own RTMP), video + audio
* ``ffmpeg_publish_noaudio``   the same, video only
* ``gst_rtmpsink_publish``     GStreamer ``rtmpsink`` (librtmp, the code OBS's RTMP
  output derives from), x264enc + voaacenc
* ``gst_rtmp2sink_publish``    GStreamer ``rtmp2sink`` (GStreamer's own RTMP), the same

The clients' C1 is random and their C2 answers our random S1, so the captures replay
against any fresh session that, like real servers, does not insist on an exact C2 echo.
Recorded with ffmpeg 5.1 and GStreamer 1.22 (Debian 12).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from strom.media.rtmp import (  # noqa: E402 - after the path tweak above
    ConnectRequest,
    PublishRequest,
    RtmpServerSession,
)

DATA = Path(__file__).resolve().parent
SECONDS = 2.0

VIDEO = [
    "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30",
    "-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-g", "30",
    "-s", "320x180", "-r", "30", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-b:v", "80k",
]  # fmt: skip
AUDIO = [
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
    "-c:a", "aac", "-b:a", "24k", "-ar", "44100", "-ac", "1",
]  # fmt: skip


def ffmpeg_command(with_audio: bool) -> Callable[[str], list[str]]:
    def command(url: str) -> list[str]:
        inputs = VIDEO[:4] + (AUDIO[:4] if with_audio else [])
        codecs = VIDEO[4:] + (AUDIO[4:] if with_audio else [])
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *inputs]
        return [*args, "-t", str(SECONDS), *codecs, "-f", "flv", url]

    return command


#: 60 frames of 320x180 at 30 fps and 2 s of 44.1 kHz mono sine (60 buffers of 1470).
GST_VIDEO = (
    "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=180,framerate=30/1 "
    "! x264enc bframes=2 key-int-max=30 bitrate=200 speed-preset=veryfast "
    "! video/x-h264,profile=high ! h264parse ! queue ! m. "
)
GST_AUDIO = (
    "audiotestsrc num-buffers=60 samplesperbuffer=1470 "
    "! audio/x-raw,rate=44100,channels=1 ! voaacenc bitrate=24000 ! aacparse ! queue ! m. "
)


def gstreamer_command(sink: str) -> Callable[[str], list[str]]:
    def command(url: str) -> list[str]:
        pipeline = f"flvmux name=m streamable=true ! {sink} location={url} "
        return ["gst-launch-1.0", "-q", *(pipeline + GST_VIDEO + GST_AUDIO).split()]

    return command


CAPTURES: dict[str, Callable[[str], list[str]]] = {
    "ffmpeg_publish": ffmpeg_command(with_audio=True),
    "ffmpeg_publish_noaudio": ffmpeg_command(with_audio=False),
    "gst_rtmpsink_publish": gstreamer_command("rtmpsink"),
    "gst_rtmp2sink_publish": gstreamer_command("rtmp2sink"),
}
GROUPS = {
    "ffmpeg": ["ffmpeg_publish", "ffmpeg_publish_noaudio"],
    "gstreamer": ["gst_rtmpsink_publish", "gst_rtmp2sink_publish"],
    "all": list(CAPTURES),
}


async def record(command: Callable[[str], list[str]]) -> bytes:
    """Run the client against a one-shot server; returns what it sent."""
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
        except ConnectionResetError:
            pass  # librtmp may reset the connection once it has sent everything
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    args = command(f"rtmp://127.0.0.1:{port}/live/key")
    if shutil.which(args[0]) is None:
        raise SystemExit(f"{args[0]} is not installed (scripts/bootstrap test)")
    proc = await asyncio.create_subprocess_exec(*args)
    if await asyncio.wait_for(proc.wait(), 30) != 0:
        raise SystemExit(f"{args[0]} failed with exit code {proc.returncode}")
    await asyncio.wait_for(done.wait(), 10)
    server.close()
    await server.wait_closed()
    return bytes(captured)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "captures",
        nargs="*",
        default=["ffmpeg"],
        choices=[*GROUPS, *CAPTURES],
        metavar="NAME",
        help=f"a capture or a group ({', '.join(GROUPS)}); default: ffmpeg",
    )
    names = [n for arg in parser.parse_args(argv).captures for n in GROUPS.get(arg, [arg])]
    for name in dict.fromkeys(names):
        data = await record(CAPTURES[name])
        (DATA / f"{name}.rtmp").write_bytes(data)
        print(f"{name}.rtmp: {len(data)} bytes")


if __name__ == "__main__":
    asyncio.run(main())
