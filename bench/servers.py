"""The servers under test, as subprocesses on 127.0.0.1: Strom (``python -m strom serve``)
and, where Debian's ``libnginx-mod-rtmp`` is installed, nginx-rtmp as the reference."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.http import STATS_PATH, get_stats

ROOT = Path(__file__).resolve().parent.parent
NGINX_MODULE_GLOBS = (
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/lib*/nginx/modules/ngx_rtmp_module.so",
    "/usr/share/nginx/modules/ngx_rtmp_module.so",
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def wait_tcp(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class ServerProcess:
    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
            )

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except TimeoutError:
            proc.kill()
            proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class StromProcess(ServerProcess):
    name = "strom"

    def __init__(
        self,
        workdir: Path,
        keys: dict[str, str],
        host: str = "127.0.0.1",
        extra_env: dict[str, str] | None = None,
        source: Path = ROOT,
        args: tuple[str, ...] = (),
        name: str = "strom",
    ) -> None:
        self.name = name
        super().__init__(workdir)
        self.host = host
        #: the source tree Strom runs from (another checkout, to compare revisions)
        self.source = source
        self.keys = keys
        self.http_port = free_port(host)
        self.rtmp_port = free_port(host)
        self.extra_env = extra_env or {}
        #: more ``strom serve`` options (``--upstream URL``, ``--workers 2``...)
        self.args = args

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(self.extra_env)
        # all keys through the environment: a --stream-key flag would replace them
        env["STROM_STREAM_KEYS"] = ",".join(f"{c}={k}" for c, k in self.keys.items())
        env["PYTHONPATH"] = str(self.source)
        # Every bench client comes from loopback, hundreds at once: no per-address limits
        # there (an environment variable, which an older Strom from --strom-src ignores).
        env.setdefault("STROM_CONNECTION_LIMIT_EXEMPT", "127.0.0.0/8,::1")
        self._spawn(
            [
                sys.executable,
                "-m",
                "strom",
                "serve",
                "--host",
                self.host,
                "--http-port",
                str(self.http_port),
                "--rtmp-port",
                str(self.rtmp_port),
                "--data-dir",
                str(self.workdir / "data"),
                "--log-level",
                "warning",
                *self.args,
            ],
            env,
            cwd=self.source,
        )
        try:
            await self._until_up()
        except BaseException:
            await self.stop()  # never left running behind a failed start
            raise

    async def _until_up(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if not self.alive():
                raise RuntimeError(f"strom exited at start:\n{self.log_tail()}")
            # (closed before an answer: still starting, or busy; ask again)
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                resp = await get_stats(self.host, self.http_port, timeout=1.0)
                if resp.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"strom did not answer {STATS_PATH}:\n{self.log_tail()}")
            await asyncio.sleep(0.2)
        await wait_tcp(self.host, self.rtmp_port)


def load_generator_exempt(host: str) -> dict[str, str]:
    """The environment that exempts the load generator from Strom's per-address limits:
    it opens thousands of connections from this machine (loopback, or ``host``) and is not
    a hostile client. (A setting in the environment: an older checkout being compared
    ignores one it does not know, where it would refuse an unknown flag.)"""
    networks = ["127.0.0.0/8", "::1"]
    with contextlib.suppress(ValueError):  # a host name: loopback, as good as any
        address = ipaddress.ip_address(host)
        if not address.is_unspecified:
            networks.append(str(address))
    return {"STROM_CONNECTION_LIMIT_EXEMPT": ",".join(dict.fromkeys(networks))}


def find_nginx() -> tuple[str, str] | str:
    """(nginx binary, rtmp module path), or the reason nginx-rtmp cannot be run."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)"
    for pattern in NGINX_MODULE_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return binary, found[0]
    return "the nginx RTMP module is not installed (apt-get install libnginx-mod-rtmp)"


NGINX_CONF = """\
load_module {module};
daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
rtmp {{
    server {{
        listen {host}:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            hls on;
            hls_path {dir}/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    server {{
        listen {host}:{http_port};
        location /hls/ {{
            alias {dir}/hls/;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"""


class NginxProcess(ServerProcess):
    """nginx with one worker process (Strom is one process too), RTMP live + HLS."""

    name = "nginx"
    #: 90 kHz units nginx-rtmp adds to RTMP timestamps in its MPEG-TS (NGX_RTMP_HLS_DELAY)
    HLS_DTS_OFFSET = 63000

    def __init__(self, workdir: Path, binary: str, module: str, host: str = "127.0.0.1") -> None:
        super().__init__(workdir)
        self.binary = binary
        self.module = module
        self.host = host
        self.http_port = free_port(host)
        self.rtmp_port = free_port(host)

    def config(self) -> str:
        return NGINX_CONF.format(
            module=self.module,
            dir=self.workdir,
            host=self.host,
            rtmp_port=self.rtmp_port,
            http_port=self.http_port,
        )

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "hls").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        self._spawn([self.binary, "-p", str(self.workdir), "-c", str(conf)])
        try:
            await wait_tcp(self.host, self.rtmp_port, timeout=10)
        except OSError:
            raise RuntimeError(f"nginx did not start:\n{self.log_tail()}") from None
        if not self.alive():
            raise RuntimeError(f"nginx exited at start:\n{self.log_tail()}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        await super().stop(sig, timeout)
