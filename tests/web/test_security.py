"""Who may see and change what: visitors, tenants, agents, operators (real server, real sockets).

* A visitor token reaches only that visitor's conversations, over REST and the WebSocket alike;
  a bare visitor id proves nothing, and a tampered token is refused.
* An agent sees and changes only its own tenant's data; another tenant's ids answer 404, exactly
  like unknown ids, and its inbox stream never carries another tenant's events.
* Agent and operator endpoints need their own credentials.
* Markup typed by people is data: stored and returned verbatim as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from storage import queries
from tests.support import (
    OPS_TOKEN,
    Seed,
    Server,
    Socket,
    accept,
    agent_says,
    detail,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    row_counts,
    seed,
    visitor_socket,
)
from web.auth import new_agent_token, token_hash

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert SNAKE_CASE.match(err["code"]) and isinstance(err["message"], str), err
    if code is not None:
        assert err["code"] == code, err
    return err  # type: ignore[no-any-return]


async def agent_call(
    server: Server, token: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    async with server.http(token) as client:
        return await client.request(method, path, **kwargs)


async def wait_for_text(sock: Socket, text: str) -> dict[str, Any]:
    while True:
        frame = await sock.wait_for("message_created")
        if frame["data"]["message"]["text"] == text:
            return frame


async def texts_until(sock: Socket, cid: str, last: str) -> list[str]:
    """Texts of every message_created of ``cid`` the socket saw (read on until ``last``)."""
    while True:
        texts = [
            f["data"]["message"]["text"]
            for f in sock.seen
            if f.get("type") == "message_created" and f.get("conversationId") == cid
        ]
        if last in texts:
            return texts
        await sock.next()


async def close_code(server: Server, path: str) -> int:
    async with trio_websocket.open_websocket_url(server.ws_url + path) as ws:
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            frame = await ws.get_message()
            pytest.fail(f"expected a close, got {frame!r}")
    code = closed.value.reason.code
    assert code is not None
    return code


def mentions(frames: list[dict[str, Any]], *needles: str) -> list[dict[str, Any]]:
    """The frames whose JSON text contains any of ``needles``."""
    return [f for f in frames if any(n in json.dumps(f) for n in needles)]


# --- visitor against visitor --------------------------------------------------------------------


async def test_visitor_reads_only_its_own_conversation(server: Server) -> None:
    [a] = await seed(server)
    alice, bob, carol = [await new_visitor(server, a.widget_id) for _ in range(3)]
    cid_alice = await new_chat(server, alice, "alice's secret")
    cid_bob = await new_chat(server, bob, "bob's secret")
    path = f"/api/chat/widgets/{a.widget_id}/conversation"
    for v, cid, text in ((alice, cid_alice, "alice's secret"), (bob, cid_bob, "bob's secret")):
        async with server.http(v.token) as client:
            r = await client.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == cid and body["visitorId"] == v.visitor_id
        assert [m["text"] for m in body["messages"]] == [text]
        assert {m["conversationId"] for m in body["messages"]} == {cid}
    async with server.http(carol.token) as client:
        r = await client.get(path)
    assert_error(r, 404, "not_found")
    assert "secret" not in r.text and cid_alice not in r.text and cid_bob not in r.text


@pytest.mark.parametrize("reuse_client_id", [False, True], ids=["new-id", "victims-client-id"])
async def test_visitor_cannot_post_into_another_visitors_conversation(
    server: Server, reuse_client_id: bool
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    victim, intruder = [await new_visitor(server, a.widget_id) for _ in range(2)]
    cid = await new_chat(server, victim, "private", clientMessageId="victim-1")
    await new_chat(server, intruder, "mine")
    before_rows = await server.run(row_counts)
    before = await detail(server, token, cid)
    body = {"text": "injected", "clientMessageId": "victim-1" if reuse_client_id else "x-1"}
    async with server.http(intruder.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/conversations/{cid}/messages", json=body
        )
    assert_error(r, 404, "not_found")
    assert "private" not in r.text  # a replayed clientMessageId must not reveal the victim's text
    assert await server.run(row_counts) == before_rows
    assert await detail(server, token, cid) == before


async def test_visitor_socket_cannot_write_into_another_visitors_conversation(
    server: Server,
) -> None:
    [a] = await seed(server)
    victim, intruder = [await new_visitor(server, a.widget_id) for _ in range(2)]
    cid = await new_chat(server, victim, "private")
    await new_chat(server, intruder, "mine")
    before = await server.run(row_counts)
    async with visitor_socket(server, intruder) as sock:
        await sock.send({"type": "message", "text": "injected", "conversationId": cid})
        frames = await sock.drain()
    [error] = [f for f in frames if f["type"] == "error"]
    assert error["error"]["code"] == "not_found"
    assert not [f for f in frames if f["type"] in ("ack", "message_created")]
    assert await server.run(row_counts) == before


async def test_resume_of_another_visitors_conversation_is_not_found(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    victim, intruder = [await new_visitor(server, a.widget_id) for _ in range(2)]
    cid = await new_chat(server, victim, "private")
    await accept(server, token, cid)
    await agent_says(server, token, cid, "private reply")
    own = await new_chat(server, intruder, "mine")
    async with visitor_socket(server, intruder) as sock:
        await sock.send({"type": "resume", "conversationId": cid, "afterSeq": 0})
        frames = await sock.drain()
        errors = [f for f in frames if f["type"] == "error"]
        assert [e["error"]["code"] for e in errors] == ["not_found"]
        assert not [f for f in frames if f.get("conversationId") == cid or f["type"] == "resumed"]
        assert not mentions(frames, "private")
        # control: resuming its own conversation does replay it
        await sock.send({"type": "resume", "conversationId": own, "afterSeq": 0})
        resumed = await sock.wait_for("resumed", conversationId=own)
        assert resumed["lastSeq"] >= 2
        replayed = [f for f in sock.seen if f.get("conversationId") == own and "seq" in f]
        assert [f["seq"] for f in replayed] == list(range(1, resumed["lastSeq"] + 1))
    assert not [f for f in sock.seen if f.get("conversationId") == cid]


async def test_visitor_sockets_carry_only_their_own_conversations(server: Server) -> None:
    """Two visitors chatting at once; each stream sees its own conversation and nothing else."""
    [a] = await seed(server)
    token = await login(server, a)
    alice, bob = [await new_visitor(server, a.widget_id) for _ in range(2)]
    async with visitor_socket(server, alice) as sa, visitor_socket(server, bob) as sb:
        cid_a = await new_chat(server, alice, "alice hello")
        cid_b = await new_chat(server, bob, "bob hello")
        await accept(server, token, cid_a)
        await accept(server, token, cid_b)
        for n in range(3):
            await agent_says(server, token, cid_a, f"to alice {n}")
            await sa.send({"type": "message", "text": f"alice {n}", "clientMessageId": f"a{n}"})
            await agent_says(server, token, cid_b, f"to bob {n}")
            await sb.send({"type": "message", "text": f"bob {n}", "clientMessageId": f"b{n}"})
            await sa.wait_for("ack", clientMessageId=f"a{n}")
            await sb.wait_for("ack", clientMessageId=f"b{n}")
        # markers, in this order: everything published before a marker reached its socket first
        await agent_says(server, token, cid_a, "alice marker")
        await agent_says(server, token, cid_b, "bob marker")
        await wait_for_text(sa, "alice marker")
        await wait_for_text(sb, "bob marker")
        await sa.drain()
        await sb.drain()
        seen_a, seen_b = sa.seen, sb.seen
    texts_a = [f["data"]["message"]["text"] for f in seen_a if f["type"] == "message_created"]
    texts_b = [f["data"]["message"]["text"] for f in seen_b if f["type"] == "message_created"]
    assert "to alice 2" in texts_a and "alice 2" in texts_a  # it did get its own events
    assert "to bob 2" in texts_b and "bob 2" in texts_b
    assert {f["conversationId"] for f in seen_a if "conversationId" in f} == {cid_a}
    assert {f["conversationId"] for f in seen_b if "conversationId" in f} == {cid_b}
    assert not mentions(seen_a, cid_b, bob.visitor_id, "bob")
    assert not mentions(seen_b, cid_a, alice.visitor_id, "alice")


# --- visitor identity ----------------------------------------------------------------------------


async def heartbeat(
    server: Server, widget_id: str, token: str | None, visitor_id: str | None
) -> dict[str, Any]:
    body = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}
    if visitor_id is not None:
        body["visitorId"] = visitor_id
    async with server.http(token) as client:
        r = await client.post(f"/api/chat/widgets/{widget_id}/heartbeat", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("proof", ["no-token", "other-visitors-token", "forged-token"])
async def test_heartbeat_naming_a_visitor_id_without_its_token_gets_a_new_id(
    server: Server, proof: str
) -> None:
    [a] = await seed(server)
    victim, other = [await new_visitor(server, a.widget_id) for _ in range(2)]
    cid = await new_chat(server, victim, "private")
    token = {
        "no-token": None,
        "other-visitors-token": other.token,
        "forged-token": f"vt1.{victim.visitor_id}.{a.tenant_id}.{other.token.rsplit('.', 1)[1]}",
    }[proof]
    answer = await heartbeat(server, a.widget_id, token, victim.visitor_id)
    assert answer["visitorId"] not in (victim.visitor_id, other.visitor_id)
    assert answer["conversationId"] != cid
    assert victim.visitor_id not in answer["visitorToken"]
    # the minted token reads nothing of the victim's
    async with server.http(answer["visitorToken"]) as client:
        r = await client.get(f"/api/chat/widgets/{a.widget_id}/conversation")
    assert_error(r, 404, "not_found")
    # while the victim, with its token, keeps its id and its conversation
    again = await heartbeat(server, a.widget_id, victim.token, victim.visitor_id)
    assert again["visitorId"] == victim.visitor_id
    assert again["conversationId"] == cid
    same = await heartbeat(server, a.widget_id, victim.token, None)
    assert same["visitorId"] == victim.visitor_id


def _tamper(token: str, other: str, how: str) -> str:
    prefix, kid, visitor_id, tenant_id, expires, signature = token.split(".")
    _, _, other_visitor, _other_tenant, _, other_signature = other.split(".")
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    head = f"{prefix}.{kid}"
    return {
        "signature-one-char": f"{head}.{visitor_id}.{tenant_id}.{expires}.{flipped}",
        "swap-visitor-id": f"{head}.{other_visitor}.{tenant_id}.{expires}.{signature}",
        "other-signature": f"{head}.{visitor_id}.{tenant_id}.{expires}.{other_signature}",
        "swap-tenant": f"{head}.{visitor_id}.ten_0000000000000000.{expires}.{signature}",
        "later-expiry": f"{head}.{visitor_id}.{tenant_id}.{int(expires) + 86400}.{signature}",
        "other-key-id": f"{prefix}.kbadc0ffe.{visitor_id}.{tenant_id}.{expires}.{signature}",
        "truncated-signature": f"{head}.{visitor_id}.{tenant_id}.{expires}.{signature[:-1]}",
        "empty-signature": f"{head}.{visitor_id}.{tenant_id}.{expires}.",
        "no-signature": f"{head}.{visitor_id}.{tenant_id}.{expires}",
        "other-version": f"vt3.{kid}.{visitor_id}.{tenant_id}.{expires}.{signature}",
        "as-vt1": f"vt1.{visitor_id}.{tenant_id}.{signature}",
        "extra-segment": f"{token}.x",
        "uppercased": token.upper(),
    }[how]


TAMPERINGS = (
    "signature-one-char",
    "swap-visitor-id",
    "other-signature",
    "swap-tenant",
    "later-expiry",
    "other-key-id",
    "truncated-signature",
    "empty-signature",
    "no-signature",
    "other-version",
    "as-vt1",
    "extra-segment",
    "uppercased",
)


@pytest.mark.parametrize("how", TAMPERINGS)
async def test_tampered_visitor_token_is_401(server: Server, how: str) -> None:
    [a] = await seed(server)
    victim, other = [await new_visitor(server, a.widget_id) for _ in range(2)]
    cid = await new_chat(server, victim, "private")
    forged = _tamper(victim.token, other.token, how)
    assert forged != victim.token
    before = await server.run(row_counts)
    w = f"/api/chat/widgets/{a.widget_id}"
    calls = (
        ("GET", f"{w}/conversation", None),
        ("POST", f"{w}/conversations", {"name": "X", "email": "x@example.com", "message": "hi"}),
        ("POST", f"{w}/conversations/{cid}/messages", {"text": "injected"}),
    )
    async with server.http(forged) as client:
        for method, path, body in calls:
            r = await client.request(method, path, json=body)
            assert_error(r, 401, "unauthenticated")
            assert "private" not in r.text
    code = await close_code(server, f"{w}/ws?token={forged}")
    assert code == 4401
    assert await server.run(row_counts) == before


# --- tenant against tenant -----------------------------------------------------------------------


async def two_tenants(server: Server) -> tuple[Seed, str, Seed, str]:
    [a] = await seed(server, tenant_name="Tenant A")
    [b] = await seed(server, tenant_name="Tenant B")
    return a, await login(server, a), b, await login(server, b)


async def test_agent_of_another_tenant_gets_404_for_everything(server: Server) -> None:
    a, token_a, _b, token_b = await two_tenants(server)
    visitor = await new_visitor(server, a.widget_id)
    cid = await new_chat(server, visitor, "tenant A only")
    calls = (
        ("GET", f"/api/chat/conversations/{cid}", None),
        ("POST", f"/api/chat/conversations/{cid}/accept", None),
        ("POST", f"/api/chat/conversations/{cid}/solve", None),
        ("POST", f"/api/chat/conversations/{cid}/reopen", None),
        ("POST", f"/api/chat/conversations/{cid}/messages", {"text": "from B"}),
    )

    async def b_is_refused(status: str) -> None:
        assert (await detail(server, token_a, cid))["status"] == status
        before_rows = await server.run(row_counts)
        before = await detail(server, token_a, cid)
        for method, path, body in calls:
            r = await agent_call(server, token_b, method, path, json=body)
            err = assert_error(r, 404, "not_found")
            assert "tenant A only" not in r.text and "assignee" not in err
        assert await server.run(row_counts) == before_rows
        assert await detail(server, token_a, cid) == before

    await b_is_refused("WAITING")  # accept would succeed for A's agent here
    await accept(server, token_a, cid)
    await b_is_refused("OPEN")  # solve and messages would succeed here
    r = await agent_call(server, token_a, "POST", f"/api/chat/conversations/{cid}/solve")
    assert r.status_code == 200, r.text
    await b_is_refused("SOLVED")  # reopen would succeed here


async def test_other_tenant_sees_nothing_in_views_widgets_or_live_visitors(
    server: Server,
) -> None:
    a, token_a, b, token_b = await two_tenants(server)
    visitor_a = await new_visitor(server, a.widget_id)
    visitor_b = await new_visitor(server, b.widget_id)
    cid_a = await new_chat(server, visitor_a, "for A")
    cid_b = await new_chat(server, visitor_b, "for B")
    await accept(server, token_a, cid_a)
    views = queries.VIEWS
    for view in views:
        r = await agent_call(server, token_b, "GET", f"/api/chat/conversations?view={view}")
        assert r.status_code == 200, r.text
        assert cid_a not in r.text and visitor_a.visitor_id not in r.text, view
        assert all(c["tenantId"] == b.tenant_id for c in r.json()["conversations"])
    r = await agent_call(server, token_b, "GET", "/api/chat/conversations?view=all")
    assert [c["id"] for c in r.json()["conversations"]] == [cid_b]  # control: B sees its own
    r = await agent_call(server, token_a, "GET", "/api/chat/conversations?view=all")
    assert [c["id"] for c in r.json()["conversations"]] == [cid_a]

    r = await agent_call(server, token_b, "GET", "/api/chat/widgets")
    assert r.status_code == 200, r.text
    assert [w["id"] for w in r.json()["widgets"]] == [b.widget_id]
    assert a.widget_id not in r.text

    r = await agent_call(server, token_b, "GET", "/api/chat/visitors/live")
    assert r.status_code == 200, r.text
    assert [v["visitorId"] for v in r.json()["visitors"]] == [visitor_b.visitor_id]
    assert visitor_a.visitor_id not in r.text and cid_a not in r.text


async def test_other_tenants_inbox_receives_none_of_its_events(server: Server) -> None:
    a, token_a, b, token_b = await two_tenants(server)
    async with inbox_socket(server, token_b) as inbox_b, inbox_socket(server, token_a) as inbox_a:
        # tenant A's whole flow while B's inbox is open
        visitor_a = await new_visitor(server, a.widget_id)
        async with visitor_socket(server, visitor_a) as vs:
            cid_a = await new_chat(server, visitor_a, "secret of A")
            await accept(server, token_a, cid_a)
            await agent_says(server, token_a, cid_a, "reply of A")
            await vs.send({"type": "message", "text": "more of A", "clientMessageId": "a-2"})
            await vs.wait_for("ack", clientMessageId="a-2")
        r = await agent_call(server, token_a, "POST", f"/api/chat/conversations/{cid_a}/solve")
        assert r.status_code == 200, r.text
        # control: A's inbox got it all
        closed = await inbox_a.wait_for("conversation_status_changed", conversationId=cid_a)
        while closed["data"]["to"] != "SOLVED":
            closed = await inbox_a.wait_for("conversation_status_changed", conversationId=cid_a)
        # a marker in tenant B, published after all of A's events
        visitor_b = await new_visitor(server, b.widget_id)
        cid_b = await new_chat(server, visitor_b, "B's marker")
        await inbox_b.wait_for("conversation_created", conversationId=cid_b)
        await inbox_b.drain()
        frames_b = list(inbox_b.seen)
        assert not [f for f in frames_b if f.get("tenantId") == a.tenant_id]
        assert not mentions(
            frames_b, cid_a, visitor_a.visitor_id, a.agent_id, "secret of A", "reply of A"
        )

        # B's inbox cannot pull A's conversation either
        before = await server.run(row_counts)
        await inbox_b.send({"type": "resume", "conversationId": cid_a, "afterSeq": 0})
        await inbox_b.send({"type": "message", "conversationId": cid_a, "text": "from B"})
        frames = await inbox_b.drain()
        assert [f["error"]["code"] for f in frames if f["type"] == "error"] == [
            "not_found",
            "not_found",
        ]
        assert not mentions(frames, "secret of A", "reply of A")
        assert not [f for f in frames if f["type"] in ("resumed", "ack")]
        assert await server.run(row_counts) == before


async def test_visitor_token_of_one_tenant_on_another_tenants_widget(server: Server) -> None:
    a, _token_a, b, token_b = await two_tenants(server)
    visitor_a = await new_visitor(server, a.widget_id)
    cid_a = await new_chat(server, visitor_a, "private")
    before = await server.run(row_counts)
    w = f"/api/chat/widgets/{b.widget_id}"
    calls = (
        ("GET", f"{w}/conversation", None),
        ("POST", f"{w}/conversations", {"name": "X", "email": "x@example.com", "message": "hi"}),
        ("POST", f"{w}/conversations/{cid_a}/messages", {"text": "via B's widget"}),
    )
    async with server.http(visitor_a.token) as client:
        for method, path, body in calls:
            r = await client.request(method, path, json=body)
            assert_error(r, 403, "forbidden")
            assert "private" not in r.text
    assert await server.run(row_counts) == before
    assert await close_code(server, f"{w}/ws?token={visitor_a.token}") == 4401
    # where a token is optional it is simply not this tenant's visitor
    answer = await heartbeat(server, b.widget_id, visitor_a.token, visitor_a.visitor_id)
    assert answer["visitorId"] != visitor_a.visitor_id
    async with server.http(visitor_a.token) as client:
        r = await client.post(
            f"{w}/offline-messages",
            json={"name": "X", "email": "x@example.com", "message": "offline"},
        )
    assert r.status_code == 201, r.text
    assert r.json()["tenantId"] == b.tenant_id
    assert r.json()["visitorId"] != visitor_a.visitor_id
    r = await agent_call(server, token_b, "GET", f"/api/chat/conversations/{r.json()['id']}")
    assert r.json()["contact"]["visitorId"] != visitor_a.visitor_id


# --- agents and operators -----------------------------------------------------------------------

AGENT_CALLS = (
    ("POST", "/api/auth/logout", None),
    ("GET", "/api/auth/me", None),
    ("GET", "/api/chat/widgets", None),
    ("GET", "/api/chat/conversations?view=all", None),
    ("GET", "/api/chat/conversations/{c}", None),
    ("POST", "/api/chat/conversations/{c}/accept", None),
    ("POST", "/api/chat/conversations/{c}/solve", None),
    ("POST", "/api/chat/conversations/{c}/reopen", None),
    ("POST", "/api/chat/conversations/{c}/messages", {"text": "hi"}),
    ("GET", "/api/chat/visitors/live", None),
)


@pytest.mark.parametrize("credential", ["none", "wrong", "visitor", "ops", "expired", "hashed"])
async def test_agent_endpoints_need_a_valid_agent_token(server: Server, credential: str) -> None:
    [a] = await seed(server)
    good = await login(server, a)
    visitor = await new_visitor(server, a.widget_id)
    cid = await new_chat(server, visitor)
    expired = new_agent_token()
    past = server.services.clock.now() - dt.timedelta(seconds=1)
    await server.run(
        queries.insert_agent_session, token_hash(expired), a.agent_id, a.tenant_id, past
    )
    token = {
        "none": None,
        "wrong": new_agent_token(),
        "visitor": visitor.token,
        "ops": OPS_TOKEN,
        "expired": expired,
        "hashed": token_hash(good).hex(),  # what is stored is not a credential
    }[credential]
    before = await server.run(row_counts)
    async with server.http(token) as client:
        for method, path, body in AGENT_CALLS:
            r = await client.request(method, path.format(c=cid), json=body)
            assert_error(r, 401, "unauthenticated")
    assert await server.run(row_counts) == before
    if token is not None:
        assert await close_code(server, f"/api/chat/inbox/ws?token={token}") == 4401
    r = await agent_call(server, good, "GET", "/api/auth/me")  # control
    assert r.status_code == 200 and r.json()["agent"]["id"] == a.agent_id


async def test_wrong_password_and_unknown_email_get_the_same_401(server: Server) -> None:
    [a] = await seed(server)
    attempts = (
        {"email": a.agent_email, "password": "wrong horse battery"},
        {"email": a.agent_email, "password": a.password.upper()},
        {"email": "nobody@example.com", "password": a.password},
        {"email": "nobody@example.com", "password": "whatever"},
    )
    answers = []
    async with server.http() as client:
        for creds in attempts:
            r = await client.post("/api/auth/login", json=creds)
            assert_error(r, 401, "invalid_credentials")
            assert "set-cookie" not in r.headers
            answers.append(r.json())
        assert all(answer == answers[0] for answer in answers)
        r = await client.post(
            "/api/auth/login", json={"email": a.agent_email, "password": a.password}
        )
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["id"] == a.agent_id
    assert "password" not in r.text.lower() and "hash" not in r.text.lower()


async def test_logout_revokes_the_token(server: Server) -> None:
    [a] = await seed(server)
    first = await login(server, a)
    second = await login(server, a)
    assert first != second
    r = await agent_call(server, first, "POST", "/api/auth/logout")
    assert r.status_code == 200, r.text
    for method, path in (("GET", "/api/auth/me"), ("GET", "/api/chat/widgets")):
        assert_error(await agent_call(server, first, method, path), 401, "unauthenticated")
    assert_error(await agent_call(server, first, "POST", "/api/auth/logout"), 401)
    assert await close_code(server, f"/api/chat/inbox/ws?token={first}") == 4401
    # only that session ended
    r = await agent_call(server, second, "GET", "/api/auth/me")
    assert r.status_code == 200 and r.json()["agent"]["id"] == a.agent_id


def _set_cookie(response: httpx.Response, name: str) -> tuple[str, list[str]]:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    first, *attributes = [part.strip() for part in header.split(";")]
    return first.split("=", 1)[1], attributes


async def test_session_cookie_works_and_is_httponly_and_samesite_lax(server: Server) -> None:
    [a] = await seed(server)
    async with server.http() as client:
        r = await client.post(
            "/api/auth/login", json={"email": a.agent_email, "password": a.password}
        )
    assert r.status_code == 200, r.text
    value, attributes = _set_cookie(r, "curbe_session")
    lowered = [attr.lower() for attr in attributes]
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert value

    cookie = {"Cookie": f"curbe_session={value}"}
    async with server.http(headers=dict(cookie)) as client:
        r = await client.get("/api/auth/me")
        assert r.status_code == 200, r.text
        assert r.json()["agent"]["id"] == a.agent_id
        r = await client.get("/api/chat/widgets")
        assert r.status_code == 200, r.text
        r = await client.post("/api/auth/logout")
        assert_error(r, 403, "csrf_required")  # a cookie alone cannot write
        r = await client.post("/api/auth/logout", headers={"X-Curbe-CSRF": "1"})
        assert r.status_code == 200, r.text
        cleared, _ = _set_cookie(r, "curbe_session")
        assert cleared in ("", '""')
    async with server.http(headers=dict(cookie)) as client:
        assert_error(await client.get("/api/auth/me"), 401, "unauthenticated")


@pytest.mark.parametrize(
    "credential", ["none", "agent", "visitor", "wrong", "prefix", "lowercase", "as-cookie"]
)
async def test_ops_endpoints_need_the_ops_token(server: Server, credential: str) -> None:
    [a] = await seed(server)
    agent = await login(server, a)
    visitor = await new_visitor(server, a.widget_id)
    cid = await new_chat(server, visitor)
    token, headers = {
        "none": (None, {}),
        "agent": (agent, {}),
        "visitor": (visitor.token, {}),
        "wrong": ("not-the-ops-token", {}),
        "prefix": (OPS_TOKEN[:-1], {}),
        "lowercase": (None, {"Authorization": f"bearer {OPS_TOKEN.upper()}"}),
        "as-cookie": (None, {"Cookie": f"curbe_session={OPS_TOKEN}"}),
    }[credential]
    paths = ("/api/ops/actors", f"/api/ops/actors/conversation/{cid}")
    async with server.http(token, headers=headers) as client:
        for path in paths:
            r = await client.get(path)
            assert_error(r, 401, "unauthenticated")
            assert cid not in r.text
    async with server.http(OPS_TOKEN) as client:  # control
        r = await client.get(paths[0])
        assert r.status_code == 200, r.text
        assert cid in [x["id"] for x in r.json()["actors"] if x["kind"] == "conversation"]
        r = await client.get(paths[1])
        assert r.status_code == 200, r.text
        assert r.json()["id"] == cid


# --- markup is data -------------------------------------------------------------------------------


def assert_json(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    return response.json()


async def test_markup_is_stored_and_returned_verbatim_as_json(server: Server) -> None:
    script, img = XSS
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    w = f"/api/chat/widgets/{a.widget_id}"
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        async with server.http(v.token) as client:
            created = assert_json(
                await client.post(
                    f"{w}/conversations",
                    json={"name": script, "email": "x@example.com", "message": script},
                ),
                201,
            )
            cid = created["id"]
            assert [m["text"] for m in created["messages"]] == [script]
            await accept(server, token, cid)
            message = assert_json(
                await client.post(f"{w}/conversations/{cid}/messages", json={"text": img}), 201
            )
            assert message["text"] == img
        await agent_says(server, token, cid, img + script)
        await vs.send({"type": "message", "text": script + img, "clientMessageId": "x-1"})
        ack = await vs.wait_for("ack", clientMessageId="x-1")
        assert ack["message"]["text"] == script + img
        expected = [script, img, img + script, script + img]
        # live events on both streams carry the text as it was typed
        assert await texts_until(inbox, cid, script + img) == expected
        assert await texts_until(vs, cid, script + img) == expected

    async with server.http(v.token) as client:
        mine = assert_json(await client.get(f"{w}/conversation"), 200)
    assert [m["text"] for m in mine["messages"]] == expected
    full = assert_json(
        await agent_call(server, token, "GET", f"/api/chat/conversations/{cid}"), 200
    )
    assert [m["text"] for m in full["messages"]] == expected
    assert full["contact"]["name"] == script
    listed = assert_json(
        await agent_call(server, token, "GET", "/api/chat/conversations?view=all"), 200
    )
    [row] = listed["conversations"]
    assert row["contact"]["name"] == script
    assert row["lastMessage"]["text"] == script + img
    # storage holds the characters themselves, not an escaped form
    stored = await server.run(queries.select_messages, cid)
    assert [m.text for m in stored] == expected
    contact = await server.run(queries.select_contact, a.tenant_id, v.visitor_id)
    assert contact is not None and contact["name"] == script


async def test_agent_widget_endpoints_grant_no_cors(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with server.http(token, headers={"Origin": "https://evil.example"}) as client:
        for path in ("/api/chat/widgets", f"/api/chat/widgets/{a.widget_id}"):
            r = await client.get(path)
            assert r.status_code == 200
            assert "access-control-allow-origin" not in r.headers, path
        # the widget's own calls keep answering any origin (Targeting decides, not CORS)
        r = await client.get(f"/api/chat/widgets/{a.widget_id}/config")
        assert r.headers["access-control-allow-origin"] == "https://evil.example"
