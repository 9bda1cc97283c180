"""What the inbox needs from the API: unread per agent, view counts, a proactive chat with a live
visitor, the agent's profile, contact details parsed for people, and rate-limited sign-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import (
    ManualClock,
    Seed,
    Server,
    Visitor,
    inbox_socket,
    login,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
)

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == code, err
    return err


async def start_chat(server: Server, v: Visitor, text: str, **headers: str) -> dict[str, Any]:
    async with server.http(v.token, headers=headers) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations",
            json={"name": "Carlos Lopez", "email": "carlos@example.com", "message": text},
        )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def get(server: Server, token: str, path: str) -> Any:
    async with server.http(token) as client:
        r = await client.get(path)
    assert r.status_code == 200, r.text
    return r.json()


async def counts(server: Server, token: str) -> dict[str, int]:
    return (await get(server, token, "/api/chat/conversations/counts"))["counts"]  # type: ignore[no-any-return]


async def unread(server: Server, token: str) -> set[str]:
    body = await get(server, token, "/api/chat/conversations?view=unread")
    return {c["id"] for c in body["conversations"]}


# --- unread and counts -------------------------------------------------------------------------


async def test_unread_is_per_agent_and_opening_marks_it_read(server: Server) -> None:
    a, b = await seed(server, agents=2)
    ta, tb = await login(server, a), await login(server, b)
    v = await new_visitor(server, a.widget_id)
    chat = await start_chat(server, v, "hola")
    cid = chat["id"]
    assert await unread(server, ta) == {cid} and await unread(server, tb) == {cid}

    async with server.http(ta) as client, inbox_socket(server, ta) as inbox:
        r = await client.post(f"/api/chat/conversations/{cid}/read")
        assert r.status_code == 200, r.text
        assert r.json() == {"conversationId": cid, "lastReadSeq": chat["lastSeq"]}
        event = await inbox.wait_for("conversation_read")
        assert event["data"] == {
            "agentId": a.agent_id,
            "conversationId": cid,
            "lastReadSeq": 2,
            "reader": "agent",
        }
        # a mark never moves back, and a seq past the end is clamped
        r = await client.post(f"/api/chat/conversations/{cid}/read", json={"seq": 1})
        assert r.json()["lastReadSeq"] == 2
        r = await client.post(f"/api/chat/conversations/{cid}/read", json={"seq": 999})
        assert r.json()["lastReadSeq"] == 2
    assert await unread(server, ta) == set()
    assert await unread(server, tb) == {cid}  # the colleague has not opened it

    async with server.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations/{cid}/messages",
            json={"text": "¿sigues ahí?", "clientMessageId": "v-2"},
        )
        assert r.status_code == 201
    assert await unread(server, ta) == {cid}  # a new visitor message is unread again


async def test_counts_match_the_views(server: Server) -> None:
    a, b = await seed(server, agents=2)
    ta = await login(server, a)
    v1, v2, v3 = [await new_visitor(server, a.widget_id) for _ in range(3)]
    c1 = (await start_chat(server, v1, "uno"))["id"]
    await start_chat(server, v2, "dos")
    c3 = (await start_chat(server, v3, "tres"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{c1}/accept")).status_code == 200
        assert (await client.post(f"/api/chat/conversations/{c3}/solve")).status_code == 200
    got = await counts(server, ta)
    for view in ("open", "unread", "assigned", "unassigned", "waiting", "solved", "all"):
        body = await get(server, ta, f"/api/chat/conversations?view={view}")
        assert got[view] == len(body["conversations"]), view
    assert got["open"] == 1 and got["waiting"] == 1 and got["solved"] == 1 and got["all"] == 3
    assert got["liveVisitors"] == 3


@pytest.mark.parametrize("body", [{"seq": -1}, {"seq": "2"}, {"seq": 1.5}, {"extra": 1}, [1]])
async def test_bad_read_marks_are_422(server: Server, body: Any) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(token) as client:
        r = await client.post(f"/api/chat/conversations/{cid}/read", json=body)
        assert_error(r, 422, "invalid_body")
        r = await client.post("/api/chat/conversations/conv_nope/read")
        assert_error(r, 404, "not_found")
    assert await unread(server, token) == {cid}


async def test_read_marks_are_tenant_scoped(server: Server) -> None:
    [a] = await seed(server)
    [other] = await seed(server, tenant_name="Rival")
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(await login(server, other)) as client:
        assert_error(await client.post(f"/api/chat/conversations/{cid}/read"), 404, "not_found")


# --- proactive chat ----------------------------------------------------------------------------


async def test_agent_starts_a_chat_with_a_live_visitor(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v) as widget, server.http(token) as client:
        r = await client.post(
            f"/api/chat/visitors/{v.visitor_id}/conversations",
            json={"message": "Hi! Can I help you choose a plan?", "clientMessageId": "p-1"},
        )
        assert r.status_code == 201, r.text
        chat = r.json()
        assert chat["status"] == "OPEN"
        assert chat["assignee"]["id"] == a.agent_id
        assert chat["waitDeadline"] is None
        [message] = chat["messages"]
        assert message["senderType"] == "agent" and message["senderName"] == a.agent_name
        # the visitor's widget hears the whole story, in order
        created = await widget.wait_for("conversation_created")
        assigned = await widget.wait_for("conversation_assigned")
        said = await widget.wait_for("message_created")
        assert [created["seq"], assigned["seq"], said["seq"]] == [1, 2, 3]
        assert assigned["data"]["agent"]["name"] == a.agent_name
        assert said["data"]["message"]["text"] == "Hi! Can I help you choose a plan?"
        # and the visitor is in chat on the live list
        live = await get(server, token, "/api/chat/visitors/live")
        [row] = [x for x in live["visitors"] if x["visitorId"] == v.visitor_id]
        assert row["inChat"] is True and row["conversationId"] == chat["id"]
        # a second proactive start is refused: the visitor is busy
        r = await client.post(
            f"/api/chat/visitors/{v.visitor_id}/conversations", json={"message": "¿Hola?"}
        )
        err = assert_error(r, 409, "conversation_active")
        assert err["conversationId"] == chat["id"]
        # the visitor sees the conversation on reload
        async with server.http(v.token) as visitor:
            r = await visitor.get(f"/api/chat/widgets/{v.widget_id}/conversation")
            assert r.json()["id"] == chat["id"] and r.json()["status"] == "OPEN"
            assert r.json()["assignedSeq"] == 2  # where the widget draws "joined the chat"


async def test_proactive_chat_keeps_the_visitors_own_ip_and_browser(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with server.http(headers={"User-Agent": CHROME_WINDOWS}) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/heartbeat",
            json={"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"},
        )
        visitor_id = r.json()["visitorId"]
    async with server.http(token, headers={"User-Agent": "AgentBrowser/9"}) as client:
        r = await client.post(
            f"/api/chat/visitors/{visitor_id}/conversations", json={"message": "Hola"}
        )
        assert r.status_code == 201, r.text
        detail = (await client.get(f"/api/chat/conversations/{r.json()['id']}")).json()
    contact = detail["contact"]
    assert contact["userAgent"] == CHROME_WINDOWS
    assert contact["browser"] == "Chrome 120" and contact["os"] == "Windows 10"
    assert contact["name"] is None and contact["phone"] is None
    assert contact["displayName"] and contact["displayName"] != visitor_id


async def test_proactive_chat_refusals(database_url: str) -> None:
    clock = ManualClock()
    async with open_server(database_url, clock=clock) as server:
        [a] = await seed(server)
        [other] = await seed(server, tenant_name="Rival")
        token, other_token = await login(server, a), await login(server, other)
        v = await new_visitor(server, a.widget_id)
        path = f"/api/chat/visitors/{v.visitor_id}/conversations"
        async with server.http(other_token) as client:
            assert_error(await client.post(path, json={"message": "hi"}), 404, "not_found")
        async with server.http(token) as client:
            assert_error(
                await client.post(
                    "/api/chat/visitors/vis_nope/conversations", json={"message": "hi"}
                ),
                404,
                "not_found",
            )
            assert_error(await client.post(path, json={"message": "  "}), 422, "invalid_body")
            assert_error(await client.post(path, json={}), 422, "invalid_body")
            clock.advance(seconds=61)  # the visitor left 61 s ago
            assert_error(await client.post(path, json={"message": "hi"}), 409, "visitor_gone")
            r = await client.get("/api/chat/conversations?view=all")
            assert r.json()["conversations"] == []


# --- profile -----------------------------------------------------------------------------------


async def test_agent_profile_name_and_avatar_reach_the_visitor_on_accept(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with server.http(token) as client:
        r = await client.patch(
            "/api/auth/me",
            json={"name": "Javier L.", "avatarUrl": "https://cdn.example.com/javier.png"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["agent"]["avatarUrl"] == "https://cdn.example.com/javier.png"
        me = (await client.get("/api/auth/me")).json()
        assert me["agent"]["name"] == "Javier L." and me["presence"] == "offline"
        v = await new_visitor(server, a.widget_id)
        cid = (await start_chat(server, v, "hola"))["id"]
        async with visitor_socket(server, v) as widget:
            assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
            event = await widget.wait_for("conversation_assigned")
        assert event["data"]["agent"] == {
            "id": a.agent_id,
            "name": "Javier L.",
            "avatarUrl": "https://cdn.example.com/javier.png",
        }
        r = await client.patch("/api/auth/me", json={"avatarUrl": ""})
        assert r.json()["agent"]["avatarUrl"] is None
        assert r.json()["agent"]["name"] == "Javier L."


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "  "},
        {"name": "n" * 201},
        {"avatarUrl": "javascript:alert(1)"},
        {"avatarUrl": "data:image/png;base64,xx"},
        {"avatarUrl": 5},
        {"email": "new@example.com"},
    ],
)
async def test_bad_profile_edits_are_422_and_change_nothing(
    server: Server, body: dict[str, Any]
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with server.http(token) as client:
        assert_error(await client.patch("/api/auth/me", json=body), 422, "invalid_body")
        me = (await client.get("/api/auth/me")).json()["agent"]
    assert me["name"] == a.agent_name and me["avatarUrl"] is None


# --- contact details ---------------------------------------------------------------------------


async def test_contact_details_parse_the_browser_and_keep_the_visitor_id_in_its_field(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola", **{"User-Agent": CHROME_WINDOWS}))["id"]
    detail = await get(server, token, f"/api/chat/conversations/{cid}")
    contact = detail["contact"]
    assert contact["browser"] == "Chrome 120"
    assert contact["os"] == "Windows 10"
    assert contact["displayName"] == "Carlos Lopez"
    assert contact["phone"] is None
    assert contact["visitorId"] == v.visitor_id
    others = {k: val for k, val in contact.items() if k != "visitorId"}
    assert v.visitor_id not in repr(others)


# --- sign-in rate limit ------------------------------------------------------------------------


@pytest.fixture
async def clocked(database_url: str) -> AsyncIterator[tuple[Server, ManualClock]]:
    clock = ManualClock()
    async with open_server(database_url, clock=clock) as srv:
        yield srv, clock


async def _login(server: Server, who: Seed, password: str) -> httpx.Response:
    async with server.http() as client:
        return await client.post(
            "/api/auth/login", json={"email": who.agent_email, "password": password}
        )


async def test_failed_sign_ins_are_rate_limited(clocked: tuple[Server, ManualClock]) -> None:
    server, clock = clocked
    a, b = await seed(server, agents=2)
    for _ in range(5):
        assert_error(await _login(server, a, "wrong"), 401, "invalid_credentials")
    r = await _login(server, a, a.password)  # even the right password waits now
    err = assert_error(r, 429, "too_many_attempts")
    assert 1 <= err["retryAfterSeconds"] <= 900
    assert r.headers["Retry-After"] == str(err["retryAfterSeconds"])
    # another account from the same address is not locked out by these five
    assert (await _login(server, b, b.password)).status_code == 200
    clock.advance(minutes=15, seconds=1)
    assert (await _login(server, a, a.password)).status_code == 200


async def test_a_good_sign_in_clears_earlier_failures(server: Server) -> None:
    [a] = await seed(server)
    for _ in range(4):
        assert_error(await _login(server, a, "wrong"), 401, "invalid_credentials")
    assert (await _login(server, a, a.password)).status_code == 200
    for _ in range(4):
        assert_error(await _login(server, a, "wrong"), 401, "invalid_credentials")
    assert (await _login(server, a, a.password)).status_code == 200


async def test_an_offline_message_is_a_ticket_in_open_and_unassigned(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with server.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/offline-messages",
            json={
                "name": "Ana",
                "email": "ana@example.com",
                "phone": "+52 55 1234 5678",
                "message": "Call me tomorrow",
            },
        )
        assert r.status_code == 201, r.text
        ticket = r.json()["id"]
    views = {}
    for view in ("open", "unassigned", "waiting", "unread"):
        body = await get(server, token, f"/api/chat/conversations?view={view}")
        views[view] = {c["id"] for c in body["conversations"]}
    assert views == {"open": {ticket}, "unassigned": {ticket}, "waiting": set(), "unread": {ticket}}
    got = await counts(server, token)
    assert (got["open"], got["unassigned"], got["waiting"]) == (1, 1, 0)
    detail = await get(server, token, f"/api/chat/conversations/{ticket}")
    assert detail["kind"] == "offline_message"
    assert detail["contact"]["phone"] == "+52 55 1234 5678"


async def test_widgets_hear_when_agents_come_and_go(server: Server) -> None:
    [a] = await seed(server)
    [other] = await seed(server, tenant_name="Rival")
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    spy = await new_visitor(server, other.widget_id)
    async with visitor_socket(server, v) as widget, visitor_socket(server, spy) as elsewhere:
        assert widget.seen[0]["agentsOnline"] is False  # in the ready frame
        async with inbox_socket(server, token) as inbox:
            event = await widget.wait_for("agents_online_changed")
            assert event["data"] == {"agentsOnline": True}
            await inbox.send({"type": "presence", "status": "away"})
            event = await widget.wait_for("agents_online_changed")
            assert event["data"] == {"agentsOnline": False}
            await inbox.send({"type": "presence", "status": "online"})
            assert (await widget.wait_for("agents_online_changed"))["data"]["agentsOnline"]
        event = await widget.wait_for("agents_online_changed")
        assert event["data"] == {"agentsOnline": False}
        assert [f for f in await elsewhere.drain() if f["type"] == "agents_online_changed"] == []
