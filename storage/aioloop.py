"""trio-asyncio's loop, made to run the asyncio callbacks that are ready in one Trio turn.

asyncpg and nats-py run on asyncio inside Trio through trio-asyncio (``pyproject.toml`` pins
0.16.0). Its loop (``BaseTrioEventLoop._main_loop_one``) takes one asyncio callback per Trio turn:
each callback (one step of an asyncio task, a socket's read, a future's done callback) costs a
pass through Trio's scheduler, and, whenever an asyncio timer is pending, also a Trio cancel
scope with a deadline. A timer is pending all the time once NATS is connected (nats-py's ping
every two minutes; every request's ``wait_for``), so under ``--workers`` every asyncio callback
of the process paid for both: the profile of the bus alone (``python -m bench.hop``) had a fifth
of the publisher's samples in Trio's deadline and cancel-scope code.

:func:`install` replaces that one method with one that first runs, without waiting and without
a cancel scope, up to :data:`BATCH` callbacks that are already queued, then yields to Trio once
(``checkpoint``), so Trio's own tasks still get their turn between batches. With nothing queued
it waits exactly as the original does (for the next callback or the next timer). Callbacks run
in the order they were queued, as before; a timer that falls due is run at the start of the next
turn, as before.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib.metadata
import logging
import math
from typing import Any

import trio
from sniffio import thread_local as sniffio_library
from trio_asyncio._base import BaseTrioEventLoop
from trio_asyncio._handles import AsyncHandle

log = logging.getLogger("curbe.storage")

VERSION = "0.16.0"  # the trio-asyncio this replaces a method of
BATCH = 64  # asyncio callbacks run in one Trio turn at most

_installed = False


async def _main_loop_one(self: Any, no_wait: bool = False) -> None:
    obj = None
    timeout = math.inf
    if self._timers:
        timeout = self._timers[0]._when - self.time()
        if timeout <= 0:
            obj = heapq.heappop(self._timers)
    if obj is None:
        if no_wait:
            obj = self._q_recv.receive_nowait()
        else:
            try:  # the common case under load: something is queued, no wait and no scope
                obj = self._q_recv.receive_nowait()
            except trio.WouldBlock:
                if timeout == math.inf:
                    obj = await self._q_recv.receive()
                else:
                    with trio.move_on_after(timeout):
                        obj = await self._q_recv.receive()
                    if obj is None:  # a timer is due: the next turn runs it
                        return
            else:
                await _run_ready(self, obj)
                await trio.lowlevel.checkpoint()
                return
        if isinstance(obj, asyncio.TimerHandle):
            heapq.heappush(self._timers, obj)
            return
    await _run(self, obj)


async def _run_ready(self: Any, first: Any) -> None:
    """``first`` and what is queued behind it, :data:`BATCH` at most, in order."""
    obj = first
    for taken in range(1, BATCH + 1):
        if isinstance(obj, asyncio.TimerHandle):
            heapq.heappush(self._timers, obj)
        else:
            await _run(self, obj)
        if taken == BATCH or self._stopped.is_set():
            return
        try:
            obj = self._q_recv.receive_nowait()
        except trio.WouldBlock:
            return


async def _run(self: Any, obj: Any) -> None:
    """One queued asyncio callback, as trio-asyncio runs it."""
    if isinstance(obj, AsyncHandle):  # a Trio task started from asyncio
        obj._context.run(self._nursery.start_soon, obj._run, name=obj._callback)
        await obj._started.wait()
    elif not obj._cancelled:
        previous, sniffio_library.name = sniffio_library.name, "asyncio"
        try:
            obj._run()
        finally:
            sniffio_library.name = previous


def install() -> bool:
    """Replace the method once per process (False, with a warning, for another trio-asyncio:
    its own method then runs, slower but correct)."""
    global _installed
    if _installed:
        return True
    version = importlib.metadata.version("trio-asyncio")
    if version != VERSION:
        log.warning(
            "trio-asyncio is not the version its loop patch was written for; not patched",
            extra={"version": version, "expected": VERSION},
        )
        return False
    BaseTrioEventLoop._main_loop_one = _main_loop_one
    _installed = True
    return True
