"""WHIP ingest against the real server: an aiortc publisher goes live and a viewer decodes
its pictures, refusals reach the client with their reason, and DELETE ends the broadcast.

ICE runs on loopback only (``whip_ice_addresses``, which also covers the aiortc client in
this process): no STUN, no other interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from aiortc.contrib.media import MediaPlayer

from strom.client.app import StreamClient
from strom.client.config import ClientConfig, ClientError, Size, parse_server
from strom.client.status import ChatLines, StatusSnapshot
from strom.client.whip import WhipPublisher
from strom.ingest.rtc import ice_configuration
from strom.live.channel import ChannelState
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, make_media
from tests.helpers.servers import serving
from tests.helpers.watching import base, collect_ws, decode, until, wait_live


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of 320x180 H.264 + AAC: decoded and re-encoded by aiortc (H.264 + Opus)."""
    path = tmp_path_factory.mktemp("whip") / "clip.flv"
    make_media(path, seconds=3.0, size="320x180", gop=30, bitrate="300k")
    return path


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    async with serving(tmp_path, whip_ice_addresses="127.0.0.1") as server:
        yield server


async def watch_pictures(server: StromServer, tmp_path: Path, seconds: float) -> None:
    """The channel goes live with H.264 and Opus, and a WebSocket viewer's ``seconds`` of
    it decode to pictures."""
    await wait_live(server, timeout=20)
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    assert {t.codec.value for t in channel.tracks.values()} == {"h264", "opus"}
    out = tmp_path / "viewer.mp4"
    ws_url = base(server).replace("http", "ws") + f"/live/{CHANNEL}/ws"
    with pytest.raises(TimeoutError):
        await collect_ws(ws_url, out, max_seconds=seconds)
    frames, errors = await decode(str(out))
    assert frames >= 10, errors
    # the same broadcast for LL-HLS players: parts of the first segment are listed
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base(server)}/live/{CHANNEL}/index.m3u8") as r,
    ):
        assert r.status == 200
        assert "#EXT-X-PART:" in await r.text()


async def offer_from(address: str, url: str) -> tuple[int, str]:
    """POST an offer (no media) from ``address``: the status and the reason."""
    pc = RTCPeerConnection(ice_configuration(()))
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {STREAM_KEY}"}
    try:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(url, data=pc.localDescription.sdp, headers=headers) as r,
        ):
            body = await r.json() if r.status != 201 else {}
            return r.status, str(body.get("error", ""))
    finally:
        await pc.close()


@pytest.mark.parametrize("codec", ["video/h264", "video/vp8"])
async def test_publish_watch_and_delete(
    server: StromServer, clip: Path, tmp_path: Path, codec: str
) -> None:
    """H.264 passes through; VP8 (a browser without H.264) is transcoded to H.264."""
    player = MediaPlayer(str(clip))
    assert player.video is not None
    assert player.audio is not None
    publisher = WhipPublisher(f"{base(server)}/whip", STREAM_KEY, video_codec=codec)
    try:
        await publisher.start([player.video, player.audio])
        assert publisher.location is not None
        assert "/whip/session/" in publisher.location
        await watch_pictures(server, tmp_path, seconds=1.5)
        # a publisher from another address is refused while this one is live
        assert await offer_from("127.0.0.2", f"{base(server)}/whip/{CHANNEL}") == (
            409,
            f"channel {CHANNEL} is already live",
        )
    finally:
        await publisher.stop()
        player.video.stop()
        player.audio.stop()
    # DELETE ended the broadcast: no reconnect grace
    await until(lambda: (c := server.registry.get(CHANNEL)) is None or not c.live, timeout=5)
    channel = server.registry.get(CHANNEL)
    assert channel is None or channel.state is ChannelState.OFFLINE


async def test_refusals_say_why(server: StromServer) -> None:
    url = f"{base(server)}/whip"
    sdp = {"Content-Type": "application/sdp"}
    key = {"Authorization": f"Bearer {STREAM_KEY}"}
    bearer = {**sdp, **key}
    async with aiohttp.ClientSession() as http:
        bad_key = {**sdp, "Authorization": "Bearer nope"}
        async with http.post(url, data="v=0\r\n", headers=bad_key) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unknown stream key"
        async with http.post(url, data="v=0\r\n", headers=key) as r:
            assert r.status == 415
        async with http.post(url, data="hello", headers=bearer) as r:
            assert r.status == 400
        async with http.post(url, data="v=0\r\n" + "a=x\r\n" * 20_000, headers=bearer) as r:
            assert r.status == 413
        many = "v=0\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" * 2
        async with http.post(url, data=many, headers=bearer) as r:
            assert r.status == 400
            assert "one video and one audio" in (await r.json())["error"]
        async with http.options(url) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "*"
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
        async with http.delete(f"{url}/session/nothing") as r:
            assert r.status == 404
    # a key for another channel than the URL names
    publisher = WhipPublisher(f"{url}/bob", STREAM_KEY)
    with pytest.raises(ClientError, match="401"):
        await publisher.start([])


async def test_dropped_connection_waits_for_the_publisher(server: StromServer, clip: Path) -> None:
    players = [MediaPlayer(str(clip)) for _ in range(3)]
    first = WhipPublisher(f"{base(server)}/whip", STREAM_KEY)
    second = WhipPublisher(f"{base(server)}/whip", STREAM_KEY)
    try:
        await first.start([players[0].video, players[0].audio])
        await wait_live(server, timeout=15)
        channel = server.registry.get(CHANNEL)
        assert channel is not None
        broadcast = channel.broadcast_id
        first.location = None  # gone without DELETE: the peer connection just closes
        await first.stop()
        await until(lambda: channel.state is ChannelState.RECONNECTING, timeout=10)
        # the encoder comes back with a new offer: the same broadcast goes on
        await second.start([players[1].video, players[1].audio])
        await wait_live(server, timeout=15)
        assert channel.broadcast_id == broadcast
        # and again, before its old session is known dead (same address): it takes over
        third = WhipPublisher(f"{base(server)}/whip", STREAM_KEY)
        await third.start([players[2].video, players[2].audio])
        second.location = None
        second, third = third, second
        await third.stop()
        await until(lambda: channel.state is ChannelState.LIVE, timeout=15)
        assert channel.broadcast_id == broadcast
    finally:
        await second.stop()
        for player in players:
            for track in (player.video, player.audio):
                if track is not None:
                    track.stop()


class Quiet:
    """Where ``strom stream`` would draw its status: kept for the assertions."""

    stop_hint = "stop() to stop"

    def __init__(self) -> None:
        self.messages: list[str] = []

    def draw(self, snapshot: StatusSnapshot, chat: ChatLines | None) -> None:
        pass

    def message(self, text: str) -> None:
        self.messages.append(text)


async def test_strom_stream_whip_goes_live_and_stops(server: StromServer, tmp_path: Path) -> None:
    """``strom stream --whip``, in this process so that its ICE stays on loopback too: the
    client's own x264 frames pass through aiortc unencoded again, with Opus audio."""
    config = ClientConfig(
        server=parse_server(base(server)), key=STREAM_KEY, source="test", size=Size(320, 240),
        fps=10, bitrate=400, chat=False, whip=True,
    )  # fmt: skip
    terminal = Quiet()
    client = StreamClient(config, terminal)
    running = asyncio.create_task(client.run())
    try:
        await watch_pictures(server, tmp_path, seconds=2.5)
    finally:
        client.stop()
        async with asyncio.timeout(10):
            assert await running == 0
    assert "stopped: the broadcast has ended" in terminal.messages
    await until(lambda: (c := server.registry.get(CHANNEL)) is None or not c.live, timeout=5)
