"""Strom's exception tree.

::

    StromError
     ├── ProtocolError              the peer sent something we cannot accept
     │    ├── UnsupportedMedia      well-formed, in a codec or container variant not taken
     │    ├── AmfError              malformed AMF0/AMF3 value
     │    ├── RtmpError             RTMP handshake / chunk stream / command violation
     │    ├── FlvError              malformed FLV audio/video tag payload
     │    └── CodecError            malformed codec configuration (avcC, AudioSpecificConfig)
     ├── LimitExceeded              the peer is within the protocol but beyond a configured bound
     └── LocalProtocolError         we were asked to do something the protocol forbids (our bug)

Protocol code raises these; each network adapter translates them, at one boundary, into a
close the peer can read (RTMP ``_error``/``onStatus``, WebSocket close code, HTTP status).
"""

from __future__ import annotations


class StromError(Exception):
    """Root of every error Strom raises on purpose."""


class ProtocolError(StromError):
    """The remote peer violated a protocol or container format."""


class UnsupportedMedia(ProtocolError):
    """Well-formed media in a codec or container variant Strom does not take (HTTP 415,
    WebSocket close 1003), as opposed to corrupt media (400)."""


class AmfError(ProtocolError):
    """Malformed or unsupported AMF data."""


class RtmpError(ProtocolError):
    """RTMP handshake, chunk stream or command violation."""


class FlvError(ProtocolError):
    """Malformed FLV audio/video tag payload."""


class CodecError(ProtocolError):
    """Malformed codec configuration record."""


class LimitExceeded(ProtocolError):
    """The peer stayed within the protocol but beyond a configured limit."""


class LocalProtocolError(StromError):
    """Strom itself tried to do something the protocol forbids."""
