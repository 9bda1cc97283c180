"""The subscriber's queue (engine/broker.py ``EventQueue``): a memory channel's behaviour for one
receiver, at a fraction of its memory (every open widget and inbox socket holds one)."""

from __future__ import annotations

import datetime as dt
import tracemalloc

import pytest
import trio
import trio.testing

from engine.broker import EventQueue, Subscription
from engine.values import Event


def ev(n: int) -> Event:
    return Event(
        type="message_created",
        at=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
        tenant_id="t1",
        data={},
        conversation_id="c1",
        seq=n,
    )


async def test_items_come_out_in_order_and_a_full_queue_refuses() -> None:
    q = EventQueue(3)
    assert [q.put_nowait(ev(n)) for n in range(4)] == [True, True, True, False]
    assert [(await q.receive()).seq for _ in range(3)] == [0, 1, 2]
    with pytest.raises(trio.WouldBlock):
        q.receive_nowait()


async def test_a_parked_receiver_wakes_on_put_and_on_close() -> None:
    q = EventQueue(4)
    got: list[int | None] = []

    async def receiver() -> None:
        async for item in q:
            got.append(item.seq)
        got.append(None)  # the end

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        q.put_nowait(ev(1))
        await trio.testing.wait_all_tasks_blocked()
        assert got == [1]
        q.put_nowait(ev(2))
        q.close()
        assert not q.put_nowait(ev(3))  # closed: refused
    assert got == [1, 2, None]  # what was queued before the close, then the end


async def test_a_cancelled_receiver_leaves_the_queue_usable() -> None:
    q = EventQueue(4)
    with trio.move_on_after(0.01):
        await q.receive()
    q.put_nowait(ev(7))
    assert (await q.receive()).seq == 7


async def test_receive_is_a_checkpoint_even_with_items_waiting() -> None:
    q = EventQueue(4)
    q.put_nowait(ev(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await q.receive()
    assert len(q) == 1  # not taken


async def test_two_receivers_at_once_is_an_error() -> None:
    q = EventQueue(4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await q.receive()
        q.put_nowait(ev(1))


def test_a_subscription_costs_well_under_a_kibibyte() -> None:
    """A Trio memory channel pair cost ~3.2 KiB per subscriber (two channel objects, their
    state, a deque, two ordered dicts); 20,000 open widgets hold 20,000 subscriptions."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        subs = [Subscription([("visitor", f"v{i}")], 256) for i in range(1000)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(subs)
    assert per < 600, per
