"""The broadcast side of ``strom stream --gui`` (see :mod:`strom.client.gui`): the
terminal client's :class:`~strom.client.app.StreamClient` run in a thread with its own
event loop, and the bounded, locked hand-overs the Tk window reads without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable

import av

from strom.client.app import StreamClient
from strom.client.config import ClientConfig, ClientError
from strom.client.status import ChatLines, StatusSnapshot, TerminalStatus, clean_text

log = logging.getLogger(__name__)

#: messages kept for the window (it shows the newest)
MAX_MESSAGES = 20


class LatestPicture:
    """The newest picture sent: :meth:`offer` from the video thread, :meth:`take` from
    the window's. Only one is ever held, so a busy window never holds up capture."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None

    def offer(self, frame: av.VideoFrame) -> None:
        with self._lock:
            self._frame = frame

    def take(self) -> av.VideoFrame | None:
        with self._lock:
            frame, self._frame = self._frame, None
        return frame


class WindowStatus:
    """The client's :class:`~strom.client.app.StatusView` for the window: written on the
    broadcast's thread, read on the window's, under one lock; bounded."""

    stop_hint = "Stop ends it"

    def __init__(self, log_to: TerminalStatus | None = None) -> None:
        self._lock = threading.Lock()
        self._snapshot: StatusSnapshot | None = None
        self._chat: list[str] = []
        self._messages: deque[str] = deque(maxlen=MAX_MESSAGES)
        self._log = log_to

    def draw(self, snapshot: StatusSnapshot, chat: ChatLines | None) -> None:
        # ChatLines are already cleaned of control characters (see status.py).
        lines = [f"{line.user}: {line.text}" for line in chat.lines] if chat else []
        with self._lock:
            self._snapshot = snapshot
            self._chat = lines
        self._write_log(lambda out: out.draw(snapshot, chat))
        if chat is not None:
            chat.fresh.clear()  # (after the log has printed them)

    def message(self, text: str) -> None:
        with self._lock:
            self._messages.append(clean_text(text, 500))
        self._write_log(lambda out: out.message(text))

    def _write_log(self, write: Callable[[TerminalStatus], None]) -> None:
        """The log is a courtesy: a closed or missing standard output (``pythonw``, a
        launcher that closed it) ends the log, never the broadcast."""
        if self._log is None:
            return
        try:
            write(self._log)
        except (OSError, ValueError) as exc:
            self._log = None
            log.info("the status log on standard output ended: %s", exc)

    def read(self) -> tuple[StatusSnapshot | None, list[str], list[str]]:
        """The newest snapshot, the chat lines, and the messages since the last read."""
        with self._lock:
            messages = list(self._messages)
            self._messages.clear()
            return self._snapshot, list(self._chat), messages

    def clear(self) -> None:
        with self._lock:
            self._snapshot = None
            self._chat = []


class BroadcastThread:
    """One broadcast in a thread of its own: :meth:`start`, :meth:`stop`, then
    :attr:`done` (polled by the window) once the goodbye is sent and the devices closed."""

    def __init__(self, config: ClientConfig, status: WindowStatus, preview: LatestPicture) -> None:
        self.config = config
        self.status = status
        self.preview = preview
        self.done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: StreamClient | None = None
        self._stop_asked = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="strom-broadcast", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask for the end (from any thread); the goodbye takes a moment."""
        with self._lock:
            self._stop_asked = True
            loop, client = self._loop, self._client
        if loop is not None and client is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                loop.call_soon_threadsafe(client.stop)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except ClientError as exc:
            self.status.message(f"stopped: {exc}")
        except Exception as exc:  # a bug: shown in the window, the traceback in the log
            log.exception("the broadcast failed")
            self.status.message(f"stopped by an error: {exc}")
        finally:
            self.done.set()

    async def _main(self) -> None:
        client = StreamClient(self.config, self.status, self.preview)
        with self._lock:
            self._loop, self._client = asyncio.get_running_loop(), client
            stop_now = self._stop_asked
        if stop_now:  # Stop was pressed before the loop was there to hear it
            client.stop()
        await client.run()
