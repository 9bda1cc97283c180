"""Lists a page at a time (issue 16, findings 1 and 9): a flood of visitors or years of
conversations cannot make one answer unbounded; totals are counted in SQL; cursors never skip or
repeat a row that stayed in place."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support import Server, login, new_visitor, open_server, seed

pytestmark = pytest.mark.regression

PATH = "/api/chat/visitors/live"


async def page(srv: Server, token: str, **params: Any) -> dict[str, Any]:
    async with srv.http(token) as client:
        r = await client.get(PATH, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def all_pages(srv: Server, token: str, limit: int) -> tuple[list[str], list[int]]:
    """Every page in turn: the visitor ids in order, and each page's total."""
    ids: list[str] = []
    totals: list[int] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        body = await page(srv, token, **params)
        assert len(body["visitors"]) <= limit
        ids += [v["visitorId"] for v in body["visitors"]]
        totals.append(body["total"])
        after = body["nextCursor"]
        if after is None:
            return ids, totals


async def test_pages_cover_every_live_visitor_once_in_arrival_order(database_url: str) -> None:
    async with open_server(database_url) as srv:
        [a, b] = await seed(srv, agents=1) + await seed(srv, tenant_name="Other")
        token = await login(srv, a)
        arrived = [(await new_visitor(srv, a.widget_id)).visitor_id for _ in range(7)]
        await new_visitor(srv, b.widget_id)  # another tenant's: never on these pages

        first = await page(srv, token, limit=3)
        assert [v["visitorId"] for v in first["visitors"]] == arrived[:3]
        assert first["total"] == 7 and first["nextCursor"]

        # a visitor arriving between two pages is on a later page, and nothing repeats
        late = (await new_visitor(srv, a.widget_id)).visitor_id
        second = await page(srv, token, limit=3, after=first["nextCursor"])
        assert [v["visitorId"] for v in second["visitors"]] == arrived[3:6]
        assert second["total"] == 8

        ids, totals = await all_pages(srv, token, limit=3)
        assert ids == [*arrived, late]
        assert totals == [8, 8, 8]

        everything = await page(srv, token)  # the default page holds up to 100
        assert [v["visitorId"] for v in everything["visitors"]] == [*arrived, late]
        assert everything["nextCursor"] is None


async def test_a_cursor_is_only_a_position_not_a_key_to_another_tenant(database_url: str) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        [b] = await seed(srv, tenant_name="Other")
        for _ in range(2):
            await new_visitor(srv, a.widget_id)
        mine = (await new_visitor(srv, b.widget_id)).visitor_id
        cursor = (await page(srv, await login(srv, a), limit=1))["nextCursor"]
        other = await page(srv, await login(srv, b), after=cursor)
        assert [v["visitorId"] for v in other["visitors"]] in ([mine], [])
        assert other["total"] == 1


NOW = "2026-12-07T00:00:00+00:00"


def forged(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "501"}, "invalid_limit"),
        ({"limit": "-1"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"limit": "１０"}, "invalid_limit"),  # full-width digits: isdigit() says yes
        ({"after": "not a cursor"}, "invalid_cursor"),
        ({"after": "x" * 600}, "invalid_cursor"),
        (
            {"after": forged({"list": "conversations", "after": ["2026-12-07", "v"]})},
            "invalid_cursor",
        ),
        (
            {"after": forged({"list": "live_visitors", "after": ["yesterday", "v"]})},
            "invalid_cursor",
        ),
        ({"after": forged({"list": "live_visitors", "after": [1, 2, 3]})}, "invalid_cursor"),
        ({"after": forged({"list": "live_visitors", "after": []})}, "invalid_cursor"),
        ({"after": forged(["live_visitors"])}, "invalid_cursor"),
        # ids PostgreSQL cannot take (NUL, an unpaired surrogate) are the cursor's fault, not a 500
        (
            {"after": forged({"list": "live_visitors", "after": [NOW, "v\u0000"]})},
            "invalid_cursor",
        ),
        (
            {"after": forged({"list": "live_visitors", "after": [NOW, "v\ud800"]})},
            "invalid_cursor",
        ),
    ],
)
async def test_bad_paging_is_a_422_that_names_the_parameter(
    server: Server, params: dict[str, str], code: str
) -> None:
    [a] = await seed(server)
    async with server.http(await login(server, a)) as client:
        r = await client.get(PATH, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


async def conversations_page(srv: Server, token: str, **params: Any) -> dict[str, Any]:
    async with srv.http(token) as client:
        r = await client.get("/api/chat/conversations", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def start(srv: Server, widget_id: str) -> str:
    v = await new_visitor(srv, widget_id)
    async with srv.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{widget_id}/conversations",
            json={"name": "Carlos", "email": "carlos@example.com", "message": "hola"},
        )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def test_conversations_come_newest_first_a_page_at_a_time(database_url: str) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        [other] = await seed(srv, tenant_name="Other")
        token = await login(srv, a)
        chats = [await start(srv, a.widget_id) for _ in range(5)]
        await start(srv, other.widget_id)  # another tenant's: on no page here

        ids: list[str] = []
        after = None
        pages = 0
        while True:
            params: dict[str, Any] = {"view": "waiting", "limit": 2}
            if after:
                params["after"] = after
            body = await conversations_page(srv, token, **params)
            assert body["view"] == "waiting" and len(body["conversations"]) <= 2
            ids += [c["id"] for c in body["conversations"]]
            pages += 1
            after = body["nextCursor"]
            if after is None:
                break
        assert ids == chats[::-1] and pages == 3

        # a chat updated between two pages moves to the top; the pages after it stay in place
        first = await conversations_page(srv, token, view="all", limit=2)
        async with srv.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{chats[0]}/accept")
            assert r.status_code == 200, r.text
        rest = await conversations_page(srv, token, view="all", limit=10, after=first["nextCursor"])
        assert [c["id"] for c in rest["conversations"]] == [chats[2], chats[1]]  # 0 moved up
        assert (await conversations_page(srv, token, view="all"))["conversations"][0][
            "id"
        ] == chats[0]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "201"}, "invalid_limit"),
        (
            {
                "after": forged(
                    {"list": "live_visitors", "after": ["2026-12-07T00:00:00+00:00", "v"]}
                )
            },
            "invalid_cursor",
        ),
        (
            {"after": forged({"list": "conversations", "after": ["2026-12-07T00:00:00", "c"]})},
            "invalid_cursor",
        ),
        ({"after": forged({"list": "conversations", "after": [17, "c"]})}, "invalid_cursor"),
    ],
)
async def test_bad_conversation_paging_is_a_422(
    server: Server, params: dict[str, str], code: str
) -> None:
    [a] = await seed(server)
    async with server.http(await login(server, a)) as client:
        r = await client.get("/api/chat/conversations", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


async def test_messages_come_latest_first_and_page_back_for_agent_and_visitor(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        [b] = await seed(srv, tenant_name="Other")
        token = await login(srv, a)
        v = await new_visitor(srv, a.widget_id)
        async with srv.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{a.widget_id}/conversations",
                json={"name": "Carlos", "email": "carlos@example.com", "message": "m0"},
            )
            cid = r.json()["id"]
        async with srv.http(token) as client:
            assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
            for n in range(1, 7):
                r = await client.post(
                    f"/api/chat/conversations/{cid}/messages", json={"text": f"m{n}"}
                )
                assert r.status_code == 201, r.text
            whole = (await client.get(f"/api/chat/conversations/{cid}")).json()
            assert [m["text"] for m in whole["messages"]] == [f"m{n}" for n in range(7)]
            assert whole["earlierMessages"] is None

            texts: list[str] = []
            detail = (
                await client.get(f"/api/chat/conversations/{cid}", params={"limit": 3})
            ).json()
            texts = [m["text"] for m in detail["messages"]]
            before = detail["earlierMessages"]
            while before is not None:
                r = await client.get(
                    f"/api/chat/conversations/{cid}/messages", params={"before": before, "limit": 3}
                )
                assert r.status_code == 200, r.text
                texts = [m["text"] for m in r.json()["messages"]] + texts
                before = r.json()["earlierMessages"]
            assert texts == [f"m{n}" for n in range(7)]

            bad = await client.get(
                f"/api/chat/conversations/{cid}/messages", params={"before": "x"}
            )
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
            other_list = forged(
                {"list": "conversations", "after": ["2026-12-07T00:00:00+00:00", cid]}
            )
            wrong_list = await client.get(
                f"/api/chat/conversations/{cid}/messages", params={"before": other_list}
            )
            assert wrong_list.status_code == 422

        async with srv.http(v.token) as client:
            mine = (
                await client.get(
                    f"/api/chat/widgets/{a.widget_id}/conversation", params={"limit": 2}
                )
            ).json()
            assert [m["text"] for m in mine["messages"]] == ["m5", "m6"]
            r = await client.get(
                f"/api/chat/widgets/{a.widget_id}/conversations/{cid}/messages",
                params={"before": mine["earlierMessages"], "limit": 4},
            )
            assert [m["text"] for m in r.json()["messages"]] == ["m1", "m2", "m3", "m4"]
            assert r.json()["earlierMessages"] is not None

        stranger = await new_visitor(srv, a.widget_id)
        async with srv.http(stranger.token) as client:
            r = await client.get(f"/api/chat/widgets/{a.widget_id}/conversations/{cid}/messages")
            assert r.status_code == 404  # not this visitor's
        async with srv.http(await login(srv, b)) as client:
            r = await client.get(f"/api/chat/conversations/{cid}/messages")
            assert r.status_code == 404  # not this tenant's
