"""``strom stream``: open the sources, publish, show the status, stop cleanly.

Threads capture and encode (:mod:`strom.client.pipeline`); the event loop publishes
(:mod:`strom.client.publish`), polls the viewer count and reads the chat
(:mod:`strom.client.status`). Ctrl-C (SIGINT) or SIGTERM unpublishes, so the broadcast
ends at once for the viewers instead of waiting out the server's reconnect grace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from strom.client.config import ClientConfig, ClientError, config_from_args, publish_url
from strom.client.devices import list_devices
from strom.client.encode import Encoded
from strom.client.pipeline import MediaPipeline, PreviewSink
from strom.client.preview import PreviewWindow, check_preview
from strom.client.publish import Backoff, Publisher, PublishState, describe
from strom.client.status import (
    ChatLines,
    RateMeter,
    StatusSnapshot,
    TerminalStatus,
    clean_text,
    fetch_json,
    poll_viewers,
    watch_chat,
)
from strom.client.whip import WhipStreamer
from strom.settings import valid_channel_name

log = logging.getLogger(__name__)

#: status redraws per second
STATUS_INTERVAL = 1.0
#: how long stopping may take: unpublish, then the threads
STOP_TIMEOUT = 5.0


class StatusView(Protocol):
    """Where the client shows how it is going: the terminal (:class:`TerminalStatus`) or
    the ``--gui`` window. Called on the event loop's thread."""

    #: how the streamer ends the broadcast there, e.g. "Ctrl-C to stop"
    stop_hint: str

    def draw(self, snapshot: StatusSnapshot, chat: ChatLines | None) -> None: ...

    def message(self, text: str) -> None: ...


class StreamClient:
    """One broadcast: from opening the sources to the goodbye. ``preview`` receives the
    pictures sent (the ``--gui`` window's); ``--preview`` opens its own window instead."""

    def __init__(
        self, config: ClientConfig, terminal: StatusView, preview: PreviewSink | None = None
    ) -> None:
        self.config = config
        self.terminal = terminal
        self._preview = preview
        self.failure = ""
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._publisher: Publisher | WhipStreamer | None = None
        self._chat = ChatLines(config.limits.chat_lines)
        self._tasks: list[asyncio.Task[None]] = []
        self._was_live = False

    def stop(self) -> None:
        """End the broadcast (on the loop's thread: ``loop.call_soon_threadsafe``)."""
        self._stop.set()

    # -- called from the capture threads -------------------------------------------------

    def _sink(self, item: Encoded) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to send to
            self._loop.call_soon_threadsafe(self._offer, item)

    def _offer(self, item: Encoded) -> None:
        if self._publisher is not None:
            self._publisher.offer(item)

    def _capture_failed(self, message: str) -> None:
        def fail() -> None:
            self.failure = self.failure or message
            self._stop.set()

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fail)

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> int:
        config = self.config
        if config.preview:
            check_preview()
        if config.channel and not valid_channel_name(config.channel):
            raise ClientError(f"--channel {config.channel!r} is not a channel name")
        preview = PreviewWindow() if config.preview else None
        pipeline = MediaPipeline(
            config, self._sink, on_error=self._capture_failed, preview=preview or self._preview
        )
        await asyncio.to_thread(pipeline.open)
        self.terminal.message(f"strom stream: {pipeline.description}")
        self._install_signals()
        try:
            async with aiohttp.ClientSession() as http:
                url = config.server.api("/whip") if config.whip else await self._discover(http)
                if url is None:
                    return 0  # stopped before the site answered
                self.terminal.message(f"publishing to {url} ({self.terminal.stop_hint})")
                publisher: Publisher | WhipStreamer
                if config.whip:
                    publisher = WhipStreamer(
                        url, config.key, config.limits, on_state=self._state_changed
                    )
                else:
                    publisher = Publisher(
                        url, config.key, pipeline.tracks, config.limits,
                        pipeline.request_keyframe, on_state=self._state_changed,
                    )  # fmt: skip
                self._publisher = publisher
                pipeline.start()
                if preview is not None:
                    preview.start()
                publishing = asyncio.create_task(publisher.run())
                try:
                    await self._show(http, publisher, pipeline, publishing)
                finally:
                    publisher.stop()
                    await asyncio.wait({publishing}, timeout=STOP_TIMEOUT)
                    publishing.cancel()
                    for task in self._tasks:
                        task.cancel()
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                if publishing.done() and not publishing.cancelled():
                    error = publishing.exception()
                    if error is not None:
                        raise error
        finally:
            await asyncio.to_thread(pipeline.stop)
            if preview is not None:
                preview.close()
        if self.failure:
            raise ClientError(self.failure)
        self.terminal.message("stopped: the broadcast has ended")
        return 0

    async def _discover(self, http: aiohttp.ClientSession) -> str | None:
        """Where to publish: ``--rtmp``, else what the site says (``/api/v1/ingest``),
        asked until it answers; a site without that API gets RTMP's default port."""
        server, limits = self.config.server, self.config.limits
        if server.rtmp:
            return server.rtmp
        backoff = Backoff(limits.backoff_first, limits.backoff_factor, limits.backoff_max)
        while not self._stop.is_set():
            try:
                status, body = await fetch_json(http, server.api("/api/v1/ingest"))
            except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as exc:
                delay = backoff.next_delay()
                why = describe(getattr(exc, "os_error", exc))  # aiohttp wraps the OSError
                self.terminal.message(
                    f"cannot reach {server.web} ({clean_text(why, 200)}); "
                    f"trying again in {delay:.1f} s"
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            url = publish_url(server.web, body)
            if status == 200 and url is not None:
                if server.web.startswith("https://") and url.startswith("rtmp://"):
                    self.terminal.message(
                        f"{server.web} offers no RTMPS: the stream key goes to {url} unencrypted"
                    )
                return url
            fallback = f"rtmp://{urlsplit(server.web).hostname}:1935/live"
            self.terminal.message(
                f"{server.web} did not say where to publish (HTTP {status}); using {fallback}"
            )
            return fallback
        return None

    def _state_changed(self, state: PublishState, why: str) -> None:
        """Transitions are told at once, however short: the status line is drawn only
        once a second."""
        if state is PublishState.RECONNECTING:
            why = clean_text(why, 200)
            self.terminal.message(f"connection lost ({why}): reconnecting by itself…")
        elif state is PublishState.LIVE and self._was_live:
            self.terminal.message("reconnected: live again")
        self._was_live = self._was_live or state is PublishState.LIVE

    def _install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
                self._loop.add_signal_handler(sig, self._stop.set)

    async def _show(
        self,
        http: aiohttp.ClientSession,
        publisher: Publisher | WhipStreamer,
        pipeline: MediaPipeline,
        publishing: asyncio.Task[None],
    ) -> None:
        meter = RateMeter()
        stats = publisher.stats
        channel = self.config.channel
        while not self._stop.is_set() and not publishing.done():
            now = time.monotonic()
            meter.update(now, stats.frames_sent, stats.bytes_sent)
            if not channel and stats.channel:
                channel = stats.channel
            if channel and not self._tasks:
                self._follow(http, channel)
            live = stats.state is PublishState.LIVE
            snapshot = StatusSnapshot(
                state=stats.state.value,
                uptime=now - stats.first_live if stats.first_live else 0.0,
                fps=meter.fps if live else 0.0,
                kbps=meter.kbps if live else 0.0,
                dropped=publisher.queue.dropped,
                late=pipeline.stats.frames_late,
                viewers=self._chat.viewers,
                channel=channel,
                retry_in=stats.retry_at - now,
                error=stats.last_error,
            )
            self.terminal.draw(snapshot, self._chat if self.config.chat and channel else None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STATUS_INTERVAL)

    def _follow(self, http: aiohttp.ClientSession, channel: str) -> None:
        server, limits = self.config.server, self.config.limits
        coroutines = [poll_viewers(http, server, channel, self._chat, limits.viewers_interval)]
        if self.config.chat:
            coroutines.append(watch_chat(http, server, channel, self._chat, limits))
        self._tasks = [asyncio.create_task(c) for c in coroutines]


async def stream(config: ClientConfig, terminal: TerminalStatus | None = None) -> int:
    return await StreamClient(config, terminal or TerminalStatus()).run()


def main(args: argparse.Namespace) -> int:
    """``strom stream`` from its parsed arguments (see :func:`config.add_arguments`)."""
    logging.basicConfig(level=logging.WARNING, format="strom stream: %(message)s")
    if args.list_devices:
        print(list_devices())
        return 0
    try:
        config = config_from_args(args)
        return asyncio.run(stream(config))
    except ClientError as exc:
        # The message may quote the server (a refusal's description): printable only.
        print(f"strom stream: {clean_text(exc, 1000)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # where signal handlers are not available (Windows)
        return 0
