"""Media timelines: timestamps that wrap (RTMP/FLV's 32-bit milliseconds, MPEG-TS's 33-bit
90 kHz clock), and the exact decode times and durations a muxer writes.

Publishers' timestamps are often coarser than their media: RTMP gives milliseconds, so a
30 fps picture lasts 33 or 34 ms and an AAC frame (1024 samples) 23 or 24 ms at 44.1 kHz.
Written as they come, each sample's duration misses the next sample's decode time by up
to a millisecond, and players that place samples by summing durations (VLC's MP4 demuxer
does, ISO/IEC 14496-12 8.8.8) drift from players that read ``tfdt``. :class:`SampleClock`
instead keeps one exact timeline per track: a sample starts where the previous one ended,
and the publisher's clock only re-anchors it when it moved further than rounding explains.
"""

from __future__ import annotations

from fractions import Fraction


class WrappingClock:
    """Extends ``bits``-wide timestamps across their wrap into one growing timeline.

    A timestamp more than half the range below the last one means the clock wrapped
    forwards; one more than half the range above it is a late one from before the wrap.
    """

    __slots__ = ("_epoch", "_half", "_last", "_wrap")

    def __init__(self, bits: int) -> None:
        self._wrap = 1 << bits
        self._half = 1 << (bits - 1)
        self._epoch = 0
        self._last: int | None = None

    def extend(self, timestamp: int) -> int:
        raw = timestamp & (self._wrap - 1)
        last = self._last
        if last is not None:
            if raw < last - self._half:  # wrapped forwards
                self._epoch += self._wrap
            elif raw > last + self._half:  # a late timestamp from before the last wrap
                return raw + self._epoch - self._wrap
        self._last = raw
        return raw + self._epoch


#: Picture rates a guessed frame spacing snaps to, so that durations come out exact
#: (1/30 s is 3000 ticks at 90 kHz, 1/29.97 s 3003) instead of a running average.
STANDARD_FRAME_RATES: tuple[Fraction, ...] = (
    *(Fraction(n) for n in (10, 12, 15, 20, 24, 25, 30, 48, 50, 60, 72, 90, 100, 120)),
    *(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120)),
)


class SampleClock:
    """Decode times and durations of one track's samples, in its media timescale.

    :meth:`place` takes each sample's decode time as the publisher gave it (converted to
    media ticks) and answers the decode time and duration to write. A sample on time, that
    is within half a sample of where the previous one ended, starts exactly there, so
    ``decode time + duration`` of one sample is the next one's decode time. One further off
    is a real gap, a jump or a clock restart: the timeline re-anchors at the given time.

    A sample whose duration the codec knows (AAC: 1024 samples; Opus: its TOC) gets that
    duration. A video frame's duration is unknown when it is muxed (the next frame has not
    arrived), so it is the spacing of the frames since the last anchor, snapped to a
    standard picture rate when one explains it within the source's rounding; the guess
    aims at the grid ``anchor + n * spacing``, so rounding never accumulates.
    """

    __slots__ = (
        "_anchor",
        "_anchor_source",
        "_count",
        "_duration",
        "_last",
        "_last_source",
        "_measured",
        "_rates",
        "_spacing",
        "_timescale",
        "_unit",
    )

    def __init__(self, timescale: int, *, unit: int, first_duration: int) -> None:
        """``unit``: the granularity of the publisher's timestamps in media ticks (90 for
        milliseconds at 90 kHz), i.e. how far rounding may move them; ``first_duration``:
        the spacing assumed before any is seen."""
        self._unit = max(unit, 1)
        self._timescale = timescale
        spacings = [Fraction(timescale) / rate for rate in STANDARD_FRAME_RATES]
        #: standard spacings, whole picture rates first, then NTSC's (n * 1000/1001)
        self._rates = (
            [d for d, r in zip(spacings, STANDARD_FRAME_RATES, strict=True) if r.denominator == 1],
            [d for d, r in zip(spacings, STANDARD_FRAME_RATES, strict=True) if r.denominator != 1],
        )
        #: expected sample spacing, in media ticks (a fraction for 1/29.97 s at 44.1 kHz)
        self._spacing = Fraction(max(first_duration, 1))
        self._last: int | None = None  # decode time written for the last sample
        self._last_source = 0  # its decode time as given
        self._duration = 0  # duration written for the last sample
        self._anchor = 0  # decode time of the sample the grid starts at
        self._anchor_source = 0
        self._count = 0  # samples placed since the anchor
        #: whether the spacing was seen (or stated by the codec), not just assumed
        self._measured = False

    @property
    def spacing(self) -> Fraction:
        """The sample spacing currently assumed, in media ticks."""
        return self._spacing

    def place(self, source: int, duration: int | None = None) -> tuple[int, int]:
        """``(decode time, duration)`` for the next sample, whose decode time the publisher
        gave as ``source`` media ticks; ``duration`` when the codec states it."""
        last = self._last
        if last is None:
            dts = source
            self._reanchor(dts, source)
        else:
            expected = last + self._duration
            # Half a sample of slack once the spacing is known; before, only rounding.
            slack = max(self._duration // 2, self._unit) if self._measured else self._unit
            step = source - self._last_source
            if abs(source - expected) <= slack:
                dts = expected  # on time: carry the exact timeline on
            elif not self._measured and 0 < step <= self._timescale:
                # The assumed spacing was wrong (25 or 60 fps, not 30): this step is the
                # first one seen, and the grid starts at the previous sample (a jump of
                # more than a second is no spacing).
                self._spacing = self._snap(Fraction(step), 1)
                self._anchor, self._anchor_source, self._count = last, self._last_source, 1
                dts = last + round(self._spacing)
            else:
                # A gap, a jump, or a publisher restarting its clock: re-anchor there. But
                # a repeated decode time (GStreamer's flvmux clamps a B-frame stream's
                # first negative ones to 0) must still advance (8.6.1.2), or ffmpeg's mp4
                # reader drops the sample: one tick later keeps the order.
                repeated = last >= source >= self._last_source
                dts = last + 1 if repeated else source
                self._reanchor(dts, source)
        if duration is None:
            duration = self._guess(dts, source)
        else:
            self._measured = True
            if self._spacing != duration:
                self._spacing = Fraction(duration)
        self._count += 1
        self._last, self._last_source, self._duration = dts, source, max(duration, 1)
        return dts, self._duration

    def snap_offset(self, offset: int) -> int:
        """A composition offset (presentation minus decode time) moved onto the sample grid
        when rounding explains the difference: B-frames then show on exact frame times."""
        if not offset:
            return 0
        p, q = self._spacing.numerator, self._spacing.denominator  # (ints: per frame)
        frames = _round_div(offset * q, p)
        snapped = _round_div(frames * p, q)
        return snapped if abs(offset - snapped) <= self._unit else offset

    def _reanchor(self, dts: int, source: int) -> None:
        self._anchor, self._anchor_source, self._count = dts, source, 0

    def _guess(self, dts: int, source: int) -> int:
        count = self._count
        if count:
            self._measured = True
            # Integer arithmetic first (this runs per frame): is |spacing - mean| within
            # the slack of unit / count? Only if not is a new spacing looked for.
            delta = source - self._anchor_source
            p, q = self._spacing.numerator, self._spacing.denominator
            if abs(p * count - q * delta) > self._unit * q:
                self._spacing = self._snap(Fraction(delta, count), count)
        if self._spacing <= 0:
            self._spacing = Fraction(1)
        p, q = self._spacing.numerator, self._spacing.denominator
        return max(self._anchor + _round_div(p * (count + 1), q) - dts, 1)

    def _snap(self, mean: Fraction, count: int) -> Fraction:
        """The spacing that explains a mean of ``count`` spacings: the current one if it
        still does, else the nearest standard picture rate's (whole rates first: at
        millisecond precision 1/30 s and 1/29.97 s look alike at first), else the mean."""
        # The given times are each off by up to one unit of rounding, so the mean of
        # `count` spacings is off by up to unit / count.
        slack = Fraction(self._unit, count)
        if abs(self._spacing - mean) <= slack and self._measured:
            return self._spacing
        for rates in self._rates:
            near = [rate for rate in rates if abs(rate - mean) <= slack]
            if near:
                return min(near, key=lambda rate: abs(rate - mean))
        return mean


def _round_div(a: int, b: int) -> int:
    """``a / b`` rounded to the nearest integer (halves up), for ``b > 0``."""
    return (2 * a + b) // (2 * b)
