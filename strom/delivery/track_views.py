"""The single-track views of a rendition's segments that LL-DASH names, made as asked.

An LL-DASH Representation is one track (:mod:`strom.media.dash`), so its files are
views of the LL-HLS rendition's segments: ``{rendition}/t{track}-init-{version}.mp4``
and ``{rendition}/t{track}-seg{n}.m4s``. Nothing is made for a channel nobody watches
over DASH. A view is made once, by the first request for it, and shared by every viewer
after (one encode, many writes):

- a complete segment's view is kept while the segment is in the window;
- the segment being written is split as it grows, each new chunk once, whatever the
  number of viewers (:class:`TrackView` keeps how far it got), and its followers get
  the new bytes from :class:`~strom.delivery.chunked.GrowingSegments` as for any growing
  answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strom.delivery.chunked import GrowingSegments, pieces_after
from strom.errors import ProtocolError
from strom.media.dash.tracks import fragments_for_track, init_for_track
from strom.media.hls import HlsName, ResourceKind

if TYPE_CHECKING:
    from strom.media.hls import LiveHlsStream

#: a track view's file name: the track, then the name of the LL-HLS file it is a view of
_NAME = re.compile(r"t(\d{1,3})-(.+)")
#: the URL templates of a rendition's track views in an MPD (``$RepresentationID$`` is
#: the track id)
MEDIA_TEMPLATE = "t$RepresentationID$-seg$Number$.m4s"


def init_template(init_uri: str) -> str:
    """The MPD's init template for the rendition's init file named ``init_uri``."""
    directory, _, name = init_uri.rpartition("/")
    return f"{directory}/t$RepresentationID$-{name}" if directory else f"t$RepresentationID$-{name}"


class TrackView:
    """Track ``track_id`` of a rendition's segments (see the module doc)."""

    def __init__(self, stream: LiveHlsStream, track_id: int) -> None:
        self._stream = stream
        self.track_id = track_id
        self._inits: dict[int, bytes] = {}
        #: complete segments' views, by msn
        self._complete: dict[int, bytes] = {}
        #: the segment being written: its msn, the bytes of it split so far, their view
        self._open: tuple[int, int, list[bytes]] | None = None

    @property
    def ended(self) -> bool:
        return self._stream.ended

    def init_segment(self, version: int) -> bytes | None:
        found = self._inits.get(version)
        if found is None:
            init = self._stream.init_segment(version)
            if init is None:
                return None
            try:
                found = init_for_track(init, self.track_id)
            except ProtocolError:
                return None  # no such track in this version
            self._inits = {
                v: d for v, d in self._inits.items() if self._stream.init_segment(v) is not None
            }
            self._inits[version] = found
        return found

    def segment_so_far(self, msn: int) -> tuple[list[bytes | memoryview], bool] | None:
        """As :meth:`LiveHlsStream.segment_so_far`, of the view: whole fragments in
        pieces that never change, and whether the segment is complete."""
        found = self._stream.segment_so_far(msn)
        if found is None:
            return None
        pieces, complete = found
        if complete:
            return [self._complete_view(msn, pieces)], True
        opened = self._open
        if opened is None or opened[0] != msn:
            opened = (msn, 0, [])
        _, done, views = opened
        total = sum(len(p) for p in pieces)
        if total > done:
            views.append(fragments_for_track(b"".join(pieces_after(pieces, done)), self.track_id))
        self._open = (msn, total, views)
        return list(views), False

    def _complete_view(self, msn: int, pieces: list[bytes | memoryview]) -> bytes:
        found = self._complete.get(msn)
        if found is not None:
            return found
        opened = self._open
        if opened is not None and opened[0] == msn and opened[1] == len(pieces[0]):
            found = b"".join(opened[2])  # split as it grew: nothing left to split
            self._open = None
        else:
            found = fragments_for_track(pieces[0], self.track_id)
        for old in [m for m in self._complete if self._stream.is_past_window(m)]:
            del self._complete[old]
        self._complete[msn] = found
        return found


class TrackViews:
    """A rendition's track views and their growing answers, by track."""

    def __init__(self, stream: LiveHlsStream) -> None:
        self._stream = stream
        self._views: dict[int, tuple[TrackView, GrowingSegments]] = {}

    def parse_name(self, name: str) -> tuple[TrackView, GrowingSegments, HlsName] | None:
        """The view and resource a file name means (a segment or an init segment of a
        track), or None if it is not a track view's name."""
        m = _NAME.fullmatch(name)
        if m is None:
            return None
        resource = self._stream.parse_name(m[2])
        if resource is None or resource.kind is ResourceKind.PART:
            return None
        track_id = int(m[1])
        found = self._views.get(track_id)
        if found is None:
            view = TrackView(self._stream, track_id)
            if not any(view.init_segment(v) for v in self._versions()):
                return None  # no such track: nothing is kept for the name
            found = self._views[track_id] = (view, GrowingSegments(view))
        return found[0], found[1], resource

    def _versions(self) -> list[int]:
        return [v for v in range(self._stream.init_version + 1) if self._stream.init_segment(v)]

    @property
    def followers(self) -> int:
        """Answers of growing segments going on, over every track."""
        return sum(growing.followers for _, growing in self._views.values())

    @property
    def dropped(self) -> int:
        """Followers cut off for not reading."""
        return sum(growing.dropped for _, growing in self._views.values())

    def update(self) -> None:
        """After every change of the stream: the growing answers get what is new."""
        for _, growing in self._views.values():
            growing.update()

    def let_go(self) -> None:
        for _, growing in self._views.values():
            growing.let_go()
