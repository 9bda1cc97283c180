"""Canned replies (issue #17): a workspace's saved answers, its own only, found by shortcut then
by text, unique shortcuts whatever their case, bad input refused with nothing stored."""

from __future__ import annotations

from typing import Any

import httpx

from storage import queries
from tests.support import Server, login, seed

URL = "/api/chat/canned-replies"


async def make(client: httpx.AsyncClient, shortcut: str, text: str) -> dict[str, Any]:
    r = await client.post(URL, json={"shortcut": shortcut, "text": text})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def search(client: httpx.AsyncClient, q: str | None = None) -> list[str]:
    r = await client.get(URL, params={"q": q} if q is not None else None)
    assert r.status_code == 200, r.text
    return [c["shortcut"] for c in r.json()["cannedReplies"]]


async def test_canned_replies_are_kept_found_changed_and_deleted(server: Server) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        hours = await make(client, "hours", "We answer Monday to Friday, 9:00 to 18:00.")
        assert hours["shortcut"] == "hours" and hours["id"].startswith("cr_")
        await make(client, "Thanks", "Thank you {{visitor.first_name}}! Anything else?")
        await make(client, "refund", "Refunds take 5 working days; a 50% deposit is kept.")
        await make(client, "hello", "Hi, I'm {{agent.name}}. How can I help?")
        await make(client, "bye", "Thanks for chatting!")
        assert await search(client) == ["bye", "hello", "hours", "refund", "Thanks"]
        # shortcuts that start with it first, then texts that hold it, whatever the case
        assert await search(client, "h") == ["hello", "hours", "bye", "Thanks"]
        assert await search(client, "thank") == ["Thanks", "bye"]
        assert await search(client, "ho") == ["hours", "hello"]  # "How can I help"
        assert await search(client, "hou") == ["hours"]
        assert await search(client, "HELP") == ["hello"]
        assert await search(client, "50%") == ["refund"]  # "%" is a character, not a wildcard
        assert await search(client, "%") == ["refund"]
        assert await search(client, "day_") == []  # "_" is not "any one character" ("days")
        assert await search(client, "first_name") == ["Thanks"]
        assert await search(client, "   ") == await search(client)

        r = await client.patch(f"{URL}/{hours['id']}", json={"text": "Open 8:00 to 20:00."})
        assert r.status_code == 200, r.text
        assert r.json()["text"] == "Open 8:00 to 20:00." and r.json()["shortcut"] == "hours"
        assert r.json()["updatedAt"] >= hours["updatedAt"]
        r = await client.patch(f"{URL}/{hours['id']}", json={"shortcut": "open"})
        assert r.status_code == 200 and r.json()["shortcut"] == "open", r.text
        r = await client.delete(f"{URL}/{hours['id']}")
        assert r.status_code == 200 and r.json() == {"id": hours["id"], "deleted": True}
        r = await client.delete(f"{URL}/{hours['id']}")
        assert r.status_code == 404, r.text
        assert await search(client) == ["bye", "hello", "refund", "Thanks"]


async def test_shortcuts_are_unique_in_a_workspace_and_only_its_agents_see_them(
    server: Server,
) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    async with (
        server.http(await login(server, who)) as mine,
        server.http(await login(server, other)) as theirs,
    ):
        hours = await make(mine, "hours", "9 to 6")
        r = await mine.post(URL, json={"shortcut": "HOURS", "text": "again"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "shortcut_taken", r.text
        late = await make(mine, "late", "We are closed")
        r = await mine.patch(f"{URL}/{late['id']}", json={"shortcut": "Hours"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "shortcut_taken", r.text

        await make(theirs, "hours", "another workspace, the same shortcut")  # theirs
        assert await search(theirs) == ["hours"]
        assert (await theirs.get(URL, params={"q": "9 to"})).json()["cannedReplies"] == []
        r = await theirs.patch(f"{URL}/{hours['id']}", json={"text": "hijacked"})
        assert r.status_code == 404, r.text
        r = await theirs.delete(f"{URL}/{hours['id']}")
        assert r.status_code == 404, r.text
        r = await mine.get(URL)
        assert {c["text"] for c in r.json()["cannedReplies"]} == {"9 to 6", "We are closed"}
    async with server.http() as anonymous:
        assert (await anonymous.get(URL)).status_code == 401


async def test_bad_canned_replies_are_refused_and_store_nothing(server: Server) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        for bad in (
            {"shortcut": "", "text": "x"},
            {"shortcut": "/hours", "text": "x"},
            {"shortcut": "two words", "text": "x"},
            {"shortcut": "x" * 33, "text": "x"},
            {"shortcut": "ok", "text": "   "},
            {"shortcut": "ok", "text": "x" * 5001},
            {"shortcut": "ok"},
            {"shortcut": "ok", "text": "x", "extra": 1},
            {"shortcut": 5, "text": "x"},
        ):
            r = await client.post(URL, json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid_body"
        ok = await make(client, "ok", "fine")
        for bad_patch in ({"shortcut": "a b"}, {"text": ""}, {"shortcut": None, "text": 5}):
            r = await client.patch(f"{URL}/{ok['id']}", json=bad_patch)
            assert r.status_code == 422, (bad_patch, r.text)
        for bad_q in ("x" * 101, "a\x00b"):  # a NUL reached PostgreSQL once: a 500
            r = await client.get(URL, params={"q": bad_q})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", bad_q
        assert await search(client) == ["ok"]
        assert (await client.get(URL)).json()["cannedReplies"][0]["text"] == "fine"

        async def fill(conn: Any) -> None:  # the workspace's limit, reached
            await conn.execute(
                """INSERT INTO canned_replies (id, tenant_id, shortcut, text, created_at,
                                              updated_at)
                   SELECT 'cr_fill_' || n, $1, 'fill' || n, 'x', now(), now()
                     FROM generate_series(1, $2) n""",
                who.tenant_id,
                queries.CANNED_LIMIT - 1,
            )

        await server.run(fill)
        r = await client.post(URL, json={"shortcut": "onemore", "text": "x"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "too_many", r.text
