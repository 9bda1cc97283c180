"""Routing on Trio's autojump clock: round robin, capacity, re-offers, the queue, the nudger.

Real actors (conversation, router) under a real supervisor, on the in-memory store.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from engine.broker import Broker
from engine.clock import TrioClock
from engine.conversation import Accept, Create, Solve
from engine.conversation_actor import KIND as CONV
from engine.conversation_actor import ConversationActor, Guard
from engine.presence import AgentPresence
from engine.routing import KIND as ROUTER
from engine.routing import ROUTING_LISTENER, Nudge, RouterActor, pick_agent, run_routing_listener
from engine.supervisor import Supervisor, open_supervisor
from engine.values import Agent, Event, Kind, RoutingAgent, Status
from tests.engine.memory_store import MemoryStore

T = "t1"
T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
AGENTS = [RoutingAgent(f"a{n}", f"Agent {n}", None, 10) for n in range(3)]


@asynccontextmanager
async def world(
    *, routing: str = "round_robin", capacity: int = 10, reoffer_after: float = 30.0
) -> AsyncIterator[tuple[Supervisor, Broker, MemoryStore, AgentPresence]]:
    store = MemoryStore(
        widgets={"w1": {"id": "w1", "tenant_id": T, "settings": {"routing": routing}}},
        agents={a.id: RoutingAgent(a.id, a.name, None, capacity) for a in AGENTS},
    )
    broker = Broker(buffer=4096)
    clock = TrioClock()
    presence = AgentPresence(broker, clock)
    pending: set[str] = set()
    sup: Supervisor

    async def dispatch(kind: str, actor_id: str, command: Any) -> Any:
        return await sup.call(kind, actor_id, command)

    factories = {
        CONV: lambda cid: ConversationActor(cid, store=store, broker=broker, clock=clock),
        ROUTER: lambda tid: RouterActor(
            tid,
            store=store,
            broker=broker,
            clock=clock,
            presence=presence,
            dispatch=dispatch,
            reoffer_after=reoffer_after,
            pending=pending,
        ),
    }

    async def tenants() -> list[str]:
        return [T]

    async with open_supervisor(factories, clock=clock) as sup:
        await sup.start_service(
            ROUTING_LISTENER,
            functools.partial(run_routing_listener, broker, sup.cast, pending, tenants),
        )
        yield sup, broker, store, presence


def create(n: int) -> Create:
    return Create(
        conversation_id=f"c{n:02d}",
        tenant_id=T,
        widget_id="w1",
        visitor_id=f"v{n:02d}",
        kind=Kind.LIVE_CHAT,
        wait_timeout_seconds=3600,
        first_message_id=f"m{n:02d}",
        first_message="hola",
    )


async def settle(store: MemoryStore) -> None:
    """Let the nudges and router passes run out (the fake clock jumps when all are idle)."""
    await trio.sleep(1)


def assignees(store: MemoryStore) -> collections.Counter[str]:
    return collections.Counter(
        c.assignee.id
        for c in store.conversations.values()
        if c.status is Status.OPEN and c.assignee is not None
    )


def drain(sub: Any) -> list[Event]:
    out = []
    while True:
        try:
            out.append(sub.receive.receive_nowait())
        except trio.WouldBlock:
            return out


# --- the pick, pure ----------------------------------------------------------------------------


def test_pick_prefers_fewest_open_then_least_recently_assigned_and_respects_capacity() -> None:
    a, b, c = (RoutingAgent(x, x, None, 2) for x in "abc")
    assert pick_agent([a, b, c], {"a": 1, "b": 0, "c": 0}, {"b": 5.0, "c": 1.0}) == c
    assert pick_agent([a, b, c], {"a": 2, "b": 2, "c": 1}, {}) == c
    assert pick_agent([a, b, c], {"a": 2, "b": 2, "c": 2}, {}) is None
    assert pick_agent([], {}, {}) is None


# --- round robin -------------------------------------------------------------------------------


async def test_round_robin_spreads_30_chats_over_3_agents_evenly(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as (sup, broker, store, presence):
        for agent in AGENTS:
            presence.connect(T, agent.id)
        for n in range(30):
            await sup.call(CONV, f"c{n:02d}", create(n))
        await settle(store)
        counts = assignees(store)
        assert sum(counts.values()) == 30
        assert max(counts.values()) - min(counts.values()) <= 1
        assert set(counts) == {a.id for a in AGENTS}


async def test_round_robin_respects_capacity_and_leaves_the_rest_waiting_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(capacity=5) as (sup, broker, store, presence):
        with broker.subscribe(("tenant", T), buffer=4096) as sub:
            for agent in AGENTS:
                presence.connect(T, agent.id)
            for n in range(30):
                await sup.call(CONV, f"c{n:02d}", create(n))
            await settle(store)
            counts = assignees(store)
            assert counts == {"a0": 5, "a1": 5, "a2": 5}
            waiting = sorted(
                c.id for c in store.conversations.values() if c.status is Status.WAITING
            )
            assert len(waiting) == 15
            positions: dict[str, int] = {}
            for event in drain(sub):
                if event.type == "queue_position":
                    positions[event.data["conversationId"]] = event.data["position"]
            assert [positions[cid] for cid in waiting] == list(range(1, 16))
            # an agent solves one chat: the oldest waiting chat goes to them, the queue moves up
            first_open = next(
                c.id
                for c in store.conversations.values()
                if c.assignee is not None and c.assignee.id == "a1"
            )
            await sup.call(CONV, first_open, Guard(T, Solve(Agent("a1", "Agent 1"))))
            await settle(store)
            assert store.conversations[waiting[0]].status is Status.OPEN
            assert store.conversations[waiting[0]].assignee.id == "a1"  # type: ignore[union-attr]
            moved = {
                e.data["conversationId"]: e.data["position"]
                for e in drain(sub)
                if e.type == "queue_position"
            }
            assert moved[waiting[1]] == 1 and moved[waiting[14]] == 14


async def test_nobody_available_keeps_chats_waiting_until_an_agent_comes(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as (sup, broker, store, presence):
        for n in range(3):
            await sup.call(CONV, f"c{n:02d}", create(n))
        await settle(store)
        assert assignees(store) == {}
        presence.connect(T, "a0")
        presence.set_away(T, "a0", True)  # away agents get nothing
        await settle(store)
        assert assignees(store) == {}
        presence.set_away(T, "a0", False)
        await settle(store)
        assert assignees(store) == {"a0": 3}


async def test_manual_routing_assigns_nothing_but_counts_the_queue_down(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing="manual") as (sup, broker, store, presence):
        with broker.subscribe(("visitor", "v02"), buffer=64) as sub:
            presence.connect(T, "a0")
            for n in range(3):
                await sup.call(CONV, f"c{n:02d}", create(n))
            await settle(store)
            assert assignees(store) == {}
            mine = [e.data for e in drain(sub) if e.type == "queue_position"]
            assert mine[-1]["position"] == 3 and mine[-1]["ahead"] == 2
            for n in range(2):  # agents accept the two chats ahead
                await sup.call(CONV, f"c{n:02d}", Guard(T, Accept(Agent("a0", "Agent 0"))))
                await settle(store)
            seen = [e.data["position"] for e in drain(sub) if e.type == "queue_position"]
            assert seen == [2, 1]


async def test_offline_agents_chats_are_re_offered_after_the_grace_period(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(reoffer_after=30) as (sup, broker, store, presence):
        presence.connect(T, "a0")
        for n in range(2):
            await sup.call(CONV, f"c{n:02d}", create(n))
        await settle(store)
        assert assignees(store) == {"a0": 2}
        with broker.subscribe(("tenant", T), buffer=64) as sub:
            presence.connect(T, "a1")
            presence.disconnect(T, "a0")
            started = trio.current_time()
            await trio.sleep(20)
            assert assignees(store) == {"a0": 2}  # a short drop (a reload) moves nothing
            handed = []
            async for event in sub:
                if event.type == "conversation_assigned":
                    handed.append(event)
                    if len(handed) == 2:
                        break
        assert trio.current_time() - started == pytest.approx(30, abs=1.5)
        assert assignees(store) == {"a1": 2}
        assert {e.data["previousAgent"]["id"] for e in handed} == {"a0"}


async def test_an_agent_back_within_the_grace_period_keeps_their_chats(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(reoffer_after=30) as (sup, broker, store, presence):
        presence.connect(T, "a0")
        presence.connect(T, "a1")
        await sup.call(CONV, "c00", create(0))
        await settle(store)
        [owner] = assignees(store)
        presence.disconnect(T, owner)
        await trio.sleep(10)
        presence.connect(T, owner)
        await trio.sleep(60)
        assert assignees(store) == {owner: 1}


async def test_nudges_fold_into_few_passes(autojump_clock: trio.abc.Clock) -> None:
    async with world(routing="manual") as (sup, broker, store, presence):
        store.routing_latency = 0.05
        presence.connect(T, "a0")
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(sup.call, CONV, f"c{n:02d}", create(n))
        await settle(store)
        # 40 creations, each a nudge: the router folded them into far fewer passes
        assert store.routing_loads < 20, store.routing_loads
        await sup.cast(ROUTER, T, Nudge())
        await settle(store)
        assert store.routing_loads >= 2


async def test_the_router_stays_with_waiting_chats_and_stops_when_idle(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing="manual") as (sup, broker, store, presence):
        await sup.call(CONV, "c00", create(0))
        await settle(store)
        assert sup.is_running(ROUTER, T)
        await trio.sleep(3600)
        assert sup.is_running(ROUTER, T)  # a visitor waits: positions must stay live
        await sup.call(CONV, "c00", Guard(T, Solve(Agent("a0", "Agent 0"))))
        await trio.sleep(400)
        assert not sup.is_running(ROUTER, T)


async def test_a_flood_of_messages_never_reaches_the_routing_listener(
    autojump_clock: trio.abc.Clock,
) -> None:
    """At 2,000 msg/s a listener of every event fell 4,096 events behind and was dropped (the
    bench showed it): only the events routing acts on reach its topic."""
    async with world(routing="manual") as (sup, broker, store, presence):
        await sup.call(CONV, "c00", create(0))
        await settle(store)
        passes = store.routing_loads
        for seq in range(2, 10_002):  # published in one go: the listener cannot run in between
            broker.publish(
                Event(
                    type="message_created", at=T0, tenant_id=T, data={},
                    conversation_id="c00", seq=seq, visitor_id="v00",
                )
            )  # fmt: skip
        assert broker.statistics().dropped_subscribers == 0
        presence.connect(T, "a0")  # an event routing does act on still wakes the router
        await settle(store)
        assert store.routing_loads > passes
        [service] = [s for s in sup.statistics("service") if s.id == ROUTING_LISTENER]
        assert service.restarts == 0
