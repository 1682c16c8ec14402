"""A live LL-HLS rendition built from CMAF chunks: parts, segments, window, blocking state.

The hub muxes every frame once into a CMAF chunk (one ``moof``+``mdat``).
:class:`LiveHlsStream` groups those same ``bytes`` into Partial Segments (about
``part_target`` seconds) and Media Segments (one GOP, at least ``min_segment`` seconds),
keeps a bounded window of them and renders the media playlist. Nothing here reads a clock:
chunk times and wall-clock times are passed in. Section numbers are those of
draft-pantos-hls-rfc8216bis ("rfc8216bis").
"""

from __future__ import annotations

import math
import re
from collections import deque

from strom.errors import LimitExceeded, LocalProtocolError
from strom.media.hls.playlist import (
    TICKS_PER_SECOND,
    HlsName,
    PartRecord,
    PlaylistHeader,
    ResourceKind,
    SegmentRecord,
    TimelineRun,
    init_uri,
    part_uri,
    render,
)
from strom.media.hls.settings import (
    MAX_SPACING_SHARE,
    PART_RETENTION_TARGET_DURATIONS,
    SPACING_SAMPLES,
    HlsSettings,
)

_SEGMENT_NAME = re.compile(r"seg(\d{1,12})\.m4s")
_PART_NAME = re.compile(r"part(\d{1,12})\.(\d{1,6})\.m4s")


def _ticks(seconds: float) -> int:
    return round(seconds * TICKS_PER_SECOND)


def _end_ticks(time: float, end: float | None) -> int | None:
    return _ticks(end) if end is not None and end > time else None


class LiveHlsStream:
    """Parts, segments and the LL-HLS media playlist of one live rendition.

    Feed it with :meth:`add_chunk` (and :meth:`set_init`, :meth:`discontinuity`,
    :meth:`end`); read it with :meth:`playlist`, :meth:`segment`, :meth:`part` and
    :meth:`init_segment`. :attr:`revision` increases whenever any of those answers may
    have changed: an async layer waits on it, then asks :meth:`has`, :meth:`pending` and
    :meth:`too_far_ahead` to answer blocking requests (6.2.5.2, 6.2.6).
    """

    def __init__(
        self, settings: HlsSettings | None = None, uri_prefix: str = "", first_msn: int = 0
    ) -> None:
        """``uri_prefix`` goes before every URI in the playlist (a directory of this
        rendition's own); ``first_msn`` is the first segment's Media Sequence Number: a
        new broadcast on a channel goes on from the last one's, so even a blocking
        reload's URL (``?_HLS_msn=..``) never names a playlist of an earlier broadcast."""
        self.settings = settings or HlsSettings()
        self.uri_prefix = uri_prefix
        s = self.settings
        self._part_target = _ticks(s.part_target)
        self._min_segment = _ticks(s.min_segment)
        self._max_segment = _ticks(s.max_segment)
        self._max_spacing = int(self._part_target * MAX_SPACING_SHARE)
        stem, dot, suffix = s.init_uri.rpartition(".")
        self._init_template = (stem, f".{suffix}") if dot else (suffix, "")
        self._init_name = re.compile(
            re.escape(self._init_template[0]) + r"-(\d{1,9})" + re.escape(self._init_template[1])
        )

        self._done: deque[SegmentRecord] = deque()  # complete segments, oldest first
        self._open: SegmentRecord | None = None
        self._next_msn = first_msn
        self._chunks: list[bytes] = []  # the part being filled
        self._part_start = 0
        self._part_independent = False
        self._part_bytes = 0
        self._await_independent = True
        self._edge: int | None = None  # latest chunk time seen in this broadcast
        self._end: int | None = None  # where the chunk at the edge ends, when known
        self._spacings: deque[int] = deque(maxlen=SPACING_SAMPLES)
        self._pdt_anchor: float | None = None  # wall clock at broadcast time 0
        self._epoch: float | None = None  # wall clock at the first segment's start
        self._pending_discontinuity = False
        self._discontinuity_sequence = 0  # DISCONTINUITY tags that left the playlist
        self._target_duration = max(1, math.ceil(s.min_segment))
        self._inits: dict[int, bytes] = {}
        self._init_version = -1
        self._last = (first_msn - 1, -1)  # (msn, part) of the newest published part
        self._last_complete_msn = first_msn - 1
        self._first_listed = first_msn  # msn of the first segment in the playlist
        self._ended = False
        self._revision = 0
        self._playlist_cache: tuple[int, str] | None = None

    # -- state for an async layer ---------------------------------------------------

    @property
    def revision(self) -> int:
        """Increases whenever the playlist, a part, a segment or the init changed."""
        return self._revision

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def last_msn(self) -> int:
        """Media Sequence Number of the newest published part (``first_msn - 1`` before
        any)."""
        return self._last[0]

    @property
    def next_msn(self) -> int:
        """The Media Sequence Number the next segment would get."""
        return self._next_msn

    @property
    def last_part(self) -> int:
        """Index of the newest published part within :attr:`last_msn` (-1 before any)."""
        return self._last[1]

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION in seconds (it only ever rises)."""
        return self._target_duration

    @property
    def init_version(self) -> int:
        """The current init segment's version (-1 before any)."""
        return self._init_version

    @property
    def epoch(self) -> float | None:
        """UNIX time the first segment started: 0 of :attr:`TimelineRun.stream_start`."""
        return self._epoch

    @property
    def chunk_duration(self) -> int:
        """Ticks between recent chunks (a frame's duration; 0 before two chunks)."""
        return min(max(self._spacings, default=0), self._part_target)

    @property
    def init(self) -> bytes | None:
        return self._inits.get(self._init_version)

    @property
    def init_uri(self) -> str:
        """URI of the current init segment, versioned so caches never mix two of them."""
        return self.init_uri_for(self._init_version)

    def init_uri_for(self, version: int) -> str:
        return self.uri_prefix + init_uri(self._init_template, max(version, 0))

    @property
    def stored_bytes(self) -> int:
        """Bytes held for segments, parts and init segments (for metrics and tests)."""
        total = sum(map(len, self._inits.values())) + sum(map(len, self._chunks))
        for seg in (*self._done, *([self._open] if self._open is not None else [])):
            total += len(seg.data or b"") + sum(
                len(p.data) for p in seg.parts if isinstance(p.data, bytes)
            )
        return total

    # -- input ----------------------------------------------------------------------

    def set_init(self, data: bytes) -> None:
        """Set the init segment; new bytes get a new version and start a new segment."""
        if data == self.init:
            return
        self._flush()
        self._init_version += 1
        self._inits[self._init_version] = data
        self._prune()
        self._revision += 1

    def add_chunk(
        self,
        data: bytes,
        time: float,
        independent: bool,
        wallclock: float | None = None,
        *,
        end: float | None = None,
    ) -> None:
        """Append one CMAF chunk whose decode time is ``time`` seconds.

        ``independent`` chunks start with a video keyframe (or are any chunk of an
        audio-only stream); only they may start a segment, and chunks before the first
        one are dropped. ``wallclock`` is the UNIX time the chunk reached the server, for
        EXT-X-PROGRAM-DATE-TIME. ``end`` is where the chunk's samples end as muxed, that
        is the next chunk's ``time`` while the publisher's clock runs on: a part that
        closes on it lasts exactly as long as its media (else the end is guessed from the
        recent chunk spacing).
        """
        if self._ended:
            raise LocalProtocolError("chunk added to an ended HLS stream")
        t = _ticks(time)
        if self._await_independent:
            if not independent:
                return  # a segment must start decodable (4.4.2.1, 6.2.3)
            self._await_independent = False
            self._edge = t
            self._end = _end_ticks(time, end)
            self._start_segment(t, wallclock, independent=True)
            self._add_to_part(data, independent)
            return

        edge = self._edge if self._edge is not None else t
        if abs(t - edge) > self._max_segment:
            # The clock jumped (a publisher's timestamps reset or skipped) without a call
            # to discontinuity(): treat it as one rather than list a part hours long.
            self.discontinuity()
            self.add_chunk(data, time, independent, wallclock, end=end)
            return
        if t > edge:
            # Audio and video interleave, so times are only roughly ordered: the stream's
            # clock is the latest time seen, and parts and segments are cut on it.
            self._spacings.append(t - edge)
            edge = t
        self._edge = edge
        if wallclock is not None:
            wallclock += (edge - t) / TICKS_PER_SECOND
        elapsed = edge - self._open.start if self._open is not None else 0
        if independent and elapsed >= self._min_segment:
            # A GOP starts a segment (4.4.4.9 INDEPENDENT). Should the open part still be
            # zero long, its chunks share this instant and carry over into the new one.
            self._close_part(edge)
            self._close_segment()
            self._start_segment(edge, wallclock, independent=True)
        elif self._part_due(edge):
            self._close_part(edge)
            if elapsed + self._part_target > self._max_segment:
                # No keyframe in sight: one more part would push the segment past
                # max_segment, so split here; the next segment starts mid-GOP.
                self._close_segment()
                self._start_segment(edge, wallclock, independent=False)
        self._add_to_part(data, independent)
        if t == edge:  # (an earlier chunk, audio behind the video, leaves the edge's end)
            self._end = _end_ticks(time, end)
        self._close_part_early(edge, self._end if t == edge else None)

    def flush(self) -> None:
        """Close the open part and segment; the next segment starts at a keyframe."""
        if self._flush():
            self._revision += 1

    def end(self) -> None:
        """Flush and mark the stream ended: EXT-X-ENDLIST, no more preload hints."""
        if self._ended:
            return
        self._flush()
        self._ended = True
        self._revision += 1

    def discontinuity(self) -> None:
        """The next segment carries EXT-X-DISCONTINUITY (a new broadcast, new timeline).

        Call it when the publisher reconnected, then :meth:`set_init` with the new init.
        """
        self._flush()
        if self._done:
            self._pending_discontinuity = True
        self._edge = self._end = None
        self._spacings.clear()
        self._pdt_anchor = None
        self._revision += 1

    # -- output ---------------------------------------------------------------------

    def playlist(self) -> str:
        """The media playlist, rendered once per :attr:`revision`."""
        if self._playlist_cache is None or self._playlist_cache[0] != self._revision:
            self._playlist_cache = (self._revision, self._render())
        return self._playlist_cache[1]

    def segment(self, msn: int) -> bytes | None:
        """A complete segment's bytes (the concatenation of its parts)."""
        seg = self._find(msn)
        return seg.data if seg is not None else None

    def part(self, msn: int, index: int) -> bytes | memoryview | None:
        seg = self._find(msn)
        if seg is None or not 0 <= index < len(seg.parts):
            return None
        return seg.parts[index].data

    def init_segment(self, version: int) -> bytes | None:
        return self._inits.get(version)

    def timeline(self) -> list[SegmentRecord]:
        """The segments the playlist lists, oldest first, and the one being written once it
        holds a chunk (its parts and duration so far): what a DASH MPD lists."""
        listed = [s for s in self._done if s.msn >= self._first_listed]
        if self._open is not None and (self._open.parts or self._chunks):
            listed.append(self._open)
        return listed

    def segment_so_far(self, msn: int) -> tuple[list[bytes | memoryview], bool] | None:
        """Segment ``msn``'s bytes so far in pieces (its parts, then the chunks of the part
        being filled; pieces never change, so a byte count says what a chunked answer
        sent) and whether it is complete; None if there is no such segment (now)."""
        seg = self._find(msn)
        if seg is None:
            return None
        if seg.data is not None:
            return [seg.data], True
        pieces: list[bytes | memoryview] = [p.data for p in seg.parts if p.data is not None]
        return pieces + self._chunks, False

    def started(self, msn: int) -> bool:
        """Whether segment ``msn`` has begun (holds a chunk) or is past: no need to wait."""
        if self._open is not None and msn == self._open.msn:
            return True
        return msn <= self._last_complete_msn

    def parse_name(self, name: str) -> HlsName | None:
        """Which resource a request for ``name`` (the last path component) means."""
        if m := _SEGMENT_NAME.fullmatch(name):
            return HlsName(ResourceKind.SEGMENT, msn=int(m[1]))
        if m := _PART_NAME.fullmatch(name):
            return HlsName(ResourceKind.PART, msn=int(m[1]), part=int(m[2]))
        if m := self._init_name.fullmatch(name):
            return HlsName(ResourceKind.INIT, version=int(m[1]))
        return None

    def get(self, name: HlsName) -> bytes | memoryview | None:
        if name.kind is ResourceKind.INIT:
            return self.init_segment(name.version)
        if name.part is None:
            return self.segment(name.msn)
        return self.part(name.msn, name.part)

    # -- blocking requests (6.2.5.2, 6.2.6) -----------------------------------------

    def has(self, msn: int, part: int | None = None) -> bool:
        """Whether the playlist holds segment ``msn`` complete (``part`` None), or part
        ``msn.part``, or anything later: a blocking playlist reload can be answered."""
        if self._ended:
            return True
        if part is None:
            return msn <= self._last_complete_msn
        return (msn, part) <= self._last

    def pending(self, msn: int, part: int | None = None) -> bool:
        """Whether segment ``msn`` (or part ``msn.part``) does not exist yet but still
        may: a blocking segment or part request waits, else it is answered 404."""
        if self._ended:
            return False
        if part is None:
            return msn > self._last_complete_msn
        open_msn = self._open.msn if self._open is not None else self._next_msn
        if msn != open_msn:
            return msn > open_msn
        return self._open is None or part >= len(self._open.parts)

    def too_far_ahead(self, msn: int, part: int | None = None) -> bool:
        """6.2.5.2: a request more than two segments, or more than the Advance Part Limit
        of parts, beyond the newest one; the server SHOULD answer 400 at once."""
        last_msn, last_part = self._last
        if msn > last_msn + 2:
            return True
        if part is None or msn < last_msn:
            return False
        target = self.settings.part_target
        limit = 3 / target if target < 1 else 3.0
        ahead = part - last_part if msn == last_msn else part + 1
        return ahead > limit

    def is_past_window(self, msn: int) -> bool:
        """Whether segment ``msn`` and its parts were dropped for good (404)."""
        if self._done:
            return msn < self._done[0].msn
        return msn < (self._open.msn if self._open is not None else self._next_msn)

    # -- internals ------------------------------------------------------------------

    def _find(self, msn: int) -> SegmentRecord | None:
        if self._open is not None and msn == self._open.msn:
            return self._open
        if self._done and 0 <= msn - self._done[0].msn < len(self._done):
            return self._done[msn - self._done[0].msn]
        return None

    def _start_segment(self, start: int, wallclock: float | None, independent: bool) -> None:
        """Open segment ``_next_msn`` at broadcast time ``start``; ``wallclock`` is when
        media time ``start`` reached the server, if known."""
        last = self._done[-1] if self._done else None
        pdt = self._program_date_time(start, wallclock)
        self._open = SegmentRecord(
            msn=self._next_msn,
            start=start,
            offset=last.end if last is not None else 0,
            independent=independent,
            discontinuity=self._pending_discontinuity,
            init_version=self._init_version,
            program_date_time=pdt,
            run=self._timeline_run(start, pdt, last),
        )
        self._next_msn += 1
        self._pending_discontinuity = False
        self._part_start = start

    def _timeline_run(
        self, start: int, pdt: float | None, last: SegmentRecord | None
    ) -> TimelineRun:
        """The run a segment starting at ``start`` belongs to: its predecessor's, unless
        the media clock broke between them."""
        if last is None:
            self._epoch = pdt
            return TimelineRun(self._next_msn, start, 0)
        run = last.run
        if (
            not self._pending_discontinuity
            and last.init_version == self._init_version
            and start == last.start + last.duration
        ):
            return run
        stream_start = run.stream_start + last.start + last.duration - run.media_start
        if pdt is not None and self._epoch is not None:
            stream_start = max(stream_start, _ticks(pdt - self._epoch))
        return TimelineRun(self._next_msn, start, stream_start)

    def _program_date_time(self, start: int, wallclock: float | None) -> float | None:
        # The date follows the media clock so it agrees with EXTINF (4.4.4.6); it is
        # re-anchored to arrival time when the two drift apart, or after a
        # discontinuity (which clears the anchor).
        if wallclock is None:
            return None
        media = start / TICKS_PER_SECOND
        anchor = self._pdt_anchor
        if anchor is None or abs(anchor + media - wallclock) > self.settings.pdt_resync:
            anchor = self._pdt_anchor = wallclock - media
        return anchor + media

    def _add_to_part(self, data: bytes, independent: bool) -> None:
        if not self._chunks:
            self._part_independent = False
            self._part_bytes = 0
        self._part_bytes += len(data)
        if self._part_bytes > self.settings.max_part_bytes:
            raise LimitExceeded(
                f"HLS part over {self.settings.max_part_bytes} bytes: chunk times stopped"
            )
        self._chunks.append(data)
        # 4.4.4.9: INDEPENDENT=YES when the part contains an independent frame.
        self._part_independent |= independent

    def _part_due(self, now: int) -> bool:
        # Cut now if waiting for the next chunk (expected within the recent largest
        # spacing) would overshoot: parts stay <= PART-TARGET, and >= 85% of it (4.4.4.9).
        spacing = min(max(self._spacings, default=0), self._max_spacing)
        return now - self._part_start >= self._part_target - spacing

    def _close_part_early(self, edge: int, end: int | None) -> None:
        # The next chunk is expected where this one ends (or one spacing from now); if it
        # would close the part anyway, publish the part at once: a blocking reload for it
        # is answered when its last frame arrives, not one frame later (the LL-HLS latency
        # goal). The muxer starts the next chunk exactly at ``end``, so parts, and the
        # segments they sum to, last exactly as long as their media: a 2 s GOP makes an
        # EXTINF of 2.00000. (A part that ends a segment cut at max_segment is left to the
        # next chunk.)
        if end is None and self._spacings:
            end = edge + self._spacings[-1]
        if end is not None and self._open is not None:
            expected = end
            fits = expected - self._part_start <= self._part_target
            splits = expected - self._open.start + self._part_target > self._max_segment
            if fits and not splits and self._part_due(expected):
                self._close_part(expected)

    def _close_part(self, end: int) -> bool:
        """Publish the part being filled as ending at ``end``; False if it is empty or
        would be zero long (its chunks then stay for the next part)."""
        duration = end - self._part_start
        if self._open is None or not self._chunks or duration <= 0:
            return False
        self._open.parts.append(
            PartRecord(b"".join(self._chunks), duration, self._part_independent)
        )
        self._open.duration += duration
        self._chunks = []
        self._part_start = end
        self._last = (self._open.msn, len(self._open.parts) - 1)
        self._revision += 1
        return True

    def _close_segment(self) -> None:
        seg = self._open
        self._open = None
        if seg is None:
            return
        if not seg.parts:  # nothing was published under its number: reuse it
            self._next_msn = seg.msn
            return
        seg.data = b"".join(p.data or b"" for p in seg.parts)
        # The parts become views into the segment: the bytes are held once.
        view, offset = memoryview(seg.data), 0
        for part in seg.parts:
            size = len(part.data or b"")
            part.data = view[offset : offset + size]
            offset += size
        self._done.append(seg)
        self._last_complete_msn = seg.msn
        # RFC 8216 4.3.3.1 (rfc8216bis 4.4.3.1): every EXTINF rounded to the nearest
        # integer is <= TARGETDURATION, which must not change; so it only ever rises, when
        # a segment is longer than any before. (Rounding, not ceil: a 2.02 s GOP must not
        # make it 3 s and the plain-HLS hold-back 9 s.)
        rounded = (seg.duration + TICKS_PER_SECOND // 2) // TICKS_PER_SECOND
        self._target_duration = max(self._target_duration, rounded)
        self._prune()
        self._revision += 1

    def _flush(self) -> bool:
        """Close whatever is open; the next segment waits for an independent chunk."""
        self._await_independent = True
        if self._open is None:
            return False
        if self._chunks and self._edge is not None:
            # The last chunk ends where it was muxed to end, else it lasts about as long
            # as the recent ones (never zero).
            spacing = min(max(self._spacings, default=0), self._part_target)
            end = self._end if self._end is not None else self._edge + max(spacing, 1)
            self._close_part(max(end, self._edge + 1))
        self._chunks = []
        self._close_segment()
        return True

    def _prune(self) -> None:
        """Drop what no playlist lists and no client may still fetch (bounded memory)."""
        done = self._done
        # 6.2.2: list window_segments, and never less than three Target Durations.
        min_span = 3 * self._target_duration * TICKS_PER_SECOND
        listed = span = 0
        for seg in reversed(done):
            if listed >= self.settings.window_segments and span >= min_span:
                break
            listed += 1
            span += seg.duration
        if done:
            self._first_listed = max(self._first_listed, done[-1].msn - listed + 1)
        # 6.2.2: a segment stays available a while after it left the playlist.
        while done and done[0].msn < self._first_listed - self.settings.grace_segments:
            if done.popleft().discontinuity:
                self._discontinuity_sequence += 1
        if done:
            keep_after = done[-1].end - (
                PART_RETENTION_TARGET_DURATIONS * self._target_duration * TICKS_PER_SECOND
            )
            for seg in done:
                if seg.end >= keep_after:
                    break
                for p in seg.parts:
                    p.data = None
        used = {seg.init_version for seg in done} | {self._init_version}
        if self._open is not None:
            used.add(self._open.init_version)
        for version in [v for v in self._inits if v not in used]:
            del self._inits[version]

    def _render(self) -> str:
        listed = [s for s in self._done if s.msn >= self._first_listed]
        removed = sum(s.discontinuity for s in self._done if s.msn < self._first_listed)
        if self._open is not None and self._open.parts:
            listed.append(self._open)
        next_msn = self._open.msn if self._open is not None else self._next_msn
        header = PlaylistHeader(
            target_duration=self._target_duration,
            part_target=self._part_target,
            media_sequence=listed[0].msn if listed else next_msn,
            discontinuity_sequence=self._discontinuity_sequence + removed,
            init_uri_template=self._init_template,
            uri_prefix=self.uri_prefix,
        )
        # 4.4.5.3: hint the part being filled (or the first of the next segment).
        hint = self.uri_prefix + part_uri(
            next_msn, len(self._open.parts) if self._open is not None else 0
        )
        return render(header, listed, hint, self._ended)
