"""Behind a reverse proxy: ``X-Forwarded-For/-Proto/-Host`` and ``Forwarded`` say who the
client is, but only from ``--trusted-proxies``. A viewer who sends a made-up
X-Forwarded-For straight to the server is still counted under its own address by the
per-address viewer limit; through a trusted proxy each client has its own share, and the
site's absolute links use the scheme and host the client typed."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from strom.web.forwarded import client_of
from tests.helpers import CHANNEL, make_settings

CLOSE_FULL = 1013  # too many viewers from one address


async def start(tmp_path: Path, trusted: str) -> StromServer:
    srv = StromServer(
        make_settings(tmp_path, trusted_proxies=trusted, ws_max_viewers_per_address=1)
    )
    await srv.start()
    return srv


@pytest.fixture
async def untrusting(tmp_path: Path) -> AsyncIterator[StromServer]:
    """Trusts a proxy elsewhere, not the loopback clients of the test."""
    srv = await start(tmp_path, "10.9.9.9/32")
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def behind_proxy(tmp_path: Path) -> AsyncIterator[StromServer]:
    """Trusts loopback: the test plays the proxy."""
    srv = await start(tmp_path, "127.0.0.1")
    try:
        yield srv
    finally:
        await srv.stop()


async def second_viewer_close(
    srv: StromServer, first: str, second: str, header: str = "X-Forwarded-For"
) -> int | None:
    """Two viewers of one channel, each claiming an address in ``header``: the second
    one's close code once its first message is in (None: it is watching)."""
    url = f"http://127.0.0.1:{srv.http_port}/live/{CHANNEL}/ws"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={header: first}) as one,
    ):
        await one.receive(timeout=5)  # the first one is in, holding its slot
        async with http.ws_connect(url, headers={header: second}) as two:
            msg = await two.receive(timeout=5)
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            return None


async def page(srv: StromServer, path: str, headers: dict[str, str]) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{srv.http_port}{path}", headers=headers) as resp,
    ):
        assert resp.status == 200
        return await resp.text()


async def test_a_spoofed_forwarded_for_does_not_change_the_address_limited(
    untrusting: StromServer,
) -> None:
    # Two different "clients" by the header, one address by the socket: the second is
    # refused as the limit's second viewer from 127.0.0.1.
    assert await second_viewer_close(untrusting, "203.0.113.5", "203.0.113.6") == CLOSE_FULL
    # The made-up scheme and host do not reach the site's links either.
    text = await page(
        untrusting,
        "/download",
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "Forwarded": ""},
    )
    assert "evil.example" not in text
    assert f"http://127.0.0.1:{untrusting.http_port}/download/" in text


async def test_a_trusted_proxys_clients_are_limited_each_by_their_own_address(
    behind_proxy: StromServer,
) -> None:
    assert await second_viewer_close(behind_proxy, "203.0.113.5", "203.0.113.6") is None
    # the same client twice is that client's second viewer
    assert await second_viewer_close(behind_proxy, "203.0.113.5", "203.0.113.5") == CLOSE_FULL
    # RFC 7239's header counts the same
    assert (
        await second_viewer_close(behind_proxy, "for=1.2.3.4", "for=5.6.7.8", "Forwarded") is None
    )
    code = await second_viewer_close(behind_proxy, "for=1.2.3.4", "for=1.2.3.4", "Forwarded")
    assert code == CLOSE_FULL
    text = await page(
        behind_proxy,
        "/download",
        {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https",
         "X-Forwarded-Host": "tv.example.org"},
    )  # fmt: skip
    assert "https://tv.example.org/download/" in text
    text = await page(
        behind_proxy,
        "/download",
        {"Forwarded": 'for="[2001:db8::7]:4711";proto=https;host=live.example.net'},
    )
    assert "https://live.example.net/download/" in text


PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # the first address from the right that is not a proxy: the client
        ({"X-Forwarded-For": "198.51.100.9, 203.0.113.5, 10.1.2.3"}, "203.0.113.5"),
        # every hop a proxy: the leftmost
        ({"X-Forwarded-For": "10.0.0.1, 10.0.0.2"}, "10.0.0.1"),
        # garbage ends the walk at the trusted hop to its right
        ({"X-Forwarded-For": "not-an-address, 10.0.0.2"}, "10.0.0.2"),
        ({"Forwarded": 'for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"'},
         "2001:db8:cafe::17"),
        ({"Forwarded": "for=unknown"}, None),
        ({"X-Forwarded-For": "203.0.113.5:8000"}, "203.0.113.5"),
    ],
)  # fmt: skip
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    headers: dict[str, str], expected: str | None
) -> None:
    assert client_of(headers, "127.0.0.1", PROXIES).get("remote") == expected


def test_only_well_formed_schemes_and_hosts_are_taken() -> None:
    bad = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "a.org/evil?x=<b>"}
    assert client_of(bad, "127.0.0.1", PROXIES) == {}
    good = {"X-Forwarded-Proto": "wss", "X-Forwarded-Host": "[2001:db8::1]:8443"}
    assert client_of(good, "127.0.0.1", PROXIES) == {
        "scheme": "https",
        "host": "[2001:db8::1]:8443",
    }
