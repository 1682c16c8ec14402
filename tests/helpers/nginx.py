"""Debian's nginx as an ordinary HTTP cache in front of a test node: its own process on a
free loopback port, with its configuration, cache, temp files and logs in a temporary
directory (never the system service), and an access log the test reads to see which
answers came from the cache and which were passed to the node."""

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

#: the cache's part of docs/http-cache.md's configuration, plus a header telling the
#: cache status and a log line per request (URI, status, cache status, upstream, time taken)
CONF = """\
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

    proxy_cache_path {root}/cache keys_zone=strom:10m max_size=1g inactive=10m
                     use_temp_path=off;
    upstream strom {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/(live|vod)/ {{
            proxy_pass http://strom;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_cache strom;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
            proxy_cache_lock_age 10s;
            proxy_cache_revalidate on;
            proxy_cache_valid 200 1s;
            proxy_read_timeout 30s;
            proxy_buffering on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
        location / {{
            proxy_pass http://strom;
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


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
        # Under root nginx's workers would run as nobody, who cannot enter the test's
        # private temporary directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = CONF.format(user=user, root=root, upstream=upstream_port, port=self.port)
        self._conf.write_text(conf)
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
