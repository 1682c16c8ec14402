"""``/metrics`` as Prometheus scrapes it, read by prometheus-client's own text parser, and
the same numbers as JSON at ``/api/v1/stats``: a channel live from a real ffmpeg over
RTMP, watched by a WebSocket viewer and an RTMP player (ffmpeg), and asked for its
LL-HLS playlist, a blocking reload and a part."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from strom.server import StromServer
from strom.settings import Settings, SettingsError
from tests.helpers import CHANNEL, MediaFile, make_settings, need_tool, publish_args
from tests.helpers.watching import base, wait_live

DOCS = Path(__file__).resolve().parents[2] / "docs"


@contextlib.asynccontextmanager
async def process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class Scrape:
    """One scrape's samples, by name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self._values = {
            (s.name, frozenset(s.labels.items())): s.value
            for f in self.families.values()
            for s in f.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self._values[(name, frozenset(labels.items()))]

    @property
    def sample_names(self) -> set[str]:
        return {name for name, _ in self._values}


async def stats(http: aiohttp.ClientSession, server: StromServer) -> dict[str, Any]:
    async with http.get(base(server) + "/api/v1/stats") as resp:
        assert resp.status == 200
        assert "Set-Cookie" not in resp.headers
        found: dict[str, Any] = await resp.json()
        return found


async def hls_requests(http: aiohttp.ClientSession, live: str) -> None:
    """What an LL-HLS player asks: the playlist, a blocking reload that waits for the
    preload-hinted part, then that part."""
    async with http.get(live + "index.m3u8") as resp:
        assert resp.status == 200
        playlist = await resp.text()
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\w+/part(\d+)\.(\d+)\.m4s)"', playlist)
    assert hint is not None, playlist
    uri, msn, part = hint.groups()
    async with http.get(live + f"index.m3u8?_HLS_msn={msn}&_HLS_part={part}") as resp:
        assert resp.status == 200
    async with http.get(live + uri) as resp:
        assert resp.status == 200
        assert len(await resp.read()) > 0


async def test_a_scrape_sees_viewers_ingest_fan_out_and_hls(
    server: StromServer, av_media: MediaFile
) -> None:
    ffmpeg = need_tool("ffmpeg")
    live = f"{base(server)}/live/{CHANNEL}/"
    rtmp_play = [ffmpeg, "-v", "error", "-i", f"rtmp://127.0.0.1:{server.rtmp_port}/live/"
                 f"{CHANNEL}", "-c", "copy", "-f", "null", "-"]  # fmt: skip
    publish = publish_args(av_media, server.rtmp_port, loop=True)
    async with process(*publish), aiohttp.ClientSession() as http:
        await wait_live(server)
        async with http.ws_connect(live + "ws") as ws, process(*rtmp_play):
            async for msg in ws:  # the init segment, then the first chunk
                if msg.type is aiohttp.WSMsgType.BINARY and msg.data[4:8] == b"moof":
                    break
            await hls_requests(http, live)
            # An encoder with a wrong key is refused over WHIP.
            async with http.post(
                base(server) + "/whip", data="v=0\r\n",
                headers={"Content-Type": "application/sdp", "Authorization": "Bearer nope"},
            ) as resp:  # fmt: skip
                assert resp.status == 401
            # The ingest rates are measured over a few seconds of the publisher's stream.
            async with asyncio.timeout(20):
                while True:
                    numbers = await stats(http, server)
                    (channel,) = numbers["channels"]
                    if channel["bitrate"] > 0 and channel["viewers_by_transport"] == {
                        "ws": 1, "rtmp": 1
                    }:  # fmt: skip
                        break
                    await asyncio.sleep(0.2)
            async with http.get(base(server) + "/metrics") as resp:
                assert resp.status == 200
                assert resp.content_type == "text/plain"
                assert "Set-Cookie" not in resp.headers
                scrape = Scrape(await resp.text())
            # A scraper that asks for OpenMetrics gets it.
            openmetrics_type = "application/openmetrics-text; version=1.0.0"
            async with http.get(
                base(server) + "/metrics", headers={"Accept": openmetrics_type}
            ) as resp:
                assert resp.content_type == "application/openmetrics-text"
                names = {
                    f.name for f in openmetrics.text_string_to_metric_families(await resp.text())
                }
                assert {"strom_viewers", "strom_hls_blocking_wait_seconds"} <= names

    # What the pages and the bench read is still there, as JSON.
    assert channel["name"] == CHANNEL
    assert channel["state"] == "live"
    assert channel["viewers"] == 2
    assert numbers["ws_viewers"] == 1
    assert numbers["loop_lag_ms"] >= 0

    assert scrape("strom_viewers", channel=CHANNEL, transport="ws") == 1
    assert scrape("strom_viewers", channel=CHANNEL, transport="rtmp") == 1
    assert scrape("strom_channel_live", channel=CHANNEL) == 1
    # av_media: 640x360 at 30 fps, a few hundred kbit/s
    assert 20 < scrape("strom_ingest_video_frames_per_second", channel=CHANNEL) < 40
    assert scrape("strom_ingest_bitrate_bits_per_second", channel=CHANNEL) > 10_000
    assert scrape("strom_ingest_bytes_total", channel=CHANNEL) > 0
    assert scrape("strom_chunks_fanned_out_total", channel=CHANNEL) > 10
    for transport in ("ws", "rtmp"):
        assert scrape("strom_delivery_sent_bytes_total", transport=transport) > 10_000
        assert scrape("strom_viewer_skips_total", transport=transport) == 0
        assert scrape("strom_viewer_drops_total", transport=transport) == 0
    assert scrape("strom_hls_requests_total", kind="playlist") == 1
    assert scrape("strom_hls_requests_total", kind="blocking_playlist") == 1
    assert scrape("strom_hls_requests_total", kind="part") == 1
    assert scrape("strom_delivery_sent_bytes_total", transport="hls") > 0
    # the reload waited for its part (the part, asked for then, was there)
    assert scrape("strom_hls_blocking_wait_seconds_count") == 1
    assert scrape("strom_hls_blocking_wait_seconds_bucket", le="+Inf") == 1
    assert scrape("strom_hls_blocking_wait_seconds_sum") > 0
    assert scrape("strom_event_loop_lag_samples_seconds_count") > 0
    assert scrape("strom_event_loop_lag_max_seconds") < 1
    assert scrape("strom_http_connections") >= 1
    assert scrape("strom_rtmp_connections") == 2  # the publisher and the player
    assert scrape("strom_whip_refused_total", status="401") == 1
    assert scrape("strom_whip_sessions_started_total") == 0
    assert numbers["whip"]["refused"] == 1
    assert scrape("strom_ladders_running") == 0  # no ladder on this site
    info = scrape.families["strom_info"].samples[0].labels
    assert info["role"] == "all"
    assert scrape("process_cpu_seconds_total") > 0  # the process collector is there too

    # The documentation lists every metric, and the dashboard asks for none that is not.
    listed = (DOCS / "metrics.md").read_text()
    assert [n for n in scrape.families if n.startswith("strom_") and f"`{n}" not in listed] == []
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\b(?:strom|process)_\w+", target["expr"])
    }
    assert asked, "the dashboard queries nothing"
    assert asked - scrape.sample_names == set()


async def test_a_scrape_sees_the_ladder_whose_viewers_count_for_the_source(
    tmp_path: Path, av_media: MediaFile
) -> None:
    settings = make_settings(
        tmp_path, ladder="all", ladder_renditions="144p=100k", ladder_preset="ultrafast",
        ladder_max_lag=3.0,
    )  # fmt: skip
    server = StromServer(settings)
    await server.start()
    try:
        publish = publish_args(av_media, server.rtmp_port, loop=True)
        async with process(*publish), aiohttp.ClientSession() as http:
            await wait_live(server)
            # A viewer the player switched to the 144p rendition.
            async with (
                http.ws_connect(f"{base(server)}/live/{CHANNEL}~144p/ws") as ws,
                asyncio.timeout(30),
            ):
                async for msg in ws:  # the rendition's init segment, then a chunk
                    if msg.type is aiohttp.WSMsgType.BINARY and msg.data[4:8] == b"moof":
                        break
                while True:
                    if (await stats(http, server))["ladder"]["frames_encoded"] >= 30:
                        break
                    await asyncio.sleep(0.2)
                async with http.get(base(server) + "/api/v1/streams") as resp:
                    [card] = (await resp.json())["streams"]
                async with http.get(f"{base(server)}/api/v1/channels/{CHANNEL}") as resp:
                    view = await resp.json()
                async with http.get(base(server) + "/metrics") as resp:
                    scrape = Scrape(await resp.text())
    finally:
        await server.stop()
    # The rendition's viewer is one of the channel's.
    assert (card["username"], card["viewers"]) == (CHANNEL, 1)
    assert view["viewers"] == 1
    assert scrape("strom_ladders_running") == 1
    assert scrape("strom_ladders_started_total") == 1
    assert scrape("strom_ladders_refused_total") == 0
    assert scrape("strom_ladder_source_frames_total", channel=CHANNEL) >= 30
    assert scrape("strom_ladder_encoded_frames_total", channel=CHANNEL, rendition="144p") >= 30
    assert scrape("strom_ladder_skipped_frames_total", channel=CHANNEL) >= 0
    assert scrape("strom_whip_sessions_started_total") == 0
    listed = (DOCS / "metrics.md").read_text()
    assert [n for n in scrape.families if n.startswith("strom_") and f"`{n}" not in listed] == []


async def test_metrics_allow_names_who_may_read_the_numbers(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="metrics_allow"):
        Settings(metrics_allow="not a network")
    for allow, status in (("10.0.0.0/8", 403), ("10.0.0.0/8,127.0.0.0/8,::1", 200)):
        server = StromServer(make_settings(tmp_path, metrics_allow=allow))
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/metrics", "/api/v1/stats"):
                    async with http.get(base(server) + path) as resp:
                        assert resp.status == status, (allow, path)
                        if status == 403:
                            assert "metrics_allow" in (await resp.json())["error"]
                async with http.get(base(server) + "/api/v1/streams") as resp:
                    assert resp.status == 200  # the rest of the API stays public
        finally:
            await server.stop()
