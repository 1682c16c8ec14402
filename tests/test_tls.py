"""The node's certificate (strom.tls), in process: a missing file, a key that is not the
certificate's or a file that is no certificate stops the start with one sentence naming
the files (``strom serve``: that line, exit code 1);
``SIGHUP`` (``StromServer.reload_tls``) puts a renewed certificate in front of the next
HTTPS and RTMPS connections, and a broken renewal leaves the old one serving."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

import pytest

from strom.cli import main
from strom.server import StromServer
from strom.settings import SettingsError
from strom.tls import TlsError
from tests.helpers import make_settings
from tests.helpers.tls import make_certificate


async def served_certificate(port: int) -> bytes:
    """The certificate a TLS client is shown on ``port`` (DER)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    assert der is not None
    return bytes(der)


def test_strom_serve_without_its_certificate_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "site.key"
    key.write_text("a key\n")
    missing = tmp_path / "missing.crt"
    code = main(
        ["serve", "--host", "127.0.0.1", "--http-port", "0", "--rtmp-port", "0",
         "--data-dir", str(tmp_path / "data"), "--tls-cert", str(missing),
         "--tls-key", str(key)]
    )  # fmt: skip
    assert code == 1
    out = capsys.readouterr()
    assert (out.out + out.err).strip() == f"strom: tls_cert {missing}: no such file"


async def test_a_key_of_another_certificate_stops_the_start(tmp_path: Path) -> None:
    cert, _ = await make_certificate(tmp_path, "one")
    _, other_key = await make_certificate(tmp_path, "two")
    server = StromServer(make_settings(tmp_path, tls_cert=str(cert), tls_key=str(other_key)))
    with pytest.raises(TlsError) as caught:
        await server.start()
    assert str(caught.value) == f"tls_key {other_key} is not the key of tls_cert {cert}"
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    server = StromServer(
        make_settings(tmp_path, tls_cert=str(tmp_path / "junk.crt"), tls_key=str(other_key))
    )
    with pytest.raises(TlsError, match=r"junk\.crt .*not a PEM certificate"):
        await server.start()


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(SettingsError, match="tls_cert and tls_key go together"):
        make_settings(Path("/nonexistent"), tls_cert="site.crt", database_url="sqlite://")


async def test_a_renewed_certificate_serves_the_next_connections(tmp_path: Path) -> None:
    cert, key = await make_certificate(tmp_path, "live")
    server = StromServer(
        make_settings(tmp_path, tls_cert=str(cert), tls_key=str(key), rtmps_port=0)
    )
    await server.start()
    try:
        rtmps = server.site.rtmps_port
        assert rtmps is not None
        before = await served_certificate(server.http_port)
        assert await served_certificate(rtmps) == before
        # certbot renews: new files at the same paths, then kill -HUP
        new_cert, new_key = await make_certificate(tmp_path, "renewed")
        shutil.copyfile(new_cert, cert)
        shutil.copyfile(new_key, key)
        server.reload_tls()
        after = await served_certificate(server.http_port)
        assert after != before
        assert await served_certificate(rtmps) == after
        # a renewal gone wrong: the certificate in use stays
        key.write_text("truncated\n")
        server.reload_tls()
        assert await served_certificate(server.http_port) == after
    finally:
        await server.stop()
