"""Go-live webhooks against a real HTTP receiver on loopback that checks the signature the
way a follower's service would: called when a followed channel goes live (through the real
server and its hub), retried once, never redirected, and refused for private addresses
unless allowed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from strom.live.channel import Channel
from strom.media.model import Frame, Track
from strom.notify import WebhookLimits, WebhookSender
from strom.notify.webhooks import is_public_address
from strom.server import StromServer
from tests.helpers import MediaFile, make_settings
from tests.helpers.hub import read_flv

PASSWORD = "a long enough password"
WAIT = 5.0


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool  # the signature matched the receiver's secret for that path


@dataclass
class Receiver:
    """A follower's service: checks ``X-Strom-Signature`` with its own HMAC code."""

    secrets: dict[str, str] = field(default_factory=dict)
    #: statuses to answer on a path, in turn (then 200)
    answers: dict[str, list[int]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        secret = self.secrets.get(request.path, "")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        signature = request.headers.get("X-Strom-Signature", "")
        self.calls.append(
            Call(request.path, dict(request.headers), body,
                 hmac.compare_digest(expected, signature))
        )  # fmt: skip
        self.arrived.set()
        if request.path == "/slow":
            await asyncio.sleep(1)
        planned = self.answers.get(request.path)
        status = planned.pop(0) if planned else 200
        if status == 302:
            raise web.HTTPFound("/elsewhere")
        return web.Response(status=status)

    def on(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def wait_for(self, path: str, count: int = 1) -> list[Call]:
        async with asyncio.timeout(WAIT):
            while len(self.on(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.on(path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    found.port = server.sockets[0].getsockname()[1]
    yield found
    await runner.cleanup()


def go_live(channel: Channel, items: list[Track | Frame]) -> None:
    channel.claim(publisher := object())
    for item in items:
        if channel.live:
            break
        if isinstance(item, Track):
            channel.set_track(item)
        else:
            channel.add_frame(item)
    assert channel.live
    channel.release(publisher)


async def test_followers_webhooks_are_called_when_the_channel_goes_live(
    tmp_path: Path,
    receiver: Receiver,
    video_only_media: MediaFile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(
        tmp_path, webhook_allow_private=True, public_url="https://strom.example/"
    )
    server = StromServer(settings)
    await server.start()
    try:
        store = server.store
        assert store is not None
        await store.users.create("Caster", PASSWORD)
        await store.channels.update("Caster", title="Speedrun ⚡")
        for name in ("fan_a", "fan_b", "stranger"):
            await store.users.create(name, PASSWORD)
        for fan in ("fan_a", "fan_b"):
            await store.follows.follow(fan, "Caster")
        for name in ("fan_a", "fan_b", "stranger"):
            secret = await store.webhooks.set(name, receiver.url(f"/{name}?token=t0ps3cret"))
            assert secret is not None
            receiver.secrets[f"/{name}"] = secret
        receiver.answers["/fan_b"] = [503]  # a hiccup: retried once

        go_live(server.registry.open("Caster"), read_flv(video_only_media.path))

        (call,) = await receiver.wait_for("/fan_a")
        assert call.valid
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["X-Strom-Event"] == "live"
        assert call.headers["X-Strom-Timestamp"].isdigit()
        body = json.loads(call.body)
        assert body["event"] == "live"
        assert body["channel"] == "Caster"
        assert body["title"] == "Speedrun ⚡"
        assert body["url"] == "https://strom.example/Caster"
        assert datetime.fromisoformat(body["started_at"]).tzinfo is not None

        first, retry = await receiver.wait_for("/fan_b", 2)
        assert first.valid
        assert retry.valid
        assert retry.body == first.body
        assert retry.headers["X-Strom-Delivery"] == first.headers["X-Strom-Delivery"]
        await asyncio.sleep(0.2)
        assert receiver.on("/stranger") == []  # follows nobody
        for record in caplog.records:
            for secret in receiver.secrets.values():
                assert secret not in record.getMessage()
            assert "t0ps3cret" not in record.getMessage()
    finally:
        await server.stop()


async def test_private_addresses_are_refused_by_default(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sender = WebhookSender(_Source([]), WebhookLimits(retry_delay=0.01))
    body = b'{"event":"live"}'
    try:
        for host in ("127.0.0.1", "localhost", "[::1]"):
            assert not await sender.deliver(receiver.url("/hook", host), "s3cret", body)
    finally:
        await sender.stop()
    assert receiver.calls == []
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 3
    assert all("public address" in line for line in failures)
    assert not any("s3cret" in line or "/hook" in line for line in failures)


# IPv6 addresses that lead to a private IPv4 one (or to IPv4 by a deprecated or site-local
# translation), each refused; and their public twins, allowed.
IPV6_TO_PRIVATE = [
    "::7f00:1",  # IPv4-compatible 127.0.0.1 (was accepted: is_global says True)
    "::a00:1",  # IPv4-compatible 10.0.0.1
    "::8.8.8.8",  # IPv4-compatible at all: deprecated, refused outright
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:0:7f00:1",  # SIIT IPv4-translated
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b:1::808:808",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo
]
IPV6_PUBLIC = ["::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2606:4700::1111"]


def test_ipv6_forms_of_private_ipv4_addresses_are_not_public() -> None:
    for address in IPV6_TO_PRIVATE:
        assert not is_public_address(address), address
    for address in IPV6_PUBLIC:
        assert is_public_address(address), address


async def test_ipv6_literals_leading_to_loopback_are_refused(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sender = WebhookSender(_Source([]), WebhookLimits(retry_delay=0.01))
    try:
        for address in ("::7f00:1", "::ffff:7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::1"):
            url = f"http://[{address}]:{receiver.port}/hook"
            assert not await sender.deliver(url, "s3cret", b"{}")
    finally:
        await sender.stop()
    assert receiver.calls == []
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 4
    assert all("not a public address" in line for line in refusals)


async def test_no_redirects_no_retry_for_client_errors_one_for_timeouts(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    limits = WebhookLimits(allow_private=True, timeout=0.5, retry_delay=0.01)
    sender = WebhookSender(_Source([]), limits)
    body = b'{"event":"live"}'
    receiver.answers = {"/moved": [302], "/gone": [404]}
    try:
        assert not await sender.deliver(receiver.url("/moved"), "s", body)
        assert not await sender.deliver(receiver.url("/gone"), "s", body)
        assert not await sender.deliver(receiver.url("/slow"), "s", body)
    finally:
        await sender.stop()
    assert len(receiver.on("/moved")) == 1
    assert receiver.on("/elsewhere") == []  # the redirect is not followed
    assert len(receiver.on("/gone")) == 1  # a 404 is not worth a retry
    assert len(receiver.on("/slow")) == 2  # a timeout is, once
    lines = " ".join(r.getMessage() for r in caplog.records)
    assert "do not follow redirects" in lines
    assert "answered 404" in lines
    assert "no answer within 0.5 s" in lines


async def test_a_channel_going_live_again_soon_notifies_once(receiver: Receiver) -> None:
    source = _Source([(receiver.url("/fan"), "secret")])
    receiver.secrets["/fan"] = "secret"
    sender = WebhookSender(source, WebhookLimits(allow_private=True))
    try:
        sender.went_live("Caster", "first", 1_700_000_000.0)
        sender.went_live("caster", "again", 1_700_000_060.0)
        (call,) = await receiver.wait_for("/fan")
        await asyncio.sleep(0.2)
    finally:
        await sender.stop()
    assert call.valid
    assert json.loads(call.body)["started_at"] == "2023-11-14T22:13:20Z"
    assert source.asked == ["Caster"]


class _Source:
    def __init__(self, hooks: list[tuple[str, str]]) -> None:
        self.hooks = hooks
        self.asked: list[str] = []

    async def for_followers(self, channel: str) -> list[tuple[str, str]]:
        self.asked.append(channel)
        return self.hooks
