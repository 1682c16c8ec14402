"""The segment being written, over HTTP as it grows (chunked transfer encoding).

LL-DASH lists the segment being muxed before it is complete (``availabilityTimeOffset``)
and a player asks for it at once: the answer carries the chunks already in the segment,
then each new one as the hub delivers it, and ends when the segment is complete. The
bytes are the LL-HLS store's (:meth:`~strom.media.hls.LiveHlsStream.segment_so_far`): no
copy per viewer, and every viewer waiting for the next chunk of a channel waits on one
shared future (the rendition's :meth:`~strom.delivery.hls.HlsRendition.chunk_arrived`).

Bounded: each write must be taken by the viewer's socket within ``write_timeout`` (a
viewer that stops reading is cut off; the kernel and transport buffers are all it costs
meanwhile); a publisher that sends nothing for ``idle_timeout``, or a stopping node,
breaks the answer off (it is not whole: the player asks again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers

if TYPE_CHECKING:
    from collections.abc import Callable

    from strom.media.hls import LiveHlsStream

log = logging.getLogger(__name__)

#: seconds a viewer's socket may take to accept the next piece
WRITE_TIMEOUT = 10.0
#: seconds without a new chunk (a stalled publisher) before the answer ends
IDLE_TIMEOUT = 30.0


async def stream_segment(
    request: web.BaseRequest,
    stream: LiveHlsStream,
    msn: int,
    chunk_arrived: Callable[[], asyncio.Future[bool]],
    *,
    write_timeout: float = WRITE_TIMEOUT,
    idle_timeout: float = IDLE_TIMEOUT,
) -> web.StreamResponse:
    """Answer segment ``msn`` of ``stream``, which has begun, as it grows;
    ``chunk_arrived()`` is True when the stream has its next chunk, False when the
    answer should end at once (the node is stopping)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "video/mp4",
            **cache_headers(AnswerKind.GROWING_MEDIA),
            # nginx in front passes each chunk on as it comes rather than filling a
            # buffer first (its proxy_buffering, per answer)
            "X-Accel-Buffering": "no",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method == "HEAD":  # the headers are the answer: no need to wait for it
        await response.write_eof()
        return response
    sent = 0
    while (found := stream.segment_so_far(msn)) is not None:
        pieces, complete = found
        offset = 0
        for piece in pieces:
            end = offset + len(piece)
            if end > sent:
                data = piece if offset >= sent else memoryview(piece)[sent - offset :]
                try:
                    async with asyncio.timeout(write_timeout):
                        await response.write(data)
                except TimeoutError:
                    log.info("%s: viewer too slow for a growing segment; dropped", request.path)
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                except ConnectionError:
                    return response  # the viewer went away (a player that moved on)
                sent = end
            offset = end
        if complete or stream.ended:
            break
        arrived = chunk_arrived()
        await asyncio.wait([arrived], timeout=idle_timeout)
        if not arrived.done() or not arrived.result():
            # The publisher stalled for long, or the node stops: the answer breaks off
            # without its last chunk, so the player (and any cache) knows it is not whole
            # and asks again.
            if request.transport is not None:
                request.transport.abort()
            return response
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
