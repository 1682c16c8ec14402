"""Files another node of the site has: recordings and live thumbnails, proxied.

A broadcast is recorded, and its live thumbnail made, once, on the node that ingests it
(:mod:`strom.record`), into that node's own data directory. Every other node answers
``/vod/...``, ``/thumbnails/...`` and the recordings lists by asking the other nodes
(:class:`Elsewhere`) when it has no such file itself, rather than by sharing a file
system:

* nothing to set up: a site is a Redis, a database and nodes, as before, and a node
  that joins serves every recording at once;
* every recording answer is immutable or short-lived by its ``Cache-Control``
  (:mod:`strom.delivery.caching`), so behind an HTTP cache a proxied byte crosses between
  nodes once, not once per viewer;
* the cost, said plainly: a recording is only reachable while the node that made it is
  up (a node taken out of the site takes its recordings with it: move its
  ``recordings/`` directory to a node that stays, and they are served from there).

The other nodes are the live map's (those heard from within the TTL) plus the
``--upstream`` node. A request a node forwards is marked (:data:`FORWARDED`); a node
asked that way answers from its own files and forwards again only to its ``--upstream``
(a tree: an edge behind a relay behind an ingest node reaches the ingest node's files,
and no request can go round in circles). The answer is streamed through, in pieces,
never held whole; a node that does not answer within :attr:`ElsewhereLimits.timeout`
is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

#: the header on a request one node forwards to another (its value: the hops so far)
FORWARDED = "X-Strom-Forwarded"
#: hops a request may make along ``--upstream`` links
MAX_HOPS = 8
#: request headers passed on (a ranged or conditional GET; an account's DELETE)
_ASKED = ("Range", "If-None-Match", "If-Modified-Since", "Cookie", "X-CSRF-Token", "Origin")
#: answer headers passed back
_ANSWERED = (
    "Content-Type", "Content-Length", "Content-Range", "Content-Disposition", "Accept-Ranges",
    "Cache-Control", "ETag", "Last-Modified",
)  # fmt: skip
#: answers worth passing back (anything else: the next node is asked)
_FOUND = frozenset({200, 204, 206, 304})
PIECE = 64 << 10  # bytes copied at a time


@dataclass(frozen=True)
class ElsewhereLimits:
    #: seconds a node gets to answer (its status and headers) before the next is asked
    timeout: float = 5.0
    #: seconds a forwarded answer's body may stall (a download is remuxed first)
    read_timeout: float = 60.0
    #: JSON answers (lists) larger than this are not read
    max_json_bytes: int = 1 << 20


class Elsewhere:
    """The other nodes' files. ``mesh`` gives the live map's other nodes (base URLs),
    ``upstream`` the ``--upstream`` node ("" if none)."""

    def __init__(
        self,
        mesh: Callable[[], Sequence[str]],
        upstream: str = "",
        limits: ElsewhereLimits | None = None,
    ) -> None:
        self._mesh = mesh
        self.upstream = upstream.rstrip("/")
        self.limits = limits or ElsewhereLimits()
        self._session: aiohttp.ClientSession | None = None
        self.forwarded = 0  # answers passed back from another node
        self.missed = 0  # requests no node could answer

    def metrics(self) -> dict[str, int]:
        return {"forwarded": self.forwarded, "missed": self.missed}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.limits.timeout,
                    sock_connect=self.limits.timeout,
                    sock_read=self.limits.read_timeout,
                ),
                auto_decompress=False,
            )
        return self._session

    def nodes(self, request: web.Request) -> list[str]:
        """Whom to ask for what ``request`` wants: none when it has come too far; only
        the upstream when another node forwarded it."""
        hops = _hops(request)
        if hops is None or hops >= MAX_HOPS:
            return []
        found = [] if hops else [url.rstrip("/") for url in self._mesh()]
        if self.upstream and self.upstream not in found:
            found.append(self.upstream)
        return found

    async def forward(self, request: web.Request) -> web.StreamResponse | None:
        """The first other node's answer to ``request`` (a GET or DELETE of a file this
        node does not have), streamed through; None if no node has it."""
        headers = {k: v for k in _ASKED if (v := request.headers.get(k)) is not None}
        headers[FORWARDED] = str((_hops(request) or 0) + 1)
        for base in self.nodes(request):
            try:
                answer = await self._ask(request.method, base + request.path_qs, headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("elsewhere: %s did not answer %s: %s", base, request.path, exc)
                continue
            if answer.status not in _FOUND:
                answer.release()
                continue
            try:
                return await self._pass_back(request, answer)
            finally:
                answer.release()
        self.missed += 1
        return None

    async def gather(self, request: web.Request, key: str) -> list[dict[str, Any]]:
        """The items of list ``key`` in every other node's JSON answer to ``request``'s
        path (a recordings list), asked at once; nodes that fail are left out."""
        headers = {FORWARDED: str((_hops(request) or 0) + 1)}
        nodes = self.nodes(request)

        async def one(base: str) -> list[dict[str, Any]]:
            try:
                answer = await self._ask("GET", base + request.path_qs, headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("elsewhere: %s did not answer %s: %s", base, request.path, exc)
                return []
            async with answer:
                if answer.status != 200 or (answer.content_length or 0) > (
                    self.limits.max_json_bytes
                ):
                    return []
                with contextlib.suppress(ValueError, aiohttp.ClientError, TimeoutError):
                    async with asyncio.timeout(self.limits.timeout):
                        body = await answer.content.read(self.limits.max_json_bytes + 1)
                    if len(body) <= self.limits.max_json_bytes:
                        data = json.loads(body)
                        items = data.get(key) if isinstance(data, dict) else None
                        if isinstance(items, list):
                            return [i for i in items if isinstance(i, dict)]
                return []

        found: list[dict[str, Any]] = []
        for items in await asyncio.gather(*(one(base) for base in nodes)):
            found.extend(items)
        return found

    async def _ask(self, method: str, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        async with asyncio.timeout(self.limits.timeout):
            return await self._http().request(method, url, headers=headers, allow_redirects=False)

    async def _pass_back(
        self, request: web.Request, answer: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        out = web.StreamResponse(status=answer.status)
        for name in _ANSWERED:
            if (value := answer.headers.get(name)) is not None:
                out.headers[name] = value
        await out.prepare(request)
        async for piece in answer.content.iter_chunked(PIECE):
            await out.write(piece)
        await out.write_eof()
        self.forwarded += 1
        return out


def _hops(request: web.Request) -> int | None:
    """How many nodes ``request`` has been through (0: it comes from a client); None if
    the header is not a number."""
    raw = request.headers.get(FORWARDED)
    if raw is None:
        return 0
    return int(raw) if raw.isdigit() and len(raw) < 4 else None
