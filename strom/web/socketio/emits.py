"""What a chat room's events become for the original apps' Socket.IO clients, sans-IO.

A room writes batches of events (the WebSocket chat's frames, ``docs/chat-protocol.md``);
the door re-emits each batch once to the room's Socket.IO members, as the events those
apps listen for:

- a message → ``comment``: the object the sender's app sent, its own fields kept (the
  live-broadcast app's server echoed ``data`` as it came), with the room's canonical
  ``roomKey`` and the message's text as Strom took it, and Strom's fields (``id``,
  ``user``, ``guest``, ``badges``, ``at``) where the app's object has none of that name;
- likes → one ``upvote`` per like (the app shows one heart per event), at most
  :data:`MAX_UPVOTE_EVENTS` per batch, the last carrying the rest as its ``count``;
- viewers, deletions, a cleared chat, a ban or timeout → ``viewers``,
  ``comment_deleted``, ``chat_cleared``, ``user_muted``.
"""

from __future__ import annotations

import json
from typing import Any

#: upvote events emitted for one batch of likes (the sender rate limit keeps batches
#: small; this bounds what many senders at once turn into)
MAX_UPVOTE_EVENTS = 30
#: bytes of a comment's own fields (as compact JSON) echoed; more is refused
MAX_EXTRA_BYTES = 1024
#: what a client is told when the room says it cannot chat, by reason
_NOTICES = {
    "banned": "You are banned from this chat.",
    "timed_out": "You are timed out in this chat for a while.",
    "account_required": "This channel lets only logged-in viewers chat.",
    "suspended": "Your account is suspended.",
}
#: a comment's fields Strom reads itself (the rest are the app's own, echoed)
_READ_FIELDS = ("roomKey", "room", "key", "text", "msg")


def comment_extra(data: Any) -> tuple[str | None, str | None]:
    """The app's own fields of a comment object, as compact JSON (None: none), and why
    they are refused if they are (too big)."""
    if not isinstance(data, dict):
        return None, None
    own = {k: v for k, v in data.items() if k not in _READ_FIELDS}
    if not own:
        return None, None
    text = json.dumps(own, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_EXTRA_BYTES:
        return None, f"a comment's own fields may take {MAX_EXTRA_BYTES} bytes as JSON"
    return text, None


def room_emits(room: str, event: dict[str, Any]) -> list[tuple[str, Any]]:
    """The Socket.IO events (name, data) for one event of a room's batch."""
    kind = event.get("type")
    if kind == "message":
        ours = {"id": event["id"], "user": event["user"], "guest": event["guest"],
                "badges": event["badges"], "at": event["at"]}  # fmt: skip
        extra = event.get("extra")
        own = extra if isinstance(extra, dict) else {}
        return [("comment", {**ours, **own, "roomKey": room, "text": event["text"]})]
    if kind == "likes":
        count, total = int(event["count"]), int(event["total"])
        emits = min(count, MAX_UPVOTE_EVENTS)
        first = total - count
        out: list[tuple[str, Any]] = []
        for i in range(emits):
            last = i == emits - 1
            n = count - emits + 1 if last else 1
            first += n
            out.append(("upvote", {"roomKey": room, "count": n, "total": first}))
        return out
    if kind == "viewers":
        return [("viewers", {"roomKey": room, "count": event["count"]})]
    if kind == "delete":
        return [("comment_deleted", {"roomKey": room, "id": event["id"]})]
    if kind == "clear":
        return [("chat_cleared", {"roomKey": room})]
    if kind in ("ban", "timeout"):
        return [("user_muted", {"roomKey": room, "user": event["user"],
                                "until": event.get("until")})]  # fmt: skip
    return []


def member_emits(room: str, obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The Socket.IO events for what a room wrote to one member only: a refusal
    (``error``), or a sentence when it may no longer chat (``notification``)."""
    kind = obj.get("type")
    if kind == "error":
        error = {k: v for k, v in obj.items() if k not in ("type", "nonce")}
        return [("error", {"roomKey": room, **error})]
    if kind == "permissions" and not obj.get("can_chat"):
        return [("notification", _NOTICES.get(str(obj.get("cannot_chat")),
                                              "You cannot chat here now."))]  # fmt: skip
    return []
