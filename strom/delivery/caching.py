"""How long an HTTP cache (nginx ``proxy_cache``, Varnish, a CDN) or a browser may keep
each kind of media answer: one table, so the LL-HLS and LL-DASH routes, the recordings
and the thumbnails cannot drift apart.

The rule behind it (draft-pantos-hls-rfc8216bis section 6.2.5 and Apple's LL-HLS
guidance): an object whose URL names bytes that never change is cached for a long time;
a URL whose answer changes is cached for less than the time it takes to change. Live
media names (``/live/{channel}/{rendition}/part12.3.m4s``) carry a token unique to one
broadcast's rendition, so a new broadcast never meets a cached part of an old one.
"""

from __future__ import annotations

from enum import Enum

#: a year: what ``immutable`` objects get (RFC 8246)
_FOREVER = 365 * 86400


class AnswerKind(Enum):
    #: ``index.m3u8`` without ``_HLS_msn``: it changes with every part
    LIVE_PLAYLIST = "live playlist"
    #: ``index.m3u8?_HLS_msn=..&_HLS_part=..``: the URL names one part's playlist, asked
    #: for by every viewer at once; a cache collapses them into one request
    BLOCKING_PLAYLIST = "blocking playlist"
    #: a complete part or segment, or an init segment, of a live rendition (a
    #: preload-hinted part is answered only once complete, so it is one too)
    LIVE_MEDIA = "live media"
    #: the segment being written, sent as it grows (LL-DASH): not final until it ends
    GROWING_MEDIA = "growing media"
    #: ``index.mpd``: the live DASH manifest, changes with every segment
    LIVE_MANIFEST = "live manifest"
    #: the server's clock (DASH ``UTCTiming``)
    CLOCK = "clock"
    #: the channel is not live (404): it may go live at any moment
    OFFLINE = "offline"
    #: a refusal or failure (400, 404 of a part, 503 of a blocking wait): never stored
    REFUSAL = "refusal"
    #: a finished recording's playlist (``#EXT-X-ENDLIST``): it changes only if deleted
    VOD_PLAYLIST = "vod playlist"
    #: the playlist of a recording still being written: it grows with every segment
    RECORDING_PLAYLIST = "recording playlist"
    #: a recording's segment or init segment: written once, never rewritten
    VOD_MEDIA = "vod media"
    #: a finished recording as one MP4 (made once, on the first request)
    VOD_DOWNLOAD = "vod download"
    #: a finished recording's thumbnail
    VOD_THUMBNAIL = "vod thumbnail"
    #: a live channel's directory thumbnail: replaced every few seconds (it has an ETag)
    LIVE_THUMBNAIL = "live thumbnail"


_POLICY = {
    # No Age header comes from nginx, so a cached copy would make a player start late
    # (rfc8216bis appendix C): every cache revalidates it (ETag, a 304 is cheap).
    AnswerKind.LIVE_PLAYLIST: "no-cache",
    # Long enough for the viewers that ask a little late to be answered from the cache,
    # short enough that a new broadcast's playlist with the same numbers never meets it.
    AnswerKind.BLOCKING_PLAYLIST: "public, max-age=1",
    AnswerKind.LIVE_MEDIA: f"public, max-age={_FOREVER}, immutable",
    # A cache cannot tell a growing answer from a complete one until it ends; the
    # complete segment has its own answer (immutable) for the players that come later.
    AnswerKind.GROWING_MEDIA: "no-store",
    # Like the LL-HLS playlist: revalidated every time (an ETag makes that a 304).
    AnswerKind.LIVE_MANIFEST: "no-cache",
    AnswerKind.CLOCK: "no-store",
    # A second shields the node from players polling an offline channel in a loop.
    AnswerKind.OFFLINE: "public, max-age=1",
    AnswerKind.REFUSAL: "no-store",
    # Not immutable: the streamer may delete it, and the cache should forget it then.
    AnswerKind.VOD_PLAYLIST: "public, max-age=3600",
    AnswerKind.RECORDING_PLAYLIST: "public, max-age=1",
    AnswerKind.VOD_MEDIA: f"public, max-age={_FOREVER}, immutable",
    AnswerKind.VOD_DOWNLOAD: "public, max-age=86400",
    AnswerKind.VOD_THUMBNAIL: "public, max-age=86400",
    AnswerKind.LIVE_THUMBNAIL: "public, max-age=20",
}


def cache_control(kind: AnswerKind) -> str:
    """The ``Cache-Control`` value for an answer of ``kind``."""
    return _POLICY[kind]


def cache_headers(kind: AnswerKind) -> dict[str, str]:
    return {"Cache-Control": _POLICY[kind]}
