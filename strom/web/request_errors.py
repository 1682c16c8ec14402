"""aiohttp's log lines about requests a client got wrong, as one-line warnings.

aiohttp logs a request it cannot parse (a bad request line, an invalid URL, a header too
long: an :class:`~aiohttp.http_exceptions.HttpProcessingError`, answered 400 and closed)
at ERROR with a traceback, just as it logs a handler that crashed. The first is what any
port open to the internet gets all day and says nothing about the server; the second is
a bug. The web server logs through :func:`http_server_logger`, which keeps them apart.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class MalformedRequestsAsWarnings(logging.Filter):
    """Turns an ERROR record about an unparsable request into one WARNING line (what was
    wrong, without the traceback); other records pass as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(exc, HttpProcessingError):
            where = record.getMessage().replace("Error handling request", "bad request")
            record.msg = "%s: %s %s"
            record.args = (where, exc.code, str(exc.message)[:100].replace("\n", " "))
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
        return True


def http_server_logger() -> logging.Logger:
    """The logger of the HTTP server's connections (aiohttp's ``logger`` argument)."""
    logger = logging.getLogger("strom.web.http")
    if not any(isinstance(f, MalformedRequestsAsWarnings) for f in logger.filters):
        logger.addFilter(MalformedRequestsAsWarnings())
    return logger
