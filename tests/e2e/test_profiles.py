"""Profiles in Chromium against the real server: a streamer uploads an avatar on
/settings/profile (a good picture is shown, cropped and resized; one too large in bytes
or in pixels and a non-picture are refused with the reason), writes a display name, bio
and links (hostile text stays text, links are http(s) and nofollow), and their offline
channel page shows it all with "Last seen"."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest
from playwright.async_api import Browser, Page

from strom.server import StromServer
from tests.e2e.browser import PageLog, screenshot

pytestmark = pytest.mark.e2e

USER = "painter"
PASSWORD = "a long enough password"
HOSTILE = '"><img src=x onerror=alert(1)>'


def png(width: int, height: int) -> bytes:
    """A grey PNG of that size."""
    frame = av.VideoFrame(width, height, "rgb24")
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "rgb24"
    encoder.time_base = Fraction(1, 1)
    out = io.BytesIO()
    for packet in encoder.encode(frame) + encoder.encode(None):
        out.write(bytes(packet))
    return out.getvalue()


async def log_in(browser: Browser, base: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{base}/settings/profile")
    form = page.locator('form[action="/login"]')
    await form.locator('input[name="username"]').fill(USER)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator("button").click()
    await page.wait_for_url(f"{base}/settings/profile")
    return page


async def upload(page: Page, name: str, mime: str, data: bytes) -> str:
    """Pick a file in the avatar input; the status line once the server answered."""
    status = page.locator("[data-role=avatar-status]")
    await page.locator("[data-role=avatar-file]").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    await page.wait_for_function(
        "() => !['', 'Uploading…'].includes("
        "document.querySelector('[data-role=avatar-status]').textContent)",
        timeout=10_000,
    )
    return await status.inner_text()


async def test_profile_avatar_bio_links_and_last_seen(
    server: StromServer, browser: Browser, page_log: PageLog
) -> None:
    assert server.store is not None
    await server.store.users.create(USER, PASSWORD)
    base = f"http://127.0.0.1:{server.http_port}"
    page = await log_in(browser, base, {"width": 1280, "height": 800})
    page_log.attach(page)
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))

    # A good picture (wide: cropped to its middle square) is shown at once, 256x256.
    assert await upload(page, "me.png", "image/png", png(640, 360)) == "Avatar saved."
    image = page.locator("[data-role=avatar-image]")
    await page.wait_for_function(
        "() => document.querySelector('[data-role=avatar-image]').naturalWidth === 256"
    )
    src = await image.get_attribute("src")
    assert src is not None
    served = await page.request.get(f"{base}{src}")
    assert served.status == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert "immutable" in served.headers["cache-control"]
    again = await page.request.get(
        f"{base}{src}", headers={"If-None-Match": served.headers["etag"]}
    )
    assert again.status == 304

    # Refused, with the reason: not a picture, too many bytes, too many pixels.
    status = page.locator("[data-role=avatar-status]")
    said = await upload(page, "notes.png", "image/png", b"these are not pixels " * 50)
    assert said == "That is not a picture: upload a JPEG, PNG or WebP."
    assert "form-error" in (await status.get_attribute("class") or "")
    big = b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024)
    assert await upload(page, "big.png", "image/png", big) == "The picture is larger than 2 MiB."
    huge = png(5000, 4000)  # small in bytes, 20 million pixels
    assert await upload(page, "huge.png", "image/png", huge) == (
        "The picture is 5000x4000 pixels: at most 16 million pixels."
    )
    assert await image.get_attribute("src") == src  # the good one stays
    # The API says the same in JSON.
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = await page.request.post(
        f"{base}/api/v1/me/avatar",
        data=b"<svg/>",
        headers={"X-CSRF-Token": csrf or "", "Content-Type": "image/svg+xml"},
    )
    assert refused.status == 422
    assert (await refused.json())["error"].startswith("That is not a picture")
    anonymous = await browser.new_context()
    try:
        stranger = await anonymous.request.post(f"{base}/api/v1/me/avatar", data=png(8, 8))
        assert stranger.status in (401, 403)
    finally:
        await anonymous.close()
    await screenshot(page, "profile-settings-desktop")

    # Display name, bio, links: a javascript: link is refused, then a good one saved.
    form = page.locator('form[action="/settings/profile"]')
    await form.locator('input[name="display_name"]').fill(HOSTILE)
    await form.locator('textarea[name="bio"]').fill(f"<script>alert(2)</script>\n{HOSTILE}")
    await form.locator('textarea[name="links"]').fill("javascript:alert(3)")
    await form.locator("button").click()
    alert = page.locator(".alert-error")
    assert (await alert.inner_text()).startswith("A link must be an http:// or https:// address")
    await page.locator('textarea[name="links"]').fill("https://example.com/painter\n")
    await page.locator('form[action="/settings/profile"] button').click()
    assert await page.locator(".alert-ok").inner_text() == "Profile saved."

    # The offline channel page: avatar, the name and bio as typed, the link, last seen.
    await page.goto(f"{base}/{USER}")
    assert await page.locator("h1#channel-title").inner_text() == f"{HOSTILE} {USER}"
    assert await page.locator("[data-role=bio]").inner_text() == (
        f"<script>alert(2)</script>\n{HOSTILE}"
    )
    assert await page.locator("img[src=x]").count() == 0
    link = page.locator(".profile-links a")
    assert await link.get_attribute("href") == "https://example.com/painter"
    assert await link.get_attribute("rel") == "nofollow noopener"
    assert await link.inner_text() == "example.com/painter"
    seen = page.locator("[data-role=last-seen]")
    assert await seen.is_visible()
    assert (await seen.inner_text()).startswith("Last seen ")
    await page.wait_for_function(
        "() => document.querySelector('.channel-info .avatar img')?.naturalWidth === 256"
    )
    profile = await (await page.request.get(f"{base}/api/v1/channels/{USER}")).json()
    assert profile["profile"]["display_name"] == HOSTILE
    assert profile["profile"]["last_online"] is not None
    await screenshot(page, "profile-channel-desktop")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_role("tab", name="About").click()
    await screenshot(page, "profile-channel-phone")
    await page.goto(f"{base}/settings/profile")
    await screenshot(page, "profile-settings-phone")
    assert dialogs == []
    assert not page_log.errors, page_log.errors
