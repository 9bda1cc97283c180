"""One writer per invariant, against PostgreSQL and a real server (real HTTP, real sockets).

The visitor-session actor keeps one live chat per visitor and a partial unique index backs it;
an agent's capacity is checked inside the commit that gives them a chat, so a manual accept racing
round robin (or another accept) never passes it; starting a chat is one transaction.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
import trio

from storage import queries
from tests.support import Server, inbox_socket, login, new_visitor, seed
from tests.web.test_observability import sample, scrape


async def start(srv: Server, widget_id: str, token: str, **body: Any) -> Any:
    payload = {"name": "Carlos", "email": "c@example.com", "message": "hola", **body}
    async with srv.http(token) as http:
        return await http.post(f"/api/chat/widgets/{widget_id}/conversations", json=payload)


async def live_chats(srv: Server, tenant_id: str) -> list[Any]:
    async def read(connection: asyncpg.Connection) -> list[Any]:
        return list(
            await connection.fetch(
                """SELECT id, visitor_id, status, assignee_id FROM conversations
                    WHERE tenant_id = $1 AND kind = 'live_chat' ORDER BY created_at""",
                tenant_id,
            )
        )

    return await srv.run(read)


async def test_fifty_concurrent_starts_from_one_visitor_open_one_conversation(
    server: Server,
) -> None:
    [a] = await seed(server)
    v = await new_visitor(server, a.widget_id)
    answers: list[Any] = []

    async def one(n: int) -> None:
        # a double submit (the same clientMessageId) and different requests, all at once
        client_id = "same" if n % 2 else f"k{n}"
        answers.append(await start(server, a.widget_id, v.token, clientMessageId=client_id))

    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(one, n)
    [chat] = await live_chats(server, a.tenant_id)
    assert sorted({r.status_code for r in answers}) in ([201], [201, 409])
    for r in answers:
        if r.status_code == 201:
            assert r.json()["id"] == chat["id"]
            assert [m["text"] for m in r.json()["messages"]] == ["hola"]
        else:
            assert r.json()["error"]["code"] == "conversation_active"
            assert r.json()["error"]["conversationId"] == chat["id"]
    session = await server.run(queries.select_visitor_session, v.visitor_id)
    assert session.conversation_id == chat["id"]


async def test_a_start_is_one_transaction_and_one_crossing(server: Server) -> None:
    [a] = await seed(server)
    v = await new_visitor(server, a.widget_id)  # the widget heartbeats first
    before = await scrape(server)
    r = await start(server, a.widget_id, v.token)
    assert r.status_code == 201
    after = await scrape(server)
    verbs = {
        verb: sample(after, "curbe_storage_calls_total", verb=verb)
        - sample(before, "curbe_storage_calls_total", verb=verb)
        for verb in _verbs(after)
    }
    # the router's pass (nudged by conversation_created) runs beside the request, not in it
    verbs.pop("select_routing", None)
    assert {v: n for v, n in verbs.items() if n} == {"commit_conversation": 1}


def _verbs(metrics_text: str) -> set[str]:
    return set(re.findall(r'curbe_storage_calls_total\{verb="([a-z_]+)"\}', metrics_text))


async def test_the_database_refuses_a_second_active_live_chat_for_one_visitor(
    server: Server,
) -> None:
    [a] = await seed(server)
    v = await new_visitor(server, a.widget_id)
    r = await start(server, a.widget_id, v.token)
    assert r.status_code == 201

    async def sneak_in(connection: asyncpg.Connection) -> None:
        await connection.execute(
            """INSERT INTO conversations (id, tenant_id, widget_id, visitor_id, kind, status,
                       last_seq, created_at, updated_at)
               VALUES ('conv_sneaky', $1, $2, $3, 'live_chat', 'WAITING', 0, now(), now())""",
            a.tenant_id,
            a.widget_id,
            v.visitor_id,
        )

    with pytest.raises(asyncpg.UniqueViolationError, match="conversations_one_active_live_chat"):
        await server.run(sneak_in)


async def test_a_refused_start_stores_nothing_not_even_the_contact(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    first = (await start(server, a.widget_id, v.token)).json()["id"]
    async with server.http(token) as http:
        assert (await http.post(f"/api/chat/conversations/{first}/solve")).status_code == 200
        second = (await start(server, a.widget_id, v.token)).json()["id"]
        # reopening the first while the second is active: refused by the commit, nothing moves
        r = await http.post(f"/api/chat/conversations/{first}/reopen")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conversation_active"
        assert r.json()["error"]["conversationId"] == second
    again = await start(server, a.widget_id, v.token, name="Zed", email="zed@example.com")
    assert again.status_code == 409
    contact = await server.run(queries.select_contact, a.tenant_id, v.visitor_id)
    assert (contact["name"], contact["email"]) == ("Carlos", "c@example.com")
    chats = await live_chats(server, a.tenant_id)
    assert [(c["id"], c["status"]) for c in chats] == [(first, "SOLVED"), (second, "WAITING")]


async def test_a_proactive_start_and_the_visitors_own_start_cannot_both_win(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    for _ in range(3):  # three rounds of the same race
        v = await new_visitor(server, a.widget_id)
        answers: list[Any] = []

        async def visitor(v: Any = v, answers: list[Any] = answers) -> None:
            answers.append(await start(server, a.widget_id, v.token))

        async def agent(v: Any = v, answers: list[Any] = answers) -> None:
            async with server.http(token) as http:
                answers.append(
                    await http.post(
                        f"/api/chat/visitors/{v.visitor_id}/conversations",
                        json={"message": "¿Le ayudo?"},
                    )
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(visitor)
            nursery.start_soon(agent)
        assert sorted(r.status_code for r in answers) == [201, 409]
        mine = [c for c in await live_chats(server, a.tenant_id) if c["visitor_id"] == v.visitor_id]
        assert len(mine) == 1


async def test_an_agent_cannot_start_a_chat_through_a_deleted_widget(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with server.http(token) as http:
        deleted = await http.delete(f"/api/chat/widgets/{a.widget_id}")
        assert deleted.status_code == 200
        r = await http.post(
            f"/api/chat/visitors/{v.visitor_id}/conversations", json={"message": "¿Le ayudo?"}
        )
    assert r.status_code == 404, r.text
    assert await live_chats(server, a.tenant_id) == []


async def test_manual_accepts_racing_round_robin_never_pass_the_agents_capacity(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)

    async def setup(connection: asyncpg.Connection) -> None:
        await connection.execute("UPDATE agents SET max_open_chats = 2 WHERE id = $1", a.agent_id)
        await connection.execute(
            """UPDATE widgets SET settings = settings || '{"routing": "round_robin"}'
                WHERE id = $1""",
            a.widget_id,
        )

    await server.run(setup)
    for _ in range(3):  # three rounds: each starts with six chats waiting and the agent away
        ids = []
        for _ in range(6):
            v = await new_visitor(server, a.widget_id)
            ids.append((await start(server, a.widget_id, v.token)).json()["id"])
        answers: list[Any] = []

        async def accept(cid: str, answers: list[Any] = answers) -> None:
            async with server.http(token) as http:
                answers.append(await http.post(f"/api/chat/conversations/{cid}/accept"))

        # the agent's inbox opens (round robin starts offering) while they click Accept on all
        async with inbox_socket(server, token) as inbox, trio.open_nursery() as nursery:
            for cid in ids:
                nursery.start_soon(accept, cid)
        del inbox
        held = [
            c
            for c in await live_chats(server, a.tenant_id)
            if c["status"] == "OPEN" and c["assignee_id"] == a.agent_id
        ]
        assert len(held) == 2, held
        codes = {r.json()["error"]["code"] for r in answers if r.status_code != 200}
        assert codes <= {"at_capacity", "already_assigned"}, codes
        for r in answers:
            if r.status_code == 409 and r.json()["error"]["code"] == "at_capacity":
                assert r.json()["error"]["capacity"] == 2
                assert r.json()["error"]["openChats"] == 2
        async with server.http(token) as http:  # make room for the next round
            for chat in held:
                assert (await http.post(f"/api/chat/conversations/{chat['id']}/solve")).is_success
            for cid in ids:
                await http.post(f"/api/chat/conversations/{cid}/solve")
