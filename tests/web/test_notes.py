"""Internal notes and mentions (issue #17): agents only — never on a visitor's socket, in its
replay, in its conversation or its messages; a mention reaches the colleague's Mentions."""

from __future__ import annotations

from typing import Any

from tests.support import (
    Server,
    accepted_chat,
    inbox_socket,
    login,
    seed,
    visitor_socket,
)
from web.routes.notes import mentioned

SECRET = "she sounded upset, offer the discount"


async def note(srv: Server, token: str, cid: str, text: str, **extra: Any) -> Any:
    async with srv.http(token) as client:
        return await client.post(
            f"/api/chat/conversations/{cid}/notes", json={"text": text, **extra}
        )


def test_a_mention_is_an_at_and_a_name_of_the_workspace() -> None:
    team = [("a1", "Ana Ruiz"), ("j1", "Javier Lazo"), ("j2", "Javier Soto"), ("b1", "Bea")]
    assert mentioned("@Ana Ruiz can you look?", team) == ["a1"]
    assert mentioned("@ana, can you look?", team) == ["a1"]  # a first name no one else has
    assert mentioned("@Javier can you look?", team) == []  # two Javiers: say which
    assert mentioned("@javier soto and @JAVIER LAZO", team) == ["j1", "j2"]
    assert mentioned("write to maria@ana.com", team) == []  # an email address names nobody
    assert mentioned("@Anastasia", team) == []  # a whole name, not a prefix
    assert mentioned("@Bea.", team) == ["b1"]
    assert mentioned("no mention", team) == []


async def test_a_note_reaches_the_agents_only_and_its_mention_the_colleague(
    server: Server,
) -> None:
    javier, ana = await seed(server, agents=2)
    [other] = await seed(server)
    tj, ta, to = await login(server, javier), await login(server, ana), await login(server, other)
    v, cid = await accepted_chat(server, javier, tj)
    async with (
        inbox_socket(server, ta) as hers,
        inbox_socket(server, to) as elsewhere,
        visitor_socket(server, v) as widget,
    ):
        r = await note(server, tj, cid, f"@Ana Ruiz {SECRET}", clientNoteId="n-1")
        assert r.status_code == 201, r.text
        written = r.json()
        assert written["authorName"] == "Javier Lazo" and written["conversationId"] == cid
        assert written["mentions"] == [{"id": ana.agent_id, "name": "Ana Ruiz"}]
        event = await hers.wait_for("note_created")
        assert event["conversationId"] == cid and "seq" not in event
        assert event["data"]["note"] == written
        again = await note(server, tj, cid, "sent twice", clientNoteId="n-1")  # a retry
        assert again.status_code == 201 and again.json() == written
        # the visitor's own traffic: a message then its echo, and nothing of the note
        await widget.send({"type": "message", "conversationId": cid, "text": "hola?"})
        seen = []
        while not seen or seen[-1].get("type") != "message_created":
            seen.append(await widget.next())
        assert SECRET not in str(seen)
        assert not [f for f in await elsewhere.drain() if f["type"] == "note_created"]
        await widget.send({"type": "resume", "conversationId": cid, "afterSeq": 0})
        replay = []
        while not replay or replay[-1].get("type") != "resumed":
            replay.append(await widget.next())
        assert SECRET not in str(replay)
    async with server.http(v.token) as client:  # every visitor read path
        thread = await client.get(f"/api/chat/widgets/{javier.widget_id}/conversation")
        page = await client.get(
            f"/api/chat/widgets/{javier.widget_id}/conversations/{cid}/messages"
        )
    assert thread.status_code == page.status_code == 200
    assert SECRET not in thread.text and SECRET not in page.text
    assert thread.json()["lastSeq"] == max(m["seq"] for m in thread.json()["messages"])

    async with server.http(ta) as client:
        notes = (await client.get(f"/api/chat/conversations/{cid}/notes")).json()["notes"]
        assert [n["id"] for n in notes] == [written["id"]]
        mentions = (await client.get("/api/chat/mentions")).json()["mentions"]
        assert [m["note"]["id"] for m in mentions] == [written["id"]]
        assert mentions[0]["contactName"] == "Carlos Lopez"
        assert mentions[0]["conversationStatus"] == "OPEN"
    async with server.http(tj) as client:
        assert (await client.get("/api/chat/mentions")).json()["mentions"] == []
    async with server.http(to) as client:  # another workspace
        r = await client.get(f"/api/chat/conversations/{cid}/notes")
        assert r.status_code == 404, r.text
        r = await client.post(f"/api/chat/conversations/{cid}/notes", json={"text": "x"})
        assert r.status_code == 404, r.text


async def test_bad_notes_are_refused_and_store_nothing(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    _v, cid = await accepted_chat(server, who, token)
    async with server.http(token) as client:
        for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 5001}, {}, {"text": 5}):
            r = await client.post(f"/api/chat/conversations/{cid}/notes", json=bad)
            assert r.status_code == 422, (bad, r.text)
    async with server.http() as anonymous:
        r = await anonymous.post(f"/api/chat/conversations/{cid}/notes", json={"text": "x"})
        assert r.status_code == 401
    async with server.http(token) as client:
        assert (await client.get(f"/api/chat/conversations/{cid}/notes")).json() == {"notes": []}
