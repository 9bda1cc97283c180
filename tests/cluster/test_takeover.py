"""``kill -9`` of the node that owns a conversation: another node takes its shards over within
the lease time, rehydrates the actors from PostgreSQL, fires their stored wait timers exactly
once, and every client that reconnects resumes with no gap and no duplicate."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
import trio
import trio_websocket

from storage.db import Database
from tests.cluster.support import TICK_SECONDS, TTL_SECONDS, Node, owner_of, until
from tests.cluster.test_cluster import open_cluster, start_chat
from tests.support import Socket, Visitor, inbox_socket, login, new_visitor, seed, visitor_socket

pytestmark = pytest.mark.slow


async def event_count(connection: asyncpg.Connection, cid: str, type_: str) -> int:
    return await connection.fetchval(  # type: ignore[no-any-return]
        "SELECT count(*) FROM conversation_events WHERE conversation_id = $1 AND type = $2",
        cid,
        type_,
    )


async def chat_owned_by(
    node: Node, others: list[Node], db: Database, widget_id: str
) -> tuple[Visitor, str]:
    """A visitor and a chat whose conversation actor ``node`` owns (ids are random: try until
    one falls in its shards; each try has an even chance with two nodes)."""
    for _ in range(40):
        v = await new_visitor(others[0], widget_id)  # type: ignore[arg-type]
        cid = await start_chat(others[0], v)
        if await owner_of(db, cid) == node.name:
            return v, cid
    raise AssertionError(f"no conversation landed on {node.name}")


async def resume(sock: Socket, after_seq: int) -> list[dict[str, Any]]:
    await sock.send({"type": "resume", "afterSeq": after_seq})
    out = []
    while True:
        frame = await sock.next()
        if frame["type"] == "resumed":
            return out
        out.append(frame)


async def test_kill_9_of_the_owner_loses_nothing_and_the_wait_timer_fires_once(
    database_url: str, nats_url: str, db: Database
) -> None:
    async with AsyncExitStack() as stack:
        doomed, survivor = await open_cluster(stack, database_url, nats_url, db, "x", "y")
        [javier] = await seed(survivor, wait_timeout=4)  # type: ignore[arg-type]
        token = await login(survivor, javier)  # type: ignore[arg-type]

        # an OPEN chat owned by x, its widget and the agent's inbox connected to x
        visitor, cid = await chat_owned_by(doomed, [survivor], db, javier.widget_id)
        async with doomed.http(token) as client:
            assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        acked = []
        async with AsyncExitStack() as on_doomed:
            widget = await on_doomed.enter_async_context(
                visitor_socket(doomed, visitor)  # type: ignore[arg-type]
            )
            inbox = await on_doomed.enter_async_context(
                inbox_socket(doomed, token)  # type: ignore[arg-type]
            )
            for n in range(4):
                async with doomed.http(token) as client:
                    r = await client.post(
                        f"/api/chat/conversations/{cid}/messages",
                        json={"text": f"before {n}", "clientMessageId": f"b{n}"},
                    )
                assert r.status_code == 201, r.text
                acked.append(r.json())
            seen_seq = (await widget.wait_for("message_created", seq=acked[-1]["seq"]))["seq"]
            await inbox.wait_for("message_created", seq=acked[-1]["seq"])

            # a second chat waits on its 4 s timer in an actor x owns, when x dies
            _, waiting = await chat_owned_by(doomed, [survivor], db, javier.widget_id)
            doomed.kill()
            killed_at = trio.current_time()
            with pytest.raises(trio_websocket.ConnectionClosed):  # the socket drops
                while True:
                    await widget.next()

        # y takes x's shards over within the lease time, and answers for the chat
        async def survivor_owns() -> bool:
            return await owner_of(db, cid) == "y"

        await until(survivor_owns, within=TTL_SECONDS + 3 * TICK_SECONDS + 2, what="takeover")
        assert trio.current_time() - killed_at <= TTL_SECONDS + 3 * TICK_SECONDS + 2
        async with survivor.http(token) as client:
            r = await client.post(
                f"/api/chat/conversations/{cid}/messages",
                json={"text": "after", "clientMessageId": "after"},
            )
            assert r.status_code == 201, r.text
            after = r.json()
            assert after["seq"] == acked[-1]["seq"] + 1
            # every acknowledged message survived, and a retried one is not stored twice
            r = await client.get(f"/api/chat/conversations/{cid}")
            stored = [m for m in r.json()["messages"]]
            assert [m["id"] for m in stored if m["id"] in {a["id"] for a in acked}] == [
                a["id"] for a in acked
            ]
            again = await client.post(
                f"/api/chat/conversations/{cid}/messages",
                json={"text": "before 3", "clientMessageId": "b3"},
            )
            assert again.status_code == 201 and again.json()["id"] == acked[-1]["id"]

        # the widget and the inbox reconnect to y and resume: no gap, no duplicate
        async with (
            visitor_socket(survivor, visitor) as widget,  # type: ignore[arg-type]
            inbox_socket(survivor, token) as inbox,  # type: ignore[arg-type]
        ):
            missed = await resume(widget, seen_seq)
            assert [f["seq"] for f in missed if f.get("conversationId") == cid] == [after["seq"]]
            await inbox.send({"type": "resume", "conversationId": cid, "afterSeq": seen_seq})
            frame = await inbox.wait_for("message_created", conversationId=cid)
            assert frame["seq"] == after["seq"]

        # the stored wait timer of the other chat fired on y, once
        async def timed_out() -> bool:
            return await db.run(event_count, waiting, "conversation_wait_timeout") > 0

        await until(timed_out, within=15, what="the wait timer fired after the takeover")
        assert await owner_of(db, waiting) == "y"
        async with survivor.http(token) as client:
            r = await client.get(f"/api/chat/conversations/{waiting}")
            assert r.json()["waitTimedOut"] is True, r.text
        assert await db.run(event_count, waiting, "conversation_wait_timeout") == 1
