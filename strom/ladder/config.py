"""What a ladder's worker process is told when it starts (on its command line)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from strom.media.ladder import Rung


@dataclass(frozen=True)
class WorkerConfig:
    rungs: tuple[Rung, ...]
    preset: str = "veryfast"
    max_pixels: int = 3840 * 2160
    label: str = "ladder"

    def to_json(self) -> str:
        return json.dumps(
            {
                "rungs": [[r.height, r.bitrate] for r in self.rungs],
                "preset": self.preset,
                "max_pixels": self.max_pixels,
                "label": self.label,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        raw = json.loads(text)
        return cls(
            rungs=tuple(Rung(int(h), int(b)) for h, b in raw["rungs"]),
            preset=str(raw["preset"]),
            max_pixels=int(raw["max_pixels"]),
            label=str(raw["label"]),
        )
