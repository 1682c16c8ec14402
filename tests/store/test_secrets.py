"""What a leaked database shows: stream keys, API tokens and passwords only as hashes."""

from __future__ import annotations

import hashlib

from strom.store import Store
from tests.helpers.store import dump_rows

PASSWORD = "correct horse battery"


async def test_secrets_are_stored_only_as_hashes(store: Store) -> None:
    _, key = await store.users.create("Alice", PASSWORD)
    token = await store.tokens.create("Alice", "obs plugin")
    dump = await dump_rows(store)
    assert "Alice" in dump  # the dump does show the rows
    for secret in (key, token, PASSWORD):
        assert secret not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    info = await store.channels.get("alice")
    assert key not in repr(info)
