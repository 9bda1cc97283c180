"""``storage/aioloop.py``: trio-asyncio's loop runs the asyncio callbacks that are ready in one
Trio turn (a batch), in order, and still lets Trio's tasks run between batches and asyncio's
timers fire."""

from __future__ import annotations

import asyncio

import trio
import trio.lowlevel
import trio_asyncio
from trio_asyncio._base import BaseTrioEventLoop

import storage
from storage import aioloop


class Steps(trio.abc.Instrument):
    """Counts the Trio task steps of each task."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] = self.steps.get(task.name, 0) + 1


def test_the_patch_is_installed_by_importing_storage() -> None:
    assert storage is not None
    assert BaseTrioEventLoop._main_loop_one is aioloop._main_loop_one


async def test_ready_callbacks_run_in_order_in_batches_of_trio_turns() -> None:
    n = 10 * aioloop.BATCH
    async with trio_asyncio.open_loop() as loop:
        ran: list[int] = []
        done = trio.Event()
        for i in range(n):
            loop.call_soon(ran.append, i)
        loop.call_soon(done.set)
        steps = Steps()
        trio.lowlevel.add_instrument(steps)
        try:
            await done.wait()
        finally:
            trio.lowlevel.remove_instrument(steps)
    assert ran == list(range(n))
    loop_steps = sum(v for k, v in steps.steps.items() if "_main_loop" in k)
    # one turn per batch (and a few to wake up); the loop took one turn per callback before
    assert 0 < loop_steps <= n // aioloop.BATCH + 5, steps.steps


async def test_trio_tasks_run_between_batches_of_a_busy_asyncio_side() -> None:
    async with trio_asyncio.open_loop() as loop:
        order: list[str] = []
        stop = trio.Event()

        def busy(k: int) -> None:  # asyncio work that keeps queueing more
            order.append("a")
            if k < 20 * aioloop.BATCH:
                loop.call_soon(busy, k + 1)
            else:
                stop.set()

        async def trio_side() -> None:
            while not stop.is_set():
                order.append("t")
                await trio.lowlevel.checkpoint()

        loop.call_soon(busy, 0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio_side)
            await stop.wait()
    # the Trio task got turns all along, not only once the asyncio side was done
    first_a, last_a = order.index("a"), len(order) - 1 - order[::-1].index("a")
    assert order[first_a:last_a].count("t") >= 10


async def test_asyncio_timers_and_sleeps_still_fire() -> None:
    async def nap() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(0.05)
        return loop.time() - start

    async with trio_asyncio.open_loop():
        with trio.fail_after(5):
            waited = await trio_asyncio.aio_as_trio(nap)()
    assert waited >= 0.05
