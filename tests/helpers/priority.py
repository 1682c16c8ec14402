"""Nothing the tests start may take real-time or raised CPU priority.

Chromium run as root gives some of its threads real-time scheduling; one of them
spinning starved a whole test machine (load 52, a SIGKILL not delivered until the
threads were made ordinary again). Dropping CAP_SYS_NICE from this process's bounding
set takes it from every program started after: their requests for real-time or a
negative nice fail, as they do for any ordinary user, and each goes on at normal
priority."""

from __future__ import annotations

import ctypes
import sys

_PR_CAPBSET_DROP = 24
_CAP_SYS_NICE = 23


def no_raised_priority_for_children() -> None:
    """Drop CAP_SYS_NICE from the bounding set (Linux; without it, or where it is not
    held, nothing changes)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0)
