"""Two and three ``curbe-chat serve`` processes on one PostgreSQL and one NATS behave as one
server: whichever process a request or a socket lands on, every actor has one owner, commands
reach it, and every socket hears every event once, in order."""

from __future__ import annotations

import collections
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from engine.metrics import parse_samples
from engine.placement import shard_of
from storage.db import Database
from tests.cluster.support import Node, balanced, open_node, owner_of, until
from tests.support import Visitor, inbox_socket, login, new_visitor, seed, visitor_socket

pytestmark = pytest.mark.slow


async def start_chat(node: Node, v: Visitor, text: str = "hola") -> str:
    async with node.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations",
            json={"name": "Carlos", "email": "carlos@example.com", "message": text},
        )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def open_cluster(
    stack: AsyncExitStack, database_url: str, nats_url: str, db: Database, *names: str
) -> list[Node]:
    nodes = [
        await stack.enter_async_context(open_node(database_url, nats_url, name, db))
        for name in names
    ]
    await until(lambda: balanced(db, list(names)), within=30, what="leases balanced")
    return nodes


async def test_three_nodes_serve_one_chat_wherever_each_party_lands(
    database_url: str, nats_url: str, db: Database
) -> None:
    async with AsyncExitStack() as stack:
        a, b, c = await open_cluster(stack, database_url, nats_url, db, "a", "b", "c")
        javier, ana = await seed(a, agents=2)  # type: ignore[arg-type]
        tj, ta = await login(b, javier), await login(c, ana)  # type: ignore[arg-type]
        inbox_b = await stack.enter_async_context(inbox_socket(b, tj))  # type: ignore[arg-type]
        inbox_c = await stack.enter_async_context(inbox_socket(c, ta))  # type: ignore[arg-type]
        visitor = await new_visitor(a, javier.widget_id)  # type: ignore[arg-type]
        widget = await stack.enter_async_context(visitor_socket(a, visitor))  # type: ignore[arg-type]

        # an agent online on B and one on C: the widget on A hears agents are online
        async with a.http(visitor.token) as client:
            r = await client.get(f"/api/chat/widgets/{visitor.widget_id}/config")
            assert r.status_code == 200 and r.json()["agentsOnline"] is True, r.text

        cid = await start_chat(a, visitor)
        for inbox in (inbox_b, inbox_c):
            created = await inbox.wait_for("conversation_created", conversationId=cid)
            assert created["seq"] == 1

        # an accept race from two nodes: one winner, the other told who won
        async def accept(node: Node, token: str, out: dict[str, Any]) -> None:
            async with node.http(token) as client:
                r = await client.post(f"/api/chat/conversations/{cid}/accept")
                out[node.name] = (r.status_code, r.json())

        answers: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept, b, tj, answers)
            nursery.start_soon(accept, c, ta, answers)
        codes = sorted(code for code, _ in answers.values())
        assert codes == [200, 409], answers
        winner = next(n for n, (code, _) in answers.items() if code == 200)
        loser = next(n for n, (code, _) in answers.items() if code == 409)
        won_by = javier if winner == "b" else ana
        err = answers[loser][1]["error"]
        assert (err["code"], err["assignee"]["id"]) == ("already_assigned", won_by.agent_id)
        assigned = await widget.wait_for("conversation_assigned", conversationId=cid)
        assert assigned["data"]["agent"]["id"] == won_by.agent_id

        # messages both ways: the agent writes on its node, the visitor on A
        agent_node, agent_token = (b, tj) if winner == "b" else (c, ta)
        agent_inbox = inbox_b if winner == "b" else inbox_c
        sent = []
        for n in range(6):
            if n % 2:
                async with agent_node.http(agent_token) as client:
                    r = await client.post(
                        f"/api/chat/conversations/{cid}/messages",
                        json={"text": f"agent {n}", "clientMessageId": f"a{n}"},
                    )
            else:
                async with a.http(visitor.token) as client:
                    r = await client.post(
                        f"/api/chat/widgets/{visitor.widget_id}/conversations/{cid}/messages",
                        json={"text": f"visitor {n}", "clientMessageId": f"v{n}"},
                    )
            assert r.status_code == 201, r.text
            sent.append(r.json())
        last = sent[-1]["seq"]
        for sock in (widget, agent_inbox):
            await sock.wait_for("message_created", seq=last)
            frames = [f for f in sock.seen if f.get("conversationId") == cid and "seq" in f]
            seqs = [f["seq"] for f in frames]
            assert seqs == sorted(set(seqs)), seqs  # in order, each once
            texts = [f["data"]["message"]["text"] for f in frames if f["type"] == "message_created"]
            assert texts[-6:] == [m["text"] for m in sent]

        # every node answers for the conversation, wherever its actor lives
        owner = await owner_of(db, cid)
        assert owner in {"a", "b", "c"}
        for node in (a, b, c):
            async with node.http(agent_token) as client:
                r = await client.get(f"/api/chat/conversations/{cid}")
                assert r.status_code == 200 and r.json()["lastSeq"] == last, r.text
        forwarded = 0
        for node in (a, b, c):
            forwarded += (await node.ops("/api/ops/cluster"))["forwarded"]
        assert forwarded > 0  # some command crossed between processes
        # the conversation's events reached the nodes that do not own it over the bus, which
        # timed its own hop and the lag from the commit
        for node in (a, b, c):
            if node.name == owner:
                continue
            async with node.http() as client:
                text = (await client.get("/metrics")).text
            samples = parse_samples(text)
            assert samples[("curbe_bus_events_total", (("direction", "in"),))] > 0, node.name
            assert samples[("curbe_bus_hop_seconds_count", ())] > 0, node.name
            assert samples[("curbe_bus_lag_seconds_count", ())] > 0, node.name


async def test_round_robin_spreads_chats_across_agents_on_two_nodes(
    database_url: str, nats_url: str, db: Database
) -> None:
    async with AsyncExitStack() as stack:
        a, b = await open_cluster(stack, database_url, nats_url, db, "a", "b")
        javier, ana = await seed(a, agents=2)  # type: ignore[arg-type]
        tj, ta = await login(a, javier), await login(b, ana)  # type: ignore[arg-type]
        async with a.http(tj) as client:
            r = await client.patch(
                f"/api/chat/widgets/{javier.widget_id}", json={"routing": "round_robin"}
            )
            assert r.status_code == 200, r.text
        inbox_a = await stack.enter_async_context(inbox_socket(a, tj))  # type: ignore[arg-type]
        await stack.enter_async_context(inbox_socket(b, ta))  # type: ignore[arg-type]
        chats = []
        for n in range(6):
            node = (a, b)[n % 2]
            v = await new_visitor(node, javier.widget_id)  # type: ignore[arg-type]
            chats.append(await start_chat(node, v))
        assigned: dict[str, str] = {}
        while len(assigned) < 6:
            event = await inbox_a.wait_for("conversation_assigned")
            assigned[event["conversationId"]] = event["data"]["agent"]["id"]
        assert set(assigned) == set(chats)
        spread = collections.Counter(assigned.values())
        assert spread == {javier.agent_id: 3, ana.agent_id: 3}
        assert {shard_of(c) for c in chats}  # the chats' actors live on both nodes' shards


async def test_a_sites_heartbeats_do_not_each_cross_to_the_widgets_process(
    database_url: str, nats_url: str, db: Database
) -> None:
    """Every heartbeat needs the widget's row and records a ping; on a process that does not own
    the widget's actor both are kept nearby (web/nearby.py): the row reused for a second, one ping
    per domain every 5 s. So a burst of heartbeats crosses to the widget's process about once."""
    async with AsyncExitStack() as stack:
        a, b = await open_cluster(stack, database_url, nats_url, db, "a", "b")
        [javier] = await seed(a)  # type: ignore[arg-type]
        owner = await owner_of(db, javier.widget_id)
        here = b if owner == "a" else a  # the process that does not own the widget
        for _ in range(40):  # a visitor whose session actor lives here: its calls stay here
            visitor = await new_visitor(here, javier.widget_id)  # type: ignore[arg-type]
            if await owner_of(db, visitor.visitor_id) == here.name:
                break
        else:
            raise AssertionError("no visitor session landed on the process without the widget")
        before = (await here.ops("/api/ops/cluster"))["forwarded"]
        async with here.http(visitor.token) as client:
            for n in range(12):
                r = await client.post(
                    f"/api/chat/widgets/{javier.widget_id}/heartbeat",
                    json={
                        "currentDomain": "shop.example.com",
                        "currentUrl": f"https://shop.example.com/p/{n}",
                        "timestamp": "2020-01-01T00:00:00Z",
                    },
                )
                assert r.status_code == 200, r.text
        crossed = (await here.ops("/api/ops/cluster"))["forwarded"] - before
        # before: 2 per heartbeat (the row, the ping); now the row about once a second and the
        # ping at most once in 5 s, however fast the burst
        assert crossed <= 6, crossed
        # the widget's actor did hear of the site: its status and the domain it was seen on
        token = await login(a, javier)  # type: ignore[arg-type]
        async with a.http(token) as client:
            w = (await client.get(f"/api/chat/widgets/{javier.widget_id}")).json()
        assert w["status"] == "ACTIVE" and w["domain"] == "shop.example.com", w


async def test_presence_from_another_node_is_batched_and_ops_lists_every_service(
    database_url: str, nats_url: str, db: Database
) -> None:
    """Visitors arriving on one node reach an inbox on the other in per-tenant batches; the
    operator's actor list names each service of a clustered node with its detail (it answered
    500 while a service described fields the report did not know)."""
    async with AsyncExitStack() as stack:
        a, b = await open_cluster(stack, database_url, nats_url, db, "a", "b")
        [javier] = await seed(a)  # type: ignore[arg-type]
        token = await login(b, javier)  # type: ignore[arg-type]
        async with inbox_socket(b, token) as inbox:  # type: ignore[arg-type]
            inbox.unfold = False
            minted = set()
            async with trio.open_nursery() as nursery:

                async def mint() -> None:
                    for _ in range(10):
                        minted.add((await new_visitor(a, javier.widget_id)).visitor_id)  # type: ignore[arg-type]

                for _ in range(4):
                    nursery.start_soon(mint)
            online: set[str] = set()
            kinds = collections.Counter()
            while online != minted:
                frame = await inbox.next()
                if frame["type"] == "visitor_presence_batch":
                    updates = frame["data"]["visitors"]
                elif frame["type"] == "visitor_presence_update":
                    updates = [frame["data"]]
                else:
                    continue
                kinds[frame["type"]] += 1
                online |= {u["visitorId"] for u in updates if u["online"]}
        assert kinds["visitor_presence_batch"] >= 1, kinds
        assert sum(kinds.values()) < len(minted), kinds

        for node in (a, b):
            report = await node.ops("/api/ops/actors?kind=service")
            services = {r["id"]: r for r in report["actors"]}
            assert {"presence_batches", "presence_sharing", "lease_keeper"} <= set(services)
            assert services["presence_sharing"]["nodesHeard"]
            assert services["lease_keeper"]["nodeId"] == node.name
            assert "batchesSent" in services["presence_batches"]
