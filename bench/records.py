"""What a load-generator client saw, and how it reads: the records every viewer kind (and
the chat sockets) fill in, shared by the clients and the statistics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from array import array
from dataclasses import dataclass, field


@dataclass(slots=True)
class PartRecord:
    msn: int
    index: int
    #: when the playlist that first listed it arrived, and when its last byte arrived
    listed: float
    arrived: float
    #: video timestamps (ms) of its first and last frame; -1 without video
    first_ts: int
    last_ts: int
    video_frames: int


@dataclass(slots=True)
class ViewerRecord:
    """What one viewer saw. Times are ``time.monotonic()``."""

    kind: str
    index: int
    channel: str
    slow: bool = False
    #: a probe reads every frame as it comes (exact arrival times); the others read in
    #: bulk once playing (see set_lowat)
    probe: bool = True
    t_start: float = 0.0  # connect started
    t_connected: float = 0.0  # upgrade / play accepted / first playlist
    t_first_key: float = 0.0  # the first keyframe had fully arrived
    first_key_ts: int = -1
    #: every video frame: timestamp (ms, the publisher's) and arrival time
    ts: array[int] = field(default_factory=lambda: array("q"))
    t: array[float] = field(default_factory=lambda: array("d"))
    audio: int = 0
    bytes: int = 0
    unparsed: int = 0
    ended: bool = False
    error: str = ""
    t_end: float = 0.0
    parts: list[PartRecord] = field(default_factory=list)
    #: HLS: playlist requests, and how long blocking ones were held by the server
    #: (DASH: MPD requests)
    playlist_requests: int = 0
    #: DASH: segment and init requests
    media_requests: int = 0

    def video(self, ts: int, now: float, keyframe: bool) -> None:
        if self.first_key_ts < 0:
            if not keyframe:
                return  # a player cannot start before a keyframe: not delivered yet
            self.first_key_ts = ts
            self.t_first_key = now
        self.ts.append(ts)
        self.t.append(now)


def set_lowat(transport: asyncio.BaseTransport, nbytes: int) -> None:
    """Let the kernel wake this socket's reader only once ``nbytes`` are waiting
    (SO_RCVLOWAT, honoured by epoll for TCP): a *bulk* viewer then costs the generator a
    few wake-ups a second instead of one per frame, at the price of arrival times that
    are late by up to that much data (probe viewers keep exact ones)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, nbytes)
