"""Where a node pulls a channel from: a :class:`Locator`.

``--upstream URL`` is :class:`StaticUpstream`: every channel through that node (a relay,
or an edge behind one). A cluster-wide map (which node ingests which channel) is another
locator with the same method.
"""

from __future__ import annotations

from typing import Protocol


class Locator(Protocol):
    async def locate(self, channel: str) -> str | None:
        """The base HTTP URL (``http://host:port``) of the node to pull ``channel``
        from, or None: nobody has it (yet)."""
        ...


class StaticUpstream:
    """Every channel from one upstream node."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def locate(self, channel: str) -> str | None:
        return self.url
