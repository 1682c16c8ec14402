"""The client's encoders: H.264 that a decoder plays, keyframes only where they belong
(and at once when asked for, after a reconnect), AAC on a steady clock."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av

from strom.client.capture import TEST_TONE, Compositor
from strom.client.config import Size
from strom.client.encode import AudioEncoder, Encoded, VideoEncoder, VideoSettings
from strom.media.model import Codec


def pattern(size: str, count: int) -> list[av.VideoFrame]:
    with av.open(f"testsrc2=size={size}:rate=30", format="lavfi") as src:
        frames = []
        for frame in src.decode(video=0):
            assert isinstance(frame, av.VideoFrame)
            frames.append(frame)
            if len(frames) == count:
                return frames
    raise AssertionError("short source")


def decode(config: bytes, items: list[Encoded]) -> int:
    """Frames a real H.264 decoder gets out of ``items`` (AVCC with the avcC record)."""
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = config
    decoded = 0
    for item in items:
        packet = av.Packet(item.frame.data)
        packet.pts, packet.dts = item.frame.pts, item.frame.dts
        packet.time_base = Fraction(1, 1000)
        decoded += len(ctx.decode(packet))
    decoded += len(ctx.decode(None))
    return decoded


def test_h264_decodes_with_keyframes_on_schedule_and_on_request() -> None:
    encoder = VideoEncoder(VideoSettings(320, 240, 30, bitrate=500, keyframe_seconds=1.0))
    track = encoder.track
    assert track.codec is Codec.H264
    assert (track.width, track.height) == (320, 240)
    assert track.codec_string.startswith("avc1.")
    compositor = Compositor(Size(320, 240))
    out: list[Encoded] = []
    # lavfi frames say "I" (pict_type): the encoder must not turn each into a keyframe.
    for n, frame in enumerate(pattern("320x240", 75)):
        if n == 45:
            encoder.request_keyframe()
        picture = compositor.compose(frame, n * 33.3)
        assert picture is not None
        out += encoder.encode(picture, round(n * 33.3))
    out += encoder.flush()
    assert len(out) == 75
    keyframes = [i for i, item in enumerate(out) if item.frame.keyframe]
    # Every second, and at once when asked (the count starts again from there).
    assert keyframes == [0, 30, 45]
    assert [item.frame.dts for item in out] == sorted({item.frame.dts for item in out})
    assert decode(track.config, out) == 75


def test_picture_in_picture_and_crop_give_the_size_sent() -> None:
    compositor = Compositor(Size(320, 240), crop=(640, 360, 100, 50))
    screen = pattern("1280x720", 1)[0]
    camera = pattern("320x240", 1)[0]
    picture = compositor.compose(screen, 0.0, camera)
    assert picture is not None
    assert (picture.width, picture.height, picture.format.name) == (320, 240, "yuv420p")


def test_aac_runs_on_the_sample_clock() -> None:
    encoder = AudioEncoder(96)
    track = encoder.track
    assert (track.codec, track.sample_rate, track.channels) == (Codec.AAC, 48_000, 2)
    out: list[Encoded] = []
    captured = 1000.0
    with av.open(TEST_TONE, format="lavfi") as src:
        for n, frame in enumerate(src.decode(audio=0)):
            assert isinstance(frame, av.AudioFrame)
            # Capture jitter in the arrival times does not bend the audio clock.
            out += encoder.encode(frame, captured + (7 if n % 2 else -5))
            captured += frame.samples * 1000 / frame.sample_rate
            if n == 50:
                break
    stamps = [item.frame.dts for item in out]
    assert len(stamps) > 40
    steps = {b - a for a, b in itertools.pairwise(stamps)}
    assert steps <= {21, 22}  # 1024 samples at 48 kHz = 21.33 ms
    assert 950 <= stamps[0] <= 1000  # anchored to the first frame's capture time
    assert encoder.resyncs == 0


def test_aac_follows_a_drifting_sound_card() -> None:
    encoder = AudioEncoder(96)
    with av.open(TEST_TONE, format="lavfi") as src:
        frames = [f for _, f in zip(range(200), src.decode(audio=0), strict=False)]
    stamps: list[int] = []
    captured = 0.0
    for frame in frames:  # a card 10 % slow: its sound arrives later and later
        assert isinstance(frame, av.AudioFrame)
        stamps += [e.frame.dts for e in encoder.encode(frame, captured)]
        captured += frame.samples * 1000 / frame.sample_rate * 1.1
    assert encoder.resyncs >= 1
    assert abs(stamps[-1] - captured) < 250  # still with the picture
    assert stamps == sorted(stamps)
    encoder = AudioEncoder(96)
    stamps, captured = [], 0.0
    for frame in frames:  # a card 10 % fast: a frame is left out now and then
        assert isinstance(frame, av.AudioFrame)
        stamps += [e.frame.dts for e in encoder.encode(frame, captured)]
        captured += frame.samples * 1000 / frame.sample_rate * 0.9
    assert encoder.resyncs >= 1
    assert abs(stamps[-1] - captured) < 250
    assert all(b > a for a, b in itertools.pairwise(stamps))
