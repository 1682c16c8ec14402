"""A query added to every URI of an HLS playlist or a DASH manifest.

A private channel's media answers carry the viewer's access token in their query
(``?token=...``). A player resolves a playlist's relative URIs against the playlist's
URL *without* its query (RFC 3986 section 5.2), so the token is written into each URI
the playlist names: segment and part lines, ``URI="..."`` attributes (``EXT-X-MAP``,
``EXT-X-PART``, ``EXT-X-PRELOAD-HINT``, ``EXT-X-RENDITION-REPORT``: RFC 8216bis
section 4.4) and the MPD's ``SegmentTemplate@media``/``@initialization`` (ISO/IEC
23009-1 5.3.9.4). ``query`` is ``name=value`` of URL-safe characters only (the caller
makes it); nothing here escapes.
"""

from __future__ import annotations

import re

_URI_ATTRIBUTE = re.compile(rb'URI="([^"]*)"')
_MPD_ATTRIBUTE = re.compile(rb'\b(media|initialization)="([^"]*)"')


def _joined(uri: bytes, query: bytes, amp: bytes = b"&") -> bytes:
    return uri + (amp if b"?" in uri else b"?") + query


def playlist_with_query(playlist: bytes, query: str) -> bytes:
    """``playlist`` (M3U8) with ``query`` added to every URI in it."""
    q = query.encode("ascii")
    lines = []
    for line in playlist.split(b"\n"):
        if line.startswith(b"#"):
            lines.append(_URI_ATTRIBUTE.sub(lambda m: b'URI="' + _joined(m[1], q) + b'"', line))
        elif line.strip():
            cr = b"\r" if line.endswith(b"\r") else b""
            lines.append(_joined(line.rstrip(b"\r"), q) + cr)
        else:
            lines.append(line)
    return b"\n".join(lines)


def manifest_with_query(manifest: bytes, query: str) -> bytes:
    """``manifest`` (MPD) with ``query`` added to its segment templates' URIs (an XML
    attribute: a second parameter joins with ``&amp;``)."""
    q = query.encode("ascii")
    return _MPD_ATTRIBUTE.sub(lambda m: m[1] + b'="' + _joined(m[2], q, b"&amp;") + b'"', manifest)
