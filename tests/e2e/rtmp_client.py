"""A small asyncio RTMP client over Strom's own sans-IO client session, for tests that
need to misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from strom.media.rtmp import ClientState, RtmpClientSession, StatusReceived


class RtmpTestClient:
    def __init__(self, port: int) -> None:
        self.port = port
        self.session = RtmpClientSession()
        self.events: list[Any] = []
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def pump(self, until: Any, timeout: float = 5.0) -> None:
        """Read and answer until ``until()`` is true."""
        async with asyncio.timeout(timeout):
            while not until():
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.events += self.session.receive_data(data)
                await self.flush()

    async def connect(self, app: str = "live") -> None:
        await self.open()
        self.session.connect(app, f"rtmp://127.0.0.1:{self.port}/{app}")
        await self.flush()
        await self.pump(
            lambda: (
                self.session.state is not ClientState.HANDSHAKE
                and any(type(e).__name__ == "ConnectResult" for e in self.events)
            )
        )

    async def publish(self, key: str) -> StatusReceived:
        self.session.publish(key)
        await self.flush()
        await self.pump(lambda: self.status() is not None)
        status = self.status()
        assert status is not None
        return status

    def status(self) -> StatusReceived | None:
        found = [e for e in self.events if isinstance(e, StatusReceived)]
        return found[-1] if found else None

    async def closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server has closed the connection (EOF or reset)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            pass
        await self.aclose()
        return True

    async def read_until_closed(self, timeout: float = 10.0) -> None:
        """Read what the server says (its events land in ``events``) until it closes."""
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(timeout):
                while data := await self.reader.read(65536):
                    self.events += self.session.receive_data(data)
        await self.aclose()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
