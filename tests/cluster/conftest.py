from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio_asyncio

from storage.db import Database
from tests.cluster.support import open_nats


@pytest.fixture
async def nats_url() -> AsyncIterator[str]:
    async with open_nats() as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's own connection to the cluster's database (seeding, checking leases). The
    database is migrated first, so that the nodes start on a ready schema."""
    async with trio_asyncio.open_loop():
        database = await Database.connect(database_url)
        try:
            await database.migrate()
            yield database
        finally:
            await database.close()
