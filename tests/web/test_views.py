"""The inbox's views have one rule each, on the server (``storage/queries.py`` VIEW_RULES): a
view's list, its count and every conversation's ``views`` agree, for each agent.

The inbox page holds no copy of the rules: it places a conversation by the ``views`` the server
sends with it (``web/static/inbox.js``), so this agreement is what the agent sees.
"""

from __future__ import annotations

from typing import Any

from storage.queries import VIEWS
from tests.support import Server, login, new_visitor, seed
from tests.web.test_inbox_api import counts, get, start_chat


async def placement(server: Server, token: str) -> dict[str, set[str]]:
    """For one agent: conversation id -> the views whose list holds it."""
    held: dict[str, set[str]] = {}
    for view in VIEWS:
        body = await get(server, token, f"/api/chat/conversations?view={view}")
        for row in body["conversations"]:
            held.setdefault(row["id"], set()).add(view)
            assert view in row["views"], (view, row["id"], row["views"])
    return held


async def test_lists_counts_and_each_conversations_views_agree_for_every_agent(
    server: Server,
) -> None:
    a, b = await seed(server, agents=2)
    ta, tb = await login(server, a), await login(server, b)
    visitors = [await new_visitor(server, a.widget_id) for _ in range(4)]
    waiting, mine, solved, read = [
        (await start_chat(server, v, f"hola {n}"))["id"] for n, v in enumerate(visitors)
    ]
    async with server.http(ta) as client:
        for cid, action in ((mine, "accept"), (solved, "solve"), (read, "accept")):
            assert (await client.post(f"/api/chat/conversations/{cid}/{action}")).status_code == 200
        assert (await client.post(f"/api/chat/conversations/{read}/read")).status_code == 200
    async with server.http(visitors[1].token) as client:  # a visitor writes again in A's chat
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/conversations/{mine}/messages", json={"text": "¿?"}
        )
        assert r.status_code == 201, r.text

    expected: dict[str, dict[str, set[str]]] = {
        ta: {
            waiting: {"unread", "unassigned", "waiting", "all"},
            mine: {"open", "unread", "assigned", "all"},
            solved: {"solved", "all"},
            read: {"open", "assigned", "all"},
        },
        tb: {  # unread and assigned are per agent
            waiting: {"unread", "unassigned", "waiting", "all"},
            mine: {"open", "unread", "all"},
            solved: {"solved", "all"},
            read: {"open", "unread", "all"},
        },
    }
    for token, want in expected.items():
        held = await placement(server, token)
        assert held == want
        got = await counts(server, token)
        for view in VIEWS:
            assert got[view] == sum(view in v for v in held.values()), view
        for cid, views in want.items():
            detail: dict[str, Any] = await get(server, token, f"/api/chat/conversations/{cid}")
            assert set(detail["views"]) == views, cid
            assert detail["views"] == [v for v in VIEWS if v in views]  # in VIEWS order
