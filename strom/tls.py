"""Built-in TLS: the certificate and key an operator names (``--tls-cert``,
``--tls-key``) as the server side's :class:`ssl.SSLContext`, shared by the HTTPS
listener and the RTMPS one.

A bad path, a file that is not PEM or a key that is not the certificate's is a
:class:`~strom.errors.StromError` with one line saying which, never a traceback. The
same context is reloaded in place (:meth:`ServerTls.reload`, on ``SIGHUP``): a renewed
certificate (certbot every 60-90 days) is used by the connections that come after it,
and those already open keep theirs.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from strom.errors import StromError

log = logging.getLogger(__name__)


class TlsError(StromError):
    """The certificate or its key cannot be used."""


class ServerTls:
    """The server's TLS context, loaded from ``cert`` and ``key`` (PEM files)."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert = Path(cert)
        self.key = Path(key)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # HTTP/1.1 only: aiohttp speaks no HTTP/2 (a browser would otherwise offer h2).
        self.context.set_alpn_protocols(["http/1.1"])
        _load(self.context, self.cert, self.key)

    def reload(self) -> bool:
        """Read the files again (a renewed certificate); on failure keep the old ones and
        say why in the log. True if the new ones are in use."""
        try:
            _load(self.context, self.cert, self.key)
        except TlsError as exc:
            log.error("TLS certificate not reloaded, the old one stays in use: %s", exc)  # noqa: TRY400
            return False
        log.info("TLS certificate reloaded from %s", self.cert)
        return True


def _load(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise TlsError(f"{name} {path}: no such file")
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TlsError(f"tls_key {key} is not the key of tls_cert {cert}") from None
        raise TlsError(
            f"tls_cert {cert} / tls_key {key}: not a PEM certificate (chain) and its PEM key"
        ) from None
    except OSError as exc:
        raise TlsError(f"tls_cert {cert} / tls_key {key}: {exc.strerror or exc}") from None
