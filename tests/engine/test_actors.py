"""The conversation and visitor actors, the supervisor and the broker on Trio's autojump clock.

These run on :class:`engine.store.MemoryStore` because asyncpg cannot run on a fake clock; the
same flows run against PostgreSQL in ``tests/web``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from engine.broker import Broker
from engine.clock import TrioClock
from engine.conversation import Accept, Create, PostMessage, Solve, Typing
from engine.conversation_actor import KIND as CONV
from engine.conversation_actor import ConversationActor
from engine.errors import ActorUnavailable, AlreadyAssigned
from engine.supervisor import Supervisor, open_supervisor
from engine.values import Agent, Event, Kind, SenderType, Status
from engine.visitor import KIND as VISITOR
from engine.visitor import Heartbeat, JoinedChat, VisitorSessionActor
from tests.engine.memory_store import MemoryStore

ALICE = Agent("agent-alice", "Alice")
BOB = Agent("agent-bob", "Bob")


@asynccontextmanager
async def engine(
    store: MemoryStore | None = None, *, expiry: float = 60.0, idle: float = 300.0
) -> AsyncIterator[tuple[Supervisor, Broker, MemoryStore, TrioClock]]:
    store = store or MemoryStore()
    broker = Broker(buffer=16)
    clock = TrioClock()
    factories = {
        CONV: lambda cid: ConversationActor(
            cid, store=store, broker=broker, clock=clock, idle_seconds=idle
        ),
        VISITOR: lambda vid: VisitorSessionActor(
            vid, store=store, broker=broker, clock=clock, expiry_seconds=expiry
        ),
    }
    async with open_supervisor(factories, clock=clock, max_restarts=2, within_seconds=10) as sup:
        yield sup, broker, store, clock


def create(cid: str = "c1", timeout: int = 60, visitor: str = "v1") -> Create:
    return Create(
        conversation_id=cid,
        tenant_id="t1",
        widget_id="w1",
        visitor_id=visitor,
        kind=Kind.LIVE_CHAT,
        wait_timeout_seconds=timeout,
        first_message_id=f"{cid}-m1",
        first_message="hola",
        visitor_name="Carlos Lopez",
    )


def visitor_message(n: int, cid: str = "c1", client_id: str | None = None) -> PostMessage:
    return PostMessage(
        message_id=f"{cid}-v{n}",
        sender_type=SenderType.VISITOR,
        sender_id="v1",
        sender_name="Carlos",
        text=f"message {n}",
        client_message_id=client_id,
    )


async def next_event(sub: object, type_: str, within: float = 3600) -> Event:
    """The next event of ``type_`` (``within`` seconds of the fake clock, else the test fails)."""
    with trio.fail_after(within):
        async for event in sub:  # type: ignore[attr-defined]
            if event.type == type_:
                return event  # type: ignore[no-any-return]
    raise AssertionError(f"stream ended before {type_}")


async def test_wait_timeout_fires_once_on_the_fake_clock(autojump_clock: trio.abc.Clock) -> None:
    async with engine() as (sup, broker, store, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            started = trio.current_time()
            await sup.call(CONV, "c1", create(timeout=60))
            event = await next_event(sub, "conversation_wait_timeout")
            assert trio.current_time() - started == pytest.approx(60, abs=0.01)
            assert event.data["waitedSeconds"] == pytest.approx(60, abs=0.01)
        state = store.conversations["c1"]
        assert state.status is Status.WAITING and state.wait_timed_out
        assert [e.type for e in store.events["c1"]][-1] == "conversation_wait_timeout"
        # an agent accepting after the timeout still connects the visitor
        outcome = await sup.call(CONV, "c1", Accept(ALICE))
        assert outcome.conversation.status is Status.OPEN


async def test_accept_cancels_the_wait_timer(autojump_clock: trio.abc.Clock) -> None:
    async with engine(idle=5) as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create(timeout=60))
        await trio.sleep(30)
        await sup.call(CONV, "c1", Accept(ALICE))
        await trio.sleep(600)
        assert "conversation_wait_timeout" not in [e.type for e in store.events["c1"]]
        assert not sup.is_running(CONV, "c1")  # idle, no timer: stopped


async def test_wait_timer_survives_a_restart(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore()
    async with engine(store) as (sup, broker, _, clock):
        await sup.call(CONV, "c1", create(timeout=60))
        await trio.sleep(40)
    # the supervisor is gone; a new one re-arms the stored deadline
    async with engine(store) as (sup, broker, _, clock):
        with broker.subscribe(("conversation", "c1")) as sub:
            sup.ensure(CONV, "c1")
            await next_event(sub, "conversation_wait_timeout")


async def test_idle_actor_stops_and_rehydrates(autojump_clock: trio.abc.Clock) -> None:
    async with engine(idle=10) as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create())
        await sup.call(CONV, "c1", Accept(ALICE))
        await trio.sleep(11)
        assert not sup.is_running(CONV, "c1")
        outcome = await sup.call(CONV, "c1", visitor_message(2, client_id="k1"))
        assert outcome.message.seq == 5
        again = await sup.call(CONV, "c1", visitor_message(3, client_id="k1"))
        assert again.duplicate and again.message == outcome.message


async def test_accept_race_has_one_winner(autojump_clock: trio.abc.Clock) -> None:
    async with engine() as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create())
        results: dict[str, object] = {}

        async def accept(agent: Agent) -> None:
            try:
                results[agent.id] = await sup.call(CONV, "c1", Accept(agent))
            except AlreadyAssigned as exc:
                results[agent.id] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept, ALICE)
            nursery.start_soon(accept, BOB)
        errors = [r for r in results.values() if isinstance(r, AlreadyAssigned)]
        assert len(errors) == 1
        assert [e.type for e in store.events["c1"]].count("conversation_assigned") == 1


async def test_crashing_actor_restarts_without_disturbing_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore()
    async with engine(store) as (sup, broker, _, clock):
        await sup.call(CONV, "c1", create("c1"))
        await sup.call(CONV, "c2", create("c2", visitor="v2"))
        store.fail_commits["c1"] = 1
        with pytest.raises(ActorUnavailable):
            await sup.call(CONV, "c1", Accept(ALICE))
        # c2 is untouched and keeps working while c1 restarts
        assert (await sup.call(CONV, "c2", Accept(BOB))).conversation.status is Status.OPEN
        outcome = await sup.call(CONV, "c1", Accept(ALICE))
        assert outcome.conversation.status is Status.OPEN
        stats = {(s.kind, s.id): s for s in sup.statistics()}
        assert stats[(CONV, "c1")].restarts == 1 and stats[(CONV, "c2")].restarts == 0
        assert [e.seq for e in store.events["c1"]] == [1, 2, 3, 4]


async def test_restart_intensity_limit_gives_up(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore()
    async with engine(store) as (sup, broker, _, clock):
        await sup.call(CONV, "c1", create("c1"))
        store.fail_commits["c1"] = 10
        for _ in range(3):
            with pytest.raises(ActorUnavailable):
                await sup.call(CONV, "c1", Accept(ALICE))
        await trio.sleep(0.1)
        assert not sup.is_running(CONV, "c1")  # max_restarts=2 passed: given up
        store.fail_commits["c1"] = 0
        assert (await sup.call(CONV, "c1", Solve(ALICE))).conversation.status is Status.SOLVED


async def test_events_reach_subscribers_only_after_commit(autojump_clock: trio.abc.Clock) -> None:
    async with engine() as (sup, broker, store, clock):
        with broker.subscribe(("visitor", "v1")) as sub:
            await sup.call(CONV, "c1", create())
            event = await next_event(sub, "message_created")
            assert store.events["c1"][event.seq - 1] == event  # type: ignore[operator]
            store.fail_commits["c1"] = 1
            with pytest.raises(ActorUnavailable):
                await sup.call(CONV, "c1", visitor_message(2))
            with pytest.raises(trio.WouldBlock):
                sub.receive.receive_nowait()  # nothing published for the failed commit


async def test_slow_subscriber_is_dropped_not_waited_for(autojump_clock: trio.abc.Clock) -> None:
    async with engine() as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create())
        await sup.call(CONV, "c1", Accept(ALICE))
        with (
            broker.subscribe(("tenant", "t1")) as slow,
            broker.subscribe(("tenant", "t1"), buffer=1000) as fast,
        ):
            for n in range(40):  # the broker's buffer is 16
                await sup.call(CONV, "c1", visitor_message(n + 2))
            assert slow.dropped_reason is not None and "slow subscriber" in slow.dropped_reason
            received = []
            while True:
                try:
                    received.append(fast.receive.receive_nowait())
                except trio.WouldBlock:
                    break
            assert len(received) == 40
        assert broker.statistics().dropped_subscribers == 1


async def test_batched_commands_commit_together(autojump_clock: trio.abc.Clock) -> None:
    async with engine() as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create())
        commits = store.commits
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(sup.call, CONV, "c1", visitor_message(n + 2))
        seqs = [e.seq for e in store.events["c1"]]
        assert seqs == list(range(1, 23))
        assert store.commits - commits < 20  # queued commands share commits


async def test_visitor_session_expires_after_its_last_heartbeat(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine(expiry=60) as (sup, broker, store, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            hb = Heartbeat("t1", "w1", "https://shop.example.com/a", "shop.example.com")
            await sup.call(VISITOR, "v1", hb)
            await trio.sleep(50)
            s = await sup.call(
                VISITOR,
                "v1",
                Heartbeat("t1", "w1", "https://shop.example.com/b", "shop.example.com"),
            )
            assert (s.last_seen_at - s.first_seen_at) == dt.timedelta(seconds=50)
            await sup.call(VISITOR, "v1", JoinedChat("c1"))
            started = trio.current_time()
            events = []
            async for event in sub:
                events.append(event)
                if not event.data["online"]:
                    break
            assert trio.current_time() - started == pytest.approx(60, abs=0.01)
            assert events[-1].data["inChat"] is True
            assert events[-1].data["currentUrl"] == "https://shop.example.com/b"
        assert not sup.is_running(VISITOR, "v1")


class CountingStore(MemoryStore):
    """A MemoryStore that counts visitor writes."""

    visitor_writes: int = 0

    async def save_visitor(self, session: Any) -> None:
        self.visitor_writes += 1
        await super().save_visitor(session)

    def save_visitor_soon(self, session: Any) -> bool:
        self.visitor_writes += 1
        return super().save_visitor_soon(session)


async def test_200_heartbeats_a_second_write_once_a_second_and_announce_only_changes(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = CountingStore()
    async with engine(store, expiry=60) as (sup, broker, _, clock):
        with broker.subscribe(("tenant", "t1"), buffer=1000) as sub:
            url = "https://shop.example.com/a"
            started = trio.current_time()
            for n in range(600):  # 3 seconds at 200 heartbeats/s, same page
                if n == 450:
                    url = "https://shop.example.com/b"  # a new page in the last second
                await sup.call(VISITOR, "v1", Heartbeat("t1", "w1", url, "shop.example.com"))
                await trio.sleep(1 / 200)
            await trio.sleep(1.5)  # let the trailing update go out (fake clock)
            times = []
            last = None
            while True:
                try:
                    event = sub.receive.receive_nowait()
                except trio.WouldBlock:
                    break
                times.append(trio.current_time())
                last = event
            assert trio.current_time() - started < 5
        # the arrival and the new page: the same page again is news to nobody
        assert len(times) == 2, len(times)
        assert last is not None and last.data["currentUrl"] == "https://shop.example.com/b"
        assert last.data["online"] is True
        # writes: the first, one per second, and the new page at once
        assert store.visitor_writes <= 5, store.visitor_writes
        assert store.visitors["v1"].current_url == "https://shop.example.com/b"


async def test_only_a_sessions_first_write_is_waited_for(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A heartbeat's answer waits for no database once the visitor's row exists (issue 13):
    later presence writes are queued (soft state); the first is awaited, since a chat's commit
    links that row."""
    async with engine(expiry=60) as (sup, _, store, _clock):
        for n in range(5):
            url = f"https://shop.example.com/{n}"  # a new page each time: a write each time
            await sup.call(VISITOR, "v1", Heartbeat("t1", "w1", url, "shop.example.com"))
            await trio.sleep(2)
        # one load and the first write waited for; the four page changes were queued
        assert (store.round_trips, store.soft_writes) == (2, 4)
        assert store.visitors["v1"].current_url == "https://shop.example.com/4"


async def test_coalesced_updates_are_spaced_a_second_apart(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine(expiry=60) as (sup, broker, store, clock):
        with broker.subscribe(("tenant", "t1"), buffer=1000) as sub:
            seen: list[float] = []

            async def watch() -> None:
                async for _event in sub:
                    seen.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                for n in range(1000):  # 5 s at 200/s, each on a new page (each is news)
                    url = f"https://shop.example.com/p{n}"
                    hb = Heartbeat("t1", "w1", url, "shop.example.com")
                    await sup.call(VISITOR, "v1", hb)
                    await trio.sleep(1 / 200)
                await trio.sleep(2)
                nursery.cancel_scope.cancel()
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert len(seen) >= 5
        assert min(gaps) >= 1 - 1e-6, gaps


async def test_a_typing_hint_queued_before_its_senders_message_never_follows_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    # the widget says "on", then sends: both can reach the actor's mailbox together, and a hint
    # published after the commit would show "typing…" under the message that ended it
    async with engine() as (sup, broker, store, clock):
        await sup.call(CONV, "c1", create())
        await sup.call(CONV, "c1", Accept(ALICE))
        with broker.subscribe(("tenant", "t1")) as sub:
            # in the mailbox, in this order, before the actor runs (no checkpoint in between)
            assert sup.try_cast(CONV, "c1", Typing(SenderType.VISITOR, "v1", None, on=True))
            await sup.call(CONV, "c1", visitor_message(2))
            sent = await next_event(sub, "message_created")
            assert store.commits and sent.data["message"]["text"] == "message 2"
            later = []
            while len(sub.receive):
                later.append(sub.receive.receive_nowait().type)
            assert "typing" not in later, later
