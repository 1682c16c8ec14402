"""The client's uplink side, sans-IO: the bounded send queue and the reconnect delays."""

from __future__ import annotations

from strom.client.encode import Encoded
from strom.client.publish import Backoff, SendQueue
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind

VIDEO = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.H264, 1000, b"", "avc1.64001f", 320, 240)
AUDIO = Track(AUDIO_TRACK_ID, TrackKind.AUDIO, Codec.AAC, 1000, b"", "mp4a.40.2")


def video(ms: int, key: bool = False, size: int = 100) -> Encoded:
    return Encoded(VIDEO, Frame(VIDEO_TRACK_ID, ms, ms, key, bytes(size)))


def audio(ms: int) -> Encoded:
    return Encoded(AUDIO, Frame(AUDIO_TRACK_ID, ms, ms, True, bytes(10)))


def drain(queue: SendQueue) -> list[Encoded]:
    out = []
    while (item := queue.get()) is not None:
        out.append(item)
    return out


def test_backoff_grows_to_a_ceiling_and_resets() -> None:
    backoff = Backoff(0.5, 2.0, 4.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.attempts == 5
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_queue_starts_at_a_keyframe() -> None:
    queue = SendQueue(max_seconds=2.0, max_bytes=1 << 20)
    assert queue.put(audio(0))  # accepted but not queued: no picture yet
    assert not queue.put(video(0))  # a delta frame cannot start a stream
    assert queue.put(video(33, key=True))
    assert queue.put(audio(40))
    assert queue.put(video(66))
    assert [i.frame.dts for i in drain(queue)] == [33, 40, 66]
    assert queue.dropped == 1


def test_slow_uplink_drops_to_the_next_keyframe() -> None:
    queue = SendQueue(max_seconds=1.0, max_bytes=1 << 20)
    assert queue.put(video(0, key=True))
    for ms in range(33, 1000, 33):
        assert queue.put(video(ms))
    # More than a second waits for the socket: everything queued goes, and the stream
    # resumes at the next keyframe (the caller asks the encoder for one at once).
    assert not queue.put(video(1034))
    assert len(queue) == 0
    assert queue.bytes == 0
    assert queue.dropped == 32
    assert not queue.put(video(1067))
    assert queue.put(video(1100, key=True))
    assert [i.frame.dts for i in drain(queue)] == [1100]
    assert queue.dropped == 33


def test_queue_is_bounded_in_bytes_too() -> None:
    queue = SendQueue(max_seconds=10.0, max_bytes=1000)
    assert queue.put(video(0, key=True, size=600))
    assert not queue.put(video(33, size=600))
    assert len(queue) == 0


def test_restart_waits_for_a_keyframe_again() -> None:
    queue = SendQueue(max_seconds=2.0, max_bytes=1 << 20)
    queue.put(video(0, key=True))
    queue.restart()
    assert len(queue) == 0
    assert not queue.put(video(33))
    assert queue.put(video(66, key=True))
