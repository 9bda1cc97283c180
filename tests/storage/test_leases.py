"""Shard leases and the fence on a real PostgreSQL (``storage/leases.py``): nodes share the
shards, a takeover bumps the epoch, and a stale owner's write is refused inside its own
transaction, so two owners never both commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import trio
import trio_asyncio

from engine.placement import SHARD_COUNT, LeaseRound, Placement, StaleLease, shard_of
from storage.db import Database, single_statement
from storage.leases import check_fence, select_leases
from storage.stores import PostgresLeases


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with trio_asyncio.open_loop():
        database = await Database.connect(database_url)
        try:
            yield database
        finally:
            await database.close()


async def tick(db: Database, node: str, release: list[int] | None = None) -> LeaseRound:
    return await PostgresLeases(db).keep_leases(
        node, ttl_seconds=8, release=release or [], address=None, hold=True
    )


async def insert_tenant(connection: asyncpg.Connection, tenant_id: str) -> None:
    await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'x')", tenant_id)


async def tenants(connection: asyncpg.Connection) -> list[str]:
    return [r["id"] for r in await connection.fetch("SELECT id FROM tenants ORDER BY id")]


async def expire(connection: asyncpg.Connection, shard: int) -> None:
    """What the database sees when a node stops renewing (killed, cut off): its lease expired."""
    await connection.execute(
        "UPDATE shard_leases SET expires_at = now() - interval '1 second' WHERE shard = $1", shard
    )


async def test_nodes_share_the_shards_and_a_release_is_taken_with_a_new_epoch(db: Database) -> None:
    first = await tick(db, "a")
    assert len(first.held) == SHARD_COUNT and first.share == SHARD_COUNT
    assert set(first.held.values()) == {1}
    joined = await tick(db, "b")
    assert joined.nodes == 2 and joined.share == SHARD_COUNT // 2
    assert joined.held == {}  # nothing free: "a" gives back its excess first
    again = await tick(db, "a", release=list(range(32, 64)))
    assert set(again.held) == set(range(32)) and again.released == frozenset(range(32, 64))
    taken = await tick(db, "b")
    assert taken.held == {s: 2 for s in range(32, 64)}
    rows = await db.run(select_leases)
    assert {r["owner"] for r in rows} == {"a", "b"}


async def test_a_stale_owner_cannot_commit(db: Database) -> None:
    held = (await tick(db, "a")).held
    actor = "con_fenced"
    shard = shard_of(actor)
    a = Placement("a", held=dict(held))
    db.fence = a
    await db.run_fenced([actor], insert_tenant, "t_before")  # the owner writes
    await db.run(expire, shard)  # "a" is cut off: its lease runs out
    b = await tick(db, "b")
    assert b.held[shard] == held[shard] + 1  # taken over, with a new fencing token
    with pytest.raises(StaleLease) as refused:
        await db.run_fenced([actor], insert_tenant, "t_after")  # "a" still thinks it owns it
    assert refused.value.shards == [shard]
    assert await db.run(tenants) == ["t_before"]  # nothing of the stale write landed
    db.fence = Placement("b", held=dict(b.held))
    await db.run_fenced([actor], insert_tenant, "t_new_owner")
    assert await db.run(tenants) == ["t_before", "t_new_owner"]


class InFlight:
    """An owner's write held open in Trio after its fence and its insert, before its COMMIT."""

    def __init__(self) -> None:
        self.fenced = trio.Event()
        self.finish = trio.Event()

    async def insert_and_hold(self, connection: asyncpg.Connection) -> None:
        await insert_tenant(connection, "t_in_flight")
        await trio_asyncio.trio_as_aio(self._hold)()

    async def _hold(self) -> None:
        self.fenced.set()
        await self.finish.wait()


async def assert_takeover_waits(
    db: Database, shard: int, epoch: int, flight: InFlight, write: Callable[[], Awaitable[object]]
) -> None:
    """While ``write`` holds the lease row, "b" cannot take the shard; once it commits, "b"
    takes it with the next epoch, and the write is stored."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await flight.fenced.wait()
        during = await tick(db, "b")  # the commit holds the lease row: not taken now
        assert shard not in during.held
        flight.finish.set()
    after = await tick(db, "b")
    assert after.held[shard] == epoch + 1
    assert "t_in_flight" in await db.run(tenants)


async def test_a_takeover_waits_for_the_owners_commit_in_flight(db: Database) -> None:
    held = (await tick(db, "a")).held
    shard = shard_of("con_in_flight")
    await db.run(expire, shard)
    flight = InFlight()

    async def owner_commit(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            await check_fence(connection, "a", {shard: held[shard]})
            await flight.insert_and_hold(connection)

    await assert_takeover_waits(db, shard, held[shard], flight, lambda: db.run(owner_commit))


@single_statement
async def insert_tenant_alone(connection: asyncpg.Connection, tenant_id: str) -> None:
    await insert_tenant(connection, tenant_id)


async def test_a_lone_statement_is_fenced_in_its_own_round_trip_too(db: Database) -> None:
    """The hot path (BEGIN and the fence in one trip, the statement, COMMIT) refuses a stale
    owner and lets the new one write, as the transactional path does."""
    held = (await tick(db, "it's-a")).held  # a quote in the node id: written as an SQL literal
    actor = "con_alone"
    shard = shard_of(actor)
    db.fence = Placement("it's-a", held=dict(held))
    await db.run_fenced([actor, "con_other"], insert_tenant_alone, "t_before")
    await db.run(expire, shard)
    b = await tick(db, "b")
    with pytest.raises(StaleLease) as refused:
        await db.run_fenced([actor], insert_tenant_alone, "t_after")
    assert refused.value.shards == [shard]
    with pytest.raises(asyncpg.UniqueViolationError):  # any other error: as raised, rolled back
        await db.run_fenced(["con_other"], insert_tenant_alone, "t_before")
    db.fence = Placement("b", held=dict(b.held))
    await db.run_fenced([actor], insert_tenant_alone, "t_new_owner")
    assert await db.run(tenants) == ["t_before", "t_new_owner"]


async def test_a_takeover_waits_for_a_lone_statement_in_flight(db: Database) -> None:
    held = (await tick(db, "a")).held
    actor = "con_alone_in_flight"
    shard = shard_of(actor)
    db.fence = Placement("a", held=dict(held))
    await db.run(expire, shard)
    flight = InFlight()

    @single_statement
    async def slow_insert(connection: asyncpg.Connection) -> None:  # held before its COMMIT
        await flight.insert_and_hold(connection)

    await assert_takeover_waits(
        db, shard, held[shard], flight, lambda: db.run_fenced([actor], slow_insert)
    )


async def test_a_stopping_node_gives_everything_back(db: Database) -> None:
    await tick(db, "a")
    gone = await PostgresLeases(db).keep_leases(
        "a", ttl_seconds=8, release=[], address=None, hold=False
    )
    assert gone.released == frozenset(range(SHARD_COUNT)) and gone.held == {}
    rows = await db.run(select_leases)
    assert all(r["owner"] is None for r in rows)
    assert (await tick(db, "b")).held == {s: 2 for s in range(SHARD_COUNT)}


async def test_only_the_owner_and_epoch_pass_the_fence(db: Database) -> None:
    held = (await tick(db, "a")).held

    async def check(connection: asyncpg.Connection, node: str, epochs: dict[int, int]) -> None:
        async with connection.transaction():
            await check_fence(connection, node, epochs)

    await db.run(check, "a", {0: held[0]})
    with pytest.raises(StaleLease):
        await db.run(check, "b", {0: held[0]})
    with pytest.raises(StaleLease):
        await db.run(check, "a", {0: held[0] + 1})
