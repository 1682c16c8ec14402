"""A delivery's answer written to the socket as it is: the lean path's last step.

aiohttp turns every response into bytes anew: a header multidict built and checked, a
``Date`` formatted, the head serialised, the body joined to it in a new buffer. For an
LL-HLS part or playlist that is most of what a request costs (``python -m bench
reqcost``: 42 µs per playlist and 106 µs per 120 KB part through :class:`aiohttp.web.
Response`, 28 and 56 µs written as prepared bytes, on the same aiohttp server).
:class:`RawAnswers` keeps each answer's head (status line and headers, the cross-origin
ones included) as bytes, made once for all the answers that share those headers, and
:class:`RawAnswer` writes head and body to the transport in one vectored write, without
copying the body, then waits for the socket to drain like any aiohttp response (a
viewer that does not read stalls only its own request).

Only for what HTTP/1.1 keep-alive allows without a second thought: an HTTP/1.0 request,
or one asking to close the connection, gets the ordinary response.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import formatdate

from aiohttp import HttpVersion11, web

from strom.delivery.answer import Answer, respond

#: distinct heads kept (playlists and MPDs have one per revision, so old ones go)
MAX_HEADS = 64


class RawAnswer(web.StreamResponse):
    """A ``200 OK`` whose head is given as bytes (see the module doc)."""

    def __init__(self, head: bytes, tail: bytes, body: bytes | memoryview) -> None:
        super().__init__()
        self._pieces = (head, tail, body)

    @property
    def keep_alive(self) -> bool:
        return True  # only made for a keep-alive HTTP/1.1 request

    async def prepare(self, request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the viewer went away")
        transport.writelines(self._pieces)
        await request.writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class RawAnswers:
    """The heads of the lean path's answers, each made once (see the module doc)."""

    def __init__(self, extra_headers: Mapping[str, str]) -> None:
        #: headers every answer carries (cross-origin reads)
        self._extra = extra_headers
        self._heads: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._date_second = -1
        self._date = b""

    def response(self, request: web.BaseRequest, answer: Answer) -> web.StreamResponse:
        if request.version != HttpVersion11 or not request.keep_alive:
            response = respond(answer)
            response.headers.update(self._extra)
            return response
        key = tuple(answer.headers.items())
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= MAX_HEADS:
                self._heads.clear()
            head = self._heads[key] = _head({**answer.headers, **self._extra})
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = formatdate(now, usegmt=True).encode()
        tail = b"Content-Length: %d\r\nDate: %s\r\n\r\n" % (len(answer.body), self._date)
        return RawAnswer(head, tail, answer.body)


def _head(headers: Mapping[str, str]) -> bytes:
    """The status line and ``headers`` (Strom's own values: never a CR or LF in them)."""
    lines = ["HTTP/1.1 200 OK\r\n", *(f"{name}: {value}\r\n" for name, value in headers.items())]
    return "".join(lines).encode("latin-1")
