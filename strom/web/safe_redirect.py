"""Where to send a user after logging in (``/login?next=...``): a path on this site, or
nowhere.

The test is Django's ``url_has_allowed_host_and_scheme`` with no allowed host but our
own, made stricter: a browser reads a URL more liberally than Python's ``urlsplit``. The
WHATWG URL parser drops tabs and newlines anywhere (``/\\t/evil.example`` becomes
``//evil.example``, another host), strips leading control characters and spaces, and
reads ``\\`` as ``/`` in http(s) URLs (``/\\evil.example`` is ``//evil.example``). So
rather than normalise the way one browser might, any control character, whitespace or
backslash refuses the value outright, and what is left must start with exactly one ``/``
and have neither a scheme nor a host.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

DEFAULT_NEXT = "/dashboard"
MAX_LENGTH = 2000


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """``value`` if it is a path on this site, else ``default``."""
    if not value or len(value) > MAX_LENGTH:
        return default
    if any(c == "\\" or c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in value):
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    try:
        parts = urlsplit(value)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    return value
