"""Shard leases and the fence (asyncio verbs, connection first; see ``007_cluster.sql``).

A process keeps its leases with :func:`keep_leases`, one transaction per tick: its node row,
the shards it gives back, the renewal of every lease it holds (one statement), and the shards
it takes when it holds fewer than its share. Every time comes from PostgreSQL's clock.

Every write an actor makes first runs the fence in the same transaction (``curbe_fence``,
``008_fence_function.sql``; :func:`check_fence`, or :func:`begin_fenced` with the BEGIN in the
same round trip): it locks the rows of the shards written (``FOR SHARE``, in shard order, as the
keeper locks them, so the two never deadlock) and compares their owner and epoch with what this
process holds. A takeover
updates those rows, so it waits until such a commit ends, and a commit after a takeover raises
:class:`StaleLease` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import asyncpg

from engine.placement import LeaseRound, StaleLease


async def keep_leases(
    connection: asyncpg.Connection,
    node_id: str,
    *,
    ttl_seconds: float,
    release: Sequence[int] = (),
    address: str | None = None,
    hold: bool = True,
) -> LeaseRound:
    """One tick (in the caller's transaction): be seen, give back ``release``, renew the rest,
    and take free or expired shards up to this node's share of the live nodes. ``hold=False``
    (stopping) gives back every lease and takes none."""
    ttl = dt.timedelta(seconds=ttl_seconds)
    now = await connection.fetchval(
        """INSERT INTO cluster_nodes (node_id, address) VALUES ($1, $2)
           ON CONFLICT (node_id) DO UPDATE SET seen_at = now(), address = EXCLUDED.address
           RETURNING now()""",
        node_id,
        address,
    )
    mine = await connection.fetch(
        "SELECT shard FROM shard_leases WHERE owner = $1 ORDER BY shard FOR UPDATE", node_id
    )
    giving = {r["shard"] for r in mine} if not hold else set(release)
    if giving:
        await connection.execute(
            """UPDATE shard_leases SET owner = NULL, expires_at = '-infinity'
                WHERE owner = $1 AND shard = ANY($2::integer[])""",
            node_id,
            sorted(giving),
        )
    if not hold:
        await connection.execute("DELETE FROM cluster_nodes WHERE node_id = $1", node_id)
        return LeaseRound({}, frozenset(giving), 0, 0, now)
    renewed = await connection.fetch(
        """UPDATE shard_leases SET expires_at = now() + $2::interval
            WHERE owner = $1 RETURNING shard, epoch""",
        node_id,
        ttl,
    )
    held = {r["shard"]: r["epoch"] for r in renewed}
    total = await connection.fetchval("SELECT count(*) FROM shard_leases")
    nodes = await connection.fetchval(
        "SELECT count(*) FROM cluster_nodes WHERE seen_at > now() - $1::interval", ttl
    )
    share = math.ceil(total / max(nodes, 1))
    if len(held) < share:
        taken = await connection.fetch(
            """UPDATE shard_leases s
                  SET owner = $1, epoch = s.epoch + 1, expires_at = now() + $2::interval
                 WHERE s.shard IN (
                       SELECT shard FROM shard_leases
                        WHERE (owner IS NULL OR expires_at < now()) AND shard <> ALL($4::integer[])
                        ORDER BY shard
                        LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             RETURNING s.shard, s.epoch""",
            node_id,
            ttl,
            share - len(held),
            sorted(giving),
        )
        for r in taken:
            held[r["shard"]] = r["epoch"]
    # nodes silent for an hour are forgotten (their leases expired long ago)
    await connection.execute("DELETE FROM cluster_nodes WHERE seen_at < now() - interval '1 hour'")
    return LeaseRound(held, frozenset(giving), nodes, share, now)


FENCE_SQLSTATE = "CU001"  # raised by curbe_fence (008_fence_function.sql) for a stale lease


async def check_fence(
    connection: asyncpg.Connection, node_id: str, epochs: Mapping[int, int]
) -> None:
    """Lock the leases of ``epochs``' shards until this transaction ends; :class:`StaleLease`
    unless this node still holds each with that epoch (one statement: ``curbe_fence``)."""
    shards = sorted(epochs)
    try:
        await connection.execute(
            "SELECT curbe_fence($1, $2::integer[], $3::bigint[])",
            node_id,
            shards,
            [epochs[s] for s in shards],
        )
    except asyncpg.PostgresError as exc:
        stale = stale_lease(exc)
        if stale is not None:
            raise stale from None
        raise


def begin_fenced(node_id: str, epochs: Mapping[int, int]) -> str:
    """``BEGIN`` and :func:`check_fence` as one simple-protocol query, so that they cost one
    round trip: the values are written into the text (integers, and the node id quoted as an SQL
    literal; ``standard_conforming_strings`` is on in every supported PostgreSQL)."""
    shards = sorted(epochs)
    node = "'" + node_id.replace("'", "''") + "'"
    listed = ",".join(str(int(s)) for s in shards)
    held = ",".join(str(int(epochs[s])) for s in shards)
    return f"BEGIN; SELECT curbe_fence({node}, '{{{listed}}}'::integer[], '{{{held}}}'::bigint[])"


def stale_lease(exc: BaseException) -> StaleLease | None:
    """The :class:`StaleLease` a ``curbe_fence`` refusal stands for (None for other errors)."""
    if getattr(exc, "sqlstate", None) != FENCE_SQLSTATE:
        return None
    detail = getattr(exc, "detail", None) or ""
    return StaleLease(int(s) for s in detail.split(",") if s)


async def select_leases(connection: asyncpg.Connection) -> list[dict[str, object]]:
    """Every shard's lease, for operators (``/ops/cluster``)."""
    rows = await connection.fetch(
        """SELECT shard, owner, epoch, expires_at, expires_at > now() AS live
             FROM shard_leases ORDER BY shard"""
    )
    return [dict(r) for r in rows]


async def select_nodes(
    connection: asyncpg.Connection, ttl_seconds: float
) -> list[dict[str, object]]:
    rows = await connection.fetch(
        """SELECT node_id, address, started_at, seen_at,
                  seen_at > now() - $1::interval AS live
             FROM cluster_nodes ORDER BY node_id""",
        dt.timedelta(seconds=ttl_seconds),
    )
    return [dict(r) for r in rows]
