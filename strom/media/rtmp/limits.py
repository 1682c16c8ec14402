"""What one RTMP connection may make Strom buffer: the bounds the sans-IO session
enforces (and the defaults of the ``rtmp_*`` settings)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.media.rtmp.chunk import MIN_CHUNK_SIZE


@dataclass(frozen=True)
class RtmpLimits:
    """What one connection may make us buffer. The defaults are Strom's defaults: the
    settings (``rtmp_*``) take theirs from here.

    Until a publish is accepted, a peer has shown no stream key and only sends commands
    (a player never sends more: acknowledgements, pings, play/pause), so it gets the
    small ``preauth_*`` bounds; an accepted publish raises them to ``max_message_size``
    and ``max_pending_bytes`` for its media.
    """

    max_chunk_size: int = 1 << 20  # bound on the peer's Set Chunk Size (spec max 0x7FFFFFFF)
    min_chunk_size: int = MIN_CHUNK_SIZE  # floor on the peer's Set Chunk Size (spec min 1)
    max_message_size: int = 8 << 20  # bound on one reassembled message, publishing
    max_pending_bytes: int = 16 << 20  # unfinished messages buffered, all chunk streams
    preauth_max_message_size: int = 32 << 10  # the same two until a publish is accepted
    preauth_max_pending_bytes: int = 64 << 10
    max_chunk_streams: int = 64
    window_ack_size: int = 2_500_000  # what we announce
    out_chunk_size: int = 4096  # what we announce and use for everything we send
    max_streams: int = 16  # message streams (createStream) open at once
