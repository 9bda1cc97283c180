"""Seen (issue #17): the visitor's read mark beside the agents', stored, moving only forward;
each move a ``conversation_read`` event to whom it concerns; both marks with the conversation."""

from __future__ import annotations

from typing import Any

import pytest

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


async def test_read_frames_of_conversations_a_socket_has_shown_are_written_together(
    server: Server,
) -> None:
    # the read frame of a conversation whose events this socket delivered is the visitor's own:
    # put in memory and written with the others pending in one statement (web/reads.py), the
    # news told after the write; "everything" is what the socket has shown
    [who] = await seed(server)
    token = await login(server, who)
    chats = [await accepted_chat(server, who, token) for _ in range(3)]
    reads = server.services.reads
    assert reads is not None
    async with inbox_socket(server, token) as inbox:
        shown = []
        for v, cid in chats:
            async with visitor_socket(server, v) as widget:
                said = await agent_says(server, token, cid, "¿Algo más?")
                await widget.wait_for("message_created", conversationId=cid)
                taken, writes = reads.marks, reads.writes
                await widget.send({"type": "read", "conversationId": cid})
                event = await read_event(inbox)
                assert event == {
                    "agentId": None,
                    "conversationId": cid,
                    "lastReadSeq": said["seq"],
                    "reader": "visitor",
                }
                assert (reads.marks, reads.writes) == (taken + 1, writes + 1)
                shown.append(said["seq"])
        for (v, _), seq in zip(chats, shown, strict=True):
            assert (await visitor_view(server, v))["visitorLastReadSeq"] == seq

        # under load they share statements: the marks pending when a write starts go in one
        # (taken here with no checkpoint between them and the write, as a busy loop would)
        answers = [await agent_says(server, token, cid, "Listo") for _, cid in chats]
        published = await reads_published(server)
        writes = reads.writes
        for (v, cid), said in zip(chats, answers, strict=True):
            reads.mark(who.tenant_id, v.visitor_id, cid, said["seq"])
            reads.mark(who.tenant_id, v.visitor_id, cid, said["seq"] - 1)  # pending: never back
        assert await reads.write() == 3
        for _ in range(3):
            await read_event(inbox)
        assert reads.writes - writes == 1, "three marks, one statement"
        assert await reads_published(server) == published + 3
        for (v, _), said in zip(chats, answers, strict=True):
            assert (await visitor_view(server, v))["visitorLastReadSeq"] == said["seq"]


async def test_a_failed_write_keeps_its_marks_for_the_next_one() -> None:
    # the database away: the marks go back (under any that came since) and the service ends,
    # for the supervisor to restart it; nothing was published (a fake below the write only)
    from engine.broker import Broker
    from engine.clock import TrioClock
    from web.reads import VisitorReads

    class Away:
        async def run(self, *_: Any) -> Any:
            reads.mark("t1", "v1", "c1", 9)  # came while the write was in flight
            raise ConnectionRefusedError("the database is away")

    broker = Broker()
    reads = VisitorReads(Away(), broker, TrioClock())  # type: ignore[arg-type]
    reads.mark("t1", "v1", "c1", 7)
    reads.mark("t1", "v2", "c2", 3)
    with broker.subscribe(("tenant", "t1")) as sub:
        with pytest.raises(ConnectionRefusedError):
            await reads.write()
        assert len(sub.receive) == 0
    assert reads.pending == {"c1": ("t1", "v1", 9), "c2": ("t1", "v2", 3)}
    assert reads.writes == 0
