"""``strom stream --gui``: the one-window streamer (fields, preview, Go live / Stop, status,
viewers and the last chat lines), a front end over the terminal client's own parts.

Threads: Tk wants the main thread and must only be called from it; the client is asyncio
code. So the window (:mod:`strom.client.gui_window`) owns the main thread, and each
broadcast runs the very same :class:`~strom.client.app.StreamClient` as ``strom stream``
in a thread with its own event loop (:mod:`strom.client.gui_broadcast`; capture and
encoding keep their own threads, as always). They meet in three small, bounded places,
none of which blocks:

* the window asks the broadcast to stop with ``loop.call_soon_threadsafe``;
* ``WindowStatus`` keeps the newest status snapshot, the last chat lines and the last few
  messages, which the window polls with ``after()`` (five times a second);
* ``LatestPicture`` keeps the newest picture sent, which the window scales and shows ten
  times a second.

(``--preview`` does the opposite, Tk in a child process, because there the event loop
already owns the main thread; here the window is the application, and one process is
simpler to start, stop and test.)

The status also goes to standard output, as the terminal client writes it when its output
is not a terminal: a log of what happened, for whoever started the window from a shell.
"""

from __future__ import annotations

import argparse
import sys

from strom.client.config import ClientError
from strom.client.preview import check_window
from strom.client.status import clean_text


def main(args: argparse.Namespace) -> int:
    """``strom stream --gui``: the window, prefilled from the remembered fields and the
    command line. Without a display or Tk: one line saying what to install."""
    try:
        check_window("--gui", "use strom stream without --gui, in a terminal")
        from strom.client.gui_window import run_window  # noqa: PLC0415 - needs tkinter

        return run_window(args)
    except ClientError as exc:
        print(f"strom stream: {clean_text(exc, 1000)}", file=sys.stderr)
        return 1
