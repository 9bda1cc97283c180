"""End-to-end flows of a live chat, against a real server: real HTTP (httpx), real WebSockets.

Each test drives the public API the way the widget and the inbox do and checks what both streams
and the REST answers say. No sleep stands in for a condition: frames are awaited with
``Socket.wait_for`` (10 s ``fail_after``). To prove that an event did *not* arrive, a test causes a
later event on the same stream and waits for it; a stream delivers in publish order, so anything
published before it has been received by then (``barrier_*`` helpers below). The only sleep waits
for a wall-clock deadline to pass, because there the passing of time *is* the condition.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tests.support import (
    OPS_TOKEN,
    Server,
    Socket,
    Visitor,
    accept,
    agent_says,
    detail,
    inbox_socket,
    login,
    new_visitor,
    open_server,
    parse_utc,
    seed,
    start_chat,
    visitor_says,
    visitor_socket,
)

# --- helpers ----------------------------------------------------------------------------------

_ids = itertools.count(1)


def cmid(prefix: str = "cm") -> str:
    """A fresh clientMessageId."""
    return f"{prefix}-{next(_ids)}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def heartbeat(server: Server, v: Visitor, url: str, **extra: Any) -> dict[str, Any]:
    """A heartbeat of an existing visitor (its token proves who it is)."""
    body = {"currentDomain": "shop.example.com", "currentUrl": url, **extra}
    async with server.http(v.token) as c:
        r = await c.post(f"/api/chat/widgets/{v.widget_id}/heartbeat", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["visitorId"] == v.visitor_id, "a heartbeat with a token keeps the visitor"
    return out


async def solve(server: Server, token: str, cid: str) -> dict[str, Any]:
    async with server.http(token) as c:
        r = await c.post(f"/api/chat/conversations/{cid}/solve")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def view_ids(server: Server, token: str, view: str) -> set[str]:
    async with server.http(token) as c:
        r = await c.get("/api/chat/conversations", params={"view": view})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["view"] == view
    ids = [conv["id"] for conv in body["conversations"]]
    assert len(ids) == len(set(ids)), f"a conversation is listed twice in {view}: {ids}"
    return set(ids)


async def live_visitors(server: Server, token: str) -> list[dict[str, Any]]:
    async with server.http(token) as c:
        r = await c.get("/api/chat/visitors/live")
    assert r.status_code == 200, r.text
    return r.json()["visitors"]  # type: ignore[no-any-return]


async def ops_get(server: Server, path: str, token: str | None = OPS_TOKEN) -> Any:
    async with server.http(token) as c:
        return await c.get(path)


def events_of(sock: Socket, cid: str) -> list[dict[str, Any]]:
    """Conversation events (frames with a seq) of one conversation seen so far on a socket."""
    return [f for f in sock.seen if f.get("conversationId") == cid and "seq" in f]


def assert_consecutive(frames: list[dict[str, Any]], first: int = 1) -> None:
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(first, first + len(seqs))), seqs


async def barrier_agent(server: Server, token: str, cid: str, *socks: Socket) -> dict[str, Any]:
    """Post an agent message and wait for it on every socket: earlier events have arrived."""
    message = await agent_says(server, token, cid, "barrier", cmid("barrier"))
    for sock in socks:
        await sock.wait_for("message_created", conversationId=cid, seq=message["seq"])
    return message


TIMESTAMP_KEYS = {
    "at",
    "createdAt",
    "updatedAt",
    "solvedAt",
    "waitDeadline",
    "serverTime",
    "lastSeenAt",
    "firstSeenAt",
    "startedAt",
    "lastActivityAt",
}


def timestamps(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every non-null server timestamp anywhere in a JSON value, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIMESTAMP_KEYS and item is not None:
                yield f"{path}.{key}", item
            else:
                yield from timestamps(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from timestamps(item, f"{path}[{n}]")


def assert_server_times(
    value: Any, lo: dt.datetime, hi: dt.datetime, *, deadline_slack: float = 0.0
) -> int:
    """Every timestamp ends with Z and lies within [lo, hi] (a few seconds' slack on each side).
    ``waitDeadline`` may lie up to ``deadline_slack`` seconds later. Returns how many were checked.
    """
    slack = dt.timedelta(seconds=5)
    n = 0
    for path, stamp in timestamps(value):
        assert isinstance(stamp, str) and stamp.endswith("Z"), (path, stamp)
        when = parse_utc(stamp)
        extra = dt.timedelta(seconds=deadline_slack if path.endswith("waitDeadline") else 0)
        assert lo - slack <= when <= hi + slack + extra, (path, stamp, lo, hi)
        n += 1
    return n


# --- 1. the happy path -------------------------------------------------------------------------


async def test_happy_path_from_heartbeat_to_solved(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        conv = await start_chat(server, v, "hola, tengo una pregunta")
        cid = conv["id"]
        assert conv["status"] == "WAITING" and conv["kind"] == "live_chat"
        assert conv["visitorId"] == v.visitor_id
        assert [m["text"] for m in conv["messages"]] == ["hola, tengo una pregunta"]

        created = await inbox.wait_for("conversation_created", conversationId=cid)
        assert created["seq"] == 1 and created["tenantId"] == a.tenant_id
        assert created["data"]["conversation"]["status"] == "WAITING"
        first = await inbox.wait_for("message_created", conversationId=cid)
        assert first["seq"] == 2
        assert first["data"]["message"]["text"] == "hola, tengo una pregunta"
        assert first["data"]["message"]["senderType"] == "visitor"
        await vs.wait_for("message_created", conversationId=cid, seq=2)

        accepted = await accept(server, token, cid)
        assert accepted["status"] == "OPEN"
        assert accepted["assignee"]["id"] == a.agent_id
        assigned = await vs.wait_for("conversation_assigned", conversationId=cid)
        assert assigned["data"]["agent"]["name"] == a.agent_name
        assert assigned["data"]["agent"]["id"] == a.agent_id
        changed = await vs.wait_for("conversation_status_changed", conversationId=cid)
        assert changed["seq"] == assigned["seq"] + 1, "assigned comes right before the change"
        assert (changed["data"]["from"], changed["data"]["to"]) == ("WAITING", "OPEN")
        assert changed["data"]["conversation"]["assignee"]["name"] == a.agent_name

        reply = await agent_says(server, token, cid, "Hola Carlos, soy Javier", cmid())
        got = await vs.wait_for("message_created", conversationId=cid, seq=reply["seq"])
        assert got["data"]["message"]["text"] == "Hola Carlos, soy Javier"
        assert got["data"]["message"]["senderType"] == "agent"
        assert got["data"]["message"]["senderName"] == a.agent_name
        assert got["data"]["message"]["id"] == reply["id"]

        client_id = cmid("ws")
        await vs.send({"type": "message", "text": "gracias", "clientMessageId": client_id})
        ack = await vs.wait_for("ack", clientMessageId=client_id)
        assert ack["message"]["text"] == "gracias"
        assert ack["message"]["senderType"] == "visitor"
        on_inbox = await inbox.wait_for(
            "message_created", conversationId=cid, seq=ack["message"]["seq"]
        )
        assert on_inbox["data"]["message"]["id"] == ack["message"]["id"]
        assert on_inbox["data"]["message"]["clientMessageId"] == client_id

        solved = await solve(server, token, cid)
        assert solved["status"] == "SOLVED" and solved["solvedAt"] is not None
        for sock in (inbox, vs):
            ev = await sock.wait_for(
                "conversation_status_changed", conversationId=cid, seq=solved["lastSeq"]
            )
            assert (ev["data"]["from"], ev["data"]["to"]) == ("OPEN", "SOLVED")

        # seq 1..last, each once, on both streams
        for sock in (inbox, vs):
            frames = events_of(sock, cid)
            assert_consecutive(frames)
            assert frames[-1]["seq"] == solved["lastSeq"] == 7
        assert [f["type"] for f in events_of(vs, cid)] == [
            "conversation_created",
            "message_created",
            "conversation_assigned",
            "conversation_status_changed",
            "message_created",
            "message_created",
            "conversation_status_changed",
        ]

    full = await detail(server, token, cid)
    assert full["status"] == "SOLVED"
    assert full["lastSeq"] == 7
    assert [m["text"] for m in full["messages"]] == [
        "hola, tengo una pregunta",
        "Hola Carlos, soy Javier",
        "gracias",
    ]
    assert [m["seq"] for m in full["messages"]] == [2, 5, 6]
    assert full["messages"][1]["id"] == reply["id"]
    assert full["messages"][2]["id"] == ack["message"]["id"]


# --- 2. resume ---------------------------------------------------------------------------------


async def _open_chat_and_disconnect(server: Server) -> tuple[Any, str, Visitor, str, int]:
    """Start and accept a chat while the visitor's socket is open; return the seq it saw last."""
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v) as vs:
        cid = (await start_chat(server, v))["id"]
        await accept(server, token, cid)
        last = await vs.wait_for("conversation_status_changed", conversationId=cid)
        assert_consecutive(events_of(vs, cid))
    return a, token, v, cid, last["seq"]


async def _expect_replay(
    vs: Socket, cid: str, seqs: list[int], last_seq: int, texts: list[str] | None = None
) -> dict[str, Any]:
    """The next frames are exactly the events ``seqs`` of ``cid``, then ``resumed``."""
    for n, seq in enumerate(seqs):
        frame = await vs.next()
        assert frame["type"] == "message_created", frame
        assert (frame["conversationId"], frame["seq"]) == (cid, seq), frame
        if texts is not None:
            assert frame["data"]["message"]["text"] == texts[n]
    resumed = await vs.next()
    assert resumed["type"] == "resumed", resumed
    assert resumed["conversationId"] == cid
    assert resumed["lastSeq"] == last_seq, resumed
    return resumed


@pytest.mark.parametrize("name_the_conversation", [True, False])
async def test_resume_replays_missed_events_once_then_continues_live(
    server: Server, name_the_conversation: bool
) -> None:
    a, token, v, cid, n = await _open_chat_and_disconnect(server)
    missed = [await agent_says(server, token, cid, f"missed {k}", cmid()) for k in range(3)]
    assert [m["seq"] for m in missed] == [n + 1, n + 2, n + 3]

    async with visitor_socket(server, v) as vs:
        resume: dict[str, Any] = {"type": "resume", "afterSeq": n}
        if name_the_conversation:
            resume["conversationId"] = cid
        await vs.send(resume)
        await _expect_replay(
            vs, cid, [n + 1, n + 2, n + 3], n + 3, ["missed 0", "missed 1", "missed 2"]
        )

        live = await agent_says(server, token, cid, "live one", cmid())
        frame = await vs.next()
        assert (frame["type"], frame["seq"]) == ("message_created", live["seq"]), frame
        assert live["seq"] == n + 4
        # a visitor message after that: the stream goes on one by one, nothing repeated
        mine = await visitor_says(server, v, cid, "still here", clientMessageId=cmid())
        frame = await vs.next()
        assert (frame["type"], frame["seq"]) == ("message_created", mine["seq"]), frame
        assert_consecutive(events_of(vs, cid), first=n + 1)


async def test_resume_twice_on_one_socket_does_not_duplicate_live_events(
    server: Server,
) -> None:
    a, token, v, cid, n = await _open_chat_and_disconnect(server)
    for k in range(3):
        await agent_says(server, token, cid, f"missed {k}", cmid())

    async with visitor_socket(server, v) as vs:
        await vs.send({"type": "resume", "conversationId": cid, "afterSeq": n})
        await _expect_replay(vs, cid, [n + 1, n + 2, n + 3], n + 3)
        # the client's reconnect logic fires again with what it has now seen: nothing to replay
        await vs.send({"type": "resume", "afterSeq": n + 3})
        await _expect_replay(vs, cid, [], n + 3)

        for k in range(2):
            live = await agent_says(server, token, cid, f"live {k}", cmid())
            frame = await vs.next()
            assert (frame["type"], frame["seq"]) == ("message_created", live["seq"]), frame
        # a ping answers after everything sent so far: no late duplicate is queued
        assert await vs.drain() == []
        assert_consecutive(events_of(vs, cid), first=n + 1)


@pytest.mark.regression
async def test_event_delivered_live_before_resume_is_not_replayed_again(server: Server) -> None:
    """A reconnecting widget: the socket is ready, an event arrives live, then the widget sends
    its resume. Every event after afterSeq must reach it once (contract: "gets every later
    event once"); the live one must not come a second time in the replay."""
    a, token, v, cid, n = await _open_chat_and_disconnect(server)
    for k in range(3):
        await agent_says(server, token, cid, f"missed {k}", cmid())

    async with visitor_socket(server, v) as vs:
        live = await agent_says(server, token, cid, "arrives before the resume", cmid())
        await vs.wait_for("message_created", conversationId=cid, seq=live["seq"])
        await vs.send({"type": "resume", "conversationId": cid, "afterSeq": n})
        await vs.wait_for("resumed", conversationId=cid)
        seqs = [f["seq"] for f in events_of(vs, cid)]
        assert sorted(seqs) == [n + 1, n + 2, n + 3, n + 4], seqs


@pytest.mark.regression
async def test_resume_past_the_last_seq_does_not_mute_the_stream(server: Server) -> None:
    a, token, v, cid, n = await _open_chat_and_disconnect(server)
    async with visitor_socket(server, v) as vs:
        await vs.send({"type": "resume", "conversationId": cid, "afterSeq": n + 95})
        answer = await vs.next()
        # refused, or clamped to what exists; either way live events keep coming
        assert answer["type"] == "error" or answer["lastSeq"] == n, answer
        live = await agent_says(server, token, cid, "can you hear me?", cmid())
        frame = await vs.wait_for("message_created", conversationId=cid)
        assert frame["seq"] == live["seq"]


# --- 3. the accept race ------------------------------------------------------------------------


async def test_concurrent_accepts_one_wins_the_other_gets_409(server: Server) -> None:
    a, b = await seed(server, agents=2)
    token_a, token_b = await login(server, a), await login(server, b)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token_a) as inbox:
        cid = (await start_chat(server, v))["id"]
        await inbox.wait_for("message_created", conversationId=cid, seq=2)

        results: dict[str, Any] = {}

        async def try_accept(agent_id: str, token: str) -> None:
            async with server.http(token) as c:
                results[agent_id] = await c.post(f"/api/chat/conversations/{cid}/accept")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(try_accept, a.agent_id, token_a)
            nursery.start_soon(try_accept, b.agent_id, token_b)

        statuses = sorted(r.status_code for r in results.values())
        assert statuses == [200, 409], {k: (r.status_code, r.text) for k, r in results.items()}
        [winner] = [x for x in (a, b) if results[x.agent_id].status_code == 200]
        [loser] = [x for x in (a, b) if results[x.agent_id].status_code == 409]
        won = results[winner.agent_id].json()
        assert won["status"] == "OPEN" and won["assignee"]["id"] == winner.agent_id
        err = results[loser.agent_id].json()["error"]
        assert err["code"] == "already_assigned"
        assert err["assignee"] == {"id": winner.agent_id, "name": winner.agent_name}
        assert winner.agent_name in err["message"]

        winner_token = token_a if winner is a else token_b
        await inbox.wait_for("conversation_status_changed", conversationId=cid)
        await barrier_agent(server, winner_token, cid, inbox)
        assigned = [f for f in events_of(inbox, cid) if f["type"] == "conversation_assigned"]
        assert len(assigned) == 1, assigned
        assert assigned[0]["data"]["agent"]["id"] == winner.agent_id
        assert_consecutive(events_of(inbox, cid))

    stored = await detail(server, token_b, cid)
    assert stored["status"] == "OPEN" and stored["assignee"]["id"] == winner.agent_id


# --- 4. clientMessageId idempotency ------------------------------------------------------------


def _same_message(x: dict[str, Any], y: dict[str, Any]) -> None:
    assert (x["id"], x["seq"], x["text"]) == (y["id"], y["seq"], y["text"]), (x, y)


async def test_client_message_id_stores_one_message_over_rest_and_websocket(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        cid = (await start_chat(server, v))["id"]
        await accept(server, token, cid)

        # visitor: REST twice
        r1 = await visitor_says(server, v, cid, "uno", clientMessageId="v-rest")
        r2 = await visitor_says(server, v, cid, "uno", clientMessageId="v-rest")
        _same_message(r1, r2)
        # visitor: REST then WebSocket
        r3 = await visitor_says(server, v, cid, "dos", clientMessageId="v-mixed")
        await vs.send({"type": "message", "text": "dos", "clientMessageId": "v-mixed"})
        ack = await vs.wait_for("ack", clientMessageId="v-mixed")
        _same_message(r3, ack["message"])
        # visitor: WebSocket then REST
        await vs.send({"type": "message", "text": "tres", "clientMessageId": "v-ws-first"})
        ack2 = await vs.wait_for("ack", clientMessageId="v-ws-first")
        r4 = await visitor_says(server, v, cid, "tres", clientMessageId="v-ws-first")
        _same_message(ack2["message"], r4)

        # agent: REST twice
        g1 = await agent_says(server, token, cid, "hola", "a-rest")
        g2 = await agent_says(server, token, cid, "hola", "a-rest")
        _same_message(g1, g2)
        # agent: REST then inbox WebSocket
        g3 = await agent_says(server, token, cid, "adios", "a-mixed")
        await inbox.send(
            {
                "type": "message",
                "conversationId": cid,
                "text": "adios",
                "clientMessageId": "a-mixed",
            }
        )
        ack3 = await inbox.wait_for("ack", clientMessageId="a-mixed")
        _same_message(g3, ack3["message"])

        # two copies in flight at once
        both: list[dict[str, Any]] = []

        async def post() -> None:
            both.append(await visitor_says(server, v, cid, "a la vez", clientMessageId="v-race"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            nursery.start_soon(post)
        _same_message(both[0], both[1])

        await barrier_agent(server, token, cid, inbox, vs)
        for sock in (inbox, vs):
            assert_consecutive(events_of(sock, cid))
            created = [
                f["data"]["message"]["clientMessageId"]
                for f in events_of(sock, cid)
                if f["type"] == "message_created"
            ]
            for key in ("v-rest", "v-mixed", "v-ws-first", "a-rest", "a-mixed", "v-race"):
                assert created.count(key) == 1, (key, created)

    stored = (await detail(server, token, cid))["messages"]
    keys = [m["clientMessageId"] for m in stored]
    for key in ("v-rest", "v-mixed", "v-ws-first", "a-rest", "a-mixed", "v-race"):
        assert keys.count(key) == 1, (key, keys)
    by_key = {m["clientMessageId"]: m for m in stored}
    for key, answer in (
        ("v-rest", r1),
        ("v-mixed", r3),
        ("v-ws-first", r4),
        ("a-rest", g1),
        ("a-mixed", g3),
        ("v-race", both[0]),
    ):
        _same_message(by_key[key], answer)
    assert by_key["a-rest"]["senderType"] == "agent"
    assert by_key["v-rest"]["senderType"] == "visitor"
    # first message + 4 visitor + 2 agent + barrier
    assert len(stored) == 8, keys


@pytest.mark.regression
async def test_an_empty_client_message_id_is_an_id_like_any_other(server: Server) -> None:
    # the fault suite (chaos/fuzz.py) found it: "" was no id to the conversation's actor but a
    # value to the unique index, so the second "" broke the commit, crashed the actor until it
    # was given up and answered 503 to everyone in that conversation
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token) as inbox:
        cid = (await start_chat(server, v))["id"]
        await accept(server, token, cid)
        _same_message(
            await agent_says(server, token, cid, "uno", ""),
            await agent_says(server, token, cid, "uno", ""),
        )
        _same_message(
            await visitor_says(server, v, cid, "dos", clientMessageId=""),
            await visitor_says(server, v, cid, "dos", clientMessageId=""),
        )
        await inbox.send({"type": "message", "conversationId": cid, "text": "uno",
                          "clientMessageId": ""})  # fmt: skip
        ack = await inbox.wait_for("ack")
        assert ack["message"]["text"] == "uno" and ack["clientMessageId"] == ""
        after = await agent_says(server, token, cid, "tres", "a-3")  # the actor still answers
        assert after["text"] == "tres"
    texts = [m["text"] for m in (await detail(server, token, cid))["messages"]]
    assert texts.count("uno") == 1 and texts.count("dos") == 1, texts
    # a new start with "" as its id is the same start again too
    w = await new_visitor(server, a.widget_id)
    first = await start_chat(server, w, "hola", clientMessageId="")
    assert (await start_chat(server, w, "hola", clientMessageId=""))["id"] == first["id"]


async def test_start_chat_with_a_client_message_id_is_idempotent(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    first = await start_chat(server, v, "hola", clientMessageId="start-1")
    again = await start_chat(server, v, "hola", clientMessageId="start-1")
    assert again["id"] == first["id"]
    assert [m["id"] for m in again["messages"]] == [m["id"] for m in first["messages"]]
    # a different first message while that chat is active is refused, not stored
    async with server.http(v.token) as c:
        r = await c.post(
            f"/api/chat/widgets/{a.widget_id}/conversations",
            json={"name": "C", "email": "c@example.com", "message": "otra", "clientMessageId": "x"},
        )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conversation_active"
    assert await view_ids(server, token, "all") == {first["id"]}
    assert len((await detail(server, token, first["id"]))["messages"]) == 1


@pytest.mark.regression
async def test_agent_message_is_not_answered_with_a_visitor_message(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v))["id"]
    await accept(server, token, cid)
    mine = await visitor_says(server, v, cid, "de la visitante", clientMessageId="shared-id")
    async with server.http(token) as c:
        r = await c.post(
            f"/api/chat/conversations/{cid}/messages",
            json={"text": "del agente", "clientMessageId": "shared-id"},
        )
    if r.status_code == 201:  # stored as the agent's own message ...
        answer = r.json()
        assert answer["id"] != mine["id"], "the agent was answered with the visitor's message"
        assert (answer["senderType"], answer["text"]) == ("agent", "del agente")
    else:  # ... or refused as a conflicting reuse, never silently swallowed
        assert r.status_code == 409, r.text


@pytest.mark.regression
async def test_double_submitted_start_chat_creates_one_conversation(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    answers: list[Any] = []

    async def submit() -> None:
        async with server.http(v.token) as c:
            answers.append(
                await c.post(
                    f"/api/chat/widgets/{a.widget_id}/conversations",
                    json={
                        "name": "Carlos Lopez",
                        "email": "carlos@example.com",
                        "message": "hola",
                        "clientMessageId": "double-click",
                    },
                )
            )

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(submit)
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1, [r.json()["id"] for r in answers]
    assert len(await view_ids(server, token, "all")) == 1


# --- 5. the wait timeout, for real -------------------------------------------------------------


async def test_wait_timeout_fires_and_a_late_accept_still_connects(server: Server) -> None:
    [a] = await seed(server, wait_timeout=1)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v) as vs, inbox_socket(server, token) as inbox:
        conv = await start_chat(server, v)
        cid = conv["id"]
        created_at = parse_utc(conv["createdAt"])
        deadline = parse_utc(conv["waitDeadline"])
        assert abs((deadline - created_at).total_seconds() - 1) < 0.01, conv

        timeout = await vs.wait_for("conversation_wait_timeout", conversationId=cid)
        assert timeout["seq"] == 3
        assert timeout["data"]["conversation"]["status"] == "WAITING"
        assert timeout["data"]["conversation"]["waitTimedOut"] is True
        assert parse_utc(timeout["at"]) >= deadline
        assert timeout["data"]["waitedSeconds"] >= 1
        await inbox.wait_for("conversation_wait_timeout", conversationId=cid, seq=3)

        stored = await detail(server, token, cid)
        assert stored["status"] == "WAITING" and stored["waitTimedOut"] is True

        accepted = await accept(server, token, cid)
        assert accepted["status"] == "OPEN"
        assigned = await vs.wait_for("conversation_assigned", conversationId=cid)
        assert assigned["seq"] == 4 and assigned["data"]["agent"]["id"] == a.agent_id
        changed = await vs.wait_for("conversation_status_changed", conversationId=cid)
        assert (changed["data"]["from"], changed["data"]["to"]) == ("WAITING", "OPEN")
        reply = await agent_says(server, token, cid, "perdona la espera", cmid())
        await vs.wait_for("message_created", conversationId=cid, seq=reply["seq"])
        assert_consecutive(events_of(vs, cid))
        kinds = [f["type"] for f in events_of(vs, cid)]
        assert kinds.count("conversation_wait_timeout") == 1, kinds


async def test_chat_accepted_before_its_wait_timeout_never_times_out(server: Server) -> None:
    [a] = await seed(server, wait_timeout=1)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v) as vs:
        conv = await start_chat(server, v)
        cid = conv["id"]
        deadline = parse_utc(conv["waitDeadline"])
        r = await ops_get(server, f"/api/ops/actors/conversation/{cid}")
        assert r.json()["state"] == "WAITING"
        assert r.json()["waitDeadline"] == conv["waitDeadline"], "the timer runs while WAITING"
        accepted = await accept(server, token, cid)
        # the accept was handled before the deadline (else this test proves nothing)
        assert parse_utc(accepted["updatedAt"]) < deadline, (accepted, deadline)
        assert accepted["waitDeadline"] is None and accepted["waitTimedOut"] is False

        r = await ops_get(server, f"/api/ops/actors/conversation/{cid}")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "OPEN"
        assert r.json()["waitDeadline"] is None, "accepting disarms the wait timer"

        # Time must pass: the question is whether anything fires after the deadline.
        await trio.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.5)
        assert utcnow() > deadline + dt.timedelta(seconds=0.5)
        reply = await agent_says(server, token, cid, "sigo aqui", cmid())
        frame = await vs.wait_for("message_created", conversationId=cid, seq=reply["seq"])
        assert parse_utc(frame["at"]) > deadline
        kinds = [f["type"] for f in events_of(vs, cid)]
        assert "conversation_wait_timeout" not in kinds, kinds
        assert_consecutive(events_of(vs, cid))

    stored = await detail(server, token, cid)
    assert stored["waitTimedOut"] is False and stored["status"] == "OPEN"


# --- 6. timestamps -----------------------------------------------------------------------------


async def test_every_timestamp_is_server_utc_with_z(server: Server) -> None:
    lo = utcnow()
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)  # its heartbeat body says 2020-01-01
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        hb = await heartbeat(
            server, v, "https://shop.example.com/cart", timestamp="2099-12-31T23:59:59Z"
        )
        await heartbeat(server, v, "https://shop.example.com/cart", timestamp=0)
        conv = await start_chat(server, v)
        cid = conv["id"]
        accepted = await accept(server, token, cid)
        reply = await agent_says(server, token, cid, "hola", cmid())

        old = "2001-01-01T00:00:00Z"
        await vs.send(
            {"type": "message", "text": "ws", "clientMessageId": "ws-ts", "clientTimestamp": old}
        )
        ack = await vs.wait_for("ack", clientMessageId="ws-ts")
        rest = await visitor_says(
            server, v, cid, "rest", clientMessageId="rest-ts", clientTimestamp=old
        )
        solved = await solve(server, token, cid)
        for sock in (inbox, vs):
            await sock.wait_for(
                "conversation_status_changed", conversationId=cid, seq=solved["lastSeq"]
            )

        full = await detail(server, token, cid)
        async with server.http(token) as c:
            views = (await c.get("/api/chat/conversations", params={"view": "all"})).json()
            widgets = (await c.get("/api/chat/widgets")).json()
        visitors = await live_visitors(server, token)
        actors = (await ops_get(server, "/api/ops/actors")).json()
        hi = utcnow()

        for message in (ack["message"], rest):
            assert message["clientTimestamp"] == old
            assert lo <= parse_utc(message["createdAt"]) <= hi + dt.timedelta(seconds=1)
        stored = {m["clientMessageId"]: m for m in full["messages"]}
        assert stored["ws-ts"]["clientTimestamp"] == old
        assert stored["rest-ts"]["clientTimestamp"] == old
        assert parse_utc(stored["rest-ts"]["createdAt"]) >= lo

        frames = [f for f in inbox.seen + vs.seen if f["type"] != "pong"]
        everything = [hb, conv, accepted, reply, rest, solved, full, views, widgets, visitors]
        everything += [actors, frames]
        checked = assert_server_times(everything, lo, hi, deadline_slack=60)
        assert checked > 40, checked  # the walk really saw the timestamps
        assert len([f for f in frames if "at" in f]) >= 10

        # the heartbeat's own timestamp is never used: the session is stamped with server time
        [me] = [x for x in visitors if x["visitorId"] == v.visitor_id]
        assert lo <= parse_utc(me["lastSeenAt"]) <= hi
        assert lo <= parse_utc(me["firstSeenAt"]) <= hi
        [widget] = widgets["widgets"]
        assert lo <= parse_utc(widget["lastSeenAt"]) <= hi


# --- 7. contact and offline messages -----------------------------------------------------------


async def test_contact_of_a_live_chat_has_no_phone_and_no_visitor_id_elsewhere(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with server.http(v.token, headers={"User-Agent": "FlowTest/1.0"}) as c:
        r = await c.post(
            f"/api/chat/widgets/{a.widget_id}/conversations",
            json={"name": "Carlos Lopez", "email": "carlos@example.com", "message": "hola"},
        )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    contact = (await detail(server, token, cid))["contact"]
    assert contact["visitorId"] == v.visitor_id
    assert contact["phone"] is None
    assert contact["name"] == "Carlos Lopez" and contact["email"] == "carlos@example.com"
    assert contact["userAgent"] == "FlowTest/1.0"
    assert contact["ip"] == "127.0.0.1"
    for key, value in contact.items():
        if key != "visitorId":
            assert v.visitor_id not in str(value), (key, value)
    # the inbox list carries the same contact
    async with server.http(token) as c:
        listed = (await c.get("/api/chat/conversations", params={"view": "all"})).json()
    [item] = listed["conversations"]
    assert item["contact"]["phone"] is None
    assert item["contact"]["visitorId"] == v.visitor_id


async def test_contact_current_url_follows_the_heartbeat_before_the_chat(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id, url="https://shop.example.com/pricing")
    cid = (await start_chat(server, v))["id"]
    contact = (await detail(server, token, cid))["contact"]
    assert contact["currentUrl"] == "https://shop.example.com/pricing"


@pytest.mark.regression
async def test_offline_message_contact_current_url_follows_the_heartbeat(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id, url="https://shop.example.com/pricing")
    async with server.http(v.token) as c:
        r = await c.post(
            f"/api/chat/widgets/{a.widget_id}/offline-messages",
            json={"name": "Ana", "email": "ana@example.com", "message": "hola"},
        )
    assert r.status_code == 201, r.text
    contact = (await detail(server, token, r.json()["id"]))["contact"]
    assert contact["visitorId"] == v.visitor_id
    assert contact["currentUrl"] == "https://shop.example.com/pricing"


async def test_contact_current_url_follows_heartbeats_during_the_chat(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v))["id"]
    await heartbeat(server, v, "https://shop.example.com/checkout")
    contact = (await detail(server, token, cid))["contact"]
    assert contact["currentUrl"] == "https://shop.example.com/checkout"


async def test_offline_message_is_a_waiting_ticket_with_the_given_phone(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token) as inbox:
        async with server.http(v.token) as c:
            r = await c.post(
                f"/api/chat/widgets/{a.widget_id}/offline-messages",
                json={
                    "name": "Lucia Perez",
                    "email": "lucia@example.com",
                    "message": "llamenme por favor",
                    "phone": "+34 600 123 456",
                },
            )
        assert r.status_code == 201, r.text
        ticket = r.json()
        cid = ticket["id"]
        assert ticket["kind"] == "offline_message"
        assert ticket["status"] == "WAITING"
        assert ticket["waitDeadline"] is None
        assert ticket["visitorId"] == v.visitor_id

        created = await inbox.wait_for("conversation_created", conversationId=cid)
        assert created["data"]["conversation"]["kind"] == "offline_message"
        assert created["data"]["conversation"]["waitDeadline"] is None
        message = await inbox.wait_for("message_created", conversationId=cid)
        assert message["data"]["message"]["text"] == "llamenme por favor"

    full = await detail(server, token, cid)
    assert full["kind"] == "offline_message" and full["status"] == "WAITING"
    assert full["waitDeadline"] is None
    assert full["contact"]["phone"] == "+34 600 123 456"
    assert full["contact"]["visitorId"] == v.visitor_id
    assert [m["text"] for m in full["messages"]] == ["llamenme por favor"]
    assert cid in await view_ids(server, token, "unassigned")
    assert cid in await view_ids(server, token, "all")
    assert cid not in await view_ids(server, token, "waiting"), "waiting lists live chats only"
    r = await ops_get(server, f"/api/ops/actors/conversation/{cid}")
    assert r.status_code == 200 and r.json()["waitDeadline"] is None


async def test_offline_message_without_a_visitor_token_makes_a_new_contact(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with server.http() as c:
        r = await c.post(
            f"/api/chat/widgets/{a.widget_id}/offline-messages",
            json={"name": "Ana", "email": "ana@example.com", "message": "hola"},
        )
    assert r.status_code == 201, r.text
    ticket = r.json()
    full = await detail(server, token, ticket["id"])
    assert full["contact"]["visitorId"] == ticket["visitorId"]
    assert full["contact"]["phone"] is None
    assert full["contact"]["name"] == "Ana"


# --- 8. inbox views ----------------------------------------------------------------------------


async def test_views_follow_conversations_from_waiting_to_solved(server: Server) -> None:
    a, b = await seed(server, agents=2)
    token, token_b = await login(server, a), await login(server, b)
    va = await new_visitor(server, a.widget_id)
    vb = await new_visitor(server, a.widget_id)
    x = (await start_chat(server, va, "primera"))["id"]
    y = (await start_chat(server, vb, "segunda"))["id"]

    async def check(expected: dict[str, set[str]], who: str = token) -> None:
        got = {view: await view_ids(server, who, view) for view in expected}
        assert got == expected

    await check(
        {
            "waiting": {x, y},
            "open": set(),
            "assigned": set(),
            "unassigned": {x, y},
            "solved": set(),
            "all": {x, y},
            "unread": {x, y},
        }
    )

    await accept(server, token, x)
    await check(
        {
            "waiting": {y},
            "open": {x},
            "assigned": {x},
            "unassigned": {y},
            "solved": set(),
            "all": {x, y},
            "unread": {x, y},
        }
    )
    await check({"assigned": set(), "open": {x}}, who=token_b)  # assigned is per agent

    await agent_says(server, token, x, "te leo", cmid())
    await check({"unread": {y}})
    await visitor_says(server, va, x, "otra pregunta", clientMessageId=cmid())
    await check({"unread": {x, y}})

    await solve(server, token, x)
    await check(
        {
            "waiting": {y},
            "open": set(),
            "assigned": set(),
            "unassigned": {y},
            "solved": {x},
            "all": {x, y},
            "unread": {y},
        }
    )

    async with server.http(token) as c:
        r = await c.get("/api/chat/conversations", params={"view": "all"})
        listed = {conv["id"]: conv for conv in r.json()["conversations"]}
        assert listed[x]["status"] == "SOLVED" and listed[y]["status"] == "WAITING"
        assert listed[x]["lastMessage"]["text"] == "otra pregunta"
        assert listed[y]["lastMessage"]["text"] == "segunda"
        r = await c.get("/api/chat/conversations", params={"view": "closed"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_view"


# --- 9. visitor rehydration --------------------------------------------------------------------


async def test_visitor_rehydrates_its_latest_conversation(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    path = f"/api/chat/widgets/{a.widget_id}/conversation"
    async with server.http(v.token) as c:
        r = await c.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"

    first = (await start_chat(server, v, "primera"))["id"]
    async with server.http(v.token) as c:
        r = await c.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == first and body["status"] == "WAITING" and body["lastSeq"] == 2
    assert [m["text"] for m in body["messages"]] == ["primera"]

    await accept(server, token, first)
    await agent_says(server, token, first, "hola", cmid())
    async with server.http(v.token) as c:
        body = (await c.get(path)).json()
    assert body["status"] == "OPEN" and body["lastSeq"] == 5
    assert [(m["seq"], m["text"]) for m in body["messages"]] == [(2, "primera"), (5, "hola")]
    assert body["assignee"]["name"] == a.agent_name

    await solve(server, token, first)
    second = (await start_chat(server, v, "otra vez"))["id"]
    assert second != first
    async with server.http(v.token) as c:
        body = (await c.get(path)).json()
    assert body["id"] == second and body["lastSeq"] == 2
    assert [m["text"] for m in body["messages"]] == ["otra vez"]

    # another visitor of the same widget has nothing to rehydrate
    other = await new_visitor(server, a.widget_id)
    async with server.http(other.token) as c:
        assert (await c.get(path)).status_code == 404


async def test_each_stream_carries_only_its_own_conversations(server: Server) -> None:
    [a] = await seed(server)
    [other] = await seed(server, tenant_name="Other")
    token, other_token = await login(server, a), await login(server, other)
    v1 = await new_visitor(server, a.widget_id)
    v2 = await new_visitor(server, a.widget_id)
    async with (
        visitor_socket(server, v1) as s1,
        visitor_socket(server, v2) as s2,
        inbox_socket(server, other_token) as foreign,
    ):
        c1 = (await start_chat(server, v1, "soy uno"))["id"]
        c2 = (await start_chat(server, v2, "soy dos"))["id"]
        await accept(server, token, c1)
        await accept(server, token, c2)
        w = await new_visitor(server, other.widget_id)
        oc = (await start_chat(server, w, "otro"))["id"]
        # barriers: a stream delivers in publish order, so once each socket has the event below,
        # it has received everything published before it (all of the other conversations' events)
        await barrier_agent(server, token, c1, s1)
        await barrier_agent(server, token, c2, s2)
        await accept(server, other_token, oc)
        await foreign.wait_for("conversation_status_changed", conversationId=oc)
        await barrier_agent(server, token, c1, s1)  # after the other tenant's events too
        await barrier_agent(server, token, c2, s2)

        assert {f["conversationId"] for f in s1.seen if "conversationId" in f} == {c1}
        assert {f["conversationId"] for f in s2.seen if "conversationId" in f} == {c2}
        assert {f["conversationId"] for f in foreign.seen if "conversationId" in f} == {oc}
        assert all(f["tenantId"] == other.tenant_id for f in foreign.seen if "tenantId" in f)
        assert_consecutive(events_of(s1, c1))
        assert_consecutive(events_of(s2, c2))


# --- 10. live visitors -------------------------------------------------------------------------


async def test_live_visitors_follow_heartbeats_and_chats(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id, url="https://shop.example.com/")
    await heartbeat(server, v, "https://shop.example.com/pricing")

    [me] = [x for x in await live_visitors(server, token) if x["visitorId"] == v.visitor_id]
    assert me["currentUrl"] == "https://shop.example.com/pricing"
    assert me["inChat"] is False and me["conversationId"] is None
    assert me["timeOnSiteSeconds"] >= 0

    cid = (await start_chat(server, v))["id"]
    await heartbeat(server, v, "https://shop.example.com/checkout")
    [me] = [x for x in await live_visitors(server, token) if x["visitorId"] == v.visitor_id]
    assert me["currentUrl"] == "https://shop.example.com/checkout"
    assert me["inChat"] is True and me["conversationId"] == cid

    # another tenant's agent does not see this visitor
    [other] = await seed(server, tenant_name="Other")
    other_token = await login(server, other)
    assert v.visitor_id not in {x["visitorId"] for x in await live_visitors(server, other_token)}


async def test_a_silent_visitor_leaves_the_live_list(database_url: str) -> None:
    """With a 1 s expiry the visitor's session ends by itself; the inbox hears it go offline."""
    async with open_server(database_url, visitor_expiry_seconds=1) as srv:
        [a] = await seed(srv)
        token = await login(srv, a)
        async with inbox_socket(srv, token) as inbox:
            v = await new_visitor(srv, a.widget_id)
            online = await inbox.wait_for("visitor_presence_update")
            assert online["data"]["visitorId"] == v.visitor_id and online["data"]["online"]
            assert v.visitor_id in {x["visitorId"] for x in await live_visitors(srv, token)}
            gone = await inbox.wait_for("visitor_presence_update")
            assert gone["data"]["visitorId"] == v.visitor_id
            assert gone["data"]["online"] is False
            waited = parse_utc(gone["at"]) - parse_utc(online["data"]["lastSeenAt"])
            assert waited >= dt.timedelta(seconds=1), waited
            assert v.visitor_id not in {x["visitorId"] for x in await live_visitors(srv, token)}


# --- 11. operators -----------------------------------------------------------------------------


async def test_ops_actors_lists_conversation_and_visitor_actors(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v))["id"]
    await accept(server, token, cid)

    r = await ops_get(server, "/api/ops/actors")
    assert r.status_code == 200, r.text
    actors = r.json()["actors"]
    [conv] = [x for x in actors if x["kind"] == "conversation" and x["id"] == cid]
    assert conv["state"] == "OPEN"
    [session] = [x for x in actors if x["kind"] == "visitor_session" and x["id"] == v.visitor_id]
    for actor in (conv, session):
        for key in ("subscribers", "mailbox", "restarts", "startedAt", "lastActivityAt"):
            assert key in actor, (key, actor)
        assert actor["restarts"] == 0 and actor["mailbox"] == 0
        assert actor["startedAt"].endswith("Z") and actor["lastActivityAt"].endswith("Z")

    r = await ops_get(server, "/api/ops/actors?kind=conversation")
    assert {x["kind"] for x in r.json()["actors"]} == {"conversation"}

    for bad in (None, "wrong-token", token):
        r = await ops_get(server, "/api/ops/actors", bad)
        assert r.status_code == 401, (bad, r.text)
        assert r.json()["error"]["code"] == "unauthenticated"
        r = await ops_get(server, f"/api/ops/actors/conversation/{cid}", bad)
        assert r.status_code == 401, (bad, r.text)
