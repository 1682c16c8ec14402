"""The quality ladder's plain data: its rungs, its renditions' names, its HLS master
playlist.

A ladder turns one channel's source into lower renditions (720p, 480p, 360p...), each a
channel of its own in the hub named ``{source}~{rung}`` (``alice~480p``). Usernames and
configured channel names are letters, digits, ``_`` and ``-``, so ``~`` never clashes
with a real channel, and it is an unreserved URL character (RFC 3986 2.3): a rendition's
addresses are ordinary channel addresses, ``/live/alice~480p/index.m3u8``.

The master playlist (RFC 8216 4.3.4.2 ``EXT-X-STREAM-INF``) lists the source first (the
top rendition, passed through) and then the rungs, each with its ``BANDWIDTH``,
``RESOLUTION`` and ``CODECS``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strom.errors import StromError

#: separates a source channel's name from its rung's in a rendition's channel name
SEPARATOR = "~"
#: most rungs a ladder may have (each costs an encoder)
MAX_RUNGS = 6
#: the smallest and largest heights a rung may have
MIN_HEIGHT, MAX_HEIGHT = 144, 2160
_RUNG = re.compile(r"(\d{3,4})p(?:=(\d{1,6})(k|m)?)?")
_RUNG_NAME = re.compile(r"\d{3,4}p")
#: bits per pixel per second a rung gets when its bitrate is not given (720p: 2.2 Mbit/s)
_BITS_PER_PIXEL = 2.4


class LadderError(StromError, ValueError):
    """A ladder setting that does not parse."""


@dataclass(frozen=True, slots=True)
class Rung:
    """One rendition below the source: its height and video bitrate (bit/s)."""

    height: int
    bitrate: int

    @property
    def name(self) -> str:
        return f"{self.height}p"

    def size(self, source_width: int, source_height: int) -> tuple[int, int]:
        """The rung's picture size for a source of that size: the source's aspect ratio,
        both sides even (4:2:0); never larger than the source."""
        height = min(self.height, source_height) & ~1
        width = round(source_width * height / max(1, source_height) / 2) * 2
        return max(2, width), max(2, height)


def default_bitrate(height: int) -> int:
    width = height * 16 / 9
    return int(width * height * _BITS_PER_PIXEL) // 1000 * 1000


def parse_rungs(text: str) -> tuple[Rung, ...]:
    """``720p,480p=1200k,360p=1m``-style text: heights, each with an optional video
    bitrate (``k``: kbit/s, ``m``: Mbit/s; none: chosen from the size). Highest first,
    no repeats."""
    rungs: dict[int, Rung] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        found = _RUNG.fullmatch(item.lower())
        if found is None:
            raise LadderError(f"ladder rendition {item!r}: expected HEIGHTp or HEIGHTp=BITRATEk")
        height = int(found[1])
        if not MIN_HEIGHT <= height <= MAX_HEIGHT:
            raise LadderError(f"ladder rendition {item!r}: height {MIN_HEIGHT}..{MAX_HEIGHT}")
        bitrate = default_bitrate(height)
        if found[2] is not None:
            bitrate = int(found[2]) * {"k": 1000, "m": 1_000_000, None: 1}[found[3]]
            if not 50_000 <= bitrate <= 50_000_000:
                raise LadderError(f"ladder rendition {item!r}: bitrate 50k..50m")
        if height in rungs:
            raise LadderError(f"ladder rendition {height}p is given twice")
        rungs[height] = Rung(height, bitrate)
    if len(rungs) > MAX_RUNGS:
        raise LadderError(f"a ladder has at most {MAX_RUNGS} renditions")
    return tuple(sorted(rungs.values(), key=lambda r: -r.height))


def rendition_name(source: str, rung: Rung | str) -> str:
    """The channel name of ``source``'s rendition ``rung``: ``alice~480p``."""
    return f"{source}{SEPARATOR}{rung if isinstance(rung, str) else rung.name}"


def audience_name(name: str) -> str:
    """Whose audience a viewer of ``name`` is: ``alice`` for ``alice~480p`` (a viewer the
    player switched to a rendition still watches alice), ``name`` itself otherwise."""
    split = split_rendition(name)
    return name if split is None else split[0]


def split_rendition(name: str) -> tuple[str, str] | None:
    """``("alice", "480p")`` for ``alice~480p``; None for any other name."""
    source, sep, rung = name.partition(SEPARATOR)
    if not sep or not source or _RUNG_NAME.fullmatch(rung) is None:
        return None
    return source, rung


@dataclass(frozen=True, slots=True)
class Variant:
    """One line of a master playlist: a media playlist and what it costs to play."""

    uri: str
    bandwidth: int
    width: int
    height: int
    codecs: str
    name: str = ""


def master_playlist(variants: Sequence[Variant]) -> str:
    """The HLS master playlist of ``variants`` (RFC 8216 4.3.4.2), in the order given
    (hls.js starts with the first that fits; Safari picks by ``BANDWIDTH``)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        attrs = [f"BANDWIDTH={max(1, v.bandwidth)}"]
        if v.width and v.height:
            attrs.append(f"RESOLUTION={v.width}x{v.height}")
        if v.codecs:
            attrs.append(f'CODECS="{v.codecs}"')
        if v.name:
            attrs.append(f'NAME="{v.name}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), v.uri]
    return "\n".join(lines) + "\n"
