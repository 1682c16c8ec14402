"""The segment being written, over HTTP as it grows (chunked transfer encoding).

LL-DASH lists the segment being muxed before it is complete (``availabilityTimeOffset``)
and a player asks for it at once: the answer carries the chunks already in the segment,
then each new one as the hub delivers it, and ends when the segment is complete. The
bytes are the LL-HLS store's (:meth:`~strom.media.hls.LiveHlsStream.segment_so_far`), or a
view of one track of them (:mod:`strom.delivery.track_views`).

One encode, many writes (as the WebSocket fan-out): a viewer is caught up once, with
one HTTP chunk of everything the segment holds, and joins the segment's followers;
from then on :class:`GrowingSegments` frames each new chunk once (``size CRLF data
CRLF``) and writes those same bytes straight to every follower's socket, in the event
loop turn that delivered the chunk. No task runs per viewer per chunk: a follower's
request waits on one future, resolved when its segment is complete (the request ends
with the last chunk) or must break off.

Bounded: a follower whose socket holds more than ``max_buffered`` bytes unsent (it
stopped reading) is cut off; a publisher that sends nothing for ``idle_timeout``, or a
stopping node, breaks the answers off without their last chunk (they are not whole: the
player asks again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers

log = logging.getLogger(__name__)

#: bytes a follower's socket may hold unsent before it is cut off (it stopped reading)
MAX_BUFFERED = 4 * 1024 * 1024
#: seconds a segment may go without a new chunk (a stalled publisher) before its
#: answers break off
IDLE_TIMEOUT = 30.0
#: seconds the end of an answer may wait for a slow socket
WRITE_TIMEOUT = 10.0

_HEADERS = {
    "Content-Type": "video/mp4",
    **cache_headers(AnswerKind.GROWING_MEDIA),
    # nginx in front passes each chunk on as it comes rather than filling a buffer first
    # (its proxy_buffering, per answer)
    "X-Accel-Buffering": "no",
}


class SegmentSource(Protocol):
    """Where growing segments are read: a rendition's store, or a view of one track."""

    @property
    def ended(self) -> bool: ...

    def segment_so_far(self, msn: int) -> tuple[list[bytes | memoryview], bool] | None: ...


def pieces_after(pieces: list[bytes | memoryview], skip: int) -> list[bytes | memoryview]:
    """The bytes of ``pieces`` past the first ``skip``, in pieces (none copied)."""
    out: list[bytes | memoryview] = []
    offset = 0
    for piece in pieces:
        end = offset + len(piece)
        if end > skip:
            out.append(piece if offset >= skip else memoryview(piece)[skip - offset :])
        offset = end
    return out


def http_chunk(pieces: list[bytes | memoryview], skip: int) -> bytes:
    """The bytes of ``pieces`` past the first ``skip``, as one HTTP/1.1 chunk (RFC 9112
    7.1); empty when there are none."""
    out = pieces_after(pieces, skip)
    size = sum(len(p) for p in out)
    if not size:
        return b""
    return b"".join((b"%x\r\n" % size, *out, b"\r\n"))


@dataclass(eq=False)
class _Follower:
    transport: asyncio.Transport
    #: True: the segment is complete (end the answer); False: break it off
    done: asyncio.Future[bool]


@dataclass(eq=False)
class _Segment:
    #: bytes of the segment every follower has been sent
    sent: int
    followers: list[_Follower] = field(default_factory=list)


class GrowingSegments:
    """The segments of one rendition being sent as they grow, and their followers.

    :meth:`update` must run after every change of the stream (a chunk, a new init
    segment, the end): it sends what is new to every follower and ends the answers of a
    segment that completed.
    """

    def __init__(self, stream: SegmentSource, max_buffered: int | None = None) -> None:
        self._stream = stream
        self._max_buffered = MAX_BUFFERED if max_buffered is None else max_buffered
        self._segments: dict[int, _Segment] = {}
        self._let_go = False
        #: followers cut off for not reading (for the logs and tests)
        self.dropped = 0

    @property
    def followers(self) -> int:
        return sum(len(s.followers) for s in self._segments.values())

    def follow(self, msn: int, transport: asyncio.Transport) -> asyncio.Future[bool]:
        """Send segment ``msn`` so far to ``transport`` (one HTTP chunk) and keep it up to
        date; the future says when the answer is over (see :class:`_Follower`)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        found = self._stream.segment_so_far(msn)
        if found is None or self._let_go:
            done.set_result(False)
            return done
        pieces, complete = found
        total = sum(len(p) for p in pieces)
        segment = self._segments.get(msn)
        if segment is not None and segment.sent != total:  # cannot happen: see update()
            done.set_result(False)
            return done
        if data := http_chunk(pieces, 0):
            transport.write(data)
        if complete or self._stream.ended:
            done.set_result(True)
            return done
        if segment is None:
            segment = self._segments[msn] = _Segment(total)
        segment.followers.append(_Follower(transport, done))
        return done

    def update(self) -> None:
        for msn, segment in list(self._segments.items()):
            found = self._stream.segment_so_far(msn)
            if found is None:  # gone (a new broadcast on the rendition): break off
                self._finish(msn, False)
                continue
            pieces, complete = found
            total = sum(len(p) for p in pieces)
            if total > segment.sent:
                self._write(segment, http_chunk(pieces, segment.sent))
                segment.sent = total
            if complete or self._stream.ended:
                self._finish(msn, True)

    def _write(self, segment: _Segment, data: bytes) -> None:
        kept = []
        for follower in segment.followers:
            transport = follower.transport
            if follower.done.done():
                continue
            if transport.is_closing():  # the viewer went: its answer ends now, not at a timeout
                follower.done.set_result(False)
                continue
            if transport.get_write_buffer_size() > self._max_buffered:
                self.dropped += 1
                log.info("a viewer too slow for a growing segment: dropped")
                follower.done.set_result(False)
                continue
            transport.write(data)
            kept.append(follower)
        segment.followers = kept

    def _finish(self, msn: int, complete: bool) -> None:
        segment = self._segments.pop(msn)
        for follower in segment.followers:
            if not follower.done.done():
                follower.done.set_result(complete)

    def let_go(self) -> None:
        """Break every answer off, now and from now on (the node is stopping)."""
        self._let_go = True
        for msn in list(self._segments):
            self._finish(msn, False)


async def stream_segment(
    request: web.BaseRequest,
    growing: GrowingSegments,
    msn: int,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
) -> web.StreamResponse:
    """Answer segment ``msn``, which has begun, as it grows."""
    response = web.StreamResponse(headers=_HEADERS)
    response.enable_chunked_encoding()
    await response.prepare(request)
    transport = request.transport
    if request.method == "HEAD" or transport is None:  # the headers are the answer
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
    done = growing.follow(msn, transport)
    # A segment is at most a few seconds long; one that takes longer has a stalled
    # publisher (the followers' future stays pending).
    await asyncio.wait([done], timeout=idle_timeout)
    if not done.done() or not done.result():
        transport.abort()  # not whole: no last chunk, so the player asks again
        return response
    try:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await response.write_eof()
    except TimeoutError:
        transport.abort()
    except ConnectionError:
        pass
    return response
