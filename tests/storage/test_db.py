"""The pool under trio-asyncio (``storage/db.py``) on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import trio_asyncio

from storage.db import Database, single_statement


@single_statement
async def one(connection: asyncpg.Connection) -> Any:
    return await connection.fetchval("SELECT 1")


async def two(connection: asyncpg.Connection) -> Any:  # a transaction: BEGIN … COMMIT
    return await connection.fetchval("SELECT 1") + await connection.fetchval("SELECT 1")


async def test_using_the_pool_arms_no_asyncio_timer_per_query(database_url: str) -> None:
    # trio-asyncio keeps a cancelled asyncio timer until it falls due and, while it holds any,
    # opens a Trio deadline for every callback it runs: a timer per query made Trio's deadline
    # heap a quarter of the server's time under load (asyncpg's idle-connection timer, 300 s,
    # armed on every release). The pool must arm none while it is used.
    async with trio_asyncio.open_loop() as loop:
        database = await Database.connect(database_url)
        try:
            # warm: the first use may prepare and cache statements
            await database.run(one)
            await database.run(two)
            armed: list[float] = []
            call_later, call_at = loop.call_later, loop.call_at

            def spy_later(delay: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
                armed.append(delay)
                return call_later(delay, *args, **kwargs)

            def spy_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
                armed.append(when - loop.time())
                return call_at(when, *args, **kwargs)

            loop.call_later, loop.call_at = spy_later, spy_at  # type: ignore[method-assign]
            try:
                for _ in range(50):
                    assert await database.run(one) == 1
                    assert await database.run(two) == 2
            finally:
                loop.call_later, loop.call_at = call_later, call_at  # type: ignore[method-assign]
            assert armed == []
        finally:
            await database.close()
