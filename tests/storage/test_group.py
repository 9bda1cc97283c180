"""Group commit (``storage/group.py``) on a real PostgreSQL: many actors' writes share rounds,
each caller returns only after its write is committed, one bad write fails only its caller, and
the grouped statements store exactly what the one-at-a-time verbs store."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import trio
import trio.testing
import trio_asyncio

from engine.values import (
    Commit,
    Conversation,
    Event,
    EventType,
    Kind,
    Message,
    SenderType,
    Status,
    VisitorSession,
)
from storage import queries
from storage.db import Database
from storage.group import GroupReader, GroupWriter
from storage.stores import PostgresStore

T0 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


async def seed(connection: asyncpg.Connection) -> None:
    await connection.execute("INSERT INTO tenants (id, name) VALUES ('t1', 'Shop')")
    await connection.execute("INSERT INTO widgets (id, tenant_id, name) VALUES ('w1', 't1', 'S')")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with trio_asyncio.open_loop():
        database = await Database.connect(database_url)
        try:
            await database.run(seed)
            yield database
        finally:
            await database.close()


def conversation(cid: str, seq: int) -> Conversation:
    return Conversation(
        cid, "t1", "w1", f"v-{cid}", Kind.LIVE_CHAT, Status.WAITING, T0, T0, last_seq=seq
    )


def message_commit(cid: str, seq: int, text: str = "hola") -> Commit:
    message = Message(
        f"m-{cid}-{seq}", cid, "t1", seq, SenderType.VISITOR, f"v-{cid}", "Ana", text,
        f"cm-{seq}", None, T0 + dt.timedelta(seconds=seq),
    )  # fmt: skip
    event = Event(
        EventType.MESSAGE_CREATED, T0, "t1", {"message": message.to_wire()}, cid, seq, f"v-{cid}"
    )
    return Commit(conversation(cid, seq), (event,), (message,))


def session(vid: str, url: str, at: dt.datetime = T0) -> VisitorSession:
    return VisitorSession(
        visitor_id=vid, tenant_id="t1", widget_id="w1", first_seen_at=T0, last_seen_at=at,
        current_url=url, current_domain="shop.example", page_title=None, referrer=None,
        ip="127.0.0.1", user_agent=None, location=None, conversation_id=None, name=None,
    )  # fmt: skip


async def rows(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def fetch(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await connection.fetch(sql, *args)]

    return await db.run(fetch)


async def test_grouped_commits_store_what_single_commits_store(db: Database) -> None:
    for cid in ("alone", "grouped"):
        await db.run(queries.commit_conversation, Commit(conversation(cid, 0), (), ()))
    await db.run(queries.commit_conversation, message_commit("alone", 1))
    await db.run(queries.commit_conversations, [message_commit("grouped", 1)])
    [a, g] = await rows(db, "SELECT * FROM messages ORDER BY conversation_id")
    assert {k: v for k, v in a.items() if k not in ("id", "conversation_id", "sender_id")} == {
        k: v for k, v in g.items() if k not in ("id", "conversation_id", "sender_id")
    }
    events = await rows(db, "SELECT * FROM conversation_events ORDER BY conversation_id")
    assert [e["data"]["message"]["text"] for e in events] == ["hola", "hola"]
    assert isinstance(events[1]["data"], dict)  # stored as jsonb, read back as the same object
    states = await rows(db, "SELECT id, last_seq FROM conversations ORDER BY id")
    assert states == [{"id": "alone", "last_seq": 1}, {"id": "grouped", "last_seq": 1}]


async def test_many_actors_share_rounds_and_each_returns_after_its_commit(
    db: Database,
) -> None:
    store = PostgresStore(db)
    n = 60
    for i in range(n):
        await db.run(queries.commit_conversation, Commit(conversation(f"c{i}", 0), (), ()))
    committed_before_return: list[bool] = []

    async def actor(i: int) -> None:
        await store.commit_conversation(message_commit(f"c{i}", 1))
        stored = await rows(db, "SELECT 1 FROM messages WHERE conversation_id = $1", f"c{i}")
        committed_before_return.append(len(stored) == 1)

    async with store.group_writers(), trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(actor, i)
    assert committed_before_return == [True] * n
    counts = store.describe()["conversation_commits"]
    assert counts["written"] == n
    # the first write goes out alone; the others queue behind it and share the next rounds
    assert counts["rounds"] < n / 4 and counts["largest_round"] > 1


async def test_a_bad_write_fails_only_its_own_caller(db: Database) -> None:
    store = PostgresStore(db)
    for cid in ("ok1", "ok2"):
        await db.run(queries.commit_conversation, Commit(conversation(cid, 0), (), ()))
    await store.commit_conversation(message_commit("ok1", 1))  # alone: no writer running yet
    outcomes: dict[str, str] = {}

    async def actor(name: str, commit: Commit) -> None:
        try:
            await store.commit_conversation(commit)
            outcomes[name] = "stored"
        except asyncpg.UniqueViolationError:
            outcomes[name] = "refused"

    async with store.group_writers(), trio.open_nursery() as nursery:
        # the same seq again (what a stale owner would write) shares a round with a good one
        nursery.start_soon(actor, "again", message_commit("ok1", 1, "doubled"))
        nursery.start_soon(actor, "good", message_commit("ok2", 1))
    assert outcomes == {"again": "refused", "good": "stored"}
    texts = await rows(db, "SELECT conversation_id, text FROM messages ORDER BY conversation_id")
    assert texts == [
        {"conversation_id": "ok1", "text": "hola"},
        {"conversation_id": "ok2", "text": "hola"},
    ]


async def test_visitor_presence_rounds_keep_the_latest_session(db: Database) -> None:
    store = PostgresStore(db)
    async with store.group_writers(), trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(store.save_visitor, session(f"v{i % 10}", f"/page/{i}"))
    stored = await rows(db, "SELECT visitor_id, current_url FROM visitor_sessions")
    assert len(stored) == 10
    assert store.describe()["visitor_sessions"]["rounds"] < 30


async def test_writes_after_the_writer_stopped_go_alone(db: Database) -> None:
    store = PostgresStore(db)
    async with store.group_writers():
        pass
    assert not store.visitors.running
    await store.save_visitor(session("late", "/after"))
    assert await rows(db, "SELECT current_url FROM visitor_sessions") == [{"current_url": "/after"}]
    assert store.describe()["visitor_sessions"]["rounds"] == 0


def never_done(started: trio.Event) -> Any:
    async def write_many(connection: asyncpg.Connection, sessions: list[VisitorSession]) -> None:
        """(asyncio) A round that does not end by itself: the writer is cancelled inside it."""
        started.set()  # trio-asyncio runs this in the Trio thread: a Trio event may be set here
        await asyncio.Event().wait()

    return write_many


def by_visitor(s: VisitorSession) -> str:
    return s.visitor_id


async def test_a_cancelled_writer_hands_its_writes_back_to_their_callers(db: Database) -> None:
    round_started = trio.Event()
    writer: GroupWriter[VisitorSession] = GroupWriter(
        db, "test", never_done(round_started), queries.save_visitor_session, actor_of=by_visitor
    )
    done: list[str] = []
    scope = trio.CancelScope()

    async def run_writer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await writer.run(task_status=task_status)

    async def caller(vid: str) -> None:
        await writer.submit(session(vid, "/x"))
        done.append(vid)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_writer)
        for vid in ("a", "b", "c"):
            nursery.start_soon(caller, vid)
        await round_started.wait()
        scope.cancel()
    assert sorted(done) == ["a", "b", "c"] and not writer.running
    assert writer.describe()["written"] == 0
    stored = await rows(db, "SELECT visitor_id FROM visitor_sessions ORDER BY visitor_id")
    assert [r["visitor_id"] for r in stored] == ["a", "b", "c"]


async def test_a_caller_cancelled_before_its_round_is_withdrawn(db: Database) -> None:
    round_started = trio.Event()
    writer: GroupWriter[VisitorSession] = GroupWriter(
        db, "test", never_done(round_started), queries.save_visitor_session, actor_of=by_visitor
    )
    writer_scope, late_scope = trio.CancelScope(), trio.CancelScope()
    done: list[str] = []

    async def run_writer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with writer_scope:
            await writer.run(task_status=task_status)

    async def caller(vid: str, scope: trio.CancelScope | None = None) -> None:
        with scope or trio.CancelScope():
            await writer.submit(session(vid, "/x"))
            done.append(vid)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_writer)
        nursery.start_soon(caller, "in-round")
        await round_started.wait()  # "in-round" is in a round that does not end
        nursery.start_soon(caller, "late", late_scope)
        await trio.testing.wait_all_tasks_blocked()
        assert writer.describe()["pending"] == 1
        late_scope.cancel()  # "late" gives up before any round took it
        await trio.testing.wait_all_tasks_blocked()
        assert writer.describe()["pending"] == 0
        writer_scope.cancel()  # the stuck round: its write goes back to its caller
    assert done == ["in-round"]
    stored = await rows(db, "SELECT visitor_id FROM visitor_sessions")
    assert stored == [{"visitor_id": "in-round"}]  # the withdrawn write was never stored


async def test_a_round_the_database_refuses_fails_at_once_without_one_by_one_retries(
    db: Database,
) -> None:
    alone: list[str] = []

    async def write_one(connection: asyncpg.Connection, s: VisitorSession) -> None:
        alone.append(s.visitor_id)

    async def write_many(connection: asyncpg.Connection, s: list[VisitorSession]) -> None:
        raise asyncpg.InterfaceError("the connection is gone")

    writer: GroupWriter[VisitorSession] = GroupWriter(
        db, "test", write_many, write_one, actor_of=by_visitor
    )
    errors: list[str] = []

    async def caller(vid: str) -> None:
        try:
            await writer.submit(session(vid, "/x"))
        except asyncpg.InterfaceError as exc:
            errors.append(str(exc))

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        async with trio.open_nursery() as callers:
            for vid in ("a", "b", "c"):
                callers.start_soon(caller, vid)
        writer.close()
    assert errors == ["the connection is gone"] * 3
    assert alone == []  # not tried write by write against a database that is not there


# --- group reads -------------------------------------------------------------------------------


async def test_many_visitor_loads_share_rounds_and_each_gets_its_own_row(db: Database) -> None:
    store = PostgresStore(db)
    for i in range(0, 40, 2):  # every other visitor has a row; the rest are new
        await db.run(queries.save_visitor_session, session(f"v{i}", f"/page/{i}"))
    loaded: dict[str, str | None] = {}

    async def actor(i: int) -> None:
        found = await store.load_visitor(f"v{i}")
        loaded[f"v{i}"] = found.current_url if found else None

    async with store.group_writers(), trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(actor, i)
    assert loaded == {f"v{i}": f"/page/{i}" if i % 2 == 0 else None for i in range(40)}
    reads = store.describe()["visitor_session_reads"]
    assert reads["read"] == 40
    assert reads["rounds"] < 10 and reads["largest_round"] > 1
    # what a grouped load gives is what the one-at-a-time verb gives
    assert await db.run(queries.select_visitor_sessions, ["v0", "v1"]) == {
        "v0": await db.run(queries.select_visitor_session, "v0")
    }


async def test_a_failed_read_round_fails_its_callers_and_the_reader_goes_on(
    db: Database,
) -> None:
    calls: list[list[str]] = []

    async def read_many(connection: asyncpg.Connection, keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        if "bad" in keys:
            raise asyncpg.InterfaceError("the connection is gone")
        return {k: k.upper() for k in keys}

    reader: GroupReader[str, str] = GroupReader(db, "test", read_many)
    outcomes: dict[str, str | None] = {}

    async def caller(key: str) -> None:
        try:
            outcomes[key] = await reader.fetch(key)
        except asyncpg.InterfaceError:
            outcomes[key] = "error"

    async with trio.open_nursery() as nursery:
        await nursery.start(reader.run)
        async with trio.open_nursery() as callers:
            for key in ("bad", "x"):
                callers.start_soon(caller, key)
        await caller("y")  # a later round is served
        reader.close()
    assert outcomes == {"bad": "error", "x": "error", "y": "Y"}
    assert [sorted(keys) for keys in calls] == [["bad", "x"], ["y"]]  # one round, then one


async def test_a_cancelled_reader_hands_its_reads_back_to_their_callers(db: Database) -> None:
    await db.run(queries.save_visitor_session, session("known", "/k"))
    round_started = trio.Event()

    async def stuck(connection: asyncpg.Connection, keys: list[str]) -> dict[str, Any]:
        round_started.set()
        await asyncio.Event().wait()
        return {}

    reader: GroupReader[str, Any] = GroupReader(db, "test", stuck)
    scope = trio.CancelScope()
    got: list[Any] = []

    async def run_reader(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await reader.run(task_status=task_status)

    async def caller() -> None:
        got.append(await reader.fetch("known"))

    async with trio.open_nursery() as nursery:
        await nursery.start(run_reader)
        nursery.start_soon(caller)
        await round_started.wait()
        # alone, the caller reads with the reader's own function: swap in the real one
        reader.read_many = queries.select_visitor_sessions
        scope.cancel()
    assert [s.current_url for s in got] == ["/k"]
