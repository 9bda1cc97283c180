"""Routing and the queue: who gets a waiting chat, and where each waiting visitor stands.

One :class:`RouterActor` per tenant (kind ``router``, id = the tenant id). It is *nudged* when
anything that matters changes (a chat is created, accepted, solved or times out; an agent comes,
goes or turns away) and then works from the truth: the tenant's waiting and open chats as
PostgreSQL has them (:class:`RoutingSnapshot`) and who is available right now
(:class:`~engine.presence.AgentPresence`). Nudges that arrive while it works are folded into one
more pass, so a burst of events costs one or two passes.

Each pass, in order:

1. **Round robin** (widgets whose ``routing`` is ``round_robin``): each waiting live chat, oldest
   first, is offered to the available agent with the fewest OPEN chats under their capacity;
   ties go to the agent assigned least recently (in turn). The offer is an ``Accept`` sent to the
   conversation's actor, so a manual accept racing it is settled there (one winner). Nobody
   free: the chat stays WAITING.
2. **Re-offer**: the OPEN chats of an agent offline for ``reoffer_after`` seconds are handed
   (``Transfer``) to an available agent the same way, under round robin. Under manual routing
   they are only flagged (``agent_presence_update`` carries ``openConversationIds``).
3. **Queue**: every waiting live chat's visitor gets ``queue_position`` when its position
   changes: ``{conversationId, position, ahead, estimatedWaitSeconds}``. The estimate is the
   tenant's recent average wait (first accept minus creation, last 20 chats) times the position,
   divided by the agents available (None while nobody is available or nothing is known yet).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from engine.broker import ROUTING, Broker
from engine.clock import Clock, trio_deadline
from engine.conversation import Accept, Transfer
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard
from engine.errors import EngineError
from engine.faults import NO_FAULTS, Faults
from engine.store import RoutingStore
from engine.supervisor import Mailbox
from engine.values import Agent, Event, EventType, QueuePosition, RoutingAgent, RoutingSnapshot

if TYPE_CHECKING:
    from engine.presence import AgentPresence

KIND = "router"
ROUTING_LISTENER = "routing_listener"  # the service that nudges routers
MANUAL, ROUND_ROBIN = "manual", "round_robin"


@attrs.frozen
class Nudge:
    """Something that matters to routing changed; the router looks again.

    ``resend_to``: a visitor whose socket just (re)connected gets its queue position again even
    if it did not change (positions are not stored).
    """

    resend_to: str | None = None


Dispatch = Callable[[str, str, Any], Awaitable[Any]]


def pick_agent(
    candidates: list[RoutingAgent],
    open_counts: Mapping[str, int],
    last_assigned: Mapping[str, Any],
) -> RoutingAgent | None:
    """The agent with the fewest OPEN chats under capacity; ties: never assigned first, then the
    one assigned least recently (``last_assigned`` holds comparable times), then by id."""
    free = [a for a in candidates if open_counts.get(a.id, 0) < a.capacity]
    if not free:
        return None

    def key(a: RoutingAgent) -> tuple[Any, ...]:
        last = last_assigned.get(a.id)
        return (open_counts.get(a.id, 0), last is not None, last if last is not None else 0, a.id)

    return min(free, key=key)


# --- the pure core ------------------------------------------------------------------------------


class RouterPhase(StrEnum):
    IDLE = "IDLE"  # nothing waits, no hand-over is due: the actor may stop
    WATCHING = "WATCHING"  # chats wait in line, or a hand-over is due later


@attrs.frozen
class RouterState:
    positions: Mapping[str, tuple[int, int | None]] = attrs.field(factory=dict)  # sent last
    last_assigned: Mapping[str, dt.datetime] = attrs.field(factory=dict)
    wake_at: dt.datetime | None = None
    passes: int = 0
    offers: int = 0
    misses: int = 0  # passes in a row with an offer not taken

    @property
    def phase(self) -> RouterPhase:
        return RouterPhase.WATCHING if self.positions or self.wake_at else RouterPhase.IDLE


@attrs.frozen
class View:
    """What one pass sees: the stored truth, and who is available now (presence)."""

    tenant_id: str
    snapshot: RoutingSnapshot
    available: frozenset[str]
    offline_since: Mapping[str, dt.datetime]  # agents with OPEN chats and no inbox open


@attrs.frozen
class Offer:
    conversation_id: str
    agent: RoutingAgent
    transfer: bool  # a hand-over of an absent agent's OPEN chat (else: accept a waiting one)


@attrs.frozen
class Plan:
    offers: tuple[Offer, ...]
    wake_at: dt.datetime | None  # when a hand-over falls due


@attrs.frozen
class Rules:
    reoffer_after_seconds: float = 30.0
    retry_seconds: float = 1.0  # an offer not taken: look again this much later, doubling
    retry_max_seconds: float = 60.0  # for each pass in a row that misses, up to this

    def retry_after(self, misses: int) -> dt.timedelta:
        seconds = self.retry_seconds * 2 ** min(max(misses - 1, 0), 16)
        return dt.timedelta(seconds=min(seconds, self.retry_max_seconds))


@attrs.frozen
class Look:
    """A pass begins: what should be offered to whom?"""

    view: View


@attrs.frozen
class Offered:
    """The offers of a pass were sent; ``taken`` are the conversations that accepted theirs."""

    view: View
    planned: Plan
    taken: frozenset[str]
    resend: frozenset[str] = frozenset()


@attrs.frozen
class Transition:
    state: RouterState
    events: tuple[Event, ...] = ()
    offers: tuple[Offer, ...] = ()  # to send, in order (a Look's answer)
    planned: Plan | None = None


def apply(
    state: RouterState, command: Look | Offered, now: dt.datetime, rules: Rules
) -> Transition:
    """One step of a routing pass (pure): a :class:`Look` plans the offers (:func:`plan`);
    :class:`Offered` settles who got what and the queue (:func:`settle`)."""
    if isinstance(command, Look):
        planned = plan(state, command.view, now, rules)
        return Transition(state, offers=planned.offers, planned=planned)
    if isinstance(command, Offered):
        return settle(
            state, command.view, command.planned, command.taken, now, rules, resend=command.resend
        )
    raise TypeError(f"a router cannot handle {type(command).__name__}")


def plan(state: RouterState, view: View, now: dt.datetime, rules: Rules) -> Plan:
    """The offers of one pass (pure), each planned as if the ones before it were taken."""
    snapshot = view.snapshot
    agents = {a.id: a for a in snapshot.agents}
    candidates = [agents[a] for a in sorted(view.available) if a in agents]
    counts: dict[str, int] = {}
    if snapshot.held is not None:
        counts.update(snapshot.held)
    else:
        for chat in snapshot.open:
            counts[chat.assignee_id] = counts.get(chat.assignee_id, 0) + 1
    last = dict(state.last_assigned)
    offers: list[Offer] = []

    def offer(conversation_id: str, among: list[RoutingAgent], *, transfer: bool) -> bool:
        agent = pick_agent(among, counts, last)
        if agent is None:
            return False
        offers.append(Offer(conversation_id, agent, transfer))
        counts[agent.id] = counts.get(agent.id, 0) + 1
        last[agent.id] = now
        return True

    for waiting in snapshot.waiting:
        if waiting.routing == ROUND_ROBIN:
            offer(waiting.id, candidates, transfer=False)
    wake_at: dt.datetime | None = None
    for chat in snapshot.open:
        since = view.offline_since.get(chat.assignee_id)
        if chat.assignee_id in view.available or since is None or chat.routing != ROUND_ROBIN:
            continue  # here, never seen here (e.g. after a restart), or manual routing
        due = since + dt.timedelta(seconds=rules.reoffer_after_seconds)
        if due > now:
            wake_at = due if wake_at is None else min(wake_at, due)
            continue
        others = [a for a in candidates if a.id != chat.assignee_id]
        if offer(chat.id, others, transfer=True):
            counts[chat.assignee_id] -= 1
    return Plan(tuple(offers), wake_at)


def settle(
    state: RouterState,
    view: View,
    planned: Plan,
    taken: frozenset[str],
    now: dt.datetime,
    rules: Rules,
    *,
    resend: frozenset[str] = frozenset(),
) -> Transition:
    """After the offers: who was assigned, and every waiting visitor's place in line (pure).

    A visitor hears ``queue_position`` when its position or estimate changes, or when its
    socket just reconnected (``resend``). An offer not taken makes the router look again
    ``retry_seconds`` later.
    """
    accepted = {
        o.conversation_id for o in planned.offers if not o.transfer and o.conversation_id in taken
    }
    last = dict(state.last_assigned)
    for o in planned.offers:
        if o.conversation_id in taken:
            last[o.agent.id] = now
    waiting = [w for w in view.snapshot.waiting if w.id not in accepted]
    agents = {a.id for a in view.snapshot.agents}
    available = len(view.available & agents)
    average = view.snapshot.average_wait_seconds
    positions: dict[str, tuple[int, int | None]] = {}
    events: list[Event] = []
    for position, chat in enumerate(waiting, start=1):
        estimate = None
        if average is not None and available > 0:
            estimate = round(average * position / available)
        positions[chat.id] = (position, estimate)
        if state.positions.get(chat.id) == (position, estimate) and chat.visitor_id not in resend:
            continue
        events.append(
            Event(
                type=EventType.QUEUE_POSITION,
                at=now,
                tenant_id=view.tenant_id,
                visitor_id=chat.visitor_id,
                data=QueuePosition(chat.id, position, position - 1, estimate).to_wire(),
            )
        )
    wake_at = planned.wake_at
    missed = any(o.conversation_id not in taken for o in planned.offers)
    misses = state.misses + 1 if missed else 0
    if missed:  # a colleague was faster, capacity, an actor unavailable: look again, backing off
        retry = now + rules.retry_after(misses)
        wake_at = retry if wake_at is None else min(wake_at, retry)
    return Transition(
        RouterState(
            positions=positions,
            last_assigned=last,
            wake_at=wake_at,
            passes=state.passes + 1,
            offers=state.offers + len(taken),
            misses=misses,
        ),
        tuple(events),
    )


# --- the actor ---------------------------------------------------------------------------------


class RouterActor:
    """Round robin, re-offers and queue positions for one tenant: a thin shell that loads the
    truth, asks :func:`plan`, sends the offers to the conversations, and publishes what
    :func:`settle` says."""

    kind = KIND

    def __init__(
        self,
        tenant_id: str,
        *,
        store: RoutingStore,
        broker: Broker,
        clock: Clock,
        presence: AgentPresence,
        dispatch: Dispatch,
        reoffer_after: float = 30.0,
        idle_seconds: float = 300.0,
        pending: set[str] | None = None,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.id = tenant_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.presence = presence
        self.dispatch = dispatch
        self.rules = Rules(reoffer_after)
        self.idle_seconds = idle_seconds
        self.pending = pending if pending is not None else set()
        self.faults = faults
        self.state = RouterState()

    @property
    def passes(self) -> int:
        return self.state.passes

    @property
    def offers(self) -> int:
        return self.state.offers

    def describe(self) -> dict[str, Any]:
        return {
            "tenant_id": self.id,
            "state": self.state.phase.value,
            "waiting": len(self.state.positions),
            "passes": self.state.passes,
            "offers": self.state.offers,
        }

    async def run(self, mailbox: Mailbox) -> None:
        try:
            await self._serve(mailbox)
        finally:  # whatever ends this run, the next event for the tenant nudges afresh
            self.pending.discard(self.id)

    async def _serve(self, mailbox: Mailbox) -> None:
        await self._pass()
        while True:
            if self.state.wake_at is not None:
                deadline = trio_deadline(self.clock, self.state.wake_at)
            elif self.state.positions:
                deadline = math.inf  # chats wait: stay until a nudge
            else:
                deadline = trio.current_time() + self.idle_seconds
            try:
                envelope = await mailbox.receive_until(deadline)
            except trio.EndOfChannel:
                return
            if envelope is None:
                if self.state.wake_at is None:
                    return  # idle
                await self._pass()
                continue
            replies = [envelope]
            while True:  # fold every queued nudge into this pass
                try:
                    replies.append(mailbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            resend = frozenset(
                env.command.resend_to
                for env in replies
                if isinstance(env.command, Nudge) and env.command.resend_to
            )
            await self._pass(resend)
            for env in replies:
                if env.reply:
                    env.reply.set(None)

    async def _pass(self, resend: frozenset[str] = frozenset()) -> None:
        self.pending.discard(self.id)  # nudges from now on ask for another pass
        self.faults.check(KIND, "pass", self.id)
        snapshot = await self.store.load_routing(self.id)
        available = frozenset(self.presence.available(self.id))
        offline = {
            chat.assignee_id: since
            for chat in snapshot.open
            if (since := self.presence.offline_since(self.id, chat.assignee_id)) is not None
        }
        view = View(self.id, snapshot, available, offline)
        now = self.clock.now()
        look = apply(self.state, Look(view), now, self.rules)
        assert look.planned is not None
        taken: set[str] = set()
        for offer in look.offers:
            self.faults.check(KIND, "offer", self.id)
            who = Agent(offer.agent.id, offer.agent.name, offer.agent.avatar_url)
            command = Transfer(who) if offer.transfer else Accept(who)
            try:
                await self.dispatch(CONVERSATION, offer.conversation_id, Guard(self.id, command))
            except EngineError:
                continue  # accepted by a colleague, solved, at capacity, or unavailable
            taken.add(offer.conversation_id)
        transition = apply(
            self.state, Offered(view, look.planned, frozenset(taken), resend), now, self.rules
        )
        self.state = transition.state
        for event in transition.events:
            self.broker.publish(event)


class Cast(Protocol):
    async def __call__(self, kind: str, actor_id: str, command: Any) -> None: ...


class SubscriptionDropped(Exception):
    """The broker dropped the routing listener (it fell behind): its supervisor restarts it."""


async def run_routing_listener(
    broker: Broker,
    cast: Cast,
    pending: set[str],
    tenants: Callable[[], Awaitable[Iterable[str]]],
    *,
    faults: Faults = NO_FAULTS,
    here: Callable[[str], bool] = lambda tenant_id: True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Nudge a tenant's router on every event that matters to routing (the broker's
    :data:`~engine.broker.ROUTING` topic; Trio; a service that runs for ever under the
    supervisor).

    On every start (the server's, or a restart after the broker dropped it) it subscribes first,
    then makes a **full routing pass**: every tenant ``tenants()`` names (those with waiting chats
    and those whose router runs) is nudged, so an event missed while it was down changes nothing.
    A tenant already nudged and not yet re-examined is not nudged again (``pending``), so a
    router's mailbox never floods and this listener rarely falls behind; if it does, it raises
    :class:`SubscriptionDropped` instead of returning quietly.

    Several processes: only a router that runs ``here`` (this process owns it) clears
    ``pending``, so a nudge for a router on another process is always sent (that router folds
    the nudges queued in its mailbox into one pass).
    """
    with broker.subscribe(ROUTING, buffer=4096) as sub:
        pending.clear()  # nudges lost with the previous subscription are re-sent below
        task_status.started()
        for tenant_id in await tenants():
            pending.add(tenant_id)
            await cast(KIND, tenant_id, Nudge())
        async for event in sub.receive:
            faults.check("service", "listen", ROUTING_LISTENER)
            if not here(event.tenant_id):
                await cast(KIND, event.tenant_id, Nudge())
            elif event.tenant_id not in pending:
                pending.add(event.tenant_id)
                await cast(KIND, event.tenant_id, Nudge())
    raise SubscriptionDropped(sub.dropped_reason or "the broker closed the routing subscription")
