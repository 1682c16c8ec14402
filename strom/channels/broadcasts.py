"""The broadcasts table kept in step with the hub: a row when a channel goes live, its end
and peak viewers when it ends, a heartbeat while it is on air (so a broadcast left open by
a crash ends when it was last on air, not when the process came back).

In a site of several nodes the open row is what the site remembers of a broadcast whose
publisher may come back (``carry_on_within``: the reconnect grace and a heartbeat's
slack). A channel going live carries on the channel's open row if it was on air that
recently -- its publisher came back here or to another node, after a dropped connection
or a crash of the node it was on -- so the broadcast keeps its id; a node restarting
leaves such rows open for that, and every node's heartbeat ends the rows nobody carried
on. The database, not a process's memory, holds this: it outlives any one node.

Recordings: each node records what it ingests on its own disk, so a broadcast carried on
by another node gets a second recording there, tagged with the same broadcast id (the
node it left finishes its part). One recording growing across machines would need shared
storage; parts of one broadcast need nothing more than the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from strom.channels.directory import Directory
from strom.live.channel import Channel, ChannelState
from strom.live.registry import Registry
from strom.store import Store
from strom.store.errors import StoreError
from strom.store.models import NODE_ID_MAX
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

#: another node's open broadcast is closed by a restarting node only when its heartbeat is
#: this many intervals old (that node is gone); until then it may well be live elsewhere
STALE_HEARTBEATS = 30

#: told a broadcast's database id once it is recorded: (channel, hub broadcast number
#: (:attr:`Channel.broadcast_id` when it went live), database id)
BroadcastListener = Callable[[Channel, int, int], None]

#: in ``_rows`` while the start of a broadcast is being written
_STARTING = -1


def load_or_create_node_id(data_dir: Path) -> str:
    """This node's id, kept in the data directory: the broadcasts it runs carry it, so
    after a crash it closes its own and never another node's live ones. (A copied data
    dir copies it too.)"""
    path = data_dir / "node-id"
    with contextlib.suppress(FileNotFoundError):
        found = path.read_text().strip()
        if found:
            return found[:NODE_ID_MAX]
    data_dir.mkdir(parents=True, exist_ok=True)
    node = f"{socket.gethostname()[:40]}-{secrets.token_hex(6)}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(node + "\n")
    os.replace(tmp, path)
    return node


class Broadcasts:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        directory: Directory,
        *,
        node: str,
        heartbeat: float = 10.0,
        went_live: Callable[[str, str, float], None] | None = None,
        carry_on_within: float | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.directory = directory
        #: this node's id, written on its broadcasts (whose they are after a crash)
        self.node = node
        #: seconds between the notes in the database that live broadcasts are still on
        #: air (with their peak viewers): after a crash they end at the last note
        self.heartbeat = heartbeat
        #: several nodes: seconds an open broadcast may have been off air and still be
        #: carried on by a channel going live (None: one node; every live is a new one)
        self.carry_on_within = carry_on_within
        #: told (channel, title, started_at) when an account's channel goes live
        self._went_live_hook = went_live
        #: told each broadcast's database id (the recorder writes it into the recording)
        self.listeners: list[BroadcastListener] = []
        self._rows: dict[str, int] = {}
        #: the node is stopping and leaves its broadcasts open (:meth:`leave_open`)
        self._leaving = False
        self._tasks = TaskSet("broadcasts")
        self._heartbeat_task: asyncio.Task[None] | None = None
        registry.listeners.append(self._on_state)

    def start(self) -> None:
        if self.heartbeat > 0:
            self._heartbeat_task = asyncio.get_running_loop().create_task(self._beat())

    async def leave_open(self) -> None:
        """Several nodes, this one stopping (a restart, or taken out of the site): its
        broadcasts are not ended but marked on air now and left open, as a crash would
        leave them -- their publishers, cut off by the stop, may come back within the
        grace, here after the restart or on another node, and carry them on. Nobody
        does: the next publish of the channel or any node's sweep ends them at this
        moment. (One node alone ends them when it stops.)"""
        if self.carry_on_within is None or self._leaving:
            return
        self._leaving = True
        # On air until now; one already waiting for its publisher was last on air when
        # its media stopped (its note then stands).
        peaks = self._on_air()
        try:
            await self.store.broadcasts.seen(peaks, node=self.node)
        except StoreError as exc:
            log.warning("broadcasts: not marked on air at the stop: %s", exc)
        for broadcast_id in sorted(b for b in self._rows.values() if b > 0):
            log.info("broadcast %d left open: its publisher may carry it on", broadcast_id)

    def _on_air(self) -> dict[int, int]:
        """The broadcasts on air here now (their rows written), with their peak viewers."""
        return {
            broadcast_id: channel.peak_viewers
            for channel in self.registry.live()
            if (broadcast_id := self._rows.get(channel.name, _STARTING)) > 0
        }

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        for channel in self.registry:
            if channel.name in self._rows and not self._leaving:
                await self._ended(channel.name, channel.peak_viewers)
        await self._tasks.close()
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self._on_state)

    def broadcast_id(self, name: str) -> int | None:
        """The database id of ``name``'s current broadcast, once it is recorded."""
        found = self._rows.get(name)
        return found if found is not None and found > 0 else None

    async def wants_recording(self, name: str) -> bool:
        """The streamer's recording switch (channels without an account: recorded)."""
        info = await self.store.channels.get(name)
        return info is None or info.record_broadcasts

    async def close_left_open(self, last_media: Mapping[int, datetime]) -> dict[int, datetime]:
        """A crash or ``kill -9`` left this node's broadcasts open: end each when it was
        last on air (``last_media``: what its recording kept, by broadcast id; else the
        heartbeat), never now. Returns {broadcast id: when it ended}."""
        beat = self.heartbeat
        within = self.carry_on_within
        closed = await self.store.broadcasts.close_unfinished(
            self.node,
            last_media=last_media,
            # without heartbeats nothing tells a gone node from a live one
            stale_after=timedelta(seconds=STALE_HEARTBEATS * beat) if beat > 0 else None,
            # several nodes: one still in its grace may be carried on (the sweep ends it
            # if not)
            spare_within=timedelta(seconds=within) if within is not None else None,
        )
        for broadcast_id, ended in sorted(closed.items()):
            log.info(
                "broadcast %d was left open by the last run: ended at %s (%s)",
                broadcast_id,
                ended.isoformat(timespec="seconds"),
                "its recording's last media" if broadcast_id in last_media else "last heartbeat",
            )
        return closed

    # -- in step with the hub ----------------------------------------------------------------

    def _on_state(self, channel: Channel) -> None:
        if channel.origin is not None:
            # Pulled from another node: its row (and go-live notice) is the ingest's. One
            # that was ingested here went on at another node (Channel.moved): the row is
            # that node's now; it is let go, not ended.
            broadcast_id = self._rows.get(channel.name)
            if broadcast_id is not None and broadcast_id > 0:
                del self._rows[channel.name]
                log.info(
                    "channel %s: broadcast %d goes on at %s",
                    channel.name,
                    broadcast_id,
                    channel.origin,
                )
                self._tasks.spawn(self._raise_peak(broadcast_id, channel.peak_viewers))
            return
        if channel.state is ChannelState.LIVE and channel.name not in self._rows:
            self._rows[channel.name] = _STARTING
            self._tasks.spawn(self._went_live(channel, channel.broadcast_id))
        elif channel.state is ChannelState.OFFLINE and channel.name in self._rows:
            if self._leaving:  # stopping, the broadcast left open (leave_open)
                self._rows.pop(channel.name)
                return
            self._tasks.spawn(self._ended(channel.name, channel.peak_viewers))

    async def _went_live(self, channel: Channel, number: int) -> None:
        name = channel.name
        try:
            info = await self.store.channels.get(name)
            if info is None:  # a static channel without an account: nothing to record
                self._rows.pop(name, None)
                return
            self.directory.remember(info)
            await self.store.profiles.seen(name)  # the streamer's "last seen"
            carried = False
            if self.carry_on_within is None:
                broadcast_id = await self.store.broadcasts.start(name, self.node)
            else:
                broadcast_id, carried = await self.store.broadcasts.carry_on_or_start(
                    name, self.node, within=timedelta(seconds=self.carry_on_within)
                )
            self._rows[name] = broadcast_id
        except Exception:
            self._rows.pop(name, None)
            log.exception("channel %s: could not record the broadcast start", name)
            return
        for listener in self.listeners:
            try:
                listener(channel, number, broadcast_id)
            except Exception:
                log.exception("channel %s: a broadcast listener failed", name)
        if carried:  # the same broadcast: its followers were told when it started
            log.info("channel %s: broadcast %d carried on here", name, broadcast_id)
            return
        # An unlisted channel is announced to nobody (followers' webhooks included).
        if self._went_live_hook is not None and info.visibility != "unlisted":
            self._went_live_hook(name, info.title or name, channel.started_at or time.time())

    async def _ended(self, name: str, peak: int) -> None:
        # Wait for the start to be recorded if it is still in flight.
        for _ in range(50):
            if self._rows.get(name) != _STARTING:
                break
            await asyncio.sleep(0.1)
        broadcast_id = self._rows.pop(name, None)
        self.directory.forget(name)
        if broadcast_id is None or broadcast_id < 0:
            return
        try:
            # Only if still ours: another node may have carried it on in the meantime.
            await self.store.broadcasts.end(broadcast_id, peak, node=self.node)
        except Exception:
            log.exception("channel %s: could not record the broadcast end", name)

    async def _raise_peak(self, broadcast_id: int, peak: int) -> None:
        try:
            await self.store.broadcasts.update_peak(broadcast_id, peak)
        except StoreError as exc:
            log.warning("broadcast %d: peak viewers not recorded: %s", broadcast_id, exc)

    async def _beat(self) -> None:
        """Every ``heartbeat`` seconds, one transaction: each broadcast on air here is
        seen now, with its peak viewers (a crash then loses at most one interval of
        both). A broadcast waiting for its publisher is not on air: after a crash it ends
        when its media stopped. Several nodes: the beat also ends the broadcasts nobody
        carried on (:meth:`sweep`)."""
        while True:
            await asyncio.sleep(self.heartbeat)
            peaks = self._on_air()
            try:
                await self.store.broadcasts.seen(peaks, node=self.node)
                await self.sweep()
            except StoreError as exc:
                log.warning("broadcasts: heartbeat not recorded: %s", exc)
            except Exception:
                log.exception("broadcasts: heartbeat not recorded")

    async def sweep(self) -> dict[int, datetime]:
        """Several nodes: end the open broadcasts of any node that nobody has had on air
        for longer than a live node's heartbeat or the grace allow (their node died and
        their publisher did not come back), each when it was last on air. A broadcast
        whose node dies for good is thus never left live in the database."""
        if self.carry_on_within is None:
            return {}
        quiet = max(self.carry_on_within, STALE_HEARTBEATS * self.heartbeat)
        closed = await self.store.broadcasts.close_unfinished(spare_within=timedelta(seconds=quiet))
        for broadcast_id, ended in sorted(closed.items()):
            log.info(
                "broadcast %d was left open by a node gone for good: ended at %s",
                broadcast_id,
                ended.isoformat(timespec="seconds"),
            )
        return closed
