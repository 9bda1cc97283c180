"""Which process owns which actor, when several serve one database (``docs/architecture.md``,
"Several processes").

Every actor id falls in one of :data:`SHARD_COUNT` shards (:func:`shard_of`: crc32 of the id).
A process owns every actor of a shard while it holds the shard's **lease**, a row of
``shard_leases`` with an owner, an ``epoch`` and an expiry set by PostgreSQL's clock. The
:func:`run_lease_keeper` service renews every lease of its process in one transaction per tick,
takes free or expired shards up to its fair share of the live nodes, and gives back (after
draining their actors) the shards it holds above that share when another node joins.

* **Fenced.** Every write an actor makes checks, inside its own transaction, that this process
  still holds its shard with the same epoch (``storage/leases.py``); a takeover bumps the epoch
  and waits for such a commit to end. A stale owner's commit raises :class:`StaleLease` and
  changes nothing, so two owners never both commit.
* **Bounded.** A process trusts its leases until ``ttl - margin`` seconds after the start of its
  last successful renewal (its own clock measures only that interval). Past that, cut off from
  the database, it stops serving their actors; the database lets another process take them
  ``ttl`` seconds after the last renewal, and that one rehydrates them from PostgreSQL (the
  stored wait timers included). A dead owner's actors are back within ``ttl + tick`` seconds.

The pure part (:class:`Placement`, :func:`plan_tick`) has no I/O; the keeper's storage is the
:class:`LeaseStore` protocol, implemented on PostgreSQL by :mod:`storage.leases`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

import attrs
import trio

from engine import metrics

log = logging.getLogger("curbe.placement")

SHARD_COUNT = 64  # the rows of shard_leases (storage/migrations/007_cluster.sql)


def shard_of(actor_id: str) -> int:
    """The shard of an actor id (whatever its kind: ids carry their kind's prefix)."""
    return zlib.crc32(actor_id.encode()) % SHARD_COUNT


class StaleLease(Exception):
    """This process no longer holds the lease of a shard it writes to: the write is refused."""

    def __init__(self, shards: Iterable[int]) -> None:
        self.shards = sorted(shards)
        super().__init__(f"this process no longer owns shard(s) {self.shards}")


@attrs.frozen
class LeaseRound:
    """What one tick of a lease keeper found in the database."""

    held: dict[int, int]  # shard -> epoch: every lease this node holds after the tick
    released: frozenset[int]  # shards given back in this tick
    nodes: int  # live nodes, this one included
    share: int  # how many shards this node aims to hold
    now: dt.datetime  # the database's clock


class LeaseStore(Protocol):
    async def keep_leases(
        self,
        node_id: str,
        *,
        ttl_seconds: float,
        release: Sequence[int],
        address: str | None,
        hold: bool,
    ) -> LeaseRound:
        """One tick: be seen, give back ``release``, renew the rest, take up to the share."""
        ...


@attrs.define
class Placement:
    """This process's view of its leases: read by the supervisor on every command (is this
    actor mine?) and by the store on every write (which epoch do I hold?)."""

    node_id: str
    ttl_seconds: float = 8.0
    tick_seconds: float = 1.0
    margin_seconds: float = 1.0
    held: dict[int, int] = attrs.field(factory=dict)
    draining: set[int] = attrs.field(factory=set)  # held, being given back: no new commands
    trusted_until: float = -math.inf  # Trio time: past it, the leases are not trusted
    takeovers: int = 0  # shards taken (at start, after a node died, when one left)
    losses: int = 0  # shards lost without giving them back (late renewals, cut off)

    def owns_shard(self, shard: int) -> bool:
        return (
            shard in self.held
            and shard not in self.draining
            and trio.current_time() < self.trusted_until
        )

    def owns(self, actor_id: str) -> bool:
        return self.owns_shard(shard_of(actor_id))

    def epochs(self, actor_ids: Iterable[str]) -> dict[int, int]:
        """The epochs a write to these actors is fenced with (:class:`StaleLease` for a shard
        this process does not hold)."""
        shards = {shard_of(a) for a in actor_ids}
        missing = [s for s in shards if s not in self.held]
        if missing:
            raise StaleLease(missing)
        return {s: self.held[s] for s in shards}

    def describe(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "shards": sorted(self.held),
            "draining": sorted(self.draining),
            "trusted_for_seconds": max(0.0, self.trusted_until - trio.current_time()),
            "takeovers": self.takeovers,
            "losses": self.losses,
        }


@attrs.frozen
class TickPlan:
    """What to do after a successful tick (pure: :func:`plan_tick`)."""

    gained: frozenset[int]  # now held, not before: rehydrate their stored timers
    lost: frozenset[int]  # held before, neither held now nor given back: stop their actors
    drain: frozenset[int]  # held above the share: drain, then give back on a later tick


def plan_tick(before: Iterable[int], draining: Iterable[int], result: LeaseRound) -> TickPlan:
    held_before = set(before)
    now_held = set(result.held)
    draining_now = set(draining) - result.released
    gained = now_held - held_before
    lost = held_before - now_held - result.released
    excess = len(now_held) - result.share - len(draining_now & now_held)
    drain: set[int] = set()
    if excess > 0:  # the highest shards go first, so that every node picks the same way
        candidates = sorted(now_held - draining_now, reverse=True)
        drain = set(candidates[:excess])
    return TickPlan(frozenset(gained), frozenset(lost), frozenset(drain))


Shards = frozenset[int]


async def run_lease_keeper(
    placement: Placement,
    store: LeaseStore,
    *,
    on_gained: Callable[[Shards], Awaitable[None]],
    on_lost: Callable[[Shards], Awaitable[None]],
    on_drain: Callable[[Shards], Awaitable[None]],
    address: str | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep this process's leases for ever (a service; Trio). Reports ``started`` after the
    first tick, successful or not (a node cut off at start serves nothing until it is back).

    ``on_gained`` re-arms the stored timers of new shards; ``on_lost`` stops the actors of shards
    this process no longer holds; ``on_drain`` stops (gracefully) the actors of shards it gives
    back, which are released on the tick after it returns.
    """
    ready: set[int] = set()  # drained: released on the next tick
    started = False

    async def lapse_if_untrusted() -> None:
        if not placement.held or trio.current_time() < placement.trusted_until:
            return
        lapsed = frozenset(placement.held)
        placement.losses += len(lapsed)
        placement.held = {}
        placement.draining.clear()
        ready.clear()
        metrics.SHARDS_HELD.set(0)
        log.error(
            "leases not renewed in time: this node stops serving their actors",
            extra={"shards": sorted(lapsed)},
        )
        await on_lost(lapsed)

    async with trio.open_nursery() as nursery:
        while True:
            t0 = trio.current_time()
            # a renewal that hangs is given up when the leases stop being trusted, not later
            deadline = t0 + placement.ttl_seconds - placement.margin_seconds
            if placement.held:
                deadline = min(deadline, placement.trusted_until)
            try:
                with trio.fail_at(deadline):
                    result = await store.keep_leases(
                        placement.node_id,
                        ttl_seconds=placement.ttl_seconds,
                        release=sorted(ready),
                        address=address,
                        hold=True,
                    )
            except (Exception, trio.TooSlowError) as exc:
                metrics.LEASE_TICKS.labels("failed").inc()
                log.warning("lease renewal failed", extra={"node_id": placement.node_id},
                            exc_info=exc)  # fmt: skip
            else:
                metrics.LEASE_TICKS.labels("ok").inc()
                plan = plan_tick(placement.held, placement.draining, result)
                ready -= result.released
                placement.draining -= result.released
                placement.held = dict(result.held)
                placement.trusted_until = t0 + placement.ttl_seconds - placement.margin_seconds
                if plan.lost:
                    placement.losses += len(plan.lost)
                    log.warning("shards lost to another node", extra={"shards": sorted(plan.lost)})
                    await on_lost(plan.lost)
                if plan.gained:
                    placement.takeovers += len(plan.gained)
                    metrics.LEASE_TAKEOVERS.inc(len(plan.gained))
                    log.info("shards taken", extra={"shards": sorted(plan.gained)})
                    await on_gained(plan.gained)
                if plan.drain:
                    placement.draining |= plan.drain
                    nursery.start_soon(_drain, plan.drain, on_drain, ready)
                metrics.SHARDS_HELD.set(len(placement.held))
            if not started:
                started = True
                task_status.started()
            await lapse_if_untrusted()
            # sleep until the next tick, waking when the leases stop being trusted
            while trio.current_time() < t0 + placement.tick_seconds:
                wake = t0 + placement.tick_seconds
                if placement.held:
                    wake = min(wake, placement.trusted_until)
                await trio.sleep_until(wake)
                await lapse_if_untrusted()


async def _drain(
    shards: Shards, on_drain: Callable[[Shards], Awaitable[None]], ready: set[int]
) -> None:
    try:
        await on_drain(shards)
    finally:
        ready.update(shards)


async def release_all(placement: Placement, store: LeaseStore) -> None:
    """Give every lease back at once (a graceful stop, after the actors stopped; Trio)."""
    with trio.move_on_after(placement.ttl_seconds):
        await store.keep_leases(
            placement.node_id,
            ttl_seconds=placement.ttl_seconds,
            release=sorted(placement.held),
            address=None,
            hold=False,
        )
    placement.held = {}
