"""What the streamer sees in the terminal while live: a status line (state, uptime, sent
frame rate and bitrate, dropped frames, viewers) and the last chat lines.

The viewer count comes from the site's API, the chat from the channel's chat socket as a
read-only guest (see ``docs/chat-protocol.md``). Chat text is someone else's input: every
control character is removed before it reaches the terminal, so nobody can move the
cursor or recolour the streamer's screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from strom.client.config import ClientLimits, ServerAddress
from strom.client.publish import Backoff

log = logging.getLogger(__name__)

#: longest chat line shown (characters), and longest user name
MAX_CHAT_TEXT = 200
MAX_CHAT_USER = 32
#: biggest chat socket frame read (a welcome carries the history), and API answer
MAX_CHAT_FRAME = 1 << 20
MAX_API_BYTES = 64 << 10
#: how often a terminal that is not a TTY (a log file) gets a status line, in seconds
PLAIN_INTERVAL = 5.0

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean_text(text: object, limit: int) -> str:
    """Printable text: control and bidi-override characters become spaces; cut at ``limit``."""
    cleaned = _CONTROL.sub(" ", str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def format_uptime(seconds: float) -> str:
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    state: str  # connecting, live, reconnecting, stopped
    uptime: float = 0.0
    fps: float = 0.0
    kbps: float = 0.0
    dropped: int = 0
    late: int = 0
    viewers: int | None = None
    channel: str = ""
    retry_in: float = 0.0
    error: str = ""


def render_status(s: StatusSnapshot) -> str:
    """One line, e.g. ``● LIVE 0:01:02 · 30.0 fps · 2,480 kbit/s · dropped 0 · 17 viewers``."""
    if s.state == "live":
        head = f"● LIVE {format_uptime(s.uptime)}"
    elif s.state == "reconnecting":
        why = f" ({clean_text(s.error, 200)})" if s.error else ""
        head = f"↻ RECONNECTING in {max(0.0, s.retry_in):.0f} s{why}"
    elif s.state == "connecting":
        head = "… CONNECTING"
    else:
        head = "■ STOPPED"
    parts = [head, f"{s.fps:.1f} fps", f"{s.kbps:,.0f} kbit/s", f"dropped {s.dropped}"]
    # What the server said (the channel name, an error) is shown as text, never as
    # terminal control sequences.
    if s.late:
        parts.append(f"late {s.late}")
    if s.viewers is not None:
        parts.append(f"{s.viewers} viewer{'' if s.viewers == 1 else 's'}")
    if s.channel:
        parts.append(clean_text(s.channel, 64))
    return " · ".join(parts)


class RateMeter:
    """Per-second rates from ever-growing counters; time is passed in."""

    def __init__(self) -> None:
        self._last: tuple[float, int, int] | None = None
        self.fps = 0.0
        self.kbps = 0.0

    def update(self, now: float, frames: int, sent_bytes: int) -> None:
        if self._last is not None:
            then, old_frames, old_bytes = self._last
            elapsed = now - then
            if elapsed > 0:
                self.fps = (frames - old_frames) / elapsed
                self.kbps = (sent_bytes - old_bytes) * 8 / 1000 / elapsed
        self._last = (now, frames, sent_bytes)


@dataclass(frozen=True, slots=True)
class ChatLine:
    id: int
    user: str
    text: str


class ChatLines:
    """The last chat messages, kept in step with deletions, clears and bans."""

    def __init__(self, keep: int) -> None:
        self.lines: deque[ChatLine] = deque(maxlen=keep)
        self.viewers: int | None = None
        #: lines not yet printed (for a terminal that is not a TTY)
        self.fresh: list[ChatLine] = []

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message":
            msg_id = event.get("id")
            line = ChatLine(
                msg_id if isinstance(msg_id, int) else -1,
                clean_text(event.get("user", "?"), MAX_CHAT_USER),
                clean_text(event.get("text", ""), MAX_CHAT_TEXT),
            )
            self.lines.append(line)
            self.fresh.append(line)
        elif kind == "delete":
            self._remove(lambda line: line.id == event.get("id"))
        elif kind in ("ban", "timeout"):
            user = clean_text(event.get("user", ""), MAX_CHAT_USER)
            self._remove(lambda line: line.user == user)
        elif kind == "clear":
            self.lines.clear()
        elif kind == "viewers" and isinstance(event.get("count"), int):
            self.viewers = event["count"]

    def _remove(self, match: Callable[[ChatLine], bool]) -> None:
        kept = [line for line in self.lines if not match(line)]
        self.lines.clear()
        self.lines.extend(kept)

    def welcome(self, message: dict[str, Any]) -> None:
        self.lines.clear()
        history = message.get("history")
        for event in history if isinstance(history, list) else []:
            if isinstance(event, dict):
                self.apply(event)
        self.fresh.clear()  # history is shown in place, not printed again
        if isinstance(message.get("viewers"), int):
            self.viewers = message["viewers"]


async def watch_chat(
    http: aiohttp.ClientSession, server: ServerAddress, channel: str, chat: ChatLines,
    limits: ClientLimits,
) -> None:  # fmt: skip
    """Read the channel's chat as a guest, forever; reconnect after a loss."""
    url = server.websocket(f"/chat/{channel}/ws")
    backoff = Backoff(limits.backoff_first, limits.backoff_factor, limits.backoff_max * 2)
    while True:
        try:
            async with http.ws_connect(url, max_msg_size=MAX_CHAT_FRAME, heartbeat=30) as ws:
                async for msg in ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    data = json.loads(msg.data)
                    if not isinstance(data, dict):
                        continue
                    if data.get("type") == "welcome":
                        chat.welcome(data)
                        backoff.reset()
                    elif data.get("type") == "batch" and isinstance(data.get("events"), list):
                        for event in data["events"]:
                            if isinstance(event, dict):
                                chat.apply(event)
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as exc:
            log.debug("chat: %s", exc)
        await asyncio.sleep(backoff.next_delay())


async def fetch_json(http: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    """(HTTP status, JSON body or None) of a GET, reading at most :data:`MAX_API_BYTES`."""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        if resp.status != 200:
            return resp.status, None
        body = await resp.content.read(MAX_API_BYTES + 1)
        if len(body) > MAX_API_BYTES:
            raise ValueError(f"{url}: the answer is too large")
        return resp.status, json.loads(body)


async def poll_viewers(
    http: aiohttp.ClientSession, server: ServerAddress, channel: str, chat: ChatLines,
    interval: float,
) -> None:  # fmt: skip
    """The viewer count from ``/api/v1/channels/{channel}``, every ``interval`` seconds."""
    url = server.api(f"/api/v1/channels/{channel}")
    while True:
        try:
            _, view = await fetch_json(http, url)
            if isinstance(view, dict) and isinstance(view.get("viewers"), int):
                chat.viewers = view["viewers"]
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as exc:
            log.debug("viewer count: %s", exc)
        await asyncio.sleep(interval)


class TerminalStatus:
    """Draws the status: in place on a TTY (the line and the chat under it, redrawn every
    second), as plain appended lines otherwise."""

    stop_hint = "Ctrl-C to stop"

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._drawn = 0
        self._last_plain = 0.0
        self._last_key: tuple[object, ...] = ()

    def draw(self, snapshot: StatusSnapshot, chat: ChatLines | None) -> None:
        line = render_status(snapshot)
        if not self.tty:
            now = time.monotonic()
            if chat is not None:
                for msg in chat.fresh:
                    self.out.write(f"[chat] {msg.user}: {msg.text}\n")
                chat.fresh.clear()
            # A line when something a streamer cares about changed, and now and then.
            key = (
                snapshot.state, snapshot.viewers, snapshot.channel, snapshot.error,
                snapshot.dropped > 0,  # the first dropped frames: the uplink is too slow
            )  # fmt: skip
            if key != self._last_key or now - self._last_plain >= PLAIN_INTERVAL:
                self._last_plain, self._last_key = now, key
                self.out.write(line + "\n")
            self.out.flush()
            return
        rows = [line]
        if chat is not None:
            chat.fresh.clear()
            rows += [f"  {msg.user}: {msg.text}" for msg in chat.lines] or ["  (no chat yet)"]
        # Back to where the last drawing started, clear down, draw again.
        prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.out.write(prefix + "\n".join(rows) + "\n")
        self.out.flush()
        self._drawn = len(rows)

    def message(self, text: str) -> None:
        """A line that stays (above the status on a TTY)."""
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()
