"""Search (issue #17): message text in the workspace's language (English and Spanish stemmed,
Spanish found without its accents), contacts by name, email and phone digits, the matches as
plain-text pieces, a page at a time, only the agent's workspace, internal notes never."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Server, login, new_chat, new_visitor, seed, visitor_says

URL = "/api/chat/search"


async def find(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    r = await client.get(URL, params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def texts(client: httpx.AsyncClient, q: str) -> list[str]:
    return [hit["message"]["text"] for hit in (await find(client, q))["messages"]]


def matches(hit: dict[str, Any]) -> list[str]:
    return [piece["text"] for piece in hit["headline"] if piece["match"]]


async def language(client: httpx.AsyncClient, name: str) -> None:
    r = await client.patch("/api/chat/workspace", json={"searchLanguage": name})
    assert r.status_code == 200 and r.json()["searchLanguage"] == name, r.text


async def test_words_are_found_in_the_workspace_language_and_keep_their_own(
    server: Server,
) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        r = await client.get("/api/chat/workspace")
        assert r.status_code == 200 and r.json()["searchLanguage"] == "simple", r.text
        v = await new_visitor(server, who.widget_id)
        cid = await new_chat(server, v, "Necesito ayuda con mis pagos")
        # simple: whole words only, accents and all
        assert await texts(client, "pagos") == ["Necesito ayuda con mis pagos"]
        assert await texts(client, "pago") == []

        await language(client, "spanish")
        await visitor_says(server, v, cid, "Quiero escuchar una canción bonita")
        # Spanish stems and drops accents: the visitor's "canción" is found as typed without
        [hit] = (await find(client, "cancion"))["messages"]
        assert hit["message"]["text"] == "Quiero escuchar una canción bonita"
        assert hit["conversationId"] == cid and hit["status"] == "WAITING"
        assert hit["contact"]["name"] == "Carlos Lopez"
        assert matches(hit) == ["canción"]
        assert "".join(p["text"] for p in hit["headline"]) == hit["message"]["text"]
        assert await texts(client, "canciones") == ["Quiero escuchar una canción bonita"]

        await language(client, "english")
        await visitor_says(server, v, cid, "The payments failed twice")
        assert await texts(client, "failing payment") == ["The payments failed twice"]
        # messages stored in another language are still found in theirs
        assert await texts(client, "cancion") == ["Quiero escuchar una canción bonita"]
        assert await texts(client, "pagos") == ["Necesito ayuda con mis pagos"]
        # web search syntax: a phrase, -without, or
        assert await texts(client, '"payments failed"') == ["The payments failed twice"]
        assert await texts(client, '"failed payments"') == []
        assert await texts(client, "payments -twice") == []
        assert await texts(client, "payments or pagos") == [
            "The payments failed twice",
            "Necesito ayuda con mis pagos",
        ]


async def test_what_a_visitor_typed_comes_back_as_text_and_cannot_forge_a_match(
    server: Server,
) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        v = await new_visitor(server, who.widget_id)
        markup = '<img src=x onerror="alert(1)"> refund <b>now</b>'
        cid = await new_chat(server, v, markup)
        await visitor_says(server, v, cid, "forged \x01match\x02 refund")
        first, second = (await find(client, "refund"))["messages"]
        assert matches(first) == ["refund"] and matches(second) == ["refund"]
        assert "<img src=x" in "".join(p["text"] for p in second["headline"])
        assert "match" in "".join(p["text"] for p in first["headline"] if not p["match"])
        assert not any("\x01" in p["text"] or "\x02" in p["text"] for p in first["headline"])

        # a long message comes as excerpts around its matches
        long = " ".join(["filler"] * 60 + ["invoice"] + ["padding"] * 60)
        await visitor_says(server, v, cid, long)
        [hit] = (await find(client, "invoice"))["messages"]
        assert hit["message"]["text"] == long and matches(hit) == ["invoice"]
        shown = "".join(p["text"] for p in hit["headline"])
        assert len(shown) < 300 < len(long) and "filler" in shown and "padding" in shown


async def test_only_the_agents_workspace_is_searched_and_notes_never(server: Server) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    async with (
        server.http(await login(server, who)) as mine,
        server.http(await login(server, other)) as theirs,
    ):
        cid = await new_chat(server, await new_visitor(server, who.widget_id), "invoice 42")
        await new_chat(server, await new_visitor(server, other.widget_id), "invoice 43")
        r = await mine.post(
            f"/api/chat/conversations/{cid}/notes", json={"text": "invoice secret note"}
        )
        assert r.status_code == 201, r.text
        assert await texts(mine, "invoice") == ["invoice 42"]
        assert await texts(theirs, "invoice") == ["invoice 43"]
        assert await texts(mine, "secret") == []
        # nor their contacts (both chats were started by a "Carlos Lopez")
        [contact] = (await find(mine, "carlos"))["contacts"]
        assert contact["conversationId"] == cid


async def test_contacts_are_found_by_name_email_and_phone_digits(server: Server) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        ana = await new_chat(
            server,
            await new_visitor(server, who.widget_id),
            name="Ana María Pérez",
            email="ana.perez@example.org",
            phone="+34 600-123-456",
        )
        bea = await new_chat(
            server,
            await new_visitor(server, who.widget_id),
            name="Bea 100% Real",
            email="bea@example.com",
        )
        [hit] = (await find(client, "maría pé"))["contacts"]
        assert hit["conversationId"] == ana and hit["field"] == "name", hit
        assert matches(hit) == ["María Pé"]
        assert hit["contact"]["phone"] == "+34 600-123-456"

        [hit] = (await find(client, "PEREZ@"))["contacts"]
        assert hit["field"] == "email" and matches(hit) == ["perez@"]

        for typed in ("600 123", "600123456", "(600) 123-456", "+34600"):
            [hit] = (await find(client, typed))["contacts"]
            assert hit["conversationId"] == ana and hit["field"] == "phone", typed
        [hit] = (await find(client, "0-12"))["contacts"]
        assert matches(hit) == ["0-12"]

        # % and _ are characters, not wildcards
        [hit] = (await find(client, "100%"))["contacts"]
        assert hit["conversationId"] == bea
        assert (await find(client, "a_a"))["contacts"] == []
        assert (await find(client, "12"))["contacts"] == []  # two digits: not a phone search
        # the latest updated first
        names = [h["contact"]["name"] for h in (await find(client, "example"))["contacts"]]
        assert names == ["Bea 100% Real", "Ana María Pérez"]


async def test_results_come_a_page_at_a_time_newest_first(server: Server) -> None:
    [who] = await seed(server)
    async with server.http(await login(server, who)) as client:
        v = await new_visitor(server, who.widget_id)
        cid = await new_chat(server, v, "order 0")
        for n in range(1, 25):
            await visitor_says(server, v, cid, f"order {n}")
        seen: list[str] = []
        after = None
        while True:
            page = await find(client, "order", limit=10, **({"after": after} if after else {}))
            seen += [hit["message"]["text"] for hit in page["messages"]]
            if after is not None:
                assert page["contacts"] == []
            after = page["nextCursor"]
            if after is None:
                break
        assert seen == [f"order {n}" for n in range(24, -1, -1)]


async def test_bad_queries_are_refused_or_answered_and_never_fail(server: Server) -> None:
    [who] = await seed(server)
    async with server.http() as anonymous:
        r = await anonymous.get(URL, params={"q": "x"})
        assert r.status_code == 401, r.text
    async with server.http(await login(server, who)) as client:
        await language(client, "english")
        await new_chat(server, await new_visitor(server, who.widget_id), "the order")
        for params in ({}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}):
            r = await client.get(URL, params=params)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", params
        for params in ({"q": "order", "limit": "0"}, {"q": "order", "limit": "51"}):
            r = await client.get(URL, params=params)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_limit", params
        r = await client.get(URL, params={"q": "order", "after": "bm9wZQ"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", r.text
        r = await client.get(URL, params={"q": "order\x00"})  # PostgreSQL text holds no NUL
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", r.text
        for odd in ('"unterminated', "-", "or", "!!!", "'", "a & | ! <-> b", ":*", "\\", "\x01"):
            r = await client.get(URL, params={"q": odd})
            assert r.status_code == 200 and r.json()["messages"] == [], (odd, r.text)
        assert await texts(client, "the") == []  # only a stop word: nothing to look for

        r = await client.patch("/api/chat/workspace", json={"searchLanguage": "klingon"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body", r.text
        r = await client.get("/api/chat/workspace")
        assert r.json()["searchLanguage"] == "english", r.text
