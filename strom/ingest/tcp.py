"""Raw TCP push: ``--tcp-ingest PORT=CHANNEL`` binds a port to one channel.

For the simplest setups (``ffmpeg ... -f mpegts tcp://HOST:PORT``): raw TCP carries no
stream key, so the operator chooses the channel per port (bind it to a trusted network).
The connection carries WebM/Matroska, fragmented MP4, FLV or MPEG-TS, sniffed. EOF ends
the broadcast; a reset or an idle connection leaves it in the reconnect grace; anything
unsupported or corrupt closes the connection with a log line. Nothing is ever sent back;
a connection beyond ``ingest_max_connections_per_address`` from one address is closed at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping

from strom.errors import ProtocolError, PublishRefused
from strom.ingest.push import PushIngest, PushState
from strom.live.channel import ChannelBusy

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024


class TcpIngest:
    def __init__(self, ingest: PushIngest, ports: Mapping[int, str]) -> None:
        self.ingest = ingest
        self._ports = dict(ports)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        #: (channel, bound port) for each listening socket: port 0 picks a free one
        self.bound: list[tuple[str, int]] = []

    async def start(self, host: str, *, reuse_port: bool = False) -> None:
        for port, channel in self._ports.items():
            handler = functools.partial(self._serve, channel)
            server = await asyncio.start_server(
                handler, host, port, limit=READ_SIZE, reuse_port=reuse_port or None
            )
            self._servers.append(server)
            bound = int(server.sockets[0].getsockname()[1])
            self.bound.append((channel, bound))
            log.info("raw TCP push for channel %s on port %d", channel, bound)

    def port(self, channel: str) -> int:
        return next(port for name, port in self.bound if name == channel)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []

    async def _serve(
        self, channel: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        host = str(peername[0]) if peername else ""
        ingest = self.ingest
        loop = asyncio.get_running_loop()
        if ingest.admit(host, "tcp", peer, loop.time()) is not None:
            writer.transport.abort()
            return
        try:
            await self._publish(channel, reader, writer, peer)
        finally:
            ingest.leave(host)

    async def _publish(
        self,
        channel: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        ingest = self.ingest
        if ingest.full:
            ingest.refused()
            log.warning("push tcp %s refused: too many push ingests", peer)
            writer.transport.abort()
            return
        try:
            await ingest.registry.admit(channel)
        except PublishRefused as exc:
            ingest.refused()
            log.warning("push tcp %s to %s refused: %s", peer, channel, exc)
            writer.transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._writers.add(writer)
        pub = ingest.publisher(
            channel, transport="tcp", peer=peer, now=loop.time(),
            close=lambda reason: writer.transport.abort(),
        )  # fmt: skip
        try:
            while True:
                async with asyncio.timeout(pub.read_timeout):
                    data = await reader.read(READ_SIZE)
                if not data:
                    await pub.drain()
                    pub.finish()
                    break
                pub.feed(data, loop.time())
        except ChannelBusy:
            pub.fail(Exception(f"channel {channel} is already live"))
        except ProtocolError as exc:
            pub.fail(exc)
        except TimeoutError:
            pub.lost(f"sent nothing for {pub.read_timeout:g} s")
        except ConnectionError:
            pub.lost("connection reset")
        finally:
            if pub.state is not PushState.ENDED:
                pub.lost("server stopping")
            self._writers.discard(writer)
            writer.transport.abort()
