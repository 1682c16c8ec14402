"""``--role edge`` on a node alone (no Redis): every ingest door refuses a publisher with
the reason, in its own protocol; viewers' pages and the API work as on any node."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp

from strom.server import StromServer
from tests.helpers import STREAM_KEY, MediaFile, make_settings, publish_args, run_process
from tests.helpers.servers import free_port


async def test_an_edge_refuses_publishers_at_every_door(
    tmp_path: Path, av_media: MediaFile
) -> None:
    tcp_port = free_port()
    server = StromServer(make_settings(tmp_path, role="edge", tcp_ingest={tcp_port: "alice"}))
    await server.start()
    base = f"http://127.0.0.1:{server.http_port}"
    try:
        # RTMP: NetStream.Publish.BadName with the reason (ffmpeg prints it).
        code, out = await run_process(*publish_args(av_media, server.rtmp_port), timeout=30)
        assert code != 0
        assert "this node only serves viewers (role edge)" in out, out

        async with aiohttp.ClientSession() as http:
            # HTTP push: 403 and the reason as JSON.
            media = av_media.path.read_bytes()[:50_000]
            async with http.put(f"{base}/ingest/{STREAM_KEY}", data=media) as resp:
                assert resp.status == 403
                assert "role edge" in (await resp.json())["error"]
            # WebSocket push (the browser's go-live): closed 1008 with the reason.
            async with http.ws_connect(f"{base}/ingest/ws") as ws:
                await ws.send_json({"type": "start", "mime": "video/x-flv", "key": STREAM_KEY})
                first = await ws.receive(timeout=10)
                assert first.type is aiohttp.WSMsgType.TEXT
                assert "role edge" in json.loads(first.data)["reason"]
                async with asyncio.timeout(10):
                    async for _ in ws:
                        pass
                assert ws.close_code == 1008
            # Raw TCP push: hung up on (reset).
            reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
            writer.write(media)
            async with asyncio.timeout(10):
                with contextlib.suppress(ConnectionResetError):
                    assert await reader.read() == b""
            writer.close()

            # Viewers are served as on any node.
            async with http.get(f"{base}/api/v1/streams") as resp:
                assert resp.status == 200
                assert (await resp.json())["streams"] == []
            async with http.get(f"{base}/api/v1/stats") as resp:
                cluster = (await resp.json())["cluster"]
                assert cluster == {"role": "edge", "node_url": base}
        assert server.registry.get("alice") is None
        assert server.push.metrics()["refused"] == 3
    finally:
        await server.stop()
