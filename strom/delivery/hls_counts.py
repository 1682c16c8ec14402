"""What the LL-HLS delivery answered, for ``/metrics``: requests by kind, the media bytes
sent, and how long blocking requests waited for their part.

Counted where the request is answered, an addition or two per request (no allocation
beyond the float of a wait), and read at scrape time.
"""

from __future__ import annotations

from strom.observe.histogram import WAIT_BUCKETS, Histogram

#: milliseconds, from a lone viewer to thousands woken by one part
WAKE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)

#: what an LL-HLS request asks for: the playlist now, a blocking playlist reload
#: (``_HLS_msn``, rfc8216bis section 6.2.5.2), or a resource of the rendition
REQUEST_KINDS = ("playlist", "blocking_playlist", "init", "part", "segment")


class HlsCounts:
    """Since the server started, over every channel."""

    __slots__ = ("answered_after_part", "blocked", "bytes_sent", "requests")

    def __init__(self) -> None:
        #: requests by kind (a key of :data:`REQUEST_KINDS`), answered or refused
        self.requests = dict.fromkeys(REQUEST_KINDS, 0)
        #: bytes of parts, segments and init segments answered (playlists not counted)
        self.bytes_sent = 0
        #: seconds each blocking request (playlist reload, preload-hinted part) waited,
        #: whether its part came, was there already, or never came (503)
        self.blocked = Histogram(WAIT_BUCKETS)
        #: seconds from the chunk that completed a part (and woke the requests blocked
        #: on it) to each woken request's answer being made: the blocking-reload
        #: promptness (rfc8216bis 6.2.5.2: answer as soon as the part is there)
        self.answered_after_part = Histogram(WAKE_BUCKETS)

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "bytes_sent": self.bytes_sent,
            "blocked_seconds": self.blocked.as_dict(),
            "answered_after_part_seconds": self.answered_after_part.as_dict(),
        }
