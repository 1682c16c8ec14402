"""Debian's nginx as an ordinary HTTP cache in front of a test node, configured as
docs/http-cache.md says: its own process on a free loopback port, with its cache, temp
files and logs in a temporary directory (never the system service), and an access log the
test reads to see which answers came from the cache and which were passed to the node."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.helpers.servers import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-cache.md"

#: the process's frame around the documented ``http { }`` contents: everything in the
#: test's directory, and a log line per request (URI, status, cache status, upstream,
#: time taken)
FRAME = """\
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format cache '$request_uri $status $upstream_cache_status $upstream_addr $request_time';
    access_log {root}/access.log cache;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{documented}
}}
"""


def documented_conf(root: Path, upstream_port: int, port: int) -> str:
    """docs/http-cache.md's nginx configuration, pointed at the test's node, port and
    directory: the test runs what the operator is told to run."""
    text = DOC.read_text()
    block = text.split("```nginx\n", 1)[1].split("```", 1)[0]
    replaced = (
        block.replace("/var/cache/nginx/strom", str(root / "cache"))
        .replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    assert replaced.count(str(root)) == 1, "docs/http-cache.md: no proxy_cache_path?"
    assert f":{port};" in replaced, "docs/http-cache.md: no listen 80?"
    # Under root nginx's workers would run as nobody, who cannot enter the test's
    # private temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return FRAME.format(user=user, root=root, documented=replaced)


def nginx_binary() -> str:
    """Debian installs nginx in /usr/sbin (not on a user's PATH); skip or fail like
    :func:`~tests.helpers.media.need_tool`."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (scripts/bootstrap test installs it)")
        pytest.skip("nginx not installed (run scripts/bootstrap test)")
    return found


@dataclass(frozen=True)
class Logged:
    """One request as nginx logged it."""

    uri: str
    status: int
    #: HIT, MISS, EXPIRED, REVALIDATED... or "-" (not cacheable here)
    cache: str
    #: whether nginx passed the request to the node
    upstream: bool
    #: from the request's first byte to the answer's last
    seconds: float


class CachingProxy:
    """``async with CachingProxy(root, upstream_port) as proxy``: nginx on ``proxy.base``."""

    def __init__(self, root: Path, upstream_port: int) -> None:
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._conf = root / "nginx.conf"
        self._conf.write_text(documented_conf(root, upstream_port, self.port))
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> CachingProxy:
        binary = nginx_binary()
        errors = str(self.root / "error.log")
        self._proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(self._conf), "-p", str(self.root), "-e", errors,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(f"nginx exited: {self.errors()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, the master exits
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def errors(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> list[Logged]:
        """Every request so far (nginx writes a line as each one completes)."""
        path = self.root / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            uri, status, cache, upstream, seconds = line.split(" ")
            entries.append(Logged(uri, int(status), cache, upstream != "-", float(seconds)))
        return entries
