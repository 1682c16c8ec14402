"""Small answers several pages and the API share: where to publish, the site's address,
ids from URLs, durations as clocks."""

from __future__ import annotations

from aiohttp import web


def rtmp_url(request: web.Request, rtmp_port: int, scheme: str = "rtmp") -> str:
    """Where a publisher connects, as this visitor reaches the site (``rtmps``: the
    encrypted port)."""
    host = request.url.host or "localhost"
    return f"{scheme}://{host}:{rtmp_port}/live"


def site_url(request: web.BaseRequest, public_url: str) -> str:
    """The site's address as this visitor reaches it (``public_url`` when set)."""
    configured = public_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


def ffmpeg_command(rtmp: str, key: str | None) -> str:
    return (
        "ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -tune zerolatency -g 60 "
        f"-c:a aac -b:a 128k -f flv {rtmp}/{key or 'YOUR_STREAM_KEY'}"
    )


def category_art_url(slug: str, art: str | None) -> str | None:
    """Where a category's box art is served (None: it has none); a new picture is a new
    URL, so the answer can be cached for good."""
    return f"/categories/{slug}/art/{art}.jpg" if art else None


def row_id(text: str) -> int | None:
    """A row id from a URL: a positive number that fits an INTEGER column everywhere."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value < 2**31 else None


def clock_text(seconds: float) -> str:
    """1:02:03, 2:03, 0:05."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def is_text(value: str) -> bool:
    """False for strings no database can store: JSON allows lone surrogates (``"\\ud800"``)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
