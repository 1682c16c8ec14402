"""The site's channel events: what changes on a channel (live, reconnecting, offline, its
title and category, its viewers) pushed to every open page instead of polled.

Where a change happens, :class:`ChannelEvents` publishes a ``channel`` event on the room
bus (:mod:`strom.chat.bus`) under :data:`SITE_ROOM`, a room no channel can be called, so it
reaches every node of the site through Redis as chat does. Every node hands what the bus
delivers to its listeners: the ``/events/ws`` sockets (:mod:`strom.web.events`).

- A channel's state is announced by the node that ingests it, when it changes (a node
  following it from elsewhere says nothing: one word per change site-wide).
- A title or category is announced by the node where the streamer saved it.
- Viewers are announced by the ingest node every ``viewers_interval`` seconds, when the
  site's count changed.
- A new avatar is announced by the node where it was uploaded (if the channel is live).

A node that has the channel live reads its info again when an announcement of it comes
from another node (titles and avatars edited there show on its cards).

An event carries the channel as ``/api/v1/channels/{name}`` shows it (a viewers event only
``username`` and ``viewers``), so a page shows it without asking again. Changes of one
channel that come faster than they are sent are merged: the event says how it is *now*.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from strom.channels.directory import OFFLINE, Directory
from strom.chat.bus import RoomBus, Subscription
from strom.chat.events import ChannelChanged, RoomEvent
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.store import StoreError
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

#: the bus room of the site's channel events (no channel name starts with "~")
SITE_ROOM = "~channels"


class Listener(Protocol):
    """Whoever takes the events on this node: an ``/events/ws`` socket."""

    def send(self, text: str) -> None:
        """One event's JSON text (the same ``str`` for every listener). Must not block."""

    def close(self) -> None:
        """The node is stopping: say goodbye."""


@dataclass(frozen=True)
class EventLimits:
    #: seconds between viewer counts of a live channel (sent only when they changed)
    viewers_interval: float = 5.0
    #: channels waiting to be announced at most (more: the newest wait for the next change)
    max_pending: int = 10_000


class ChannelEvents:
    def __init__(
        self,
        registry: Registry,
        directory: Directory,
        bus: RoomBus,
        limits: EventLimits | None = None,
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.bus = bus
        self.limits = limits or EventLimits()
        self.listeners: set[Listener] = set()
        #: this node on the bus (what it announced itself needs no reading again)
        self.node = secrets.token_hex(6)
        #: the state last announced of each channel ingested here
        self._states: dict[str, str] = {}
        #: the viewers last announced of each channel ingested here
        self._viewers: dict[str, int] = {}
        #: channels to announce in full, in order, each once
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: channels live here whose info is being read again
        self._reloading: set[str] = set()
        self._reloads = TaskSet("channel-events")
        self.published = 0
        self.delivered = 0

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(SITE_ROOM, self._deliver)
        self.registry.listeners.append(self._on_state)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._announce(), name="channel-events"),
            loop.create_task(self._count_viewers(), name="channel-viewers"),
        ]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self._on_state)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._subscription is not None:
            await self._subscription.close()
        await self._reloads.close(cancel=True)
        self.listeners.clear()

    # -- what changed -------------------------------------------------------------------

    def changed(self, name: str) -> None:
        """Announce ``name`` as it is now (its title or category changed)."""
        if name in self._pending or len(self._pending) < self.limits.max_pending:
            self._pending[name] = None
            self._wake.set()

    def _on_state(self, channel: Channel) -> None:
        if channel.origin is not None:
            # Followed from another node (or its broadcast went on there): that node
            # announces it.
            self._states.pop(channel.name, None)
            self._viewers.pop(channel.name, None)
            return
        state = channel.public_state
        if self._states.get(channel.name, OFFLINE) == state:
            return
        if state == OFFLINE:
            self._states.pop(channel.name, None)
            self._viewers.pop(channel.name, None)
        else:
            self._states[channel.name] = state
        self.changed(channel.name)

    async def _announce(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                name = next(iter(self._pending))
                del self._pending[name]
                try:
                    view = await self.directory.channel_view(name)
                except StoreError as exc:
                    log.warning("channel events: %s not announced: %s", name, exc)
                    continue
                except Exception:  # a bug here must not stop the announcements
                    log.exception("channel events: announcing %s failed", name)
                    continue
                if view is not None:
                    if view["state"] != OFFLINE:
                        self._viewers[name] = view["viewers"]
                    self._publish(view)

    async def _count_viewers(self) -> None:
        while True:
            await asyncio.sleep(self.limits.viewers_interval)
            for name in list(self._states):
                count = self.directory.viewers(name)
                if self._viewers.get(name) != count:
                    self._viewers[name] = count
                    self._publish({"username": name, "viewers": count})

    def _publish(self, fields: dict[str, Any]) -> None:
        self.published += 1
        text = json.dumps(fields, separators=(",", ":"))
        self.bus.publish(SITE_ROOM, ChannelChanged(text, self.node))

    # -- to the listeners ---------------------------------------------------------------

    def _deliver(self, event: RoomEvent) -> None:
        if not isinstance(event, ChannelChanged):
            return
        client = event.to_client()
        name = client["channel"].get("username")
        if event.node != self.node and "state" in client["channel"]:
            self._reload(name)
        # Unlisted and private channels are not announced to the site's pages (the nodes
        # still hear them: their cards are read again above).
        visibility = client["channel"].get("visibility")
        if isinstance(name, str) and (visibility or self.directory.visibility(name)) != "public":
            return
        text = json.dumps(client, separators=(",", ":"))
        self.delivered += 1
        for listener in list(self.listeners):
            listener.send(text)

    def _reload(self, name: object) -> None:
        if not isinstance(name, str) or name not in self.directory.infos:
            return
        if name in self._reloading:
            return
        self._reloading.add(name)
        self._reloads.spawn(self._read_again(name))

    async def _read_again(self, name: str) -> None:
        try:
            await self.directory.reload(name)
        except StoreError as exc:
            log.warning("channel events: %s not read again: %s", name, exc)
        finally:
            self._reloading.discard(name)

    def close_all(self) -> None:
        """The node is stopping: every listener says goodbye."""
        for listener in list(self.listeners):
            listener.close()

    def metrics(self) -> dict[str, int]:
        return {
            "listeners": len(self.listeners),
            "published": self.published,
            "delivered": self.delivered,
        }
