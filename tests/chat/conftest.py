"""The ``people`` fixture: accounts and guests holding chat clients, closed after the
test (the helpers live in :mod:`tests.helpers.chat`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strom.server import StromServer
from tests.helpers.chat import People


@pytest.fixture
async def people(server: StromServer) -> AsyncIterator[People]:
    found = People(server)
    yield found
    for person in found.all:
        await person.close()
