"""What operators see: /metrics moves with real traffic, the actor endpoint shows live actors,
logs are JSON with ids and without message text or secrets."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.support import OPS_TOKEN, Server, inbox_socket, login, new_visitor, seed, visitor_socket
from web.logs import JsonFormatter


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        got = ",".join(sorted((match.group(2) or "{}")[1:-1].split(","))) if match.group(2) else ""
        if got == want:
            return float(match.group(3))
    return 0.0


async def scrape(server: Server) -> str:
    async with server.http() as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_metrics_move_when_a_message_is_sent(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    before = await scrape(server)
    async with visitor_socket(server, v) as widget, inbox_socket(server, token) as inbox:
        during = await scrape(server)
        assert sample(during, "curbe_connections", side="visitor") >= 1
        assert sample(during, "curbe_connections", side="agent") >= 1
        async with server.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{a.widget_id}/conversations",
                json={"name": "Carlos", "email": "c@example.com", "message": "hola"},
            )
            assert r.status_code == 201
            cid = r.json()["id"]
        await widget.wait_for("message_created", conversationId=cid)
        await inbox.wait_for("message_created", conversationId=cid)
        after = await scrape(server)

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert sample(after, name, **labels) - sample(before, name, **labels) >= by, name

    grew("curbe_messages_stored_total", sender="visitor")
    grew("curbe_commits_total")
    grew("curbe_commit_seconds_count")
    grew("curbe_events_published_total", type="message_created")
    grew("curbe_delivery_seconds_count", 1, side="visitor")
    grew("curbe_delivery_seconds_count", 1, side="agent")
    grew("curbe_heartbeats_total", 0, result="accepted")
    assert sample(after, "curbe_actors", kind="conversation") >= 1
    assert sample(after, "curbe_actors", kind="visitor_session") >= 1


async def test_refused_heartbeats_are_counted(server: Server) -> None:
    [a] = await seed(server, domains=["insuremax.com"])
    before = sample(await scrape(server), "curbe_heartbeats_total", result="refused")
    async with server.http(headers={"Origin": "https://evil.example"}) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/heartbeat",
            json={"currentDomain": "evil.example", "currentUrl": "https://evil.example/"},
        )
        assert r.status_code == 403
    after = sample(await scrape(server), "curbe_heartbeats_total", result="refused")
    assert after - before == 1


async def test_introspection_shows_the_actors_of_a_live_conversation_and_visitor(
    server: Server,
) -> None:
    [a] = await seed(server)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v), server.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/conversations",
            json={"name": "Carlos", "email": "c@example.com", "message": "hola"},
        )
        cid = r.json()["id"]
        async with server.http(OPS_TOKEN) as ops:
            body = (await ops.get(f"/api/ops/actors?tenant={a.tenant_id}")).json()
            one = (await ops.get(f"/api/ops/actors/conversation/{cid}")).json()
            visitors = (await ops.get("/api/ops/actors?kind=visitor_session")).json()
    actors = {(x["kind"], x["id"]): x for x in body["actors"]}
    conv = actors[("conversation", cid)]
    assert conv["tenantId"] == a.tenant_id and conv["state"] == "WAITING"
    assert conv["waitDeadline"] and conv["subscribers"] >= 1
    assert {"mailbox", "restarts", "startedAt", "lastActivityAt"} <= set(conv)
    assert [e["type"] for e in one["recentEvents"]][:2] == [
        "conversation_created",
        "message_created",
    ]
    assert v.visitor_id in {x["id"] for x in visitors["actors"]}
    assert all(x["kind"] == "visitor_session" for x in visitors["actors"])


async def test_logs_are_json_with_ids_and_never_text_or_secrets(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    secret_text = "my policy number is 4455-SECRET"
    [a] = await seed(server, domains=["insuremax.com"])
    caplog.set_level(logging.INFO)
    token = await login(server, a)
    async with server.http(headers={"Origin": "https://insuremax.com"}) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/heartbeat",
            json={"currentDomain": "insuremax.com", "currentUrl": "https://insuremax.com/"},
        )
        visitor_token = r.json()["visitorToken"]
    async with server.http(visitor_token) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/conversations",
            json={"name": "Carlos", "email": "c@example.com", "message": secret_text},
        )
        cid = r.json()["id"]
    async with server.http(token) as client:
        await client.post(f"/api/chat/conversations/{cid}/accept")
    async with server.http(headers={"Origin": "https://evil.example"}) as client:
        await client.post(
            f"/api/chat/widgets/{a.widget_id}/heartbeat",
            json={"currentDomain": "evil.example", "currentUrl": "https://evil.example/"},
        )
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records if r.name.startswith("curbe")]
    parsed = [json.loads(line) for line in lines]
    assert any(
        p["msg"] == "conversation_created" and p["conversationId"] == cid and p["tenantId"]
        for p in parsed
    )
    assert any(p["msg"].startswith("heartbeat refused") and p["domain"] for p in parsed)
    everything = "\n".join(lines)
    for secret in (secret_text, token, visitor_token, a.password):
        assert secret not in everything
