"""Transfer (issue #17): an OPEN chat handed to an online colleague with room for it; the visitor
and the inbox hear ``conversation_assigned`` with ``previousAgent``; refusals change nothing."""

from __future__ import annotations

from typing import Any

from tests.support import (
    Server,
    accepted_chat,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    seed,
    visitor_socket,
)


async def transfer(srv: Server, token: str, cid: str, agent_id: Any) -> Any:
    async with srv.http(token) as client:
        return await client.post(
            f"/api/chat/conversations/{cid}/transfer", json={"agentId": agent_id}
        )


async def assigned_to(srv: Server, token: str) -> set[str]:
    async with srv.http(token) as client:
        r = await client.get("/api/chat/conversations?view=assigned")
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["conversations"]}


async def test_a_chat_goes_to_an_online_colleague_and_everyone_hears_it(server: Server) -> None:
    javier, ana = await seed(server, agents=2)
    tj, ta = await login(server, javier), await login(server, ana)
    v, cid = await accepted_chat(server, javier, tj)
    async with (
        inbox_socket(server, ta) as hers,  # Ana's inbox is open: she is online
        visitor_socket(server, v) as widget,
    ):
        async with server.http(tj) as client:
            r = await client.get("/api/chat/agents")
        assert r.status_code == 200, r.text
        team = {a["name"]: a for a in r.json()["agents"]}
        assert team["Ana Ruiz"]["status"] == "online"
        assert team["Javier Lazo"]["openChats"] == 1 and team["Ana Ruiz"]["openChats"] == 0
        assert team["Ana Ruiz"]["capacity"] >= 1

        r = await transfer(server, tj, cid, ana.agent_id)
        assert r.status_code == 200, r.text
        assert r.json()["assignee"]["id"] == ana.agent_id
        assert r.json()["status"] == "OPEN"
        for sock in (hers, widget):
            event = await sock.wait_for("conversation_assigned")
            assert event["data"]["agent"]["name"] == "Ana Ruiz"
            assert event["data"]["previousAgent"]["id"] == javier.agent_id
    assert await assigned_to(server, ta) == {cid}  # in her Assigned to me
    assert await assigned_to(server, tj) == set()
    async with server.http(tj) as client:
        events = (await client.get(f"/api/chat/conversations/{cid}")).json()
    assert events["assignee"]["id"] == ana.agent_id


async def test_refused_transfers_change_nothing(server: Server) -> None:
    javier, ana, bea = await seed(server, agents=3)
    [stranger] = await seed(server)  # an agent of another workspace
    tj, ta, tb = await login(server, javier), await login(server, ana), await login(server, bea)
    _v, cid = await accepted_chat(server, javier, tj)
    waiting = await new_chat(server, await new_visitor(server, javier.widget_id))

    async with inbox_socket(server, tb) as beas:
        await beas.send({"type": "presence", "status": "away"})
        while True:  # her own inbox hears that she is away: so does the server
            data = (await beas.wait_for("agent_presence_update"))["data"]
            if data["agentId"] == bea.agent_id and data["status"] == "away":
                break
        r = await transfer(server, tj, cid, bea.agent_id)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == {**r.json()["error"], "code": "agent_unavailable"}
        assert r.json()["error"]["presence"] == "away"
    r = await transfer(server, tj, cid, ana.agent_id)  # no inbox open: offline
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "agent_unavailable"
    assert r.json()["error"]["presence"] == "offline"
    r = await transfer(server, tj, cid, stranger.agent_id)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_agent", r.text
    for bad in (None, "", 5, "x" * 200):
        r = await transfer(server, tj, cid, bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body", r.text
    async with inbox_socket(server, ta):
        r = await transfer(server, tj, waiting, ana.agent_id)  # WAITING: accept it instead
        assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition", r.text
    ts = await login(server, stranger)
    async with inbox_socket(server, ts):  # another workspace's agent, online, to themselves
        r = await transfer(server, ts, cid, stranger.agent_id)
        assert r.status_code == 404, r.text  # that chat is not of their workspace
    assert await assigned_to(server, tj) == {cid}
    assert await assigned_to(server, ta) == set()


async def test_a_colleague_at_capacity_is_refused_in_the_commit(server: Server) -> None:
    capacity = 1
    javier, ana = await seed(server, agents=2)
    tj, ta = await login(server, javier), await login(server, ana)

    async def set_capacity(conn: Any) -> None:
        await conn.execute(
            "UPDATE agents SET max_open_chats = $1 WHERE id = $2", capacity, ana.agent_id
        )

    await server.run(set_capacity)
    _v1, hers = await accepted_chat(server, ana, ta)  # Ana holds her limit
    _v2, cid = await accepted_chat(server, javier, tj)
    async with inbox_socket(server, ta):
        r = await transfer(server, tj, cid, ana.agent_id)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "at_capacity"
    assert r.json()["error"]["capacity"] == capacity
    assert await assigned_to(server, ta) == {hers}
    assert await assigned_to(server, tj) == {cid}
