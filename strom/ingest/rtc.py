"""Where Strom meets aiortc: encoded frames out of a receiver, keyframe requests, and
which addresses ICE offers. The one module that touches aiortc's internals.

**Encoded frames.** aiortc's :class:`~aiortc.RTCRtpReceiver` reassembles each frame in
its jitter buffer (RTP depacketized: Annex B for H.264, the packet for Opus, the frame
for VP8) and hands it to a decoder thread through a private queue; its public track only
yields decoded pictures and samples. Strom passes media through without decoding (a
decode and re-encode per publisher would cost a core), so :func:`tap_encoded_frames`
puts a :class:`_FrameTap` where that queue was, before the receiver starts: the frames
the receiver would have decoded go to a callback instead, on the event loop, in the
order they were reassembled, with the RTP timestamp already unwrapped (aiortc's
``TimestampMapper``: 0 at the first frame, in the codec's clock). The receiver's RTCP
(receiver reports, NACKs, REMB, its own PLIs on loss) is unchanged. The decoder thread
aiortc starts regardless waits on the tap's empty queue until the receiver stops: idle,
one per receiver. aiortc 1.9 to 1.16 keep the queue under this name; if a future aiortc
renames it, :func:`tap_encoded_frames` fails loudly at the first publish rather than
decoding silently.

**Keyframes.** A browser's encoder sends a keyframe at the start and then only when asked
(RTCP PLI, RFC 4585 6.3.1), but the hub cuts segments at keyframes, and a viewer joining
starts at one: :func:`request_keyframe` asks.

**Addresses.** aioice offers every interface's address except loopback, and aiortc adds a
public STUN server unless told otherwise. :func:`ice_configuration` names the STUN
servers (none by default: a server has a reachable address, or an operator names one);
:func:`offer_addresses` makes ICE offer only the given addresses (loopback in tests).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCRtpReceiver

#: what a tapped receiver hands over: (the codec's MIME type, data, unwrapped timestamp)
FrameCallback = Callable[[str, bytes, int], None]

#: the receiver's private decoder queue, as Python mangles its name
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"


class _FrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: frames go to the callback, and only the
    end marker (``None``) reaches the idle decoder thread, which then exits."""

    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__()
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        codec, frame = item
        self._on_frame(codec.mimeType.lower(), frame.data, frame.timestamp)


def tap_encoded_frames(receiver: RTCRtpReceiver, on_frame: FrameCallback) -> None:
    """Route the frames ``receiver`` reassembles to ``on_frame`` instead of its decoder.
    Call before the receiver starts (right after ``addTransceiver``)."""
    if not isinstance(getattr(receiver, _DECODER_QUEUE, None), queue.Queue):
        raise TypeError("this aiortc version keeps no decoder queue to take frames from")
    setattr(receiver, _DECODER_QUEUE, _FrameTap(on_frame))


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for every source the receiver heard from lately."""
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)


def ice_configuration(stun_servers: Sequence[str]) -> RTCConfiguration:
    """An RTCConfiguration with exactly these STUN servers (aiortc's default is Google's)."""
    return RTCConfiguration(iceServers=[RTCIceServer(url) for url in stun_servers])


_all_addresses = aioice.ice.get_host_addresses


def offer_addresses(addresses: Sequence[str]) -> None:
    """Make ICE in this process offer only ``addresses`` as host candidates (empty: every
    interface but loopback, aioice's default). aioice has no per-connection option for it,
    so this replaces its address lookup for the whole process."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if not chosen:
            return _all_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
