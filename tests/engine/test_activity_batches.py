"""Typing hints and read marks coalesced on their way to a tenant's inboxes (engine/broker.py
``ActivityBatcher``): a typing storm costs an inbox socket at most four frames a second, the
visitor's own stream is never held, and a held ``on`` whose sender's message came is dropped.
On Trio's fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from engine.broker import ActivityBatcher, Broker, Subscription
from engine.clock import TrioClock
from engine.values import Event, EventType


def typing(tenant: str, cid: str, sender: str, state: str = "on", kind: str = "visitor") -> Event:
    return Event(
        type=EventType.TYPING,
        at=TrioClock().now(),
        tenant_id=tenant,
        conversation_id=cid,
        visitor_id="v-" + cid if kind == "agent" else None,  # an agent's reaches the visitor
        data={"senderType": kind, "senderId": sender, "state": state, "expiresInSeconds": 12},
    )


def read(tenant: str, cid: str, seq: int, agent: str | None = None) -> Event:
    return Event(
        type=EventType.CONVERSATION_READ,
        at=TrioClock().now(),
        tenant_id=tenant,
        conversation_id=cid,
        visitor_id="v-" + cid,  # to the visitor: "Seen", or its other tabs
        data={
            "agentId": agent,
            "conversationId": cid,
            "lastReadSeq": seq,
            "reader": "agent" if agent else "visitor",
        },
    )


def message(tenant: str, cid: str, sender: str, seq: int) -> Event:
    return Event(
        type=EventType.MESSAGE_CREATED,
        at=TrioClock().now(),
        tenant_id=tenant,
        conversation_id=cid,
        seq=seq,
        data={"message": {"senderType": "visitor", "senderId": sender, "seq": seq}},
    )


@asynccontextmanager
async def batching() -> AsyncIterator[tuple[Broker, ActivityBatcher]]:
    broker = Broker()
    broker.activity = activity = ActivityBatcher(broker, TrioClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(activity.run)
        yield broker, activity
        nursery.cancel_scope.cancel()


def frames(sub: Subscription) -> list[Event]:
    out = []
    while len(sub.receive):
        out.append(sub.receive.receive_nowait())
    return out


def unfolded(events: list[Event]) -> list[dict[str, Any]]:
    """What inbox.js applies: a batch as the events it carries."""
    out = []
    for e in events:
        if e.type is EventType.ACTIVITY_BATCH:
            out += e.data["events"]
        else:
            out.append(e.to_wire())
    return out


async def test_a_typing_storm_reaches_an_inbox_as_four_frames_a_second_with_every_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, activity):
        with broker.subscribe(("tenant", "t1"), buffer=100_000) as inbox:
            got: list[Event] = []
            for tick in range(100):  # 2 s: 50 visitors typing in their chats every 20 ms
                for n in range(50):
                    broker.publish(typing("t1", f"c{n}", f"v{n}", "on" if tick % 2 else "off"))
                await trio.sleep(0.02)
                got += frames(inbox)
            await trio.sleep(activity.window)
            got += frames(inbox)
            assert len(got) <= 2 / activity.window + 2  # not 5,000
            assert activity.describe()["batches_sent"] >= 7
            # each sender's last word arrives, the latest of each batch in the order they came
            last: dict[str, str] = {}
            for e in unfolded(got):
                last[e["data"]["senderId"]] = e["data"]["state"]
            assert last == {f"v{n}": "on" for n in range(50)}


async def test_the_first_goes_at_once_the_rest_when_the_window_is_up_latest_per_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, activity):
        with broker.subscribe(("tenant", "t1")) as inbox:
            start = trio.current_time()
            first = typing("t1", "c1", "v1")
            broker.publish(first)
            assert frames(inbox) == [first]  # a lone hint: no wait
            broker.publish(read("t1", "c1", 3))
            broker.publish(typing("t1", "c2", "v2"))
            broker.publish(read("t1", "c1", 5))  # the same reader: only its latest
            broker.publish(read("t1", "c1", 5, agent="a1"))  # another reader: its own
            assert frames(inbox) == []
            batch = await inbox.receive.receive()
            assert trio.current_time() - start == activity.window
            assert batch.type is EventType.ACTIVITY_BATCH and "conversationId" not in batch.data
            assert [(e["type"], e["data"].get("lastReadSeq")) for e in batch.data["events"]] == [
                ("typing", None),
                ("conversation_read", 5),
                ("conversation_read", 5),
            ]
            assert batch.to_wire()["data"]["events"][1]["data"]["reader"] == "visitor"


async def test_the_visitors_own_stream_is_never_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with (
            broker.subscribe(("tenant", "t1")) as inbox,
            broker.subscribe(("visitor", "v-c1")) as widget,
        ):
            broker.publish(typing("t1", "c9", "v9"))  # opens the tenant's window
            agent_typing = typing("t1", "c1", "a1", kind="agent")
            seen = read("t1", "c1", 4, agent="a1")
            broker.publish(agent_typing)
            broker.publish(seen)
            assert frames(widget) == [agent_typing, seen]  # at once, one each
            assert len(frames(inbox)) == 1  # only the first; these two wait for the window
            batch = await inbox.receive.receive()
            assert [e["type"] for e in batch.data["events"]] == ["typing", "conversation_read"]
            assert frames(widget) == []  # and the widget does not get them twice


async def test_a_held_typing_hint_is_dropped_when_its_senders_message_comes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, activity):
        with broker.subscribe(("tenant", "t1")) as inbox:
            broker.publish(typing("t1", "c0", "v0"))  # opens the window
            broker.publish(typing("t1", "c1", "v1"))  # held...
            broker.publish(typing("t1", "c2", "v2"))  # held
            sent = message("t1", "c1", "v1", 7)
            broker.publish(sent)  # ...and moot: v1's message ends its typing
            assert [e.type for e in frames(inbox)] == [EventType.TYPING, EventType.MESSAGE_CREATED]
            late = await inbox.receive.receive()
            assert late.type is EventType.TYPING and late.data["senderId"] == "v2"  # as itself
            assert activity.describe()["updates_superseded"] == 1
            # a hint after the message is news again, and is held and sent as usual
            broker.publish(typing("t1", "c1", "v1"))
            assert frames(inbox) == []
            assert (await inbox.receive.receive()).data["senderId"] == "v1"


async def test_tenants_have_their_own_windows_and_from_another_process_it_is_the_same(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with batching() as (broker, _):
        with (
            broker.subscribe(("tenant", "t1")) as one,
            broker.subscribe(("tenant", "t2")) as two,
        ):
            broker.publish(typing("t1", "c1", "v1"))
            broker.deliver(typing("t2", "c2", "v2"))  # another process's: t2's first, at once
            broker.deliver(typing("t1", "c3", "v3"))  # t1's window: held
            assert len(frames(one)) == 1 and len(frames(two)) == 1
            assert (await one.receive.receive()).data["senderId"] == "v3"


async def test_without_a_batcher_every_hint_goes_at_once() -> None:
    broker = Broker()
    with broker.subscribe(("tenant", "t1")) as inbox:
        for n in range(5):
            broker.publish(typing("t1", f"c{n}", f"v{n}"))
        assert len(inbox.receive) == 5
