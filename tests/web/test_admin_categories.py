"""Categories with box art, by administrators: added, renamed, merged and deleted through
``/api/v1/admin`` and the ``/admin/categories`` form; box art re-encoded server-side and
shown on /categories and the category's page; uploads bounded (bytes, pixels) and
non-pictures refused; a hostile category name stays text."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import aiohttp
import av
import pytest

from strom.record.pictures import ART_HEIGHT, ART_MAX_BYTES
from strom.server import StromServer
from tests.helpers.pictures import png, png_bomb
from tests.helpers.web import Browser

PASSWORD = "a long enough password"
ADMIN = "/api/v1/admin"
XSS = '"><img src=x onerror=alert(1)>'


@pytest.fixture
async def admin(server: StromServer) -> AsyncIterator[Browser]:
    store = server.store
    assert store is not None
    await store.users.create("operator", PASSWORD, admin=True)
    browser = Browser(server)
    await browser.get("/login")
    status, _ = await browser.post("/login", {"username": "operator", "password": PASSWORD})
    assert status == 200
    yield browser
    await browser.close()


def picture_size(jpeg: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def test_box_art_shows_on_the_categories_pages(server: StromServer, admin: Browser) -> None:
    status, body = await admin.api("POST", f"{ADMIN}/categories", json={"name": "Silksong"})
    assert status == 201
    assert body == {"slug": "silksong", "name": "Silksong", "is_game": True, "art_url": None}
    status, body = await admin.api(
        "PUT", f"{ADMIN}/categories/silksong/art", data=io.BytesIO(png(600, 900, noise=True))
    )
    assert status == 200
    assert isinstance(body, dict)
    art_url = body["art_url"]
    assert re.fullmatch(r"/categories/silksong/art/[0-9a-f]{16}\.jpg", art_url)

    # The directory browses by game with the picture: the categories page (busiest first)
    # and the category's own page.
    _, html = await admin.get("/categories")
    assert f'<img class="category-art" src="{art_url}"' in html
    _, html = await admin.get("/categories/silksong")
    assert f'src="{art_url}"' in html
    status, api = await admin.api("GET", "/api/v1/categories")
    assert isinstance(api, dict)
    assert {"slug": "silksong", "art_url": art_url}.items() <= next(
        c for c in api["categories"] if c["slug"] == "silksong"
    ).items()
    async with admin.http.get(admin.base + art_url) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        assert "immutable" in resp.headers["Cache-Control"]
        jpeg = await resp.read()
    assert picture_size(jpeg) == (252, ART_HEIGHT)  # 2:3 fitted in the 3:4 box
    async with admin.http.get(admin.base + "/categories/silksong/art/0000000000000000.jpg") as r:
        assert r.status == 404

    # A new picture through the admin page's form (a multipart upload past the app's
    # 64 KiB body limit): a new URL.
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf)
    form.add_field("name", "Hollow Knight: Silksong")
    form.add_field("is_game", "1")
    big = png(800, 600, noise=True)
    assert len(big) > 1 << 20
    form.add_field("art", io.BytesIO(big), filename="cover.png", content_type="image/png")
    async with admin.http.post(f"{admin.base}/admin/categories/silksong/edit", data=form) as resp:
        assert resp.status == 200, await resp.text()
        html = await resp.text()
    assert "Saved Hollow Knight: Silksong." in html
    store = server.store
    assert store is not None
    renamed = await store.channels.category("hollow-knight-silksong")
    assert renamed is not None
    assert renamed.art is not None
    assert renamed.art not in art_url


async def test_uploads_are_bounded_and_pictures_only(admin: Browser) -> None:
    art = f"{ADMIN}/categories/chess/art"
    status, body = await admin.api("PUT", art, data=png_bomb())
    assert status == 413
    assert body == {"error": "the picture has 60000x60000 pixels, more than 40,000,000 in all"}
    status, body = await admin.api("PUT", art, data=b'<svg onload="alert(1)"/>')
    assert (status, body) == (415, {"error": "not a picture: send a JPEG, PNG or WebP image"})
    status, body = await admin.api("PUT", art, data=b"\x89PNG\r\n\x1a\n broken")
    assert status == 400
    async with admin.http.put(
        admin.base + art,
        data=io.BytesIO(b"\xff\xd8\xff" + bytes(ART_MAX_BYTES + 128 * 1024)),
        headers={"X-CSRF-Token": admin.csrf},
    ) as resp:
        assert resp.status == 413
    # The page's form says the same in a sentence, and nothing was added.
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf)
    form.add_field("name", "Bombs")
    form.add_field("art", png_bomb(), filename="bomb.png", content_type="image/png")
    async with admin.http.post(f"{admin.base}/admin/categories", data=form) as resp:
        assert resp.status == 413
        assert "The picture has 60000x60000 pixels" in await resp.text()
    status, api = await admin.api("GET", "/api/v1/categories")
    assert isinstance(api, dict)
    assert not [c for c in api["categories"] if c["art_url"] or c["slug"] == "bombs"]
    # A stranger's upload is held to the app's 64 KiB: refused before its body is read.
    async with aiohttp.ClientSession() as stranger:
        for path in (art, "/admin/categories"):
            async with stranger.put(admin.base + path, data=bytes(256 * 1024)) as resp:
                assert resp.status == 413


async def test_rename_merge_delete_and_a_hostile_name(server: StromServer, admin: Browser) -> None:
    store = server.store
    assert store is not None
    await store.users.create("streamer", PASSWORD)
    status, body = await admin.api("POST", f"{ADMIN}/categories", json={"name": XSS})
    assert status == 201
    assert isinstance(body, dict)
    hostile = body["slug"]
    await store.channels.update("streamer", category_slug=hostile)
    for page in ("/categories", "/admin/categories"):
        _, html = await admin.get(page)
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<img src=x" not in html

    status, body = await admin.api("POST", f"{ADMIN}/categories", json={"name": "Chess"})
    assert (status, body) == (409, {"error": "there is already a category 'chess'"})
    status, body = await admin.api(
        "PATCH", f"{ADMIN}/categories/{hostile}", json={"name": "CS2", "is_game": True}
    )
    assert status == 200
    status, body = await admin.api(
        "POST", f"{ADMIN}/categories/cs2/merge", json={"into": "counter-strike-2"}
    )
    assert status == 200
    assert isinstance(body, dict)
    assert body["name"] == "Counter-Strike 2"
    channel = await store.channels.get("streamer")
    assert channel is not None
    assert channel.category is not None
    assert channel.category.slug == "counter-strike-2"
    assert await store.channels.category("cs2") is None

    status, html = await admin.post("/admin/categories/counter-strike-2/delete", {})
    assert status == 200
    assert "Deleted counter-strike-2." in html
    channel = await store.channels.get("streamer")
    assert channel is not None
    assert channel.category is None
    status, body = await admin.api("DELETE", f"{ADMIN}/categories/counter-strike-2")
    assert (status, body) == (404, {"error": "no category 'counter-strike-2'"})
