"""Go-live webhooks in the store: which URLs are accepted, a fresh secret each time one is
set, and who is called when a channel goes live (followers with a webhook, not suspended)."""

from __future__ import annotations

import pytest

from strom.store import InvalidInput, Store, UnknownUser

PASSWORD = "correct horse battery"


async def test_set_replace_and_remove_a_webhook(store: Store) -> None:
    await store.users.create("Fan", PASSWORD)
    assert await store.webhooks.get("fan") is None
    secret = await store.webhooks.set("fan", "  https://hooks.example.org/strom?token=abc  ")
    assert secret is not None
    assert len(secret) == 64
    found = await store.webhooks.get("FAN")
    assert found is not None
    assert found.url == "https://hooks.example.org/strom?token=abc"
    assert "secret" not in repr(found)

    again = await store.webhooks.set("Fan", "http://hooks.example.org:8443/other")
    assert again is not None
    assert again != secret  # setting a URL makes a new secret, shown once
    found = await store.webhooks.get("Fan")
    assert found is not None
    assert found.url == "http://hooks.example.org:8443/other"

    assert await store.webhooks.set("Fan", None) is None
    assert await store.webhooks.get("Fan") is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.org/x",
        "javascript:alert(1)",
        "https://",
        "hooks.example.org/no-scheme",
        "https://hooks.example.org/with space",
        "https://hooks.example.org/\x00",
        "https://hooks.example.org:99999/",
        "https://hooks.example.org/" + "a" * 480,
    ],
)
async def test_urls_strom_will_not_call_are_refused(store: Store, url: str) -> None:
    await store.users.create("Fan", PASSWORD)
    with pytest.raises(InvalidInput) as exc:
        await store.webhooks.set("Fan", url)
    assert exc.value.http_status == 422
    assert exc.value.field == "webhook_url"
    assert await store.webhooks.get("Fan") is None


async def test_unknown_user(store: Store) -> None:
    with pytest.raises(UnknownUser):
        await store.webhooks.set("nobody", "https://hooks.example.org/")
    assert await store.webhooks.for_followers("nobody") == []


async def test_webhooks_of_the_followers_of_a_channel(store: Store) -> None:
    for name in ("Caster", "fan_a", "fan_b", "fan_c", "stranger", "other"):
        await store.users.create(name, PASSWORD)
    for fan in ("fan_a", "fan_b", "fan_c"):
        await store.follows.follow(fan, "Caster")
    await store.follows.follow("fan_a", "other")
    secret_a = await store.webhooks.set("fan_a", "https://a.example.org/hook")
    secret_b = await store.webhooks.set("fan_b", "https://b.example.org/hook")
    await store.webhooks.set("stranger", "https://s.example.org/hook")  # follows nobody
    # fan_c follows without a webhook.

    assert sorted(await store.webhooks.for_followers("caster")) == [
        ("https://a.example.org/hook", secret_a),
        ("https://b.example.org/hook", secret_b),
    ]
    assert await store.webhooks.for_followers("other") == [("https://a.example.org/hook", secret_a)]
    await store.users.set_suspended("fan_b", True)
    assert await store.webhooks.for_followers("Caster") == [
        ("https://a.example.org/hook", secret_a)
    ]
    await store.follows.unfollow("fan_a", "Caster")
    assert await store.webhooks.for_followers("Caster") == []
