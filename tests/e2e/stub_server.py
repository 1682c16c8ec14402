"""A stand-in for Strom's delivery side, so the watch page can be tested on its own.

It serves ``watch.html`` (rendered with jinja2 directly), ``/static`` and, on
``/live/{channel}/ws``, the WebSocket contract of the real server: ``offline``, then
``init`` + the init segment + one CMAF chunk per message paced by decode time, then
``end`` and close 1000. The media is a real fragmented MP4 made by ffmpeg and split into
top-level boxes here (ISO/IEC 14496-12: ftyp+moov is the init segment, each moof+mdat a
chunk). ``/live/{channel}/index.m3u8`` serves an ffmpeg-made fMP4 HLS rendition for the
hls.js path (``master.m3u8`` lists it alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import struct
import subprocess
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import jinja2
from aiohttp import WSCloseCode, web

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "strom" / "web" / "templates"
STATIC = REPO / "strom" / "web" / "static"

# 640x360 30 fps H.264 High + AAC-LC, one keyframe a second, one frame per fragment.
_SOURCES = [
    *("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"),
    *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"),
]
_ENCODE = [
    *("-c:v", "libx264", "-profile:v", "high", "-level", "3.1", "-pix_fmt", "yuv420p"),
    *("-preset", "veryfast", "-tune", "zerolatency", "-g", "30"),
    *("-c:a", "aac", "-b:a", "96k", "-ac", "2"),
]
_CONTAINERS = {b"moov", b"trak", b"mdia", b"moof", b"traf"}


def _ffmpeg(*args: str) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=60,
    )


def make_fragmented_mp4(directory: Path, seconds: float = 6.0) -> Path:
    """Encode a test card into a CMAF-style fMP4: one fragment per frame."""
    out = directory / "stream.mp4"
    flags = "frag_every_frame+empty_moov+default_base_moof"
    _ffmpeg(*_SOURCES, "-t", str(seconds), *_ENCODE, "-movflags", flags, str(out))
    return out


def make_hls(directory: Path, seconds: float = 6.0) -> Path:
    """Encode the same test card as an fMP4 HLS rendition (1 s segments)."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    _ffmpeg(
        *_SOURCES,
        *("-t", str(seconds), *_ENCODE),
        *("-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"),
        *("-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"),
        str(playlist),
    )
    return playlist


def iter_boxes(data: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield (type, payload, whole box) for each box in ``data`` (ISO/IEC 14496-12 4.2)."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise ValueError(f"truncated {kind!r} box at offset {pos}")
        yield kind, data[pos + header : pos + size], data[pos : pos + size]
        pos += size


def _find(payload: bytes, path: list[bytes]) -> list[bytes]:
    """Payloads of the boxes at ``path`` inside a container box's ``payload``."""
    found: list[bytes] = []
    for kind, child, _box in iter_boxes(payload):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append(child)
        elif kind in _CONTAINERS:
            found.extend(_find(child, path[1:]))
    return found


def _first_sample_is_sync(traf: bytes) -> bool:
    """Whether a track fragment starts with a sync sample (ISO/IEC 14496-12 8.8.7, 8.8.8)."""
    tfhd = _find(traf, [b"tfhd"])[0]
    trun = _find(traf, [b"trun"])[0]
    tfhd_flags = int.from_bytes(tfhd[1:4], "big")
    trun_flags = int.from_bytes(trun[1:4], "big")
    flags = None
    if trun_flags & 0x004:  # first-sample-flags-present, after sample_count and data_offset
        flags = struct.unpack_from(">I", trun, 8 + (4 if trun_flags & 0x001 else 0))[0]
    elif trun_flags & 0x400:  # per-sample flags: after duration and size if present
        pos = 8 + (4 if trun_flags & 0x001 else 0)
        pos += (4 if trun_flags & 0x100 else 0) + (4 if trun_flags & 0x200 else 0)
        flags = struct.unpack_from(">I", trun, pos)[0]
    elif tfhd_flags & 0x20:  # default-sample-flags-present, after the optional fields
        pos = 8 + (8 if tfhd_flags & 0x01 else 0)
        pos += sum(4 for bit in (0x02, 0x08, 0x10) if tfhd_flags & bit)
        flags = struct.unpack_from(">I", tfhd, pos)[0]
    return flags is not None and not flags & 0x00010000  # sample_is_non_sync_sample


def _full_box_u(payload: bytes, v0_offset: int, v1_offset: int) -> int:
    """Read a 32-bit (version 0) or 64-bit (version 1) field of a full box."""
    if payload[0] == 1:
        return int(struct.unpack_from(">Q", payload, v1_offset)[0])
    return int(struct.unpack_from(">I", payload, v0_offset)[0])


@dataclass(frozen=True)
class Chunk:
    decode_seconds: float
    data: bytes
    keyframe: bool  # a video sync sample: a viewer can start here


@dataclass(frozen=True)
class FragmentedStream:
    mime: str
    init: bytes
    chunks: list[Chunk] = field(default_factory=list)


def parse_fragmented_mp4(data: bytes) -> FragmentedStream:
    """Split an fMP4 into init segment and moof+mdat chunks with their decode times."""
    init = b""
    timescales: dict[int, int] = {}
    video_tracks: set[int] = set()
    codecs: list[str] = []
    chunks: list[Chunk] = []
    moof = b""
    for kind, payload, box in iter_boxes(data):
        if kind in (b"ftyp", b"moov"):
            init += box
        if kind == b"moov":
            for trak in _find(payload, [b"trak"]):
                tkhd = _find(trak, [b"tkhd"])[0]
                mdhd = _find(trak, [b"mdia", b"mdhd"])[0]
                track_id = _full_box_u(tkhd, 12, 20)  # after version/flags and times
                timescales[track_id] = _full_box_u(mdhd, 12, 20)
                if _find(trak, [b"mdia", b"hdlr"])[0][8:12] == b"vide":
                    video_tracks.add(track_id)
            avcc = box.find(b"avcC")
            if avcc != -1:  # AVCDecoderConfigurationRecord: version, profile, compat, level
                profile = box[avcc + 5 : avcc + 8].hex()
                codecs.append(f"avc1.{profile}")
            if b"mp4a" in box:
                codecs.append("mp4a.40.2")  # the AAC-LC that make_fragmented_mp4 encodes
        elif kind == b"moof":
            moof = box
        elif kind == b"mdat" and moof:
            traf = _find(moof[8:], [b"traf"])[0]
            track_id = struct.unpack_from(">I", _find(traf, [b"tfhd"])[0], 4)[0]
            decode_time = _full_box_u(_find(traf, [b"tfdt"])[0], 4, 4)
            keyframe = track_id in video_tracks and _first_sample_is_sync(traf)
            chunks.append(Chunk(decode_time / timescales[track_id], moof + box, keyframe))
            moof = b""
    mime = f'video/mp4; codecs="{",".join(codecs)}"'
    return FragmentedStream(mime=mime, init=init, chunks=chunks)


class StubServer:
    """The watch page, /static and a scripted /live/{channel}/ws on 127.0.0.1.

    The script of each WebSocket connection: the first connection is ``offline`` for
    ``offline_seconds``; then ``broadcasts`` times ``init`` + init segment + the chunks
    (each broadcast restarts its timeline at 0, as a publisher who reconnected with new
    codec parameters would); then ``end`` and close 1000. With ``join_at_seconds`` the
    first broadcast is joined late: the chunks since the last keyframe arrive at once.
    With ``drop_first_after`` the first connection is closed 1008 "too slow" after that
    many seconds of media, as the real server does to a viewer who cannot keep up.
    ``websocket=False`` leaves the WebSocket route out (it answers 404); ``mime``
    overrides the codecs announced in ``init``.
    """

    def __init__(
        self,
        stream: FragmentedStream,
        hls_dir: Path | None = None,
        offline_seconds: float = 1.0,
        *,
        join_at_seconds: float = 0.0,
        broadcasts: int = 1,
        drop_first_after: float | None = None,
        websocket: bool = True,
        mime: str | None = None,
    ) -> None:
        self.stream = stream
        self.hls_dir = hls_dir
        self.offline_seconds = offline_seconds
        self.join_at_seconds = join_at_seconds
        self.broadcasts = broadcasts
        self.drop_first_after = drop_first_after
        self.websocket = websocket
        self.mime = mime or stream.mime
        self.ws_connections = 0
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True
        )
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    async def __aenter__(self) -> StubServer:
        app = web.Application()
        app.router.add_get("/live/{channel}", self._watch)
        if self.websocket:
            app.router.add_get("/live/{channel}/ws", self._ws)
        app.router.add_get("/live/{channel}/{name}", self._hls)
        app.router.add_static("/static", STATIC)
        app.on_shutdown.append(self._close_sockets)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _close_sockets(self, _app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _watch(self, request: web.Request) -> web.Response:
        html = self._templates.get_template("watch.html").render(
            channel=request.match_info["channel"]
        )
        return web.Response(text=html, content_type="text/html")

    async def _hls(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if self.hls_dir is None or "/" in name or name.startswith("."):
            raise web.HTTPNotFound
        if name == "master.m3u8":  # the player starts there, as Strom's master (no ladder)
            master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nindex.m3u8\n"
            return web.Response(text=master, content_type="application/vnd.apple.mpegurl")
        path = self.hls_dir / name
        if not path.is_file():
            raise web.HTTPNotFound
        return web.FileResponse(path)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        self.ws_connections += 1
        first = self.ws_connections == 1
        with contextlib.suppress(ConnectionResetError):  # the viewer left
            await self._play(ws, first)
        return ws

    async def _play(self, ws: web.WebSocketResponse, first_connection: bool) -> None:
        if first_connection and self.offline_seconds > 0:
            await ws.send_str(json.dumps({"type": "offline"}))
            await asyncio.sleep(self.offline_seconds)
        drop_after = self.drop_first_after if first_connection else None
        for broadcast in range(self.broadcasts):
            join_at = self.join_at_seconds if broadcast == 0 else 0.0
            if not await self._broadcast(ws, join_at, drop_after):
                return
            drop_after = None
        await ws.send_str(json.dumps({"type": "end"}))
        await ws.close(code=WSCloseCode.OK)

    async def _broadcast(
        self, ws: web.WebSocketResponse, join_at: float, drop_after: float | None
    ) -> bool:
        """Send one broadcast; False when the connection is gone or was dropped."""
        chunks = self.stream.chunks
        start = 0  # the last keyframe at or before the join time
        for index, chunk in enumerate(chunks):
            if chunk.keyframe and chunk.decode_seconds <= join_at:
                start = index
        await ws.send_str(json.dumps({"type": "init", "mime": self.mime}))
        await ws.send_bytes(self.stream.init)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for chunk in chunks[start:]:
            # Chunks up to the join time are the late joiner's burst; the rest is live.
            media_time = max(0.0, chunk.decode_seconds - join_at)
            if drop_after is not None and media_time > drop_after:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")
                return False
            delay = started + media_time - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if ws.closed:
                return False
            await ws.send_bytes(chunk.data)
        return True
