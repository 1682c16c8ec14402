"""The load generator: many viewers in one asyncio process, each recording when every
video frame reached it.

- :class:`WsViewer`: WebSocket fMP4 (``/live/{channel}/ws``), own minimal client on a
  :class:`asyncio.BufferedProtocol` reading into one buffer shared by every viewer of the
  process; only each message's ``moof`` is looked at.
- :class:`RtmpViewer`: RTMP play on Strom's sans-IO :class:`RtmpClientSession`.
- :func:`hls_viewer`: LL-HLS like hls.js: blocking playlist reloads
  (``_HLS_msn``/``_HLS_part``) on one connection, parts fetched on another.

A viewer keeps raw observations only (:class:`ViewerRecord`); :mod:`bench.stats` turns
them into latencies, join times, stalls and losses against the publisher's send log.
A *slow* viewer reads at a fixed byte rate (half the stream's) by pausing its transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from array import array
from dataclasses import dataclass
from typing import cast

from bench.chat import ChatSocket
from bench.dash import dash_viewer
from bench.http import HttpConnection
from bench.mp4 import TrackInfo, is_init, iter_chunks, iter_moofs, ms, parse_init
from bench.playlist import MediaPlaylist, Part, parse_media_playlist
from bench.records import PartRecord, ViewerRecord, set_lowat
from bench.rtmpplay import RtmpPlayClient
from bench.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    WireError,
    WsMessage,
    WsScanner,
    check_ws_upgrade,
    client_frame,
    parse_response_head,
    ws_request,
)

log = logging.getLogger(__name__)

#: one receive buffer for every BufferedProtocol of the process: asyncio fills it and
#: calls buffer_updated() before it asks any other protocol for a buffer
_SHARED = memoryview(bytearray(256 * 1024))
_MAX_HANDSHAKE = 16 * 1024


class _Throttle:
    """Reads at ``bytes_per_second`` at most: past the allowance the transport pauses."""

    def __init__(self, bytes_per_second: float, burst: int = 64 * 1024) -> None:
        self.rate = bytes_per_second
        self.burst = burst
        self.t0 = 0.0
        self.paused = False

    def after_read(self, transport: asyncio.Transport, total: int, now: float) -> None:
        if not self.t0:
            self.t0 = now
        excess = total - self.burst - self.rate * (now - self.t0)
        if excess > 0 and not self.paused:
            self.paused = True
            transport.pause_reading()
            asyncio.get_running_loop().call_later(excess / self.rate, self._resume, transport)

    def _resume(self, transport: asyncio.Transport) -> None:
        self.paused = False
        if not transport.is_closing():
            transport.resume_reading()


class WsViewer(asyncio.BufferedProtocol):
    def __init__(
        self,
        record: ViewerRecord,
        host: str,
        port: int,
        path: str,
        done: asyncio.Future[None],
        slow_bytes_per_second: float = 0.0,
        bulk_lowat: int = 0,
    ) -> None:
        self.rec = record
        self._bulk_lowat = bulk_lowat
        self._request = ws_request(host, port, path)
        self._done = done
        self._handshake: bytearray | None = bytearray()
        # whole messages: a message is a video frame with the audio frames before it,
        # each its own moof+mdat; whole ones in a read are walked in place
        self._scanner = WsScanner(keep=-1, on_binary=self._fast_media, on_message=self._on_message)
        self._tracks: dict[int, TrackInfo] = {}
        self._video: TrackInfo | None = None
        self._now = 0.0  # arrival time of the buffer being read
        self._throttle = _Throttle(slow_bytes_per_second) if slow_bytes_per_second else None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.write(self._request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SHARED

    def buffer_updated(self, nbytes: int) -> None:
        self._now = now = time.monotonic()
        rec = self.rec
        rec.bytes += nbytes
        data: memoryview | bytes = _SHARED[:nbytes]
        try:
            if self._handshake is not None:
                rest = self._on_handshake(data, now)
                if rest is None:
                    return
                data = rest
            had_key = rec.t_first_key > 0
            self._scanner.feed(data)  # calls back, in order: _fast_media, _on_message
        except (WireError, ValueError) as exc:
            self.fail(f"protocol: {exc}")
            return
        if self.transport is None:
            return
        if self._throttle is not None:
            self._throttle.after_read(self.transport, rec.bytes, now)
        elif self._bulk_lowat and not had_key and rec.t_first_key > 0:
            set_lowat(self.transport, self._bulk_lowat)

    def _on_handshake(self, data: memoryview | bytes, now: float) -> bytes | None:
        assert self._handshake is not None
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > _MAX_HANDSHAKE:
                raise WireError("handshake response too long")
            return None
        check_ws_upgrade(parse_response_head(bytes(self._handshake[:end])))
        rest = bytes(self._handshake[end + 4 :])
        self._handshake = None
        self.rec.t_connected = now
        return rest

    def _fast_media(self, data: bytes | memoryview, start: int, n: int) -> bool:
        """A whole message in the read buffer, walked in place (no copy)."""
        if self._video is None or bytes(data[start + 4 : start + 8]) != b"moof":
            return False  # the init segment, or a message before it: the general way
        self._chunks(data, start, start + n, self._now)
        return True

    def _on_message(self, msg: WsMessage) -> None:
        if msg.opcode == OP_BINARY:
            self._on_binary(msg.head, self._now)
        else:
            self._on_other(msg)

    def _on_binary(self, data: bytes, now: float) -> None:
        if is_init(data):
            self._tracks = parse_init(data)
            self._video = next((t for t in self._tracks.values() if t.video), None)
        else:
            self._chunks(data, 0, len(data), now)

    def _chunks(self, data: bytes | memoryview, start: int, end: int, now: float) -> None:
        rec = self.rec
        tracks = self._tracks
        for track_id, decode_time, sync in iter_moofs(data, start, end):
            track = tracks.get(track_id)
            if track is None:
                rec.unparsed += 1
            elif track.video:
                rec.video(ms(decode_time, track.timescale), now, sync)
            else:
                rec.audio += 1

    def _on_other(self, msg: WsMessage) -> None:
        if msg.opcode == OP_TEXT:
            kind = json.loads(msg.head).get("type")
            if kind == "end":
                self.rec.ended = True
        elif msg.opcode == OP_PING and self.transport is not None:
            self.transport.write(client_frame(OP_PONG, msg.head[:125]))
        elif msg.opcode == OP_CLOSE and self.transport is not None:
            if not self.rec.ended and not self.rec.error:
                code = int.from_bytes(msg.head[:2], "big") if len(msg.head) >= 2 else 1005
                self.rec.error = f"closed by server {code} {msg.head[2:].decode(errors='replace')}"
            self.transport.write(client_frame(OP_CLOSE, msg.head[:2]))
            self.transport.close()

    def fail(self, reason: str) -> None:
        if not self.rec.error:
            self.rec.error = reason
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.rec.t_end = time.monotonic()
        if exc is not None and not self.rec.error:
            self.rec.error = f"connection lost: {exc}"
        if not self._done.done():
            self._done.set_result(None)


class RtmpViewer(asyncio.BufferedProtocol):
    def __init__(
        self,
        record: ViewerRecord,
        host: str,
        port: int,
        app: str,
        done: asyncio.Future[None],
        slow_bytes_per_second: float = 0.0,
        bulk_lowat: int = 0,
    ) -> None:
        self.rec = record
        self._done = done
        self.client = RtmpPlayClient(app, f"rtmp://{host}:{port}/{app}", record.channel)
        self._throttle = _Throttle(slow_bytes_per_second) if slow_bytes_per_second else None
        self._bulk_lowat = bulk_lowat
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.write(self.client.start())

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SHARED

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic()
        rec = self.rec
        rec.bytes += nbytes
        client = self.client
        try:
            media = client.receive_data(_SHARED[:nbytes])
        except Exception as exc:  # any parse failure ends this viewer only
            self.fail(f"protocol: {type(exc).__name__}: {exc}")
            return
        had_key = rec.t_first_key > 0
        for msg in media:
            p = msg.head
            if msg.message_type == 9:
                # E.4.3.1: FrameType (1 = key) | CodecID 7; AVCPacketType 1 = NALUs
                if len(p) >= 2 and p[1] == 1 and p[0] & 0x0F == 7:
                    rec.video(msg.timestamp, now, p[0] >> 4 == 1)
            elif len(p) >= 2 and p[1] == 1:
                rec.audio += 1
        if client.error:
            self.fail(client.error)
            return
        if client.playing and not rec.t_connected:
            rec.t_connected = now
        if any(s.code in _END_CODES for s in client.statuses):
            rec.ended = True
        out = client.data_to_send()
        transport = self.transport
        if transport is None:
            return
        if out:
            transport.write(out)
        if self._throttle is not None:
            self._throttle.after_read(transport, rec.bytes, now)
        elif self._bulk_lowat and not had_key and rec.t_first_key > 0:
            set_lowat(transport, self._bulk_lowat)

    def fail(self, reason: str) -> None:
        if not self.rec.error:
            self.rec.error = reason
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.rec.t_end = time.monotonic()
        if exc is not None and not self.rec.error:
            self.rec.error = f"connection lost: {exc}"
        if not self._done.done():
            self._done.set_result(None)


_END_CODES = ("NetStream.Play.UnpublishNotify", "NetStream.Play.Stop")


# -- LL-HLS ---------------------------------------------------------------------------------


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] + "/"


def _read_part(
    rec: ViewerRecord, tracks: dict[int, TrackInfo], body: bytes, now: float
) -> tuple[int, int, int]:
    """Record the video frames of a part; (first ts, last ts, video frames)."""
    first = last = -1
    n = 0
    for info in iter_chunks(body):
        track = tracks.get(info.track_id)
        if track is None:
            rec.unparsed += 1
        elif track.video:
            ts = ms(info.decode_time, track.timescale)
            rec.video(ts, now, info.sync)
            first = ts if first < 0 else first
            last = ts
            n += 1
        else:
            rec.audio += 1
    return first, last, n


async def hls_viewer(
    rec: ViewerRecord, host: str, port: int, playlist_path: str, stop_at: float
) -> None:
    """Join at the newest independent part, then follow the live edge part by part."""
    base = _dirname(playlist_path)
    playlist_conn = HttpConnection(host, port)
    media_conn = HttpConnection(host, port)
    queue: asyncio.Queue[tuple[Part, float]] = asyncio.Queue()
    rec.t_start = time.monotonic()
    try:
        async with asyncio.timeout(max(0.1, stop_at - time.monotonic())):
            pl = await _first_playlist(rec, playlist_conn, playlist_path)
            if pl.init_uri is None:
                raise WireError("playlist without EXT-X-MAP")
            init = await media_conn.get(base + pl.init_uri)
            rec.media_requests += 1
            tracks = parse_init(init.body)
            start = pl.live_start_part()
            seen: set[tuple[int, int]] = set()
            for part in pl.parts:
                if start is not None and (part.msn, part.index) >= (start.msn, start.index):
                    queue.put_nowait((part, rec.t_connected))
                seen.add((part.msn, part.index))
            reloader = asyncio.create_task(
                _reload(rec, playlist_conn, playlist_path, pl, seen, queue)
            )
            try:
                while True:
                    part, listed = await queue.get()
                    resp = await media_conn.get(base + part.uri)
                    rec.media_requests += 1
                    if resp.status != 200:
                        rec.unparsed += 1
                        continue
                    rec.bytes += len(resp.body)
                    first, last, n = _read_part(rec, tracks, resp.body, resp.t_done)
                    rec.parts.append(
                        PartRecord(part.msn, part.index, listed, resp.t_done, first, last, n)
                    )
            finally:
                reloader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reloader
    except TimeoutError:
        pass
    except (OSError, WireError, ValueError) as exc:
        rec.error = f"{type(exc).__name__}: {exc}"
    finally:
        rec.t_end = time.monotonic()
        await playlist_conn.close()
        await media_conn.close()


async def _first_playlist(rec: ViewerRecord, conn: HttpConnection, path: str) -> MediaPlaylist:
    while True:
        resp = await conn.get(path)
        rec.playlist_requests += 1
        if resp.status == 200:
            pl = parse_media_playlist(resp.body.decode())
            if pl.live_start_part() is not None:
                rec.t_connected = resp.t_done
                return pl
        await asyncio.sleep(0.1)


async def _reload(
    rec: ViewerRecord,
    conn: HttpConnection,
    path: str,
    pl: MediaPlaylist,
    seen: set[tuple[int, int]],
    queue: asyncio.Queue[tuple[Part, float]],
) -> None:
    """Blocking playlist reloads (rfc8216bis 6.2.5.2): ask for the part after the last
    one listed; every newly listed part goes to the fetch queue."""
    while not pl.ended:
        msn, part = pl.next_block()
        query = f"?_HLS_msn={msn}" + (f"&_HLS_part={part}" if part is not None else "")
        resp = await conn.get(path + query)
        rec.playlist_requests += 1
        if resp.status != 200:
            await asyncio.sleep(0.05)
            continue
        pl = parse_media_playlist(resp.body.decode())
        for p in pl.parts:
            key = (p.msn, p.index)
            if key not in seen:
                seen.add(key)
                queue.put_nowait((p, resp.t_done))


# -- running a crowd -----------------------------------------------------------------------


class LoopLag:
    """How late this process's event loop runs a timer (the generator's own health)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples = array("d")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.monotonic() - before - self.interval))


@dataclass(frozen=True)
class ViewerGroup:
    """``count`` viewers of one kind, connecting evenly over ``join_window`` seconds
    from ``start_at``, and leaving at ``stop_at`` (monotonic times)."""

    kind: str  # "ws" | "rtmp" | "hls" | "dash" | "chat" (bench.chat)
    host: str
    port: int
    channels: tuple[str, ...]
    count: int
    start_at: float
    stop_at: float
    join_window: float = 1.0
    slow_count: int = 0
    slow_bytes_per_second: float = 0.0
    first_index: int = 0
    app: str = "live"
    #: viewers reading every frame as it comes; -1: all of them
    probes: int = -1
    #: SO_RCVLOWAT of the other viewers once they play (bytes)
    bulk_lowat: int = 32 * 1024

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ViewerGroup:
        values = dict(data)
        values["channels"] = tuple(values["channels"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


async def run_group(group: ViewerGroup) -> list[ViewerRecord]:
    """Run the viewers of ``group`` to its end; every viewer's record, failed ones too."""
    loop = asyncio.get_running_loop()
    records: list[ViewerRecord] = []
    tasks: list[asyncio.Task[None]] = []
    step = group.join_window / max(group.count, 1)
    for i in range(group.count):
        channel = group.channels[i % len(group.channels)]
        records.append(ViewerRecord(group.kind, group.first_index + i, channel))
    _mark_slow(records, group.slow_count)
    _mark_probes(records, group.probes)
    for i, rec in enumerate(records):
        tasks.append(loop.create_task(_one(group, rec, group.start_at + i * step)))
    await asyncio.gather(*tasks)
    return records


def _mark_slow(records: list[ViewerRecord], slow_count: int) -> None:
    """Exactly ``slow_count`` slow viewers, spread evenly over the join order."""
    for rec in records:
        rec.slow = False
    if slow_count <= 0:
        return
    n = len(records)
    for k in range(min(slow_count, n)):
        records[k * n // slow_count].slow = True


def _mark_probes(records: list[ViewerRecord], probes: int) -> None:
    """``probes`` exact viewers spread evenly over the healthy ones (slow viewers read
    as they are throttled, and are no probes: their latency is their own doing)."""
    healthy = [r for r in records if not r.slow]
    for rec in records:
        rec.probe = probes < 0 and not rec.slow
    if probes > 0:
        n = len(healthy)
        for k in range(min(probes, n)):
            healthy[k * n // min(probes, n)].probe = True


async def _one(group: ViewerGroup, rec: ViewerRecord, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    if time.monotonic() >= group.stop_at:
        return
    slow_rate = group.slow_bytes_per_second if rec.slow else 0.0
    lowat = 0 if rec.probe or rec.slow else group.bulk_lowat
    if group.kind == "hls":
        path = f"/live/{rec.channel}/index.m3u8"
        await hls_viewer(rec, group.host, group.port, path, group.stop_at)
        return
    if group.kind == "dash":
        path = f"/live/{rec.channel}/index.mpd"
        await dash_viewer(rec, group.host, group.port, path, group.stop_at)
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    proto: WsViewer | RtmpViewer | ChatSocket
    if group.kind == "chat":
        path = f"/chat/{rec.channel}/ws"
        proto = ChatSocket(rec, group.host, group.port, path, done, lowat)
    elif group.kind == "ws":
        path = f"/live/{rec.channel}/ws"
        proto = WsViewer(rec, group.host, group.port, path, done, slow_rate, lowat)
    elif group.kind == "rtmp":
        proto = RtmpViewer(rec, group.host, group.port, group.app, done, slow_rate, lowat)
    else:
        raise ValueError(f"unknown viewer kind {group.kind!r}")
    rec.t_start = time.monotonic()
    try:
        async with asyncio.timeout(max(0.1, group.stop_at - time.monotonic())):
            await loop.create_connection(lambda: proto, group.host, group.port)
    except (OSError, TimeoutError) as exc:
        rec.error = f"connect: {exc or type(exc).__name__}"
        rec.t_end = time.monotonic()
        return
    remaining = group.stop_at - time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(done), max(0.0, remaining))
    proto.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, 2.0)
