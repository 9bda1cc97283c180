"""The server image as an operator runs it: two replicas started at once on an empty database
and one NATS, a chat across them over real sockets, then ``docker stop`` (SIGTERM) of each."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pytest
import trio
import trio_asyncio
import trio_websocket

from storage.db import Database, migration_files
from tests.cluster.support import leases, open_nats, until
from tests.docker.support import (
    Chat,
    Container,
    docker,
    messages_both_ways,
    open_chat,
    open_container,
    seed_with_cli,
)
from tests.support import visitor_socket

pytestmark = [pytest.mark.docker, pytest.mark.slow]


async def stop(node: Container) -> float:
    """``docker stop`` (SIGTERM, then SIGKILL after 40 s): checks the stop was clean and answers
    how long it took."""
    started = trio.current_time()
    await docker("stop", "-t", "40", node.name, within=60)
    took = trio.current_time() - started
    state = json.loads(await node.inspect("{{json .State}}"))
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False), state  # 137 = SIGKILLed
    records = await node.logs()
    bad = [
        r
        for r in records
        if r.get("level") in {"ERROR", "CRITICAL"}
        or r.get("status") == "cut_short"  # held to the grace deadline instead of stopping
        or "Traceback" in str(r)
    ]
    assert not bad, bad
    return took


async def live_shards_of(db: Database, node: str) -> int:
    rows = await db.run(leases)
    return sum(1 for owner, live in rows.values() if live and owner and owner.startswith(node))


async def held_by(db: Database, nodes: set[str]) -> bool:
    """Every shard live and held by a process of ``nodes`` (a worker is ``<node>-w<i>.<gen>``),
    each node holding some."""
    rows = await db.run(leases)
    owners = {owner.split("-w")[0] for owner, live in rows.values() if live and owner}
    return all(live for _, live in rows.values()) and owners == nodes


@pytest.mark.deadline(420)
async def test_two_replicas_start_at_once_serve_a_chat_and_stop_cleanly_one_after_the_other(
    image: str, empty_database_url: str
) -> None:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(trio_asyncio.open_loop())
        nats = await stack.enter_async_context(open_nats())
        env = {"DATABASE_URL": empty_database_url, "NATS_URL": nats}
        # both start on an empty database within a second: each migrates, under the advisory lock.
        # ``a`` runs two worker processes (the image's default is one per core), ``b`` one.
        a = await stack.enter_async_context(open_container(image, "a", CURBE_WORKERS="2", **env))
        b = await stack.enter_async_context(open_container(image, "b", CURBE_WORKERS="1", **env))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.wait_healthy)
            nursery.start_soon(b.wait_healthy)

        # every migration applied once, by one of them
        applied = [
            r["migration"]
            for node in (a, b)
            for r in await node.logs()
            if r.get("msg") == "migration applied"
        ]
        assert sorted(applied) == [name for _, name, _ in migration_files()], applied
        for node in (a, b):
            assert (await node.exec("id", "-u")).strip() == "10001"  # not root
            async with node.http() as client:
                r = await client.get("/healthz")
                assert r.status_code == 200 and r.json()["status"] == "ok", r.text

        db = await Database.connect(empty_database_url, min_size=1, max_size=2)
        stack.push_async_callback(db.close)
        await until(lambda: held_by(db, {"a", "b"}), within=60, what="shards spread")

        who = await seed_with_cli(a)  # the admin commands work inside the image
        # the visitor on one replica, the agent on the other
        async with open_chat(a, b, who) as chat:
            seqs = await messages_both_ways(chat, "1")

            # SIGTERM: ``a`` closes its sockets as a shutdown (1001), gives its shards back, exits 0
            took = await stop(a)
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                while True:
                    await chat.widget.next()
            assert closed.value.reason.code == 1001, closed.value.reason
            # given back, not left to expire: none is live a moment after the stop (ttl is 8 s)
            assert await live_shards_of(db, "a") == 0
            await until(lambda: held_by(db, {"b"}), within=30, what="b holds every shard")

            # the visitor comes back on ``b``, resumes, and the chat goes on: nothing lost
            async with visitor_socket(b, chat.visitor) as widget:  # type: ignore[arg-type]
                await widget.send(
                    {"type": "resume", "conversationId": chat.conversation_id, "afterSeq": seqs[-1]}
                )
                resumed = await widget.wait_for("resumed", conversationId=chat.conversation_id)
                assert resumed["lastSeq"] == seqs[-1]
                again = Chat(
                    chat.conversation_id, chat.visitor, chat.agent_token, widget, chat.inbox
                )
                more = await messages_both_ways(again, "2")
                assert more == [seqs[-1] + 1, seqs[-1] + 2]
            async with b.http(chat.agent_token) as client:
                r = await client.get(f"/api/chat/conversations/{chat.conversation_id}")
                assert r.status_code == 200, r.text
                texts = [m["text"] for m in r.json()["messages"]]
            assert texts == ["hola", "visitor 1", "agent 1", "visitor 2", "agent 2"], texts
        await stop(b)
    print(f"docker stop took {took:.1f} s")
