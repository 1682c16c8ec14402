"""What Strom makes of live channels besides delivering them: thumbnails and recordings."""

from strom.record.recorder import Recorder, RecorderSettings, Recording
from strom.record.thumbnails import Thumbnail, ThumbnailWorker, render_thumbnail

__all__ = [
    "Recorder",
    "RecorderSettings",
    "Recording",
    "Thumbnail",
    "ThumbnailWorker",
    "render_thumbnail",
]
