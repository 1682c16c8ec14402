"""How a node names itself: the scheme and host in its log lines and default links, and
the URL the other nodes of a site pull from (:mod:`strom.server` uses these)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from strom.settings import Settings

_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104


def scheme(settings: Settings) -> str:
    """``https`` when the node has a certificate (its HTTP port speaks TLS), else ``http``."""
    return "https" if settings.tls_cert else "http"


def local_host(settings: Settings) -> str:
    """The host of this node's own links (a wildcard address: ``localhost``)."""
    return "localhost" if settings.host in _WILDCARDS else settings.host


def node_url(settings: Settings, port: int) -> str:
    """``--node-url``, else the public URL, else this host and HTTP port (a wildcard
    address: the host name, which the other machines are likeliest to resolve)."""
    if settings.node_url or settings.public_url:
        return (settings.node_url or settings.public_url).rstrip("/")
    host = settings.host
    if host in _WILDCARDS:
        host = socket.gethostname()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme(settings)}://{host}:{port}"


def with_port(url: str, port: int) -> str:
    """``url`` with its port replaced: a worker's node URL is the node's, on the worker's
    private port (plain HTTP, even when the public one is HTTPS)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(scheme="http", netloc=f"{host}:{port}"))
