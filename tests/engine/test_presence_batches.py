"""Visitor presence coalesced per tenant (engine/broker.py ``PresenceBatcher``): a flood of
visitors costs an inbox socket at most one presence frame a second. On Trio's fake clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from engine.broker import Broker, PresenceBatcher, Subscription
from engine.clock import TrioClock
from engine.values import Event, EventType


def presence(tenant: str, visitor: str, url: str = "https://shop.example.com/") -> Event:
    return Event(
        type=EventType.VISITOR_PRESENCE_UPDATE,
        at=TrioClock().now(),
        tenant_id=tenant,
        data={"visitorId": visitor, "currentUrl": url, "online": True},
    )


@asynccontextmanager
async def batching() -> AsyncIterator[tuple[Broker, PresenceBatcher]]:
    broker = Broker()
    broker.batcher = batcher = PresenceBatcher(broker, TrioClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        yield broker, batcher
        nursery.cancel_scope.cancel()


def frames(sub: Subscription) -> list[tuple[float, Event]]:
    out = []
    while len(sub.receive):
        out.append((trio.current_time(), sub.receive.receive_nowait()))
    return out


def visitors_of(event: Event) -> list[Any]:
    if event.type is EventType.VISITOR_PRESENCE_BATCH:
        return [v["visitorId"] for v in event.data["visitors"]]
    return [event.data["visitorId"]]


async def test_the_first_change_goes_at_once_the_rest_of_the_second_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, batcher):
        with broker.subscribe(("tenant", "t1"), buffer=10_000) as sub:
            start = trio.current_time()
            for n in range(300):
                broker.publish(presence("t1", f"v{n}"))
            [(_, first)] = frames(sub)
            assert first.type is EventType.VISITOR_PRESENCE_UPDATE  # at once, as itself
            assert first.data["visitorId"] == "v0"

            batch = await sub.receive.receive()
            assert trio.current_time() - start == batcher.window  # when the second is up
            assert batch.type is EventType.VISITOR_PRESENCE_BATCH
            assert visitors_of(batch) == [f"v{n}" for n in range(1, 300)]
            assert batch.tenant_id == "t1"
            assert len(sub.receive) == 0
            assert batcher.describe()["batches_sent"] == 1


async def test_a_visitor_changing_twice_in_the_window_is_sent_once_with_its_latest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with broker.subscribe(("tenant", "t1")) as sub:
            broker.publish(presence("t1", "v0"))
            broker.publish(presence("t1", "a", "https://shop.example.com/1"))
            broker.publish(presence("t1", "b"))
            broker.publish(presence("t1", "a", "https://shop.example.com/2"))
            frames(sub)  # v0, at once
            batch = await sub.receive.receive()
            assert visitors_of(batch) == ["b", "a"]  # in the order they last changed
            assert batch.data["visitors"][1]["currentUrl"] == "https://shop.example.com/2"


async def test_one_held_update_goes_out_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with broker.subscribe(("tenant", "t1")) as sub:
            broker.publish(presence("t1", "a"))
            held = presence("t1", "b")
            broker.publish(held)
            frames(sub)
            assert await sub.receive.receive() is held


async def test_a_steady_flood_gets_one_frame_a_second_and_loses_no_visitor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, batcher):
        with broker.subscribe(("tenant", "t1"), buffer=100_000) as sub:
            got: list[tuple[float, Event]] = []
            sent = 0
            for _ in range(1000):  # 10 s of 100 new visitors a second
                broker.publish(presence("t1", f"v{sent}"))
                sent += 1
                await trio.sleep(0.01)
                got += frames(sub)
            await trio.sleep(batcher.window)
            got += frames(sub)
            times = [at for at, _ in got]
            # read every 10 ms: a frame is seen up to one read after it went
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert min(gaps) > batcher.window - 0.011, gaps
            assert len(got) <= 11
            assert sorted(v for _, e in got for v in visitors_of(e)) == sorted(
                f"v{n}" for n in range(sent)
            )


async def test_tenants_have_their_own_windows_and_other_events_are_never_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with (
            broker.subscribe(("tenant", "t1")) as one,
            broker.subscribe(("tenant", "t2")) as two,
        ):
            broker.publish(presence("t1", "a"))
            broker.publish(presence("t2", "b"))  # t2's first: at once, t1's window is not its
            broker.publish(presence("t1", "c"))  # held
            message = Event(
                type=EventType.MESSAGE_CREATED,
                at=TrioClock().now(),
                tenant_id="t1",
                data={},
                conversation_id="c1",
                seq=1,
            )
            broker.publish(message)
            assert [e.data.get("visitorId") for _, e in frames(one)] == ["a", None]
            assert [e.data["visitorId"] for _, e in frames(two)] == ["b"]
            assert (await one.receive.receive()).data["visitorId"] == "c"


async def test_without_a_batcher_every_update_goes_at_once() -> None:
    broker = Broker()  # what the engine's own tests and the bench's hop use
    with broker.subscribe(("tenant", "t1")) as sub:
        for n in range(5):
            broker.publish(presence("t1", f"v{n}"))
        assert len(sub.receive) == 5


async def test_updates_from_another_process_are_batched_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with broker.subscribe(("tenant", "t1")) as sub:
            for n in range(3):
                broker.deliver(presence("t1", f"v{n}"))  # from the bus
            assert len(frames(sub)) == 1
            assert visitors_of(await sub.receive.receive()) == ["v1", "v2"]
