"""Group commit (and group reads): many actors' writes, one transaction and one crossing into asyncio
per round.

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

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg
import attrs
import trio

from engine import metrics
from engine.placement import StaleLease
from storage.db import Database

log = logging.getLogger("curbe.storage")

# errors that come from one write's own rows (a duplicate seq, a missing parent, a bad value; a
# shard whose lease this process lost): the round is tried again write by write. Any other error
# (the connection, the server) fails the round's writes at once rather than trying each against
# a database that is not there.
DATA_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, StaleLease)
ROUND_SHIELD_SECONDS = 30.0  # a cancelled caller waits this long at most for its round's outcome
DRAIN_SECONDS = 10.0  # on close, what is pending gets this long to be stored

T = TypeVar("T")

WriteMany = Callable[[asyncpg.Connection, list[T]], Awaitable[None]]
WriteOne = Callable[[asyncpg.Connection, T], Awaitable[None]]


@attrs.define(eq=False)
class _Slot(Generic[T]):
    item: T
    done: trio.Event = attrs.Factory(trio.Event)
    error: BaseException | None = None
    alone: bool = False  # the writer stopped before it stored this: the caller writes it alone
    taken: bool = False  # in a round (it can no longer be withdrawn)
    stored: bool = False  # committed by a round
    waited: bool = True  # False: offered, nobody waits (a failure is logged)


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
        actor_of: Callable[[T], str],
        max_batch: int = 500,
    ) -> None:
        self.db = db
        self.name = name
        self.write_many = write_many
        self.write_one = write_one
        self.actor_of = actor_of  # whose write it is: the lease it is fenced with
        self.max_batch = max_batch
        self.running = False
        self.closing = False
        self.rounds = 0
        self.written = 0
        self.largest = 0
        self.abandoned = 0  # offered writes the writer stopped before storing
        self._pending: list[_Slot[T]] = []
        self._wake = trio.Event()

    async def submit(self, item: T) -> None:
        if not self.running or self.closing:
            await self._alone(item)
            return
        slot = _Slot(item)
        self._pending.append(slot)
        self._wake.set()
        try:
            await slot.done.wait()
        except trio.Cancelled:
            if not slot.taken:  # not in a round yet: withdrawn, so it is never stored
                self._pending.remove(slot)
                raise
            # in a round already: its outcome is known shortly; wait for it, so that whoever
            # starts again after this cancellation reads what was stored (a bounded wait)
            with trio.CancelScope(shield=True), trio.move_on_after(ROUND_SHIELD_SECONDS):
                await slot.done.wait()
            raise
        if slot.alone:
            await self._alone(item)
        elif slot.error is not None:
            raise slot.error

    async def _alone(self, item: T) -> None:
        await self.db.run_fenced([self.actor_of(item)], self.write_one, item)

    def offer(self, item: T) -> bool:
        """Queue a write nobody waits for (soft state: presence); False when the writer is not
        running, so the caller writes it itself. A failure is logged, not raised."""
        if not self.running or self.closing:
            return False
        self._pending.append(_Slot(item, waited=False))
        self._wake.set()
        return True

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
            "abandoned": self.abandoned,
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
                for slot in batch:
                    slot.taken = True
                await self._round(batch)
                for slot in batch:
                    slot.done.set()
                batch = []
        finally:
            self.running = False
            for slot in [*batch, *self._pending]:
                if slot.done.is_set() or slot.stored:
                    slot.done.set()
                    continue
                slot.alone = True  # not known to be stored by us: its caller writes it alone
                slot.done.set()
                if not slot.waited:
                    self.abandoned += 1
            self._pending.clear()

    async def _round(self, batch: list[_Slot[T]]) -> None:
        items = [slot.item for slot in batch]
        self.rounds += 1
        self.largest = max(self.largest, len(items))
        metrics.child(metrics.GROUP_ROUND_SIZE, self.name).observe(len(items))
        try:
            await self.db.run_fenced({self.actor_of(i) for i in items}, self.write_many, items)
        except DATA_ERRORS:  # a write's own data: each again, alone, to find whose it was
            pass
        except Exception as exc:  # the database, not the data: the whole round failed
            for slot in batch:
                slot.error = exc
            log.warning("a group-commit round failed", extra={"writer": self.name}, exc_info=exc)
            return
        else:
            for slot in batch:
                slot.stored = True
            self.written += len(items)
            return
        for slot in batch:
            try:
                await self._alone(slot.item)
                slot.stored = True
                self.written += 1
            except Exception as exc:  # the caller's to raise
                slot.error = exc
                if not slot.waited:
                    log.warning(
                        "an offered write failed", extra={"writer": self.name}, exc_info=exc
                    )


# --- reads -------------------------------------------------------------------------------------

K = TypeVar("K")
V = TypeVar("V")

ReadMany = Callable[[asyncpg.Connection, list[K]], Awaitable[dict[K, V]]]


@attrs.define(eq=False)
class _Read(Generic[K, V]):
    key: K
    done: trio.Event = attrs.Factory(trio.Event)
    value: V | None = None
    error: BaseException | None = None
    alone: bool = False  # the reader stopped before it read this: the caller reads it alone


class GroupReader(Generic[K, V]):
    """Reads of one kind by key (``name``), merged into rounds by :meth:`run`: every read waiting
    at that moment is answered by one statement (``= ANY($1)``) and one crossing into asyncio.

    For the reads every actor makes when it starts (a visitor's session): after a restart, or
    when thousands of new visitors arrive at once, they come in thousands, and one trip each was
    the limit. A read has no side effect, so a failed round fails its reads, and a cancelled
    caller simply leaves (its key may still be read, and the answer dropped).
    """

    def __init__(
        self, db: Database, name: str, read_many: ReadMany[K, V], *, max_batch: int = 500
    ) -> None:
        self.db = db
        self.name = name
        self.read_many = read_many
        self.max_batch = max_batch
        self.running = False
        self.closing = False
        self.rounds = 0
        self.read = 0
        self.largest = 0
        self._pending: list[_Read[K, V]] = []
        self._wake = trio.Event()

    async def fetch(self, key: K) -> V | None:
        """The value stored under ``key``, or None when there is none."""
        if not self.running or self.closing:
            return (await self.db.run(self.read_many, [key])).get(key)
        slot: _Read[K, V] = _Read(key)
        self._pending.append(slot)
        self._wake.set()
        try:
            await slot.done.wait()
        except trio.Cancelled:
            if slot in self._pending:
                self._pending.remove(slot)
            raise
        if slot.alone:
            return (await self.db.run(self.read_many, [key])).get(key)
        if slot.error is not None:
            raise slot.error
        return slot.value

    def close(self) -> None:
        """Stop once nothing is pending (reads asked from now on go alone)."""
        self.closing = True
        self._wake.set()

    def describe(self) -> dict[str, int]:
        return {
            "pending": len(self._pending),
            "rounds": self.rounds,
            "read": self.read,
            "largest_round": self.largest,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        batch: list[_Read[K, V]] = []
        try:
            while True:
                while not self._pending:
                    if self.closing:
                        return
                    await self._wake.wait()
                    self._wake = trio.Event()
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                keys = list(dict.fromkeys(slot.key for slot in batch))
                self.rounds += 1
                self.largest = max(self.largest, len(keys))
                metrics.child(metrics.GROUP_ROUND_SIZE, self.name).observe(len(keys))
                try:
                    found = await self.db.run(self.read_many, keys)
                except Exception as exc:  # the round's reads fail with it; the reader goes on
                    log.warning("a group read failed", extra={"reader": self.name}, exc_info=exc)
                    for slot in batch:
                        slot.error = exc
                else:
                    self.read += len(keys)
                    for slot in batch:
                        slot.value = found.get(slot.key)
                for slot in batch:
                    slot.done.set()
                batch = []
        finally:
            self.running = False
            for slot in [*batch, *self._pending]:
                if not slot.done.is_set():
                    slot.alone = True  # not answered by us: its caller reads it alone
                    slot.done.set()
            self._pending.clear()
