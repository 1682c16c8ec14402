"""The chatter list of one room (strom/chat/chatters.py): names bounded, the owner first,
guests counted, other nodes' answers merged while fresh, a node's own question ignored."""

from __future__ import annotations

from strom.chat.chatters import ASK_INTERVAL, FRESH_SECONDS, ChatterRoll
from strom.chat.events import ChattersAsked, ChattersSeen
from strom.chat.room import Identity


def test_list_is_ordered_bounded_and_merges_fresh_answers_of_other_nodes() -> None:
    roll = ChatterRoll("here", max_names=3)
    members = [
        Identity("zed", 1), Identity("zed", 1), Identity("Boss", 2, is_admin=True),
        Identity("amy", 3), Identity("guest-000001"), Identity("guest-000001"),
        Identity("guest-000002"), Identity("Caster", 4),
    ]  # fmt: skip
    assert roll.ask(10.0) == ChattersAsked("here")
    assert roll.ask(10.0 + ASK_INTERVAL / 2) is None  # shares the answers of the first
    assert roll.answer_to(ChattersAsked("here"), members) is None
    answer = roll.answer_to(ChattersAsked("there"), members)
    assert answer is not None
    assert (answer.users, answer.admins, answer.guests) == (("Boss", "amy", "Caster"), ("Boss",), 2)
    # Beyond the bound, the owner and moderators (and admins) are kept first.
    kept = roll.answer_to(ChattersAsked("there"), members, {"caster"})
    assert kept is not None
    assert kept.users == ("Boss", "Caster", "amy")

    roll.heard(ChattersSeen("there", ("mod_m", "bob"), (), 5), 10.0)
    listing = roll.listing(members, "caster", ["MOD_M"], 11.0, "n1")
    assert [(u["name"], u["badges"]) for u in listing["users"]] == [
        ("Caster", ["owner"]), ("Boss", ["admin"]), ("mod_m", ["moderator"]),
    ]  # fmt: skip
    assert (listing["guests"], listing["total"], listing["truncated"]) == (7, 12, True)
    assert listing["nonce"] == "n1"
    later = roll.listing(members, "caster", [], 11.0 + FRESH_SECONDS * 2)
    assert (later["guests"], later["total"]) == (2, 5)  # the other node's answer went stale
