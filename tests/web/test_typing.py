"""Typing indicators over the sockets (issue #17): a visitor's typing reaches its tenant's inboxes
only, an agent's the visitor of an OPEN chat (and the other agents), never another tenant or
another visitor; never stored, never replayed; coalesced by the conversation's actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from engine.conversation import TYPING_EXPIRES_SECONDS, TYPING_REPEAT_SECONDS
from tests.support import (
    Server,
    Socket,
    accepted_chat,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
)
from web.throttles import FRAME_RATES


async def until(sock: Socket, type_: str, **match: Any) -> list[dict[str, Any]]:
    """Every frame up to and including the first ``type_`` matching ``match``."""
    got = []
    while True:
        frame = await sock.next()
        got.append(frame)
        if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
            return got


def typing_of(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == "typing"]


async def stored_typing(srv: Server) -> int:
    async def count(conn: Any) -> int:
        return int(
            await conn.fetchval("SELECT count(*) FROM conversation_events WHERE type = 'typing'")
        )

    return await srv.run(count)


async def test_a_visitors_typing_reaches_its_tenants_inboxes_only_and_is_never_stored(
    server: Server,
) -> None:
    [who] = await seed(server)
    [other] = await seed(server)  # another tenant
    token, other_token = await login(server, who), await login(server, other)
    v = await new_visitor(server, who.widget_id)
    cid = await new_chat(server, v)  # WAITING: nobody accepted yet, the inbox sees it typing
    neighbour = await new_visitor(server, who.widget_id)  # another visitor of the same widget
    async with (
        inbox_socket(server, token) as inbox,
        inbox_socket(server, other_token) as elsewhere,
        visitor_socket(server, v) as own,
        visitor_socket(server, neighbour) as next_door,
    ):
        await own.send({"type": "typing", "state": "on"})  # no id: its latest conversation
        on = (await until(inbox, "typing"))[-1]
        assert on["conversationId"] == cid
        assert "seq" not in on
        assert on["data"] == {
            "senderType": "visitor",
            "senderId": v.visitor_id,
            "senderName": None,
            "state": "on",
            "expiresInSeconds": TYPING_EXPIRES_SECONDS,
        }
        await own.send({"type": "typing", "conversationId": cid, "state": "off"})
        off = (await until(inbox, "typing"))[-1]
        assert off["data"]["state"] == "off"

        # a message ends it: the visitor's own socket and the others never heard any typing
        await own.send({"type": "message", "text": "still there?", "clientMessageId": "m1"})
        assert not typing_of(await until(own, "message_created"))
        for sock in (elsewhere, next_door):
            assert not typing_of(await sock.drain())
        await until(inbox, "message_created")

    assert await stored_typing(server) == 0
    async with visitor_socket(server, v) as again:  # a resume replays no typing
        await again.send({"type": "resume", "conversationId": cid, "afterSeq": 0})
        assert not typing_of(await until(again, "resumed"))


async def test_an_agents_typing_reaches_the_visitor_once_the_chat_is_open(server: Server) -> None:
    (who, _), (ana, _) = [(p, None) for p in await seed(server, agents=2)]
    token, ana_token = await login(server, who), await login(server, ana)
    v = await new_visitor(server, who.widget_id)
    cid = await new_chat(server, v)
    async with (
        visitor_socket(server, v) as widget,
        inbox_socket(server, token) as mine,
        inbox_socket(server, ana_token) as hers,
    ):
        # WAITING: an agent cannot answer yet, so nobody hears it typing
        await mine.send({"type": "typing", "conversationId": cid, "state": "on"})
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/accept")
            assert r.status_code == 200, r.text
        before = await until(widget, "conversation_assigned")
        assert not typing_of(before)

        await mine.send({"type": "typing", "conversationId": cid, "state": "on"})
        seen = (await until(widget, "typing"))[-1]
        assert seen["conversationId"] == cid
        assert seen["data"]["senderType"] == "agent"
        assert seen["data"]["senderId"] == who.agent_id
        assert seen["data"]["senderName"] == who.agent_name
        # a colleague sees it too (two agents do not answer at once), the sender's own inbox
        # hears its own hint and leaves it out (inbox.js)
        assert (await until(hers, "typing"))[-1]["data"]["senderId"] == who.agent_id


async def test_a_typing_storm_costs_one_event_per_change(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    async with visitor_socket(server, v) as widget, inbox_socket(server, token) as inbox:
        started = trio.current_time()
        for _ in range(4):  # the same "on" again and again: one event (one per 3 s at most)
            await widget.send({"type": "typing", "conversationId": cid, "state": "on"})
        await widget.send({"type": "typing", "conversationId": cid, "state": "off"})
        await widget.send({"type": "typing", "conversationId": cid, "state": "off"})  # no change
        await widget.send({"type": "message", "conversationId": cid, "text": "a"})
        got = typing_of(await until(inbox, "message_created"))
        states = [t["data"]["state"] for t in got]
        repeats = 1 + int((trio.current_time() - started) / TYPING_REPEAT_SECONDS)
        ons = ["on"] * states.count("on")
        # the "off" comes before the message, unless it was held for the inbox's next frame of
        # typing hints and the message made it moot (engine/broker.py ActivityBatcher)
        assert states in (ons, [*ons, "off"]) and ons, states
        assert states.count("on") <= repeats, states

        # after a message the sender's next "on" goes out at once, not 3 s after the last (were
        # it swallowed, the inbox would wait for it in vain)
        for text in ("b", "c"):
            await widget.send({"type": "typing", "conversationId": cid, "state": "on"})
            assert typing_of(await until(inbox, "typing"))[-1]["data"]["state"] == "on"
            await widget.send({"type": "message", "conversationId": cid, "text": text})
            created = (await until(inbox, "message_created"))[-1]
            assert created["data"]["message"]["text"] == text


async def test_a_socket_that_closes_while_typing_says_off(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    async with inbox_socket(server, token) as inbox:
        async with visitor_socket(server, v) as widget:
            await widget.send({"type": "typing", "conversationId": cid, "state": "on"})
            assert (await until(inbox, "typing"))[-1]["data"]["state"] == "on"
        # the tab closed mid-sentence: the agent does not watch "typing…" for 12 s more
        off = (await until(inbox, "typing"))[-1]
        assert off["data"] == {**off["data"], "state": "off", "senderId": v.visitor_id}


async def test_typing_is_refused_where_a_message_would_be(server: Server) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    token, other_token = await login(server, who), await login(server, other)
    v, cid = await accepted_chat(server, who, token)
    stranger = await new_visitor(server, who.widget_id)
    async with visitor_socket(server, stranger) as sock:
        await sock.send({"type": "typing", "conversationId": cid, "state": "on"})
        assert (await sock.wait_for("error"))["error"]["code"] == "not_found"
        await sock.send({"type": "typing", "state": "on"})  # no conversation of its own yet
        assert (await sock.wait_for("error"))["error"]["code"] == "not_found"
        await sock.send({"type": "typing", "conversationId": cid, "state": "maybe"})
        assert (await sock.wait_for("error"))["error"]["code"] == "invalid_body"
        await sock.send({"type": "typing", "state": "on", "text": "what I typed"})
        assert (await sock.wait_for("error"))["error"]["code"] == "invalid_body"
    async with inbox_socket(server, other_token) as sock:  # another tenant's agent
        await sock.send({"type": "typing", "conversationId": cid, "state": "on"})
        assert (await sock.wait_for("error"))["error"]["code"] == "not_found"
    async with inbox_socket(server, token) as sock:
        await sock.send({"type": "typing", "state": "on"})
        error = (await sock.wait_for("error"))["error"]
        assert error["code"] == "conversation_required"
        assert "typing" in error["message"]


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[Server]:
    async with open_server(database_url, throttle_scale=1.0) as srv:
        yield srv


async def test_typing_frames_have_their_own_rate(strict: Server) -> None:
    [who] = await seed(strict)
    token = await login(strict, who)
    v, cid = await accepted_chat(strict, who, token)
    burst = FRAME_RATES["typing"].burst
    async with visitor_socket(strict, v) as widget:
        for n in range(burst + 3):
            state = "on" if n % 2 == 0 else "off"
            await widget.send({"type": "typing", "conversationId": cid, "state": state})
        error = (await widget.wait_for("error"))["error"]
        assert error["code"] == "too_many_requests"
        # messages have buckets of their own: a typing storm does not hold back a message
        await widget.send(
            {"type": "message", "conversationId": cid, "text": "hi", "clientMessageId": "x"}
        )
        assert (await widget.wait_for("ack"))["clientMessageId"] == "x"
