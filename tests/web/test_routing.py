"""Presence, routing and the queue end to end: real server, real PostgreSQL, real sockets."""

from __future__ import annotations

import collections
import math
from typing import Any

import trio

from tests.support import (
    Seed,
    Server,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
)


async def routing(server: Server, token: str, widget_id: str, mode: str) -> None:
    async with server.http(token) as client:
        r = await client.patch(f"/api/chat/widgets/{widget_id}", json={"routing": mode})
    assert r.status_code == 200, r.text
    assert r.json()["routing"] == mode


async def conversations(server: Server, token: str, view: str = "all") -> list[dict[str, Any]]:
    async with server.http(token) as client:
        r = await client.get(f"/api/chat/conversations?view={view}")
    assert r.status_code == 200, r.text
    return r.json()["conversations"]  # type: ignore[no-any-return]


async def set_capacity(server: Server, agent: Seed, capacity: int) -> None:
    async def update(connection: Any) -> None:
        await connection.execute(
            "UPDATE agents SET max_open_chats = $2 WHERE id = $1", agent.agent_id, capacity
        )

    await server.run(update)


async def test_round_robin_spreads_chats_and_connects_the_visitor(server: Server) -> None:
    a, b = await seed(server, agents=2)
    ta, tb = await login(server, a), await login(server, b)
    await routing(server, ta, a.widget_id, "round_robin")
    async with inbox_socket(server, ta) as inbox, inbox_socket(server, tb):
        visitors = [await new_visitor(server, a.widget_id) for _ in range(6)]
        async with visitor_socket(server, visitors[0]) as widget:
            first = await new_chat(server, visitors[0])
            event = await widget.wait_for("conversation_assigned", conversationId=first)
            assert event["data"]["agent"]["id"] in {a.agent_id, b.agent_id}
        for v in visitors[1:]:
            await new_chat(server, v)
        assigned = set()
        while len(assigned) < 6:  # the inbox hears every offer
            event = await inbox.wait_for("conversation_assigned")
            assigned.add(event["conversationId"])
        rows = await conversations(server, ta, "open")
    spread = collections.Counter(row["assignee"]["id"] for row in rows)
    assert spread == {a.agent_id: 3, b.agent_id: 3}
    assert await conversations(server, ta, "waiting") == []


async def test_manual_accept_past_capacity_is_refused(server: Server) -> None:
    [a] = await seed(server)
    await set_capacity(server, a, 1)
    token = await login(server, a)
    v1, v2 = await new_visitor(server, a.widget_id), await new_visitor(server, a.widget_id)
    c1, c2 = await new_chat(server, v1), await new_chat(server, v2)
    async with server.http(token) as client:
        assert (await client.post(f"/api/chat/conversations/{c1}/accept")).status_code == 200
        r = await client.post(f"/api/chat/conversations/{c2}/accept")
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert (err["code"], err["openChats"], err["capacity"]) == ("at_capacity", 1, 1)
        assert (await client.post(f"/api/chat/conversations/{c1}/solve")).status_code == 200
        assert (await client.post(f"/api/chat/conversations/{c2}/accept")).status_code == 200


async def test_round_robin_respects_capacity_and_the_rest_wait_in_line(server: Server) -> None:
    [a] = await seed(server)
    await set_capacity(server, a, 1)
    token = await login(server, a)
    await routing(server, token, a.widget_id, "round_robin")
    async with inbox_socket(server, token):
        v1, v2, v3 = [await new_visitor(server, a.widget_id) for _ in range(3)]
        c1 = await new_chat(server, v1)
        async with visitor_socket(server, v3) as third:
            await new_chat(server, v2)
            c3 = await new_chat(server, v3)
            event = await third.wait_for("queue_position")
            while event["data"]["position"] != 2:
                event = await third.wait_for("queue_position")
            assert event["data"]["conversationId"] == c3
            rows = {row["id"]: row for row in await conversations(server, token)}
            assert rows[c1]["status"] == "OPEN"
            assert sum(row["status"] == "WAITING" for row in rows.values()) == 2
            # the agent solves the open chat: the oldest waiting one is offered, the line moves
            async with server.http(token) as client:
                r = await client.post(f"/api/chat/conversations/{c1}/solve")
                assert r.status_code == 200
            event = await third.wait_for("queue_position")
            assert event["data"]["position"] == 1 and event["data"]["ahead"] == 0


async def test_the_queue_counts_down_as_chats_are_accepted(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    visitors = [await new_visitor(server, a.widget_id) for _ in range(3)]
    ids = []
    async with visitor_socket(server, visitors[2]) as last:
        for v in visitors:
            ids.append(await new_chat(server, v))
        event = await last.wait_for("queue_position")
        while event["data"]["position"] != 3:
            event = await last.wait_for("queue_position")
        async with server.http(token) as client:
            for expected, cid in zip((2, 1), ids[:2], strict=True):
                assert (
                    await client.post(f"/api/chat/conversations/{cid}/accept")
                ).status_code == 200
                event = await last.wait_for("queue_position")
                assert event["data"]["position"] == expected
                # an estimate appears once waits have been measured and an agent is known
                assert event["data"]["estimatedWaitSeconds"] is None or (
                    event["data"]["estimatedWaitSeconds"] >= 0
                )


async def test_an_agent_who_leaves_with_open_chats_is_flagged(server: Server) -> None:
    a, b = await seed(server, agents=2)
    ta, tb = await login(server, a), await login(server, b)
    v = await new_visitor(server, a.widget_id)
    cid = await new_chat(server, v)
    async with inbox_socket(server, tb) as watcher:
        async with inbox_socket(server, ta):
            async with server.http(ta) as client:
                assert (
                    await client.post(f"/api/chat/conversations/{cid}/accept")
                ).status_code == 200
            [row] = await conversations(server, tb, "open")
            assert row["assigneeOnline"] is True
        event = await watcher.wait_for("agent_presence_update")
        while event["data"]["agentId"] != a.agent_id or event["data"]["status"] != "offline":
            event = await watcher.wait_for("agent_presence_update")
        [row] = await conversations(server, tb, "open")
        assert row["id"] == cid and row["assigneeOnline"] is False


async def test_round_robin_hands_an_absent_agents_chats_to_a_colleague(database_url: str) -> None:
    async with open_server(database_url, reoffer_after_seconds=1) as server:
        a, b = await seed(server, agents=2)
        ta, tb = await login(server, a), await login(server, b)
        await routing(server, ta, a.widget_id, "round_robin")
        v = await new_visitor(server, a.widget_id)
        async with visitor_socket(server, v) as widget:
            async with inbox_socket(server, ta):
                cid = await new_chat(server, v)
                event = await widget.wait_for("conversation_assigned")
                assert event["data"]["agent"]["id"] == a.agent_id
            async with inbox_socket(server, tb):  # A left; B is here
                event = await widget.wait_for("conversation_assigned")
                assert event["data"]["agent"]["id"] == b.agent_id
                assert event["data"]["previousAgent"]["id"] == a.agent_id
        [row] = await conversations(server, tb, "open")
        assert row["id"] == cid and row["assignee"]["id"] == b.agent_id


async def test_live_list_and_waiting_list_agree_at_every_step(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id, url="https://shop.example.com/quote")

    async def live() -> dict[str, Any]:
        async with server.http(token) as client:
            rows = (await client.get("/api/chat/visitors/live")).json()["visitors"]
        [row] = [r for r in rows if r["visitorId"] == v.visitor_id]
        return row  # type: ignore[no-any-return]

    before = await live()
    assert before["inChat"] is False
    assert before["name"] is None and before["displayName"]  # an alias until they say who
    async with inbox_socket(server, token) as inbox:
        cid = await new_chat(server, v)
        update = await inbox.wait_for("visitor_presence_update")
        while not update["data"]["inChat"]:
            update = await inbox.wait_for("visitor_presence_update")
        assert update["data"]["displayName"] == "Carlos Lopez"  # the name given, live
    row = await live()
    assert row["displayName"] == "Carlos Lopez" and row["name"] == "Carlos Lopez"
    assert (row["inChat"], row["conversationId"], row["currentUrl"]) == (
        True,
        cid,
        "https://shop.example.com/quote",
    )
    assert [c["id"] for c in await conversations(server, token, "waiting")] == [cid]
    async with server.http(token) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        assert (await live())["conversationId"] == cid
        assert await conversations(server, token, "waiting") == []
        assert (await client.post(f"/api/chat/conversations/{cid}/solve")).status_code == 200
    row = await live()
    assert row["inChat"] is False and row["conversationId"] is None


async def test_a_burst_of_heartbeats_is_coalesced_for_the_inbox(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    body = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}
    async with inbox_socket(server, token) as inbox, server.http(v.token) as client:
        started = trio.current_time()

        async def beat() -> None:
            r = await client.post(f"/api/chat/widgets/{v.widget_id}/heartbeat", json=body)
            assert r.status_code == 200

        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(beat)
        # the burst's last state always goes out, at most a second later
        last = await inbox.wait_for("visitor_presence_update")
        while last["data"]["visitorId"] != v.visitor_id:
            last = await inbox.wait_for("visitor_presence_update")
        elapsed = trio.current_time() - started
        frames = [*inbox.seen, *await inbox.drain()]
    updates = [
        f
        for f in frames
        if f["type"] == "visitor_presence_update" and f["data"]["visitorId"] == v.visitor_id
    ]
    # at most one update per second since the burst began, plus the one at its start
    assert 1 <= len(updates) <= math.ceil(elapsed) + 1, (len(updates), elapsed)


async def test_a_reconnecting_widget_hears_its_place_in_line_at_once(server: Server) -> None:
    [a] = await seed(server)
    v1, v2 = await new_visitor(server, a.widget_id), await new_visitor(server, a.widget_id)
    await new_chat(server, v1)
    async with visitor_socket(server, v2) as first:
        cid = await new_chat(server, v2)
        event = await first.wait_for("queue_position")
        assert event["data"] == {
            "conversationId": cid,
            "position": 2,
            "ahead": 1,
            "estimatedWaitSeconds": None,
        }
    # nothing changed in the line, yet a new socket (a reload) is told where it stands
    async with visitor_socket(server, v2) as again:
        event = await again.wait_for("queue_position")
        assert event["data"]["position"] == 2 and event["data"]["conversationId"] == cid
