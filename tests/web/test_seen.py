"""Seen (issue #17): the visitor's read mark beside the agents', stored, moving only forward;
each move a ``conversation_read`` event to whom it concerns; both marks with the conversation."""

from __future__ import annotations

from typing import Any

from tests.support import (
    Server,
    Socket,
    accepted_chat,
    agent_says,
    detail,
    inbox_socket,
    login,
    new_visitor,
    seed,
    visitor_socket,
    visitor_view,
)
from tests.web.test_observability import sample


async def reads_published(srv: Server) -> float:
    async with srv.http() as client:
        text = (await client.get("/metrics")).text
    return sample(text, "curbe_events_published_total", type="conversation_read")


async def read_event(sock: Socket) -> dict[str, Any]:
    return (await sock.wait_for("conversation_read"))["data"]  # type: ignore[no-any-return]


async def test_the_visitors_read_mark_is_stored_and_told_to_the_inbox_and_its_other_tabs(
    server: Server,
) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    token, other_token = await login(server, who), await login(server, other)
    v, cid = await accepted_chat(server, who, token)
    answer = await agent_says(server, token, cid, "Hola, ¿en qué te ayudo?")
    before = await visitor_view(server, v)
    assert before["visitorLastReadSeq"] == 0  # nothing read: the agent's answer is unread
    assert before["agentsLastReadSeq"] == answer["seq"]  # answering is having read
    stranger = await new_visitor(server, who.widget_id)
    async with (
        inbox_socket(server, token) as inbox,
        inbox_socket(server, other_token) as elsewhere,
        visitor_socket(server, v) as tab,
        visitor_socket(server, v) as other_tab,
        visitor_socket(server, stranger) as next_door,
    ):
        await tab.send({"type": "read", "conversationId": cid, "seq": answer["seq"]})
        assert await read_event(inbox) == {
            "agentId": None,
            "conversationId": cid,
            "lastReadSeq": answer["seq"],
            "reader": "visitor",
        }
        assert (await read_event(other_tab))["reader"] == "visitor"  # its badge agrees
        for sock in (elsewhere, next_door):
            assert not [f for f in await sock.drain() if f["type"] == "conversation_read"]

        # a mark that does not move, or moves over the visitor's own messages only, changes
        # nothing anyone sees: stored, told to nobody (the widget says what it read about once
        # a second; the visitor's messages are its own)
        published = await reads_published(server)
        await tab.send({"type": "read"})  # no id, no seq: everything of its latest chat
        await tab.drain()
        await tab.send({"type": "message", "conversationId": cid, "text": "Otra cosa"})
        own = (await tab.wait_for("ack"))["message"]["seq"]
        await tab.send({"type": "read"})
        await tab.drain()
        assert (await visitor_view(server, v))["visitorLastReadSeq"] == own  # stored
        assert await reads_published(server) == published  # told to nobody

        later = await agent_says(server, token, cid, "Claro")
        await tab.send({"type": "read"})  # past an agent's message: news again
        assert (await read_event(inbox))["lastReadSeq"] == later["seq"]
        assert await reads_published(server) == published + 1

    assert (await visitor_view(server, v))["visitorLastReadSeq"] == later["seq"]
    assert (await detail(server, token, cid))["visitorLastReadSeq"] == later["seq"]

    async with server.http(v.token) as client:  # over HTTP: never back, clamped to the end
        url = f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/read"
        r = await client.post(url, json={"seq": 1})
        assert r.status_code == 200, r.text
        assert r.json() == {"conversationId": cid, "lastReadSeq": later["seq"]}
        r = await client.post(url, json={"seq": 10_000})
        assert r.json()["lastReadSeq"] == later["seq"]
        r = await client.post(url, content=b"")
        assert r.json()["lastReadSeq"] == later["seq"]
        r = await client.post(url, json={"seq": -1})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_body"


async def test_an_agents_read_reaches_the_visitor_as_seen(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    stranger = await new_visitor(server, who.widget_id)
    async with visitor_socket(server, v) as widget, visitor_socket(server, stranger) as next_door:
        await widget.send({"type": "message", "conversationId": cid, "text": "¿Cubre robo?"})
        sent = (await widget.wait_for("ack"))["message"]
        assert (await visitor_view(server, v))["agentsLastReadSeq"] < sent["seq"]
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/read")
            assert r.status_code == 200, r.text
        event = await widget.wait_for("conversation_read")
        assert event["conversationId"] == cid
        assert event["data"] == {
            "agentId": who.agent_id,
            "conversationId": cid,
            "lastReadSeq": sent["seq"],
            "reader": "agent",
        }
        assert not [f for f in await next_door.drain() if f["type"] == "conversation_read"]
        published = await reads_published(server)
        await agent_says(server, token, cid, "Lo miro")  # answering marks read, past its own
        async with server.http(token) as client:  # again: no visitor message passed, no news
            r = await client.post(f"/api/chat/conversations/{cid}/read")
            assert r.status_code == 200, r.text
        assert await reads_published(server) == published
    assert (await visitor_view(server, v))["agentsLastReadSeq"] > sent["seq"]


async def test_a_read_mark_is_refused_for_a_conversation_not_the_visitors(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    stranger = await new_visitor(server, who.widget_id)
    async with visitor_socket(server, stranger) as sock:
        await sock.send({"type": "read", "conversationId": cid, "seq": 1})
        assert (await sock.wait_for("error"))["error"]["code"] == "not_found"
        await sock.send({"type": "read", "seq": "1"})
        assert (await sock.wait_for("error"))["error"]["code"] == "invalid_body"
    async with server.http(stranger.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/read", json={"seq": 1}
        )
        assert r.status_code == 404, r.text
    async with inbox_socket(server, token) as sock:  # the inbox marks read over HTTP
        await sock.send({"type": "read", "conversationId": cid})
        assert (await sock.wait_for("error"))["error"]["code"] == "unsupported_frame"
    assert (await visitor_view(server, v))["visitorLastReadSeq"] == 0
