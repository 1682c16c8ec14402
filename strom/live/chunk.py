"""The unit the hub fans out: one CMAF chunk, and its deliveries' wire forms.

A :class:`Chunk` is muxed once and the same object reaches every subscriber. A delivery
whose wire framing is the same for all its viewers (a server-to-client WebSocket frame,
RTMP messages at the server's chunk size) asks the chunk for it with
:meth:`Chunk.encoded`: the first viewer pays for the framing, every other viewer of every
delivery reuses the bytes. The hub knows no delivery: an encoder is any hashable
callable, and the chunk keeps one result per encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from strom.media.model import Frame, Track


class ChunkEncoder(Protocol):
    """How one delivery puts a chunk on its wire: ``encoder(chunk) -> bytes``.

    Hashable, and two equal encoders make the same bytes: the result is cached on the
    chunk under the encoder. A module-level function or a frozen dataclass with
    ``__call__`` qualifies. Deliveries use a bounded set of encoders (a chunk keeps one
    result per encoder for as long as the GOP cache holds it).
    """

    def __call__(self, chunk: Chunk, /) -> bytes: ...

    def __hash__(self) -> int: ...


@dataclass(slots=True, eq=False)
class Chunk:
    """One CMAF chunk, one ``moof`` + ``mdat``: a video frame with the audio frames since
    the previous one (or audio frames alone, in an audio-only stream or a video stall).

    The same object reaches every subscriber; deliveries cache their own framing of it
    in :attr:`encodings` (see :meth:`encoded`), so that is done once per chunk, not once
    per viewer.
    """

    data: bytes
    #: the track the chunk is timed by: video's when the chunk has a video frame
    track: Track
    #: the frames inside, in order; empty for chunks relayed without their frames
    frames: tuple[tuple[Track, Frame], ...]
    #: True when a viewer can start decoding here (video keyframe; audio in audio-only).
    keyframe: bool
    #: decode time in seconds of the chunk's (last) frame of :attr:`track`, as muxed
    time: float
    #: wall-clock time (UNIX seconds) the frame reached the server
    received: float
    #: decode time in seconds where that frame ends, as muxed: the next chunk's
    #: :attr:`time` while the publisher's clock runs on (0.0 when unknown: relayed chunks)
    end: float = 0.0
    #: the deliveries' wire forms of this chunk, by encoder (filled by :meth:`encoded`)
    encodings: dict[ChunkEncoder, bytes] = field(default_factory=dict, repr=False)

    @property
    def frame(self) -> Frame | None:
        """The frame of :attr:`track`: the video frame of a coalesced chunk, else the last."""
        for track, frame in reversed(self.frames):
            if track is self.track:
                return frame
        return None

    def encoded(self, encoder: ChunkEncoder) -> bytes:
        """``encoder(self)``, made by the first viewer to ask and shared by every other."""
        data = self.encodings.get(encoder)
        if data is None:
            data = self.encodings[encoder] = encoder(self)
        return data
