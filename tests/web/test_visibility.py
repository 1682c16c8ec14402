"""Unlisted and private channels, on every delivery path of a real node fed real media:
the watch and channel pages, the WebSocket, LL-HLS (playlist, part, segment, init),
LL-DASH, RTMP play, the recordings (playlist, segment, MP4, thumbnail), the live
thumbnail, the API's lists, and the chat (its WebSocket, its pop-out and overlay windows,
the Socket.IO door). Each path is asked as a stranger (no token, a forged token), as a
follower, as the streamer, and with the password."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from strom.channels.access import Verdict, Viewer
from strom.media.rtmp import StatusReceived
from strom.media.uri_query import manifest_with_query, playlist_with_query
from strom.server import StromServer
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers import MediaFile
from tests.helpers.hub import feed, read_flv
from tests.helpers.servers import make_settings, seed_data_dir
from tests.helpers.socketio_app import App
from tests.helpers.watching import base, collect_ws, decode
from tests.helpers.web import Browser

STREAMER = "carla"
PRIVATE_NO_STORE = "private, no-store"
TOKEN = re.compile(r'data-hls-path="/live/carla/master\.m3u8\?token=([^"]+)"')


@dataclass
class Cast:
    server: StromServer
    streamer: Browser
    follower: Browser
    stranger: Browser


@pytest.fixture
async def cast(tmp_path: Path) -> AsyncIterator[Cast]:
    server = StromServer(make_settings(tmp_path))
    await server.start()
    people = [Browser(server, f"127.0.0.{n}") for n in (2, 3, 4)]
    try:
        streamer, follower, stranger = people
        await streamer.register(STREAMER)
        await follower.register("fan_one")
        await stranger.register("someone")
        status, _ = await follower.api("POST", f"/api/v1/channels/{STREAMER}/follow")
        assert status == 200
        yield Cast(server, streamer, follower, stranger)
    finally:
        for person in people:
            await person.close()
        await server.stop()


async def go_live(server: StromServer, media: MediaFile) -> object:
    channel = server.registry.open(STREAMER)
    channel.claim(publisher := object())  # type: ignore[arg-type]
    feed(channel, read_flv(media.path))
    async with asyncio.timeout(10):  # listed once its info is read (went live)
        while STREAMER not in server.directory.infos:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return publisher


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def set_visibility(who: Browser, **body: object) -> None:
    status, answer = await who.api("PATCH", "/api/v1/me/channel", json=body)
    assert status == 200, answer


async def rtmp_play(server: StromServer, name: str) -> StatusReceived:
    client = RtmpTestClient(server.rtmp_port)
    await client.connect()
    client.session.play(name)
    await client.flush()
    try:
        await client.pump(lambda: client.status() is not None)
    finally:
        await client.aclose()
    status = client.status()
    assert status is not None
    return status


def test_the_token_is_written_into_every_uri_of_a_playlist_and_a_manifest() -> None:
    playlist = (
        b'#EXTM3U\n#EXT-X-MAP:URI="abc/init-0.mp4"\n#EXTINF:2.0,\nabc/seg1.m4s\n'
        b'#EXT-X-PART:DURATION=0.5,URI="abc/part2.0.m4s"\n'
        b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="abc/part2.1.m4s?x=1"\n'
    )
    assert playlist_with_query(playlist, "token=T") == (
        b'#EXTM3U\n#EXT-X-MAP:URI="abc/init-0.mp4?token=T"\n#EXTINF:2.0,\nabc/seg1.m4s?token=T\n'
        b'#EXT-X-PART:DURATION=0.5,URI="abc/part2.0.m4s?token=T"\n'
        b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="abc/part2.1.m4s?x=1&token=T"\n'
    )
    mpd = b'<SegmentTemplate initialization="v/t1-init.mp4" media="v/t1-$Number$.m4s"/>'
    assert manifest_with_query(mpd, "token=T") == (
        b'<SegmentTemplate initialization="v/t1-init.mp4?token=T" '
        b'media="v/t1-$Number$.m4s?token=T"/>'
    )


async def test_a_private_channel_plays_only_for_those_it_lets_in(
    cast: Cast, av_media: MediaFile, tmp_path: Path
) -> None:
    server = cast.server
    await set_visibility(cast.streamer, visibility="private", watch_password="open sesame")
    publisher = await go_live(server, av_media)
    root = base(server)

    # The pages: the stranger sees "This stream is private" and the password field; the
    # follower and the streamer get the player with a media token.
    for page in (f"/live/{STREAMER}", f"/{STREAMER}", f"/embed/{STREAMER}"):
        status, html = await cast.stranger.get(page)
        assert status == 403, page
        assert "This stream is private" in html, page
        assert 'name="password"' in html
        assert TOKEN.search(html) is None
    _, html = await cast.follower.get(f"/live/{STREAMER}")
    found = TOKEN.search(html)
    assert found is not None
    token = found.group(1)
    _, html = await cast.streamer.get("/dashboard")
    assert "preview=1&token=" in html  # the preview plays too

    # The media: without a token (or with a forged one) nothing; with it, everything, for
    # no shared cache.
    live = f"{root}/live/{STREAMER}/"
    status, headers, body = await get(live + f"index.m3u8?token={token}")
    assert status == 200
    assert headers["Cache-Control"] == PRIVATE_NO_STORE
    playlist = body.decode()
    uris = re.findall(r'URI="([^"]+)"', playlist) + [
        line for line in playlist.splitlines() if line and not line.startswith("#")
    ]
    assert uris, playlist
    assert all(uri.endswith(f"token={token}") for uri in uris), playlist
    init = re.findall(r'#EXT-X-MAP:URI="([^"?]+)', playlist)[0]
    segment = next(u for u in uris if "/seg" in u).partition("?")[0]
    part = re.findall(r'#EXT-X-PART:.*URI="([^"?]+)', playlist)[0]
    status, headers, body = await get(live + f"index.mpd?token={token}")
    assert status == 200
    assert headers["Cache-Control"] == PRIVATE_NO_STORE
    assert f"token={token}" in body.decode()
    status, headers, body = await get(live + f"master.m3u8?token={token}")
    assert status == 200
    assert headers["Cache-Control"] == PRIVATE_NO_STORE
    variants = [line for line in body.decode().splitlines() if line and line[0] != "#"]
    assert variants == [f"index.m3u8?token={token}"], body  # the source, no ladder here
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for path in ("master.m3u8", "index.m3u8", "index.mpd", init, segment, part):
        for query in ("", f"?token={forged}", "?token=1.x"):
            status, headers, _ = await get(live + path + query)
            assert status == 403, path + query
            assert headers["Cache-Control"] == PRIVATE_NO_STORE, path
        status, headers, _ = await get(live + path + f"?token={token}")
        assert status == 200, path
        assert headers["Cache-Control"] == PRIVATE_NO_STORE, path
    frames, _ = await decode(live + f"index.m3u8?token={token}", "-t", "2")
    assert frames > 0

    ws = f"ws://127.0.0.1:{server.http_port}/live/{STREAMER}/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await collect_ws(ws, tmp_path / "refused.mp4", max_seconds=5)
    assert refused.value.status == 403
    texts = await asyncio.wait_for(_first_init(ws + f"?token={token}"), 10)
    assert texts["type"] == "init"

    refusal = await rtmp_play(server, STREAMER)
    assert refusal.code == "NetStream.Play.Failed"
    assert "private" in refusal.description
    allowed = await rtmp_play(server, f"{STREAMER}?token={token}")
    assert allowed.code in ("NetStream.Play.Reset", "NetStream.Play.Start"), allowed

    # The live thumbnail: refused without the token.
    async with asyncio.timeout(15):
        while server.directory.thumbnails.get(STREAMER) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    status, _, _ = await get(f"{root}/thumbnails/{STREAMER}.jpg")
    assert status == 403
    status, headers, _ = await get(f"{root}/thumbnails/{STREAMER}.jpg?token={token}")
    assert status == 200
    assert headers["Cache-Control"] == PRIVATE_NO_STORE

    # A follower's "Following" list has it, its picture with the token.
    _, following = await cast.follower.api("GET", "/api/v1/me/following")
    card = following["channels"][0]  # type: ignore[index]
    assert card["live"] is True
    status, _, _ = await get(root + card["thumbnail_url"])
    assert status == 200

    # Listed nowhere; the channel's API answers its follower, not a stranger.
    for who in (cast.stranger, cast.follower):
        _, streams = await who.api("GET", "/api/v1/streams")
        assert streams == {"streams": [], "total": 0}  # type: ignore[comparison-overlap]
        _, found_by_search = await who.api("GET", f"/api/v1/search?q={STREAMER}")
        assert STREAMER not in str(found_by_search)
    status, _ = await cast.stranger.api("GET", f"/api/v1/channels/{STREAMER}")
    assert status == 403
    status, _ = await cast.stranger.api("GET", f"/oembed?url={root}/{STREAMER}")
    assert status == 404  # not for other sites to show
    status, view = await cast.follower.api("GET", f"/api/v1/channels/{STREAMER}")
    assert status == 200
    assert view["state"] == "live"

    # The password: a wrong one is refused, the right one opens the page.
    status, html = await cast.stranger.post(f"/watch/{STREAMER}/password", {"password": "nope"})
    assert status == 401
    assert "not right" in html
    status, html = await cast.stranger.post(
        f"/watch/{STREAMER}/password", {"password": "open sesame", "next": f"/live/{STREAMER}"}
    )
    assert status == 200
    assert TOKEN.search(html) is not None

    # The recording: the same rule.
    server.registry.get(STREAMER).release(publisher)  # type: ignore[union-attr,arg-type]
    async with asyncio.timeout(15):
        while True:
            status, listing = await cast.follower.api(
                "GET", f"/api/v1/channels/{STREAMER}/recordings"
            )
            done = [r for r in listing["recordings"] if r.get("mp4_url")]  # type: ignore[index]
            if done:
                break
            await asyncio.sleep(0.1)
    anonymous = Browser(server, "127.0.0.5")
    try:
        status, _ = await anonymous.api("GET", f"/api/v1/channels/{STREAMER}/recordings")
        assert status == 403
        # the stranger gave the password: the pass opens the list too
        status, _ = await cast.stranger.api("GET", f"/api/v1/channels/{STREAMER}/recordings")
        assert status == 200
    finally:
        await anonymous.close()
    recording = done[0]
    assert recording["playlist_url"].endswith(f"?token={token}") or "token=" in str(recording)
    vod = f"{root}/vod/{STREAMER}/{recording['id']}"
    status, _, body = await get(vod + "/index.m3u8" + f"?token={token}")
    assert status == 200
    vod_files = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    for path in ("/index.m3u8", "/index.mpd", "/" + vod_files[0].partition("?")[0], ".mp4"):
        status, _, _ = await get(vod + path)
        assert status == 403, path
        status, headers, _ = await get(vod + path + f"?token={token}")
        assert status == 200, path
        assert headers["Cache-Control"] == PRIVATE_NO_STORE, path


async def _first_init(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                return dict(msg.json())
    raise AssertionError("the WebSocket closed without an init")


async def test_an_unlisted_channel_plays_by_link_and_is_listed_nowhere(
    cast: Cast, av_media: MediaFile
) -> None:
    server = cast.server
    await set_visibility(cast.streamer, visibility="unlisted")
    root = base(server)
    async with aiohttp.ClientSession() as http, http.ws_connect(root + "/events/ws") as events:
        publisher = await go_live(server, av_media)
        async with asyncio.timeout(10):  # its going live was announced on the bus
            while server.site.events.published == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await set_visibility(cast.streamer, title="now public", visibility="public")
        # The site hears nothing of the unlisted broadcast, then the public one at once.
        first = await asyncio.wait_for(events.receive_json(), 10)
        assert first["channel"]["visibility"] == "public"
        await set_visibility(cast.streamer, visibility="unlisted")
    _, streams = await cast.stranger.api("GET", "/api/v1/streams")
    assert streams == {"streams": [], "total": 0}  # type: ignore[comparison-overlap]
    _, html = await cast.stranger.get("/")
    assert f'href="/{STREAMER}"' not in html
    _, found = await cast.stranger.api("GET", f"/api/v1/search?q={STREAMER}")
    assert STREAMER not in str(found)
    _, following = await cast.follower.api("GET", "/api/v1/me/following")
    assert following["channels"][0]["live"] is False  # type: ignore[index]
    # By its link: the page, the media (cacheable as any public answer), RTMP play.
    status, html = await cast.stranger.get(f"/live/{STREAMER}")
    assert status == 200
    assert "token=" not in html
    status, headers, _ = await get(f"{root}/live/{STREAMER}/index.m3u8")
    assert status == 200
    assert headers["Cache-Control"] == "no-cache"
    played = await rtmp_play(server, STREAMER)
    assert played.code in ("NetStream.Play.Reset", "NetStream.Play.Start")
    # Public again: listed at once.
    await set_visibility(cast.streamer, visibility="public")
    _, streams = await cast.stranger.api("GET", "/api/v1/streams")
    assert streams["total"] == 1  # type: ignore[index]
    server.registry.get(STREAMER).release(publisher)  # type: ignore[union-attr,arg-type]


async def test_an_edge_pulling_a_private_channel_asks_for_its_token(
    tmp_path: Path, av_media: MediaFile
) -> None:
    """The visibility is in the site's SQL database and the token is signed with the
    site's secret: an edge following the channel from its ingest node refuses and
    allows as the ingest node does."""
    url = f"sqlite+aiosqlite:///{seed_data_dir(tmp_path / 'site') / 'strom.db'}"
    site = {"database_url": url, "secret_key": "a-site-secret-for-two-nodes"}
    origin = StromServer(make_settings(tmp_path / "a", **site))
    await origin.start()
    edge = StromServer(make_settings(tmp_path / "b", upstream=base(origin), **site))
    try:
        await edge.start()
        await origin.store.users.create(STREAMER, "correct horse battery")
        await origin.store.access.set(STREAMER, "private")
        publisher = await go_live(origin, av_media)
        token = await origin.site.access.media_token(STREAMER)
        assert token is not None
        playlist = f"{base(edge)}/live/{STREAMER}/index.m3u8"
        status, headers, _ = await get(playlist)
        assert status == 403
        assert headers["Cache-Control"] == PRIVATE_NO_STORE
        async with asyncio.timeout(10):  # the edge pulls it on the first allowed request
            while (answer := await get(f"{playlist}?token={token}"))[0] != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert f"token={token}" in answer[2].decode()
        refusal = await rtmp_play(edge, STREAMER)
        assert refusal.code == "NetStream.Play.Failed"
        origin.registry.get(STREAMER).release(publisher)  # type: ignore[union-attr,arg-type]
    finally:
        await edge.stop()
        await origin.stop()


async def test_password_guessing_is_bounded_and_never_locks_the_channel(cast: Cast) -> None:
    await set_visibility(cast.streamer, visibility="private", watch_password="open sesame")
    path = f"/watch/{STREAMER}/password"
    await cast.stranger.get(f"/live/{STREAMER}")
    status, _ = await cast.stranger.post(path, {"password": "open sesame"}, csrf=False)
    assert status == 403  # a form of another site cannot post it
    statuses = [(await cast.stranger.post(path, {"password": f"guess {n}"}))[0] for n in range(6)]
    assert statuses == [401] * 5 + [429]
    status, html = await cast.stranger.post(path, {"password": "open sesame"})
    assert status == 429
    assert "Too many attempts" in html
    # Someone else, elsewhere, with the password: in at once.
    friend = Browser(cast.server, "127.0.0.9")
    try:
        await friend.get(f"/live/{STREAMER}")
        status, html = await friend.post(path, {"password": "open sesame"})
        assert status == 200
        assert TOKEN.search(html) is not None
    finally:
        await friend.close()
    # The site's administrators always watch.
    verdict = await cast.server.site.access.may_watch(
        STREAMER, Viewer(username="root", is_admin=True)
    )
    assert verdict is Verdict.WATCH
    assert await cast.server.site.access.may_watch(STREAMER, Viewer()) is Verdict.PASSWORD
    # No password: followers only.
    await set_visibility(cast.streamer, visibility="private", watch_password=None)
    status, html = await cast.stranger.get(f"/live/{STREAMER}")
    assert status == 403
    assert "followers only" in html
    assert 'name="password"' not in html
    status, html = await cast.stranger.post(
        f"/watch/{STREAMER}/follow", {"next": f"/live/{STREAMER}"}
    )
    assert status == 200
    assert TOKEN.search(html) is not None  # followed: watches


async def chat_answer(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[str, int | None, str]:
    """What a chat socket gets first: (the first event's type, None, "") when it is let
    in, ("closed", code, reason) when it is not."""
    async with http.ws_connect(url, headers=headers) as ws:
        msg = await asyncio.wait_for(ws.receive(), 10)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)["type"], None, ""
        return "closed", ws.close_code, msg.extra or ""


async def test_a_private_channels_chat_is_for_those_it_lets_in(cast: Cast) -> None:
    await set_visibility(cast.streamer, visibility="private", watch_password="open sesame")
    root = base(cast.server)
    chat = f"{root}/chat/{STREAMER}/ws"
    refused = ("closed", 1008, "this stream is private")
    assert await chat_answer(cast.stranger.http, chat) == refused
    async with aiohttp.ClientSession() as anonymous:
        assert await chat_answer(anonymous, chat) == refused
        assert await chat_answer(anonymous, f"{chat}?token=1999999999.forged") == refused
    for person in (cast.follower, cast.streamer):
        assert await chat_answer(person.http, chat) == ("welcome", None, "")
    # Another site's page opening the socket with the follower's cookies gets nothing.
    assert await chat_answer(cast.follower.http, chat, Origin="http://elsewhere.example") == (
        refused
    )
    # The media token a page gives lets its player's chat in without a log-in.
    _, html = await cast.follower.get(f"/live/{STREAMER}")
    found = TOKEN.search(html)
    assert found is not None
    async with aiohttp.ClientSession() as anonymous:
        answer = await chat_answer(anonymous, f"{chat}?token={found.group(1)}")
        assert answer == ("welcome", None, "")

    # The streamer's overlay address, for OBS (which has no log-in), carries a chat token.
    _, dashboard = await cast.streamer.get("/dashboard")
    overlay = re.search(r'value="(http://[^"]+/overlay/carla/chat\?token=[^"]+)"', dashboard)
    assert overlay is not None
    assert "carry a key that opens its chat" in dashboard  # told why, and when it ends
    assert "<code>&amp;fade=0</code>" in dashboard  # the address has a query already
    async with aiohttp.ClientSession() as obs:
        async with obs.get(overlay.group(1)) as resp:
            assert resp.status == 200
            page = await resp.text()
        ws_path = re.search(r'data-ws-path="(/chat/carla/ws\?token=[^"]+)"', page)
        assert ws_path is not None
        assert await chat_answer(obs, root + ws_path.group(1)) == ("welcome", None, "")
        for window in ("overlay", "popout"):  # without it: the private page
            async with obs.get(f"{root}/{window}/{STREAMER}/chat") as resp:
                assert resp.status == 403
                assert "This stream is private" in await resp.text()

    # The original apps' Socket.IO door: a guest is refused with the reason.
    app = await App(cast.server).connect()
    try:
        assert (await app.call("join_room", STREAMER))["ok"] is False
        assert (await app.next("error"))["reason"] == "this stream is private"
        # A new password ends every token given before, the overlay's too.
        await set_visibility(cast.streamer, visibility="private", watch_password="new secret")
        async with aiohttp.ClientSession() as obs:
            assert await chat_answer(obs, root + ws_path.group(1)) == refused
        # Public again: anyone chats, on either door.
        await set_visibility(cast.streamer, visibility="public")
        assert await chat_answer(cast.stranger.http, chat) == ("welcome", None, "")
        assert (await app.call("join_room", STREAMER))["ok"] is True
    finally:
        await app.sio.disconnect()
