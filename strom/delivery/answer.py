"""A delivery's complete answer as data: its body and headers, shared by every viewer.

A playlist, an MPD, a part or a segment is the same answer for every viewer who asks at
that moment, built once (:meth:`~strom.delivery.hls.HlsRendition.playlist_answer`) and
written many times. An :class:`Answer` is that answer before it becomes a response: the
application's routes turn it into a :class:`aiohttp.web.Response`
(:func:`respond`), the lean path writes it out as it is (:mod:`strom.web.raw_answer`).
Answers of another shape (a 304, a segment sent as it grows) stay responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Answer:
    """``200 OK`` with ``body``; ``headers`` are shared between answers, never changed."""

    body: bytes | memoryview
    headers: Mapping[str, str]


def respond(answer: Answer | web.StreamResponse) -> web.StreamResponse:
    """``answer`` as a response of aiohttp's."""
    if isinstance(answer, Answer):
        return web.Response(body=answer.body, headers=answer.headers)
    return answer
