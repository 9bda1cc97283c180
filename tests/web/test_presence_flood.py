"""A visitor flood cannot take the inbox down: presence reaches an inbox socket coalesced per
tenant, at most one frame a second however many visitors arrive (issue 16, finding 1)."""

from __future__ import annotations

import math

import pytest
import trio

from tests.support import inbox_socket, login, new_visitor, open_server, seed

pytestmark = pytest.mark.regression

VISITORS = 300


async def test_three_hundred_new_visitors_reach_the_inbox_in_a_few_frames(
    database_url: str,
) -> None:
    # before: each of the 300 anonymous heartbeats was its own frame on every inbox socket
    async with open_server(database_url) as srv:
        [who] = await seed(srv)
        token = await login(srv, who)
        async with inbox_socket(srv, token) as inbox:
            inbox.unfold = False
            started = trio.current_time()
            minted: list[str] = []

            async def mint(n: int) -> None:
                for _ in range(n):
                    minted.append((await new_visitor(srv, who.widget_id)).visitor_id)

            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(mint, VISITORS // 10)

            online: set[str] = set()
            frames: list[dict[str, object]] = []
            while online != set(minted):
                frame = await inbox.next()
                if frame["type"] == "visitor_presence_update":
                    updates = [frame["data"]]
                elif frame["type"] == "visitor_presence_batch":
                    updates = frame["data"]["visitors"]
                    assert len(updates) == len({u["visitorId"] for u in updates})
                else:
                    continue
                frames.append(frame)
                online |= {u["visitorId"] for u in updates if u["online"]}
            elapsed = trio.current_time() - started

    assert len(minted) == VISITORS
    assert any(f["type"] == "visitor_presence_batch" for f in frames)
    assert len(frames) <= math.ceil(elapsed) + 1, (len(frames), elapsed)
