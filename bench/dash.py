"""An LL-DASH viewer for the load generator, as dash.js in low-latency mode reads Strom.

It reads the live MPD (an AdaptationSet per track, each a ``SegmentTemplate`` with
``$RepresentationID$`` and ``$Number$`` and a ``SegmentTimeline``, the last ``S`` being
the segment written now), and for each Representation, on a connection of its own,
asks for that segment at once and reads it as Strom sends it, chunk by chunk
(``Transfer-Encoding: chunked``), then asks for the next one, which the server holds
until it begins. Meanwhile it reloads the MPD every
``minimumUpdatePeriod`` with ``If-None-Match``, as a browser revalidates a ``no-cache``
answer. Each frame's arrival is recorded as it comes off the socket: the latency is
the player's, to the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bench.http import HttpConnection
from bench.mp4 import TrackInfo, iter_chunks, parse_init
from bench.records import ViewerRecord
from bench.wire import WireError

_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
_DURATION = re.compile(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?")
_BOX = 8


@dataclass(frozen=True)
class LiveMpd:
    initialization: str
    media: str
    #: the Representations (one per track), by id
    representations: tuple[str, ...]
    #: the number of the last segment listed: the one being written
    live_number: int
    update_period: float
    ended: bool

    def init(self, representation: str) -> str:
        return self.initialization.replace("$RepresentationID$", representation)

    def segment(self, representation: str, number: int) -> str:
        media = self.media.replace("$RepresentationID$", representation)
        return media.replace("$Number$", str(number))


def _seconds(value: str | None, default: float) -> float:
    found = _DURATION.fullmatch(value or "")
    if not value or found is None:
        return default
    h, m, s = (float(x) if x else 0.0 for x in found.groups())
    return h * 3600 + m * 60 + s


def parse_live_mpd(text: str) -> LiveMpd:
    """The last Period's template and the number of its last segment (Strom's
    Representations share one template and timeline)."""
    root = ET.fromstring(text)
    period = root.findall("d:Period", _NS)[-1]
    template = period.find(".//d:SegmentTemplate", _NS)
    if template is None:
        raise WireError("MPD without SegmentTemplate")
    count = sum(1 + int(s.get("r", "0")) for s in template.findall("d:SegmentTimeline/d:S", _NS))
    return LiveMpd(
        initialization=template.get("initialization", ""),
        media=template.get("media", ""),
        representations=tuple(
            r.get("id", "") for r in period.findall("d:AdaptationSet/d:Representation", _NS)
        ),
        live_number=int(template.get("startNumber", "1")) + count - 1,
        update_period=_seconds(root.get("minimumUpdatePeriod"), 2.0),
        ended=root.get("type") == "static" or root.get("mediaPresentationDuration") is not None,
    )


class _Frames:
    """Complete top-level boxes out of a segment's bytes as they come; each ``moof``'s
    frames recorded when its ``mdat`` is complete."""

    def __init__(self, rec: ViewerRecord, tracks: dict[int, TrackInfo]) -> None:
        self.rec = rec
        self.tracks = tracks
        self.buffer = bytearray()

    def feed(self, data: bytes, now: float) -> None:
        rec = self.rec
        rec.bytes += len(data)
        buf = self.buffer
        buf += data
        pos = complete = 0
        while pos + _BOX <= len(buf):
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if size < _BOX or pos + size > len(buf):
                break
            pos += size
            if buf[pos - size + 4 : pos - size + 8] == b"mdat":
                complete = pos  # a moof and its mdat, whole
        if not complete:
            return
        for info in iter_chunks(memoryview(buf)[:complete]):
            track = self.tracks.get(info.track_id)
            if track is None:
                rec.unparsed += 1
            elif track.video:
                rec.video(info.decode_time * 1000 // track.timescale, now, info.sync)
            else:
                rec.audio += 1
        del buf[:complete]


async def dash_viewer(
    rec: ViewerRecord, host: str, port: int, mpd_path: str, stop_at: float
) -> None:
    """Join at the segment being written, then follow the live edge segment by segment,
    each track on a connection of its own."""
    base = mpd_path.rsplit("/", 1)[0] + "/"
    mpd_conn = HttpConnection(host, port)
    media_conns: list[HttpConnection] = []
    rec.t_start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(max(0.1, stop_at - time.monotonic())):
            mpd = await _first_mpd(rec, mpd_conn, mpd_path)
            tasks.append(asyncio.create_task(_reload(rec, mpd_conn, mpd_path, mpd.update_period)))
            for representation in mpd.representations:
                conn = HttpConnection(host, port)
                media_conns.append(conn)
                tasks.append(asyncio.create_task(_follow(rec, conn, base, mpd, representation)))
            await asyncio.gather(*tasks[1:])
    except TimeoutError:
        pass
    except (OSError, WireError, ValueError, ET.ParseError) as exc:
        rec.error = f"{type(exc).__name__}: {exc}"
    finally:
        rec.t_end = time.monotonic()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await mpd_conn.close()
        for conn in media_conns:
            await conn.close()


async def _follow(
    rec: ViewerRecord, conn: HttpConnection, base: str, mpd: LiveMpd, representation: str
) -> None:
    """One Representation: its init segment, then its segments from the live one on."""
    init = await conn.get(base + mpd.init(representation))
    rec.media_requests += 1
    frames = _Frames(rec, parse_init(init.body))
    number = mpd.live_number
    while True:
        head = await conn.stream(base + mpd.segment(representation, number), frames.feed)
        rec.media_requests += 1
        if head.status != 200:
            rec.unparsed += 1
            await asyncio.sleep(0.05)
            continue
        number += 1


async def _first_mpd(rec: ViewerRecord, conn: HttpConnection, path: str) -> LiveMpd:
    while True:
        resp = await conn.get(path)
        rec.playlist_requests += 1
        if resp.status == 200:
            mpd = parse_live_mpd(resp.body.decode())
            rec.t_connected = resp.t_done
            return mpd
        await asyncio.sleep(0.1)


async def _reload(rec: ViewerRecord, conn: HttpConnection, path: str, period: float) -> None:
    """The MPD every ``period`` seconds, revalidated (a 304 when it did not change)."""
    etag = ""
    while True:
        await asyncio.sleep(period)
        head = await conn.stream(path, lambda data, now: None, etag)
        rec.playlist_requests += 1
        etag = head.header("etag", etag)
