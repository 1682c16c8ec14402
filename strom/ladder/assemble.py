"""The ladder's place in a node: assembled by the composition root in one call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from strom.ladder.service import LadderLimits, LadderService
from strom.live.registry import Registry
from strom.media.ladder import split_rendition
from strom.settings import Settings

if TYPE_CHECKING:  # the worker process imports this package: not the database's code
    from strom.store import Store


def start_ladder(
    stack: AsyncExitStack, settings: Settings, registry: Registry, store: Store
) -> LadderService | None:
    """The node's ladder service, stopped with ``stack`` (None: the site has no ladder,
    ``ladder = off``, and nothing is ever encoded). With ``on`` a channel gets its ladder
    when its streamer switched it on (channels without an account: never); with ``all``
    every channel does."""
    if settings.ladder == "off":
        return None

    async def wants_ladder(name: str) -> bool:
        if settings.ladder == "all":
            return True
        info = await store.channels.get(name)
        return info is not None and info.quality_ladder

    service = LadderService(registry, LadderLimits.from_settings(settings), wants_ladder)
    stack.push_async_callback(service.stop)
    return service


def ladder_recording(
    settings: Settings, wants_recording: Callable[[str], Awaitable[bool]]
) -> Callable[[str], Awaitable[bool]]:
    """The recorder's question, "record this channel?": a ladder's rendition is recorded
    only with ``ladder_record``; any other channel as ``wants_recording`` says."""

    async def wants(name: str) -> bool:
        if split_rendition(name) is not None:
            return settings.ladder_record
        return await wants_recording(name)

    return wants
