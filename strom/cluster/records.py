"""What the live map keeps in Redis (:mod:`strom.cluster.live_map`): a channel's entry and a
node's record, as JSON. Decoding is forgiving of what it does not know (a field a newer
node added) and refuses what is not one (written by something else): None."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiveEntry:
    """Channel ``channel`` is ingested by node ``node`` (reachable at ``url``)."""

    channel: str
    node: str
    url: str
    #: starting, live or reconnecting
    state: str
    #: the hub's broadcast number on that node (1, 2, ... per channel per process)
    broadcast: int = 0
    started_at: float | None = None
    #: while reconnecting: where its media stopped (seconds), for a node carrying it on
    timeline: float | None = None
    width: int | None = None
    height: int | None = None
    #: the version (ETag) of the channel's live picture there, once it has one
    thumbnail: str | None = None

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes | dict[str, Any]) -> LiveEntry | None:
        """An entry from Redis, or None if it is not one (written by something else)."""
        try:
            data = raw if isinstance(raw, dict) else json.loads(raw)
            return cls(
                channel=str(data["channel"]),
                node=str(data["node"]),
                url=str(data["url"]),
                state=str(data["state"]),
                broadcast=int(data.get("broadcast") or 0),
                started_at=_number(data.get("started_at")),
                timeline=_number(data.get("timeline")),
                width=_integer(data.get("width")),
                height=_integer(data.get("height")),
                thumbnail=_text(data.get("thumbnail")),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class NodeRecord:
    """One node as the others see it."""

    node: str
    url: str
    role: str
    #: where a publisher goes live on it (rtmp://host:port/live)
    publish_url: str
    entries: tuple[LiveEntry, ...] = ()
    #: its counted viewers per channel (live here or pulled)
    viewers: dict[str, int] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(
            {
                "node": self.node,
                "url": self.url,
                "role": self.role,
                "publish_url": self.publish_url,
                "entries": [asdict(e) for e in self.entries],
                "viewers": self.viewers,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> NodeRecord | None:
        try:
            data = json.loads(raw)
            entries = tuple(e for x in data.get("entries", ()) if (e := LiveEntry.decode(x)))
            viewers = {str(k): int(v) for k, v in dict(data.get("viewers") or {}).items()}
            return cls(
                node=str(data["node"]),
                url=str(data["url"]),
                role=str(data["role"]),
                publish_url=str(data.get("publish_url") or ""),
                entries=entries,
                viewers=viewers,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def _number(value: Any) -> float | None:
    # JSON may say NaN or Infinity: no time or timeline to go on from
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
