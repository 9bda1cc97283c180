"""Shard leases seen from one process (``engine/placement.py``): the pure plan of each tick, and
the lease keeper on Trio's fake clock against a store that answers what the test says (the
keeper's PostgreSQL side is tested in ``tests/storage/test_leases.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import pytest
import trio
import trio.testing

from engine.placement import (
    SHARD_COUNT,
    LeaseRound,
    Placement,
    StaleLease,
    plan_tick,
    run_lease_keeper,
    shard_of,
)

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def round_(held: dict[int, int], share: int, released: Sequence[int] = ()) -> LeaseRound:
    return LeaseRound(held, frozenset(released), nodes=1, share=share, now=NOW)


def test_shards_are_stable_and_spread() -> None:
    assert shard_of("con_abc") == shard_of("con_abc")
    spread = {shard_of(f"con_{i}") for i in range(2000)}
    assert spread == set(range(SHARD_COUNT))


def test_a_tick_reports_gained_and_lost_shards() -> None:
    plan = plan_tick({1: 1, 2: 1}, set(), round_({2: 1, 3: 4}, share=64))
    assert plan.gained == {3} and plan.lost == {1} and plan.drain == set()


def test_shards_given_back_are_not_lost() -> None:
    plan = plan_tick({1: 1, 2: 1}, {1}, round_({2: 1}, share=64, released=[1]))
    assert plan.lost == set() and plan.gained == set()


def test_shards_above_the_share_drain_highest_first_and_only_once() -> None:
    held = {s: 1 for s in range(10)}
    plan = plan_tick(held, set(), round_(held, share=6))
    assert plan.drain == {6, 7, 8, 9}
    # on the next tick the same four are still draining: nothing more is asked
    again = plan_tick(held, {6, 7, 8, 9}, round_(held, share=6))
    assert again.drain == set()


def test_epochs_fence_only_held_shards() -> None:
    placement = Placement("n1", held={shard_of("con_a"): 7})
    assert placement.epochs(["con_a"]) == {shard_of("con_a"): 7}
    other = next(f"con_{i}" for i in range(100) if shard_of(f"con_{i}") != shard_of("con_a"))
    with pytest.raises(StaleLease):
        placement.epochs(["con_a", other])


class ScriptedStore:
    """Answers each tick with ``held`` (every shard by default), or hangs while ``hang``."""

    def __init__(self, share: int = SHARD_COUNT) -> None:
        self.share = share
        self.held: dict[int, int] = {s: 1 for s in range(SHARD_COUNT)}
        self.hang = False
        self.released: list[int] = []
        self.ticks = 0
        self.release_seen = trio.Event()

    async def keep_leases(
        self,
        node_id: str,
        *,
        ttl_seconds: float,
        release: Sequence[int],
        address: str | None,
        hold: bool,
    ) -> LeaseRound:
        self.ticks += 1
        if self.hang:
            await trio.sleep_forever()
        for shard in release:
            self.held.pop(shard, None)
        self.released.extend(release)
        if release:
            self.release_seen.set()
        return LeaseRound(dict(self.held), frozenset(release), 1, self.share, NOW)


class Calls:
    def __init__(self) -> None:
        self.gained: list[frozenset[int]] = []
        self.lost: list[tuple[float, frozenset[int]]] = []
        self.drained: list[frozenset[int]] = []
        self.changed = trio.Event()

    def handlers(self) -> dict[str, Callable[[frozenset[int]], Awaitable[None]]]:
        return {"on_gained": self.on_gained, "on_lost": self.on_lost, "on_drain": self.on_drain}

    async def on_gained(self, shards: frozenset[int]) -> None:
        self.gained.append(shards)

    async def on_lost(self, shards: frozenset[int]) -> None:
        self.lost.append((trio.current_time(), shards))
        self.changed.set()

    async def on_drain(self, shards: frozenset[int]) -> None:
        self.drained.append(shards)
        self.changed.set()


async def test_a_node_cut_off_stops_trusting_its_leases_before_they_expire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    placement = Placement("n1", ttl_seconds=8, tick_seconds=1, margin_seconds=1)
    store, calls = ScriptedStore(), Calls()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_lease_keeper, placement, store, **calls.handlers()))
        assert calls.gained == [frozenset(range(SHARD_COUNT))]
        assert placement.owns("con_a")
        await trio.sleep(3.5)
        renewed_at = trio.current_time() - 0.5  # the last tick that answered
        store.hang = True
        await calls.changed.wait()
        lost_at, shards = calls.lost[0]
        assert shards == frozenset(range(SHARD_COUNT))
        # trusted for ttl - margin after the start of the last renewal: before the database
        # lets another node take them (ttl after it)
        assert lost_at == pytest.approx(renewed_at + 7, abs=0.01)
        assert not placement.owns("con_a") and placement.held == {}
        nursery.cancel_scope.cancel()


async def test_excess_shards_are_drained_then_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    placement = Placement("n1", ttl_seconds=8, tick_seconds=1, margin_seconds=1)
    store, calls = ScriptedStore(), Calls()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_lease_keeper, placement, store, **calls.handlers()))
        store.share = 32  # a second node joined
        await calls.changed.wait()
        drained = calls.drained[0]
        assert drained == frozenset(range(32, 64))
        # while draining: held, not owned (commands go elsewhere or wait)
        assert all(not placement.owns_shard(s) for s in drained)
        await store.release_seen.wait()
        assert set(store.released) == drained
        assert set(placement.held) == set(range(32)) and placement.draining == set()
        assert calls.lost == []
        nursery.cancel_scope.cancel()
