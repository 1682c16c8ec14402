"""What Strom makes of live channels besides delivering them: thumbnails (later: VOD)."""

from strom.record.thumbnails import Thumbnail, ThumbnailWorker, render_thumbnail

__all__ = ["Thumbnail", "ThumbnailWorker", "render_thumbnail"]
