"""The chat in windows of its own: ``/popout/{channel}/chat`` and the OBS overlay
``/overlay/{channel}/chat`` (its ``?fade=`` bounded); no such channel is a 404."""

from __future__ import annotations

import aiohttp

from strom.server import StromServer
from tests.helpers import CHANNEL


async def test_popout_and_overlay_pages(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/popout/{CHANNEL}/chat") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert f'data-ws-path="/chat/{CHANNEL}/ws"' in page
        assert "site-header" not in page  # the chat alone
        assert 'data-chat-action="popout"' not in page  # already popped out
        async with http.get(f"{base}/overlay/{CHANNEL}/chat?fade=5") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'data-fade="5"' in page
        assert "chat-input" not in page  # read-only
        for path, status in (
            (f"/overlay/{CHANNEL}/chat?fade=-1", 400),
            (f"/overlay/{CHANNEL}/chat?fade=99999", 400),
            ("/overlay/nobody-here/chat", 404),
            ("/popout/nobody-here/chat", 404),
            ("/popout/%3Cscript%3E/chat", 404),
        ):
            async with http.get(base + path) as resp:
                assert resp.status == status, path
