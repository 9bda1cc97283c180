"""Supervision as a guarantee (engine/supervisor.py), broken on purpose.

Every test crashes, hangs or drops something through the :class:`engine.faults.FaultPlan` seam
(or a store that fails) and checks the promise: the caller gets an error at once or within the
call deadline, the actor restarts from what is stored, its neighbours never notice, and what the
supervisor gives up on is reported. Trio's ``autojump_clock`` makes every deadline instant, and
lets a test assert that *no* time passed (an error "at once" is not an error after a timeout).
"""

from __future__ import annotations

import contextvars
import functools
import gc
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from engine import metrics
from engine.broker import Broker
from engine.clock import TrioClock
from engine.conversation import Accept, Create, PostMessage
from engine.conversation_actor import KIND as CONV
from engine.conversation_actor import ConversationActor
from engine.errors import ActorUnavailable
from engine.faults import FaultPlan
from engine.presence import AgentPresence
from engine.routing import KIND as ROUTER
from engine.routing import ROUTING_LISTENER, RouterActor, run_routing_listener
from engine.supervisor import SERVICE, Crash, Mailbox, Supervisor, open_supervisor
from engine.values import Agent, Kind, RoutingAgent, SenderType, Status
from engine.visitor import KIND as VISITOR
from engine.visitor import Heartbeat, VisitorSessionActor
from engine.widget import KIND as WIDGET
from engine.widget import Describe, Ping, WidgetActor, widget_status
from tests.engine.memory_store import MemoryStore

ALICE = Agent("agent-alice", "Alice")
T = "t1"
CALL_TIMEOUT = 10.0


@attrs.frozen
class Bogus:
    """A command no state machine knows: its handler raises outside the commit path."""


class Sleepy:
    """An actor that takes a command and never answers (a hang, not a crash)."""

    kind = "sleepy"

    def __init__(self, actor_id: str) -> None:
        self.id = actor_id

    def describe(self) -> dict[str, Any]:
        return {"state": "ASLEEP"}

    async def run(self, mailbox: Mailbox) -> None:
        while True:
            try:
                await mailbox.receive()
            except trio.EndOfChannel:
                return
            await trio.sleep_forever()


@attrs.define
class World:
    sup: Supervisor
    broker: Broker
    store: MemoryStore
    faults: FaultPlan
    presence: AgentPresence
    pending: set[str]


@asynccontextmanager
async def world(
    *, max_restarts: int = 2, grace: float = 5.0, routing: bool = False
) -> AsyncIterator[World]:
    store = MemoryStore(
        widgets={
            "w1": {
                "id": "w1",
                "tenant_id": T,
                "name": "Shop",
                "domains": [],
                "settings": {"routing": "round_robin"},
                "last_seen_at": None,
                "last_refused_at": None,
            }
        },
        agents={ALICE.id: RoutingAgent(ALICE.id, ALICE.name, None, 5)},
    )
    broker = Broker(buffer=64)
    clock = TrioClock()
    faults = FaultPlan()
    presence = AgentPresence(broker, clock)
    pending: set[str] = set()
    sup: Supervisor

    async def dispatch(kind: str, actor_id: str, command: Any) -> Any:
        return await sup.call(kind, actor_id, command)

    factories: dict[str, Any] = {
        CONV: lambda cid: ConversationActor(
            cid, store=store, broker=broker, clock=clock, faults=faults
        ),
        VISITOR: lambda vid: VisitorSessionActor(
            vid, store=store, broker=broker, clock=clock, faults=faults
        ),
        WIDGET: lambda wid: WidgetActor(
            wid,
            store=store,
            broker=broker,
            clock=clock,
            to_wire=lambda row, now: {"id": row["id"], "status": widget_status(row, now)[0]},
            faults=faults,
        ),
        ROUTER: lambda tid: RouterActor(
            tid,
            store=store,
            broker=broker,
            clock=clock,
            presence=presence,
            dispatch=dispatch,
            pending=pending,
            faults=faults,
        ),
        "sleepy": Sleepy,
    }
    async with open_supervisor(
        factories,
        clock=clock,
        max_restarts=max_restarts,
        within_seconds=10,
        call_timeout=CALL_TIMEOUT,
        grace_seconds=grace,
    ) as sup:
        if routing:

            async def tenants() -> list[str]:
                return [T]

            await sup.start_service(
                ROUTING_LISTENER,
                functools.partial(
                    run_routing_listener, broker, sup.cast, pending, tenants, faults=faults
                ),
            )
        yield World(sup, broker, store, faults, presence, pending)


def create(cid: str = "c1", visitor: str = "v1", timeout: int = 60) -> Create:
    return Create(
        conversation_id=cid,
        tenant_id=T,
        widget_id="w1",
        visitor_id=visitor,
        kind=Kind.LIVE_CHAT,
        wait_timeout_seconds=timeout,
        first_message_id=f"{cid}-m1",
        first_message="hola",
    )


def message(n: int, cid: str = "c1", client_id: str | None = None) -> PostMessage:
    return PostMessage(
        message_id=f"{cid}-v{n}",
        sender_type=SenderType.VISITOR,
        sender_id="v1",
        sender_name=None,
        text=f"message {n}",
        client_message_id=client_id,
    )


async def fails_at_once(call: Any) -> ActorUnavailable:
    """Await ``call``; it must raise ActorUnavailable at once: not at the call deadline (at most
    a restart back-off of the actor may pass before it takes the command)."""
    started = trio.current_time()
    with pytest.raises(ActorUnavailable) as caught:
        await call
    assert trio.current_time() - started < 1, "the caller waited for the deadline"
    assert caught.value.code == "actor_unavailable"
    return caught.value


def stats(sup: Supervisor, kind: str, actor_id: str) -> Any:
    return next(s for s in sup.statistics(kind) if s.id == actor_id)


# --- no caller waits forever ------------------------------------------------------------------


async def test_a_command_no_handler_knows_fails_its_caller_at_once_and_the_actor_restarts(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        await w.sup.call(CONV, "c1", create("c1"))
        await w.sup.call(CONV, "c2", create("c2", visitor="v2"))
        error = await fails_at_once(w.sup.call(CONV, "c1", Bogus()))
        assert error.cause is not None and "KeyError" in error.cause
        crashed = stats(w.sup, CONV, "c1")
        assert crashed.restarts == 1
        # the real exception and our line that raised it, not "ExceptionGroup: ..."
        assert crashed.last_crash.startswith("KeyError: ")
        assert "engine/conversation.py:" in crashed.last_crash
        assert " in apply" in crashed.last_crash
        # restarted from what is stored: the next command continues the seq
        outcome = await w.sup.call(CONV, "c1", Accept(ALICE))
        assert outcome.conversation.status is Status.OPEN
        assert [e.seq for e in w.store.events["c1"]] == [1, 2, 3, 4]
        # the neighbour never noticed
        assert stats(w.sup, CONV, "c2").restarts == 0
        assert (await w.sup.call(CONV, "c2", message(2, "c2"))).message.seq == 3


@pytest.mark.parametrize("stage", ["handle", "before_commit", "commit", "after_commit"])
async def test_a_crash_at_each_stage_fails_the_callers_at_once_and_loses_no_message(
    autojump_clock: trio.abc.Clock, stage: str
) -> None:
    async with world() as w:
        await w.sup.call(CONV, "c1", create("c1"))
        await w.sup.call(CONV, "c2", create("c2", visitor="v2"))
        if stage == "commit":
            w.store.fail_commits["c1"] = 1
        else:
            w.faults.arm(CONV, stage, "c1")
        errors: list[BaseException] = []

        async def send(n: int) -> None:
            try:
                await w.sup.call(CONV, "c1", message(n, client_id=f"k{n}"))
            except ActorUnavailable as exc:
                errors.append(exc)

        started = trio.current_time()
        async with trio.open_nursery() as nursery:  # several callers, one batch
            for n in range(2, 6):
                nursery.start_soon(send, n)
        assert trio.current_time() == started
        # the batch that crashed failed (its callers heard at once, above); whoever came after
        # was served by the restarted actor
        assert len(errors) >= 1 and all(isinstance(e, ActorUnavailable) for e in errors)
        assert {e.cause.split(":")[0] for e in errors} <= {"RuntimeError", "InjectedFault"}
        assert stats(w.sup, CONV, "c1").restarts == 1
        assert stats(w.sup, CONV, "c2").restarts == 0
        # a retry with the same client ids stores each message exactly once
        for n in range(2, 6):
            await w.sup.call(CONV, "c1", message(n, client_id=f"k{n}"))
        texts = [m.text for m in w.store.messages["c1"]]
        assert sorted(texts[1:]) == [f"message {n}" for n in range(2, 6)]
        seqs = [e.seq for e in w.store.events["c1"]]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_a_crash_while_loading_leaves_the_command_queued_for_the_restarted_actor(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        await w.sup.call(CONV, "c1", create("c1"))
        await trio.sleep(400)  # idle: the actor stops
        assert not w.sup.is_running(CONV, "c1")
        w.faults.arm(CONV, "load", "c1")
        started = trio.current_time()
        outcome = await w.sup.call(CONV, "c1", Accept(ALICE))
        assert trio.current_time() == started
        assert outcome.conversation.status is Status.OPEN
        assert stats(w.sup, CONV, "c1").restarts == 1


async def test_a_crash_in_the_wait_timer_restarts_the_actor_and_the_timeout_fires_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        with w.broker.subscribe(("conversation", "c1")) as sub:
            await w.sup.call(CONV, "c1", create("c1", timeout=60))
            w.faults.arm(CONV, "timer", "c1")
            with trio.fail_after(61):
                while (await sub.receive.receive()).type != "conversation_wait_timeout":
                    pass
        assert w.faults.raised == [(CONV, "timer", "c1")]
        assert stats(w.sup, CONV, "c1").restarts == 1
        types = [e.type for e in w.store.events["c1"]]
        assert types.count("conversation_wait_timeout") == 1


async def test_an_actor_that_hangs_answers_with_a_timeout_at_the_call_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        before = metrics.CALL_TIMEOUTS.labels("sleepy")._value.get()
        started = trio.current_time()
        with pytest.raises(ActorUnavailable) as caught:
            await w.sup.call("sleepy", "z", "anything")
        assert trio.current_time() - started == pytest.approx(CALL_TIMEOUT)
        assert caught.value.code == "actor_timeout"
        assert caught.value.extra["retryAfterSeconds"] == caught.value.retry_after == 1
        assert metrics.CALL_TIMEOUTS.labels("sleepy")._value.get() == before + 1


async def test_shutdown_waits_the_grace_then_fails_taken_and_queued_commands(
    autojump_clock: trio.abc.Clock,
) -> None:
    outcomes: list[str] = []
    async with trio.open_nursery() as nursery:
        async with world(grace=5) as w:

            async def ask(n: int) -> None:
                try:
                    await w.sup.call("sleepy", "z", n)
                except ActorUnavailable as exc:
                    outcomes.append(f"{exc.message}@{trio.current_time() - closed:.0f}")

            closed = trio.current_time() + 1
            for n in range(3):  # one taken (the actor sleeps on it), two queued
                nursery.start_soon(ask, n)
            await trio.sleep(1)
    assert outcomes == ["the server is shutting down; retry@5"] * 3


# --- escalation ---------------------------------------------------------------------------------


async def test_past_the_restart_intensity_the_actor_is_given_up_and_reported_until_it_recovers(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(max_restarts=2) as w:
        await w.sup.call(CONV, "c1", create("c1"))
        w.store.fail_commits["c1"] = 10
        before = metrics.ACTOR_ESCALATIONS.labels(CONV)._value.get()
        for _ in range(3):
            await fails_at_once(w.sup.call(CONV, "c1", Accept(ALICE)))
        assert not w.sup.is_running(CONV, "c1")  # given up: its record is gone
        [escalation] = w.sup.escalations()
        assert (escalation.kind, escalation.id, escalation.restarts) == (CONV, "c1", 3)
        assert escalation.crash.error == "RuntimeError: injected commit failure for c1"
        # the commit call in our code (the failing store is the test's own, under tests/)
        assert escalation.crash.where is not None
        assert escalation.crash.where.startswith("engine/conversation_actor.py:")
        assert escalation.to_wire()["error"] == escalation.crash.error
        assert metrics.ACTOR_ESCALATIONS.labels(CONV)._value.get() == before + 1
        # the next command spawns it anew; once it answers, it has recovered
        w.store.fail_commits["c1"] = 0
        outcome = await w.sup.call(CONV, "c1", Accept(ALICE))
        assert outcome.conversation.status is Status.OPEN
        await w.sup.call(CONV, "c1", message(2))  # back for more: the first answer counted
        assert w.sup.escalations() == []


async def test_crashes_in_a_row_back_off_and_an_escalation_expires_when_quiet(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(max_restarts=2) as w:
        await w.sup.call(CONV, "c1", create("c1"))
        w.faults.arm(CONV, "load", "c1", times=3)
        await trio.sleep(400)  # idle: the next command loads it, three loads crash in a row
        started = trio.current_time()
        with pytest.raises(ActorUnavailable):
            await w.sup.call(CONV, "c1", Accept(ALICE))
        # the second load at once, the third 0.05 s later (then 0.1, 0.2 … with more allowed)
        assert trio.current_time() - started == pytest.approx(0.05)
        [escalation] = w.sup.escalations()
        assert escalation.to_wire(detail=False) == {
            "kind": CONV,
            "at": escalation.to_wire()["at"],
            "restarts": 3,
        }
        await trio.sleep(299)
        assert len(w.sup.escalations()) == 1
        await trio.sleep(1)  # five quiet minutes: no longer reported (the log keeps it)
        assert w.sup.escalations() == []


def test_crash_unwraps_single_exception_groups_and_names_our_line() -> None:
    def inner() -> None:
        raise ValueError("bad value\nsecond line")

    try:
        try:
            inner()
        except ValueError as exc:
            raise ExceptionGroup("Exceptions from Trio nursery", [exc]) from None
    except ExceptionGroup as group:
        crash = Crash.of(ExceptionGroup("outer", [group]), at=None)  # type: ignore[arg-type]
    assert crash.error == "ValueError: bad value"
    assert crash.where is not None and crash.where.endswith(" in inner")
    assert crash.where.startswith("tests/engine/test_supervision.py:")
    two = Crash.of(ExceptionGroup("g", [KeyError("a"), OSError("b")]), at=None)  # type: ignore[arg-type]
    assert two.error == "2 errors: KeyError: 'a'; OSError: b"


# --- services -----------------------------------------------------------------------------------


async def test_a_dropped_routing_listener_is_restarted_and_makes_a_full_pass(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing=True) as w:
        w.presence.connect(T, ALICE.id)
        await trio.sleep(1)
        # flood the broker without a checkpoint: the listener's 4096-event queue overflows and
        # the broker drops it; a chat created meanwhile would be missed without the full pass
        w.store.conversations["c9"] = (await w.sup.call(CONV, "c9", create("c9"))).conversation
        for _ in range(5000):
            w.broker.publish(w.store.events["c9"][0])
        await trio.sleep(1)
        [listener] = w.sup.statistics(SERVICE)
        assert listener.id == ROUTING_LISTENER
        assert listener.restarts == 1
        assert listener.last_crash is not None and "SubscriptionDropped" in listener.last_crash
        assert listener.detail["state"] == "RUNNING"
        # routed after all: the full pass after the restart nudged the tenant's router
        assert w.store.conversations["c9"].status is Status.OPEN
        assert w.store.conversations["c9"].assignee == ALICE


async def test_a_crashing_routing_listener_is_restarted_then_escalated_but_never_forgotten(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing=True, max_restarts=2) as w:
        w.faults.arm(SERVICE, "listen", ROUTING_LISTENER, times=3)
        for n in range(3):  # each event crashes the listener once
            w.presence.connect(T, f"agent-{n}")
            await trio.sleep(0.01)
        [escalation] = w.sup.escalations()
        assert (escalation.kind, escalation.id) == (SERVICE, ROUTING_LISTENER)
        assert escalation.crash.error.startswith("InjectedFault: ")
        assert escalation.crash.where is not None and "engine/routing.py" in escalation.crash.where
        # it comes back after its back-off and, once stable, is no longer reported
        await trio.sleep(11)
        [listener] = w.sup.statistics(SERVICE)
        assert listener.detail["state"] == "RUNNING"
        assert w.sup.escalations() == []
        await w.sup.call(CONV, "c1", create("c1"))
        w.presence.connect(T, ALICE.id)
        await trio.sleep(1)
        assert w.store.conversations["c1"].assignee == ALICE


async def test_a_graceful_shutdown_does_not_crash_the_routing_listener(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with trio.open_nursery() as nursery:
        async with world(routing=True, grace=5) as w:

            async def busy() -> None:  # keeps the grace period busy, then is told why it ends
                with pytest.raises(ActorUnavailable, match="shutting down"):
                    await w.sup.call("sleepy", "z", "sleep")

            nursery.start_soon(busy)

            async def events_during_the_grace() -> None:
                await trio.sleep(2)
                w.presence.connect(T, ALICE.id)  # a routing event while shutting down
                await trio.sleep(0.1)

            nursery.start_soon(events_during_the_grace)
            await trio.sleep(1)
            sup = w.sup
        [listener] = sup.statistics(SERVICE)
        assert listener.restarts == 0
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]


async def test_a_router_given_up_does_not_leave_its_tenant_pending(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing=True, max_restarts=0) as w:
        w.faults.arm(ROUTER, "pass", T, times=1)
        w.presence.connect(T, ALICE.id)  # nudges the router, whose first pass crashes
        await trio.sleep(1)
        assert [e.kind for e in w.sup.escalations()] == [ROUTER]
        assert T not in w.pending
        await w.sup.call(CONV, "c1", create("c1"))  # the next event nudges a new router
        await trio.sleep(1)
        assert w.store.conversations["c1"].assignee == ALICE


# --- the other actor kinds ---------------------------------------------------------------------


HB = Heartbeat(T, "w1", "https://shop.example.com/a", "shop.example.com")


@pytest.mark.parametrize("stage", ["handle", "save"])
async def test_a_visitor_session_crash_fails_its_caller_and_keeps_what_was_saved(
    autojump_clock: trio.abc.Clock, stage: str
) -> None:
    async with world() as w:
        await w.sup.call(VISITOR, "v1", HB)
        await w.sup.call(VISITOR, "v2", HB)
        w.faults.arm(VISITOR, stage, "v1")
        next_page = attrs.evolve(HB, current_url="https://shop.example.com/b")  # written at once
        await fails_at_once(w.sup.call(VISITOR, "v1", next_page))
        assert w.store.visitors["v1"].current_url == HB.current_url  # nothing half-written
        assert stats(w.sup, VISITOR, "v1").restarts == 1
        assert stats(w.sup, VISITOR, "v2").restarts == 0
        session = await w.sup.call(VISITOR, "v1", next_page)
        assert session.current_url == next_page.current_url
        assert w.store.visitors["v1"].current_url == next_page.current_url


async def test_a_visitor_crashing_at_expiry_still_goes_offline(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        with w.broker.subscribe(("tenant", T)) as sub:
            await w.sup.call(VISITOR, "v1", HB)
            w.faults.arm(VISITOR, "expiry", "v1")
            with trio.fail_after(120):
                while True:
                    event = await sub.receive.receive()
                    if event.data.get("online") is False:
                        break
        assert w.faults.raised == [(VISITOR, "expiry", "v1")]
        assert not w.sup.is_running(VISITOR, "v1")


async def test_a_widget_crash_fails_its_caller_and_the_restarted_actor_serves(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        await w.sup.call(WIDGET, "w1", Describe())
        w.faults.arm(WIDGET, "handle", "w1")
        await fails_at_once(w.sup.call(WIDGET, "w1", Ping("shop.example.com", None)))
        row = await w.sup.call(WIDGET, "w1", Ping("shop.example.com", None))
        assert row["last_seen_domain"] == "shop.example.com"
        assert stats(w.sup, WIDGET, "w1").restarts == 1


async def test_a_crash_while_loading_a_visitor_or_a_widget_leaves_the_command_queued(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        w.faults.arm(VISITOR, "load", "v1")
        w.faults.arm(WIDGET, "load", "w1")
        started = trio.current_time()
        session = await w.sup.call(VISITOR, "v1", HB)
        row = await w.sup.call(WIDGET, "w1", Describe())
        assert trio.current_time() == started
        assert session.current_url == HB.current_url and row["id"] == "w1"
        assert stats(w.sup, VISITOR, "v1").restarts == stats(w.sup, WIDGET, "w1").restarts == 1


async def test_a_widget_crashing_while_writing_a_ping_fails_its_caller_and_writes_on_retry(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        await w.sup.call(WIDGET, "w1", Describe())
        w.faults.arm(WIDGET, "save", "w1")
        await fails_at_once(w.sup.call(WIDGET, "w1", Ping("shop.example.com", "https://s/1")))
        assert w.store.widgets["w1"]["last_seen_at"] is None  # nothing half-written
        await w.sup.call(WIDGET, "w1", Ping("shop.example.com", "https://s/2"))
        assert w.store.widgets["w1"]["last_seen_url"] == "https://s/2"


async def test_a_widget_crashing_when_its_24_hours_end_still_announces_inactive(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world() as w:
        with w.broker.subscribe(("tenant", T)) as sub:
            await w.sup.call(WIDGET, "w1", Ping("shop.example.com", "https://s/1"))
            w.faults.arm(WIDGET, "timer", "w1")
            statuses = []
            with trio.fail_after(24 * 3600 + 60):
                while "INACTIVE" not in statuses:
                    event = await sub.receive.receive()
                    if event.type == "widget_status_changed":
                        statuses.append(event.data["status"])
        assert statuses == ["ACTIVE", "INACTIVE"]
        assert w.faults.raised == [(WIDGET, "timer", "w1")]
        assert stats(w.sup, WIDGET, "w1").restarts == 1
        row = await w.sup.call(WIDGET, "w1", Describe())
        assert row["last_seen_url"] == "https://s/1"


async def test_a_router_crashing_on_an_offer_restarts_and_routes_on_its_next_pass(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with world(routing=True) as w:
        await w.sup.call(CONV, "c1", create("c1"))
        await w.sup.call(CONV, "c2", create("c2", visitor="v2"))  # a neighbour, not routed
        w.faults.arm(ROUTER, "offer", T)
        w.presence.connect(T, ALICE.id)
        await trio.sleep(1)
        assert w.faults.raised == [(ROUTER, "offer", T)]
        assert stats(w.sup, ROUTER, T).restarts == 1
        assert w.store.conversations["c1"].assignee == ALICE  # the restarted pass offered it
        assert stats(w.sup, CONV, "c1").restarts == 0


REQUEST: contextvars.ContextVar[object] = contextvars.ContextVar("request")


class Remembers:
    """An actor that answers what it sees of :data:`REQUEST`, and lives on."""

    kind = "remembers"

    def __init__(self, actor_id: str) -> None:
        self.id = actor_id

    def describe(self) -> dict[str, Any]:
        return {}

    async def run(self, mailbox: Mailbox) -> None:
        while True:
            try:
                envelope = await mailbox.receive()
            except trio.EndOfChannel:
                return
            assert envelope.reply is not None
            envelope.reply.set(REQUEST.get(None))


async def test_an_actor_keeps_nothing_of_the_caller_that_spawned_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Trio gives a spawned task a copy of its spawner's context; a request handler's context
    holds its whole request (Quart keeps it there). An actor spawned by a request must neither
    see it nor keep it alive for as long as the actor lives."""

    class Request:
        pass

    async with open_supervisor({"remembers": Remembers}) as sup:
        request = Request()
        gone = weakref.ref(request)

        seen: list[object] = []

        async def handler(current: object) -> None:
            REQUEST.set(current)  # what Quart does for each request, in the handler's context
            seen.append(await sup.call("remembers", "r1", "hello"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(handler, request)
        assert seen == [None]
        del request
        gc.collect()
        assert gone() is None  # the request ended; the actor (alive) does not hold it
        assert sup.actor("remembers", "r1") is not None
