"""A viewer the player switched to a ladder's rendition (``alice~480p``) still watches
alice: the directory's card, the channel page, the site's events and the streamer's
dashboard count them with the source's viewers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from strom.channels.directory import Directory
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.record.thumbnails import ThumbnailWorker
from tests.helpers import MediaFile
from tests.helpers.hub import Publisher, Viewer, feed, read_flv


async def no_account(name: str) -> None:
    return None


def go_live(registry: Registry, name: str, media: MediaFile) -> Channel:
    channel = registry.open(name)
    channel.claim(Publisher())
    feed(channel, read_flv(media.path)[:40])
    assert channel.live
    return channel


async def test_a_viewer_of_a_rendition_counts_for_its_source(av_media: MediaFile) -> None:
    registry = Registry()
    store: Any = SimpleNamespace(users=SimpleNamespace(get=no_account))
    directory = Directory(registry, store, ThumbnailWorker(registry), ["alice"])
    alice = go_live(registry, "alice", av_media)
    alice.subscribe(Viewer())
    rendition = go_live(registry, "alice~480p", av_media)
    switched = [Viewer(), Viewer()]
    for viewer in switched:
        rendition.subscribe(viewer)
    rendition.subscribe(Viewer(), internal=True)  # a recorder, say: no viewer

    assert directory.viewers("alice") == 3
    [card] = directory.streams()  # the rendition has no card of its own
    assert (card["username"], card["viewers"]) == ("alice", 3)
    view = await directory.channel_view("alice")
    assert view is not None
    assert view["viewers"] == 3
    assert directory.health("alice")["viewers"] == 3  # the streamer's dashboard

    # One goes back to the source, one leaves; the rendition ends and is forgotten.
    rendition.unsubscribe(switched[0])
    alice.subscribe(switched[0])
    rendition.unsubscribe(switched[1])
    assert directory.viewers("alice") == 2
    rendition.release(rendition.publisher)  # type: ignore[arg-type]
    assert registry.get("alice~480p") is None or rendition.viewers == 0
    assert directory.viewers("alice") == 2
    assert registry.audience("bob") == 0
