"""Who the client is behind a reverse proxy: ``Forwarded`` (RFC 7239) and
``X-Forwarded-For/-Proto/-Host``, believed only from the proxies an operator names
(``--trusted-proxies 127.0.0.1,10.0.0.0/8``).

:class:`ForwardedHeaders` sits in front of everything else as the HTTP server's request
handler (before the lean media path and the application): a request whose connection
comes from a trusted proxy is cloned with the client's address as ``request.remote``,
and the scheme and host the client used as ``request.scheme`` and ``request.host``. So
every per-address limit, log line and absolute URL downstream sees the client, through
the one attribute it already reads. From any other peer the headers are ignored: a
client cannot choose the address its limits are counted under. Without trusted proxies
nothing is installed and no request pays for it.

The client is found as proxies append: reading the addresses right to left (the
socket's peer last), the first one that is not a trusted proxy is the client; if every
one is, the leftmost. An entry that is not an IP address (``unknown``, an obfuscated
name) ends the walk at the trusted hop to its right.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import hdrs, web

from strom.ratelimit import IPNetwork, in_networks

log = logging.getLogger(__name__)

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

#: what a forwarded host may look like: a name or address, and a port (no userinfo, path)
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
_PROTOS = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class ForwardedHeaders:
    """The server's request handler: a trusted proxy's request is cloned with its client's
    address, scheme and host, then handed on."""

    def __init__(self, proxies: tuple[IPNetwork, ...], handler: RequestHandler) -> None:
        self._proxies = proxies
        self._handler = handler

    @classmethod
    def install(cls, proxies: tuple[IPNetwork, ...], server: web.Server) -> None:
        """Put it in front of ``server``'s request handler (before it listens); nothing
        when no proxy is trusted."""
        if proxies:
            server.request_handler = cls(proxies, server.request_handler).handle

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        peer = request.remote or ""
        if peer and in_networks(peer, self._proxies):
            changes = client_of(request.headers, peer, self._proxies)
            if changes:
                request = request.clone(**changes)
        return await self._handler(request)


def client_of(
    headers: Mapping[str, str], peer: str, proxies: tuple[IPNetwork, ...]
) -> dict[str, Any]:
    """What a trusted proxy (``peer``) says about its client: ``remote``, ``scheme`` and
    ``host`` to clone the request with (only those it says, and says well)."""
    forwarded = _forwarded_elements(headers.get(hdrs.FORWARDED, ""))
    if any("for" in element for element in forwarded):
        chain = [element.get("for", "") for element in forwarded]
        index, remote = _client_in(chain, peer, proxies)
        hop = forwarded[min(index, len(forwarded) - 1)]
        proto, host = hop.get("proto", ""), hop.get("host", "")
    else:
        chain = _list(headers.get(hdrs.X_FORWARDED_FOR, ""))
        index, remote = _client_in(chain, peer, proxies)
        proto = _nth(_list(headers.get(hdrs.X_FORWARDED_PROTO, "")), index, len(chain))
        host = _nth(_list(headers.get(hdrs.X_FORWARDED_HOST, "")), index, len(chain))
    changes: dict[str, Any] = {}
    if remote != peer:
        changes["remote"] = remote
    if proto.lower() in _PROTOS:
        changes["scheme"] = _PROTOS[proto.lower()]
    if host and _HOST.fullmatch(host):
        changes["host"] = host
    return changes


def _client_in(chain: Sequence[str], peer: str, proxies: tuple[IPNetwork, ...]) -> tuple[int, str]:
    """The client's position in ``chain`` (len(chain): the peer itself) and address."""
    index, client = len(chain), peer
    for position in range(len(chain) - 1, -1, -1):
        address = _address(chain[position])
        if address is None:  # unknown, obfuscated, garbage: the trusted hop is the client
            break
        index, client = position, address
        if not in_networks(address, proxies):
            break
    return index, client


def _address(value: str) -> str | None:
    """An IP address from a ``for=`` or X-Forwarded-For entry (``[v6]:port``,
    ``v4:port``, bare), or None."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _nth(values: list[str], index: int, hops: int) -> str:
    """The X-Forwarded-Proto/-Host value of the hop at ``index``: when there is one per
    hop, that one; else the last (the nearest proxy's)."""
    if len(values) == hops and index < hops:
        return values[index]
    return values[-1] if values else ""


def _forwarded_elements(raw: str) -> list[dict[str, str]]:
    """``Forwarded`` (RFC 7239 section 4) as one dict per element, parameter names in
    lower case and quotes removed; a malformed element is an empty dict."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(raw, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, sep, value = pair.strip().partition("=")
            if not sep or not name:
                pairs = {}
                break
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            pairs[name.strip().lower()] = value
        elements.append(pairs)
    return elements if raw.strip() else []


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
