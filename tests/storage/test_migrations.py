"""Migration 006 on a database that holds what a race could leave before it: two active live
chats of one visitor, and visitor links that point at the wrong chat (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg
import trio_asyncio

from engine.values import Conversation, Kind, Status
from storage.db import migration_files

T0 = dt.datetime(2026, 11, 29, 13, 20, tzinfo=dt.UTC)
SQL = next(sql for number, _, sql in migration_files() if number == 6)


async def seed_what_a_race_left(connection: asyncpg.Connection) -> None:
    """(asyncio) The rows 006 finds on an older database; its index did not exist yet."""
    await connection.execute("DROP INDEX conversations_one_active_live_chat")
    await connection.execute("INSERT INTO tenants (id, name) VALUES ('t1', 'Shop')")
    await connection.execute("INSERT INTO widgets (id, tenant_id, name) VALUES ('w1', 't1', 'S')")
    await connection.execute(
        """INSERT INTO agents (id, tenant_id, email, name, password_hash)
           VALUES ('a1', 't1', 'ana@example.com', 'Ana', 'x')"""
    )
    for cid, vid, status, minutes, seq, agent in (
        ("old", "v1", "OPEN", 0, 4, "a1"),
        ("new", "v1", "WAITING", 5, 2, None),
        ("done", "v2", "SOLVED", 0, 6, None),
    ):
        at = T0 + dt.timedelta(minutes=minutes)
        await connection.execute(
            """INSERT INTO conversations (id, tenant_id, widget_id, visitor_id, kind, status,
                       last_seq, created_at, updated_at, assignee_id, assignee_name)
               VALUES ($1, 't1', 'w1', $2, 'live_chat', $3, $4, $5, $5, $6, $7)""",
            cid,
            vid,
            status,
            seq,
            at,
            agent,
            "Ana" if agent else None,
        )
    for vid, link in (("v1", "old"), ("v2", "done"), ("v3", None)):
        await connection.execute(
            """INSERT INTO visitor_sessions (visitor_id, tenant_id, widget_id, first_seen_at,
                       last_seen_at, conversation_id)
               VALUES ($1, 't1', 'w1', $2, $2, $3)""",
            vid,
            T0,
            link,
        )


async def migrate_and_read(connection: asyncpg.Connection) -> dict[str, Any]:
    """(asyncio) Run 006 as the migrator does (one transaction) and read what it left."""
    async with connection.transaction():
        await connection.execute(SQL)
    return {
        "conversations": {
            r["id"]: dict(r) for r in await connection.fetch("SELECT * FROM conversations")
        },
        "events": [
            dict(r)
            for r in await connection.fetch(
                "SELECT * FROM conversation_events WHERE conversation_id = 'old'"
            )
        ],
        "links": {
            r["visitor_id"]: r["conversation_id"]
            for r in await connection.fetch(
                "SELECT visitor_id, conversation_id FROM visitor_sessions"
            )
        },
        "index": await connection.fetchval(
            """SELECT count(*) FROM pg_indexes
                WHERE indexname = 'conversations_one_active_live_chat'"""
        ),
        "snapshots": await connection.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'actor_snapshots'"
        ),
    }


async def test_006_solves_older_duplicates_with_an_event_and_relinks_sessions(
    database_url: str,
) -> None:
    async with trio_asyncio.open_loop():
        connection = await trio_asyncio.aio_as_trio(asyncpg.connect)(database_url)
        try:
            await trio_asyncio.aio_as_trio(seed_what_a_race_left)(connection)
            after = await trio_asyncio.aio_as_trio(migrate_and_read)(connection)
            again = await trio_asyncio.aio_as_trio(migrate_and_read)(connection)
        finally:
            await trio_asyncio.aio_as_trio(connection.close)()
    rows = after["conversations"]
    assert (rows["old"]["status"], rows["old"]["last_seq"]) == ("SOLVED", 5)
    assert rows["old"]["solved_at"] is not None
    assert (rows["new"]["status"], rows["new"]["last_seq"]) == ("WAITING", 2)
    assert (rows["done"]["status"], rows["done"]["last_seq"]) == ("SOLVED", 6)
    [event] = after["events"]
    assert (event["seq"], event["type"]) == (5, "conversation_status_changed")
    data = json.loads(event["data"]) if isinstance(event["data"], str) else event["data"]
    assert (data["from"], data["to"]) == ("OPEN", "SOLVED")
    # the event carries the conversation exactly as the engine sends one
    shape = Conversation("x", "t", "w", "v", Kind.LIVE_CHAT, Status.SOLVED, T0, T0).to_wire()
    assert set(data["conversation"]) == set(shape)
    assert data["conversation"]["status"] == "SOLVED" and data["conversation"]["lastSeq"] == 5
    assert data["conversation"]["assignee"] == {"id": "a1", "name": "Ana", "avatarUrl": None}
    assert data["conversation"]["createdAt"] == "2026-11-29T13:20:00.000Z"
    assert after["links"] == {"v1": "new", "v2": None, "v3": None}
    assert (after["index"], after["snapshots"]) == (1, 0)
    # run again: nothing changes
    assert {k: v["last_seq"] for k, v in again["conversations"].items()} == {
        "old": 5,
        "new": 2,
        "done": 6,
    }
    assert len(again["events"]) == 1 and again["links"] == after["links"]


SQL_010 = next(sql for number, _, sql in migration_files() if number == 10)


async def keys_after_010(connection: asyncpg.Connection, legacy: bytes | None) -> list[Any]:
    """(asyncio) 010 on a database from before it: with or without the old signing key."""
    await connection.execute("DROP TABLE visitor_token_keys")
    await connection.execute("DELETE FROM server_secrets")
    if legacy is not None:
        await connection.execute(
            "INSERT INTO server_secrets (name, value) VALUES ('visitor_token_key', $1)", legacy
        )
    async with connection.transaction():
        await connection.execute(SQL_010)
    return [
        (r["kid"], r["secret"], r["retired_at"])
        for r in await connection.fetch("SELECT * FROM visitor_token_keys")
    ]


async def test_010_keeps_the_old_signing_key_as_v1_so_no_visitor_is_logged_out(
    database_url: str,
) -> None:
    legacy = bytes(range(32))
    async with trio_asyncio.open_loop():
        connection = await trio_asyncio.aio_as_trio(asyncpg.connect)(database_url)
        try:
            upgraded = await trio_asyncio.aio_as_trio(keys_after_010)(connection, legacy)
            fresh = await trio_asyncio.aio_as_trio(keys_after_010)(connection, None)
        finally:
            await trio_asyncio.aio_as_trio(connection.close)()
    assert upgraded == [("v1", legacy, None)]
    assert fresh == []  # a new database: the server makes its first key at start
