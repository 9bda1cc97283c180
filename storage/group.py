"""Group commit: many actors' writes, one transaction and one crossing into asyncio per round.

Every conversation and visitor actor writes its own rows, and until now each write was its own
trip: a crossing from Trio into asyncio, a pooled connection, BEGIN, the statements, COMMIT. Under
load those trips, not PostgreSQL, were the limit (``docs/benchmarks.md``). A :class:`GroupWriter`
is the one task that takes every write waiting at that moment and stores them in one transaction
with one statement per table (arrays through ``unnest``); each caller is answered only after that
transaction committed, so "acknowledged after commit" holds exactly as before.

* No timer: a round starts as soon as the previous one ended, so one lone write waits for
  nothing, and under load the rounds grow by themselves.
* One write's trouble is not its neighbours': when a round fails, each of its writes is tried
  again alone, in its own transaction, and only the failing one gets the error.
* The writer is the server's, not an actor's: it outlives the supervisor (actors flush on their
  way out), and when it is gone (cancelled) a caller writes alone, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg
import attrs
import trio

from engine import metrics
from storage.db import Database

T = TypeVar("T")

WriteMany = Callable[[asyncpg.Connection, list[T]], Awaitable[None]]
WriteOne = Callable[[asyncpg.Connection, T], Awaitable[None]]


@attrs.define(eq=False)
class _Slot(Generic[T]):
    item: T
    done: trio.Event = attrs.Factory(trio.Event)
    error: BaseException | None = None
    alone: bool = False  # the writer stopped before it stored this: the caller writes it alone


class GroupWriter(Generic[T]):
    """Writes of one kind (``name``), merged into rounds by :meth:`run`; :meth:`submit` returns
    once its write is committed (or raises what the write alone raised)."""

    def __init__(
        self,
        db: Database,
        name: str,
        write_many: WriteMany[T],
        write_one: WriteOne[T],
        *,
        max_batch: int = 500,
    ) -> None:
        self.db = db
        self.name = name
        self.write_many = write_many
        self.write_one = write_one
        self.max_batch = max_batch
        self.running = False
        self.closing = False
        self.rounds = 0
        self.written = 0
        self.largest = 0
        self._pending: list[_Slot[T]] = []
        self._wake = trio.Event()

    async def submit(self, item: T) -> None:
        if not self.running or self.closing:
            await self.db.run(self.write_one, item)
            return
        slot = _Slot(item)
        self._pending.append(slot)
        self._wake.set()
        await slot.done.wait()
        if slot.alone:
            await self.db.run(self.write_one, item)
        elif slot.error is not None:
            raise slot.error

    def close(self) -> None:
        """Stop once nothing is pending (writes submitted from now on are written alone)."""
        self.closing = True
        self._wake.set()

    def describe(self) -> dict[str, int]:
        return {
            "pending": len(self._pending),
            "rounds": self.rounds,
            "written": self.written,
            "largest_round": self.largest,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        batch: list[_Slot[T]] = []
        try:
            while True:
                while not self._pending:
                    if self.closing:
                        return
                    await self._wake.wait()
                    self._wake = trio.Event()
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._round(batch)
                for slot in batch:
                    slot.done.set()
                batch = []
        finally:
            self.running = False
            for slot in [*batch, *self._pending]:  # not stored by us: each caller writes alone
                slot.alone = True
                slot.done.set()
            self._pending.clear()

    async def _round(self, batch: list[_Slot[T]]) -> None:
        items = [slot.item for slot in batch]
        self.rounds += 1
        self.largest = max(self.largest, len(items))
        metrics.GROUP_ROUND_SIZE.labels(self.name).observe(len(items))
        try:
            await self.db.run(self.write_many, items)
            self.written += len(items)
            return
        except Exception:
            pass
        for slot in batch:
            try:
                await self.db.run(self.write_one, slot.item)
                self.written += 1
            except Exception as exc:
                slot.error = exc
