"""Self-signed certificates for the tests of built-in HTTPS and RTMPS, made by the
``openssl`` command (Debian's; `scripts/bootstrap test` installs it where missing)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.media import need_tool, run_process

#: a name that is not loopback (Chromium counts http://127.0.0.1 as a secure context)
TLS_NAME = "strom.test"


async def make_certificate(folder: Path, name: str = "site") -> tuple[Path, Path]:
    """A self-signed certificate for strom.test, localhost and 127.0.0.1, and its key
    (PEM files in ``folder``)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    code, out = await run_process(
        need_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", f"/CN={TLS_NAME}",
        "-addext", f"subjectAltName=DNS:{TLS_NAME},DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    assert code == 0, out
    return cert, key
