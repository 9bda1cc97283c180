"""Each invariant has one writer, with the store as backstop (engine, on the fake clock).

* One live chat per visitor: owned by the visitor-session actor (``StartChat``), backed by the
  store's check (a partial unique index in PostgreSQL, the same rule in :class:`MemoryStore`).
* Agent capacity: checked inside the commit that gives an agent a chat, whoever asks (a manual
  accept, a round-robin offer, a hand-over); a refused command leaves its batch-mates alone.
* Starting a chat is one commit: contact, conversation, first message and the visitor's link.

The same rules against PostgreSQL and a real server: ``tests/web/test_invariants.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.broker import Broker
from engine.clock import TrioClock
from engine.conversation import Accept, Create, Reopen, Solve, Transfer
from engine.conversation_actor import KIND as CONV
from engine.conversation_actor import ConversationActor, Guard
from engine.errors import (
    AlreadyAssigned,
    AtCapacity,
    ConversationActive,
    EngineError,
    IllegalTransition,
    NotFound,
    VisitorGone,
)
from engine.supervisor import Supervisor, open_supervisor
from engine.values import Agent, Contact, Kind, RoutingAgent, Status
from engine.visitor import KIND as VISITOR
from engine.visitor import Heartbeat, StartChat, Started, VisitorSessionActor
from engine.widget import KIND as WIDGET
from engine.widget import Delete, WidgetActor
from tests.engine.memory_store import MemoryStore

T = "t1"
ALICE = Agent("alice", "Alice")
BOB = Agent("bob", "Bob")
HB = Heartbeat(T, "w1", "https://shop.example.com/", "shop.example.com", ip="203.0.113.9")


@asynccontextmanager
async def engine(
    store: MemoryStore | None = None, *, capacity: int = 5
) -> AsyncIterator[tuple[Supervisor, Broker, MemoryStore]]:
    store = store or MemoryStore()
    store.agents = {a.id: RoutingAgent(a.id, a.name, None, capacity) for a in (ALICE, BOB)}
    store.widgets["w1"] = {"id": "w1", "tenant_id": T, "last_seen_at": None, "domains": []}
    broker = Broker(buffer=1024)
    clock = TrioClock()
    sup: Supervisor

    async def dispatch(kind: str, actor_id: str, command: Any) -> Any:
        return await sup.call(kind, actor_id, command)

    factories: dict[str, Any] = {
        CONV: lambda cid: ConversationActor(cid, store=store, broker=broker, clock=clock),
        VISITOR: lambda vid: VisitorSessionActor(
            vid, store=store, broker=broker, clock=clock, dispatch=dispatch
        ),
        WIDGET: lambda wid: WidgetActor(
            wid, store=store, broker=broker, clock=clock, to_wire=lambda row, now: {}
        ),
    }
    async with open_supervisor(factories, clock=clock) as sup:
        yield sup, broker, store


n_ids = iter(range(1, 10**9))


def start(client_id: str | None = None, *, by: Agent | None = None, **extra: Any) -> StartChat:
    n = next(n_ids)
    return StartChat(
        tenant_id=T,
        conversation_id=f"c{n}",
        message_id=f"m{n}",
        message="hola",
        client_message_id=client_id,
        widget_id=None if by else "w1",
        name="  Carlos Lopez ",
        email="carlos@example.com",
        ip=None if by else "198.51.100.7",
        opened_by=by,
        **extra,
    )


def create(cid: str, visitor: str) -> Create:
    return Create(
        conversation_id=cid,
        tenant_id=T,
        widget_id="w1",
        visitor_id=visitor,
        kind=Kind.LIVE_CHAT,
        wait_timeout_seconds=3600,
        first_message_id=f"{cid}-m1",
        first_message="hola",
    )


# --- one live chat per visitor ------------------------------------------------------------------


async def test_a_start_is_one_commit_with_contact_conversation_message_and_link(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        with broker.subscribe(("tenant", T)) as sub:
            commits = store.commits
            started = trio.current_time()
            result: Started = await sup.call(VISITOR, "v1", start("k1"))
            cid = result.outcome.conversation.id
            assert store.commits == commits + 1  # one transaction for all of it
            assert store.visitors["v1"].conversation_id == cid  # the link, in that commit
            assert store.contacts[(T, "v1")] == Contact(
                name="Carlos Lopez", email="carlos@example.com", ip="198.51.100.7"
            )
            assert [m.text for m in store.messages[cid]] == ["hola"]
            # Live visitors hear "in chat" within a second (the clock fails the test at 2)
            with trio.fail_after(2):
                while True:
                    event = await sub.receive.receive()
                    if event.type == "visitor_presence_update" and event.data["inChat"]:
                        break
            assert trio.current_time() - started <= 1
            assert event.data["displayName"] == "Carlos Lopez"


async def test_a_start_costs_one_round_trip_and_at_most_two_after_an_earlier_chat(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)  # the widget heartbeats before any start
        before = store.round_trips
        first = (await sup.call(VISITOR, "v1", start())).outcome.conversation.id
        assert store.round_trips - before == 1  # the commit; a new id has nothing to load
        await sup.call(CONV, first, Solve(ALICE))  # the visitor actor is not told
        for _ in range(11):  # the visitor stays; the solved chat's actor idles out
            await trio.sleep(30)
            await sup.call(VISITOR, "v1", HB)
        assert not sup.is_running(CONV, first)
        before = store.round_trips
        await sup.call(VISITOR, "v1", start())
        # the earlier chat's actor loads (is it still active? no: SOLVED), then the commit
        assert store.round_trips - before == 2


async def test_fifty_concurrent_starts_from_one_visitor_make_one_conversation(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        results: list[Any] = []

        async def one(n: int) -> None:
            # half repeat one request (a double submit), half are different requests
            try:
                results.append(await sup.call(VISITOR, "v1", start("same" if n % 2 else f"k{n}")))
            except ConversationActive as exc:
                results.append(exc)

        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(one, n)
        live = [c for c in store.conversations.values() if c.kind is Kind.LIVE_CHAT]
        assert len(live) == 1
        [chat] = live
        created = [r for r in results if isinstance(r, Started) and not r.replay]
        replays = [r for r in results if isinstance(r, Started) and r.replay]
        refused = [r for r in results if isinstance(r, ConversationActive)]
        assert len(created) == 1 and created[0].outcome.conversation.id == chat.id
        assert len(created) + len(replays) + len(refused) == 50
        assert all(r.outcome.conversation.id == chat.id for r in replays)
        assert all(r.conversation_id == chat.id for r in refused)
        assert len(store.messages[chat.id]) == 1


async def test_a_new_chat_may_start_once_the_last_one_is_solved(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        first = (await sup.call(VISITOR, "v1", start())).outcome.conversation.id
        await sup.call(CONV, first, Solve(ALICE))
        assert store.visitors["v1"].conversation_id is None  # the solve's commit cleared it
        second = (await sup.call(VISITOR, "v1", start())).outcome.conversation.id
        assert second != first and store.visitors["v1"].conversation_id == second


async def test_a_start_refused_by_the_store_teaches_the_visitor_actor_its_active_chat(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        # a chat the visitor actor never heard of (its start's answer timed out, say)
        await sup.call(CONV, "cx", attrs.evolve(create("cx", "v1"), client_message_id="k1"))
        assert store.visitors["v1"].conversation_id == "cx"
        assert sup.actor(VISITOR, "v1").session.conversation_id is None  # type: ignore[union-attr]
        replay = await sup.call(VISITOR, "v1", start("k1"))  # the client retries
        assert replay.replay and replay.outcome.conversation.id == "cx"
        session = await sup.call(VISITOR, "v1", HB)  # the heartbeat answer knows it now
        assert session.conversation_id == "cx"


async def test_a_reopen_while_another_chat_is_active_is_refused_by_the_store(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        old = (await sup.call(VISITOR, "v1", start())).outcome.conversation.id
        await sup.call(CONV, old, Solve(ALICE))
        new = (await sup.call(VISITOR, "v1", start())).outcome.conversation.id
        with pytest.raises(ConversationActive) as refused:
            await sup.call(CONV, old, Guard(T, Reopen(ALICE)))
        assert refused.value.conversation_id == new
        assert store.conversations[old].status is Status.SOLVED  # nothing stored
        # and the visitor actor, which did not know of the reopen, learns from the store
        await sup.call(CONV, new, Solve(ALICE))
        await sup.call(CONV, old, Reopen(ALICE))
        with pytest.raises(ConversationActive) as again:
            await sup.call(VISITOR, "v1", start())
        assert again.value.conversation_id == old


async def test_an_agent_start_needs_a_live_visitor_of_the_same_tenant(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine() as (sup, broker, store):
        await sup.call(VISITOR, "v1", HB)
        result = await sup.call(VISITOR, "v1", start(by=ALICE))
        assert result.outcome.conversation.status is Status.OPEN
        assert store.contacts[(T, "v1")].ip == "203.0.113.9"  # the session's, not the agent's
        with pytest.raises(ConversationActive):
            await sup.call(VISITOR, "v1", start())
        await sup.call(CONV, result.outcome.conversation.id, Solve(ALICE))
        await sup.call(WIDGET, "w1", Delete(T))
        with pytest.raises(NotFound):  # the widget it came through was deleted
            await sup.call(VISITOR, "v1", start(by=BOB))
        await trio.sleep(61)
        with pytest.raises(VisitorGone):
            await sup.call(VISITOR, "v1", attrs.evolve(start(by=BOB)))


# --- capacity -----------------------------------------------------------------------------------


async def test_capacity_is_checked_in_the_commit_and_refuses_only_the_command_it_is_about(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with engine(capacity=1) as (sup, broker, store):
        for n in (1, 2):
            await sup.call(CONV, f"c{n}", create(f"c{n}", f"v{n}"))
        await sup.call(CONV, "c1", Accept(ALICE))
        with pytest.raises(AtCapacity) as full:
            await sup.call(CONV, "c2", Accept(ALICE))
        assert (full.value.open_chats, full.value.capacity) == (1, 1)
        assert full.value.extra == {"openChats": 1, "capacity": 1}
        assert store.conversations["c2"].status is Status.WAITING
        # a hand-over meets the same check; Bob is free
        with pytest.raises(AtCapacity):
            await sup.call(CONV, "c2", Accept(ALICE))
        await sup.call(CONV, "c2", Accept(BOB))
        with pytest.raises(AtCapacity):
            await sup.call(CONV, "c2", Transfer(ALICE))
        # in one batch: Alice's accept is refused, the message beside it is stored
        await sup.call(CONV, "c3", create("c3", "v3"))
        from tests.engine.test_actors import visitor_message

        results: dict[str, Any] = {}

        async def send(name: str, command: Any) -> None:
            try:
                results[name] = await sup.call(CONV, "c3", command)
            except EngineError as exc:
                results[name] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, "message", visitor_message(2, "c3"))
            nursery.start_soon(send, "accept", Accept(ALICE))
        assert isinstance(results["accept"], AtCapacity)
        assert results["message"].message.seq == 3
        assert [e.seq for e in store.events["c3"]] == [1, 2, 3]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["accept", "transfer", "solve", "reopen"]),
        st.integers(0, 5),  # which conversation
        st.sampled_from([ALICE, BOB]),
        st.integers(0, 3),  # how many milliseconds later it is sent
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, capacity=st.integers(1, 3))
def test_no_interleaving_of_accepts_transfers_and_reopens_passes_a_capacity(
    ops: list[tuple[str, int, Agent, int]], capacity: int
) -> None:
    """Any mix of commands, arriving in any order at six conversations: no committed state ever
    gives an agent more OPEN chats than their limit, and every refusal says so truthfully."""
    make = {"accept": Accept, "transfer": Transfer, "solve": Solve, "reopen": Reopen}

    violations: list[str] = []

    class Watching(MemoryStore):
        async def commit_conversation(self, commit: Any) -> None:
            await super().commit_conversation(commit)
            for agent in (ALICE, BOB):
                held = sum(
                    1
                    for c in self.conversations.values()
                    if c.status is Status.OPEN and c.assignee is not None and c.assignee == agent
                )
                if held > capacity:
                    violations.append(f"{agent.name} holds {held} > {capacity}")

    async def scenario() -> None:
        store = Watching()
        async with engine(store, capacity=capacity) as (sup, broker, _):
            for n in range(6):
                await sup.call(CONV, f"c{n}", create(f"c{n}", f"v{n}"))

            async def send(op: str, n: int, agent: Agent, delay: int) -> None:
                await trio.sleep(delay / 1000)
                try:
                    await sup.call(CONV, f"c{n}", make[op](agent))
                except AtCapacity as exc:
                    assert exc.open_chats >= exc.capacity == capacity
                except (IllegalTransition, AlreadyAssigned):
                    pass  # not allowed in that state (already solved, not open, ...)

            async with trio.open_nursery() as nursery:
                for op in ops:
                    nursery.start_soon(send, *op)

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    assert violations == []
