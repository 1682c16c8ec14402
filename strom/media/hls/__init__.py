"""Low-Latency HLS (draft-pantos-hls-rfc8216bis) from CMAF chunks, sans-IO.

:class:`LiveHlsStream` turns the hub's chunk stream into parts, segments and a media
playlist that LL-HLS clients (hls.js, Safari) and plain HLS clients (ffmpeg) both play.
"""

from strom.media.hls.live import LiveHlsStream
from strom.media.hls.playlist import HlsName, ResourceKind, part_uri, segment_uri
from strom.media.hls.settings import HlsSettings

__all__ = [
    "HlsName",
    "HlsSettings",
    "LiveHlsStream",
    "ResourceKind",
    "part_uri",
    "segment_uri",
]
