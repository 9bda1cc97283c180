"""What one tracked visitor costs the server in memory (issue 16: "memory per tracked visitor is
bounded and documented"). A live visitor is an actor (its record, mailbox, task and presence
state) until it expires; this measures the marginal bytes of one more, with ``tracemalloc``, on a
real server: the figure docs/operations.md gives ("What a visitor costs"). Memory, not time: the
bound holds on a noisy machine."""

from __future__ import annotations

import gc
import tracemalloc

import trio

from engine.visitor import KIND as VISITOR
from tests.support import new_visitor, open_server, seed

# docs/operations.md promises at most this per live visitor (measured: about 10 KiB)
PER_VISITOR_BOUND = 16 * 1024
MORE = 300


async def mint(srv: object, widget_id: str, n: int) -> None:
    async def some(k: int) -> None:
        for _ in range(k):
            await new_visitor(srv, widget_id)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(some, n // 10)


def traced() -> int:
    gc.collect()
    return sum(stat.size for stat in tracemalloc.take_snapshot().statistics("filename"))


async def test_a_live_visitor_costs_a_few_kib(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        await mint(srv, a.widget_id, 100)  # warm: caches, pools, prepared statements
        tracemalloc.start(1)
        try:
            before = traced()
            await mint(srv, a.widget_id, MORE)
            after = traced()
        finally:
            tracemalloc.stop()
        live = len(srv.services.supervisor.statistics(VISITOR))
        assert live >= 100 + MORE
        per = (after - before) / MORE
        print(f"\nmemory per live visitor: {per / 1024:.1f} KiB ({MORE} visitors)")
        assert 0 < per < PER_VISITOR_BOUND, per
