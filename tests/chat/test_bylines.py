"""What chat messages show of their senders besides the username: the display name and
the small avatar, carried in the ``message`` event (and in the history), looked up when
the message is posted, not by the viewers; a guest's carry neither."""

from __future__ import annotations

import asyncio

from strom.server import StromServer
from tests.helpers.chat import People
from tests.helpers.pictures import png


async def test_messages_carry_the_senders_display_name_and_avatar(
    server: StromServer, people: People
) -> None:
    ada = await people.account("ada")
    guest = people.guest()
    chat = await ada.join("ada")
    await chat.say("before")
    first = await chat.next("message", text="before")
    assert "avatar" not in first
    assert "display_name" not in first

    # A new avatar and display name show from the next message on (not a minute later).
    status, uploaded = await ada.api("POST", "/api/v1/me/avatar", data=png(96, 96))
    assert status == 200
    status, _ = await ada.api(
        "PUT", "/api/v1/me/profile", json={"display_name": "Ada L.", "bio": "", "links": []}
    )
    assert status == 200
    await chat.say("after")
    second = await chat.next("message", text="after")
    assert second["avatar"] == uploaded["avatar_small_url"]
    assert second["avatar"].startswith("/avatars/ada/64.jpg?v=")
    assert second["display_name"] == "Ada L."
    assert second["user"] == "ada"
    listener = await guest.join("ada")
    await listener.say("a guest")
    third = await chat.next("message", text="a guest")
    assert "avatar" not in third
    assert "display_name" not in third

    # The room closes with its last member; opened again, its history shows each sender
    # as they are now.
    for person in (ada, guest):
        for client in person.clients:
            await client.close()
    for _ in range(250):  # bounded: 5 s
        if "ada" not in server.chat.rooms:
            break
        await asyncio.sleep(0.02)
    assert "ada" not in server.chat.rooms
    history = (await ada.join("ada")).welcome["history"]
    assert [(m["text"], m.get("avatar"), m.get("display_name")) for m in history] == [
        ("before", second["avatar"], "Ada L."),
        ("after", second["avatar"], "Ada L."),
        ("a guest", None, None),
    ]
