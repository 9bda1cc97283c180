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
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from engine.broker import ALL, Broker
from engine.clock import Clock, trio_deadline
from engine.conversation import Accept, Agent, Transfer
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard
from engine.errors import EngineError
from engine.events import Event, EventType
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Mailbox

if TYPE_CHECKING:
    from engine.presence import AgentPresence

KIND = "router"
ROUTING_LISTENER = "routing_listener"  # the service that nudges routers
MANUAL, ROUND_ROBIN = "manual", "round_robin"


@attrs.frozen
class WaitingChat:
    id: str
    visitor_id: str
    created_at: dt.datetime
    routing: str


@attrs.frozen
class OpenChat:
    id: str
    assignee_id: str
    routing: str


@attrs.frozen
class RoutingAgent:
    id: str
    name: str
    avatar_url: str | None
    capacity: int


@attrs.frozen
class RoutingSnapshot:
    waiting: tuple[WaitingChat, ...]
    open: tuple[OpenChat, ...]
    agents: tuple[RoutingAgent, ...]
    average_wait_seconds: float | None = None


class RoutingStore(Protocol):
    async def load_routing(self, tenant_id: str) -> RoutingSnapshot:
        """The tenant's waiting and open chats and its agents (Trio)."""
        ...


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
    open_counts: dict[str, int],
    last_assigned: dict[str, float],
) -> RoutingAgent | None:
    """The agent with the fewest OPEN chats under capacity; ties: assigned least recently."""
    free = [a for a in candidates if open_counts.get(a.id, 0) < a.capacity]
    if not free:
        return None
    return min(
        free,
        key=lambda a: (open_counts.get(a.id, 0), last_assigned.get(a.id, -math.inf), a.id),
    )


class RouterActor:
    """Round robin, re-offers and queue positions for one tenant."""

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
        self.reoffer_after = reoffer_after
        self.idle_seconds = idle_seconds
        self.pending = pending if pending is not None else set()
        self.faults = faults
        self.passes = 0
        self.offers = 0
        self._positions: dict[str, tuple[int, int | None]] = {}
        self._last_assigned: dict[str, float] = {}
        self._wake_at: dt.datetime | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "tenantId": self.id,
            "state": "WATCHING" if self._positions or self._wake_at else "IDLE",
            "waiting": len(self._positions),
            "passes": self.passes,
            "offers": self.offers,
        }

    async def run(self, mailbox: Mailbox) -> None:
        try:
            await self._serve(mailbox)
        finally:  # whatever ends this run, the next event for the tenant nudges afresh
            self.pending.discard(self.id)

    async def _serve(self, mailbox: Mailbox) -> None:
        await self._pass()
        while True:
            if self._wake_at is not None:
                deadline = trio_deadline(self.clock, self._wake_at)
            elif self._positions:
                deadline = math.inf  # chats wait: stay until a nudge
            else:
                deadline = trio.current_time() + self.idle_seconds
            with trio.move_on_at(deadline) as waited:
                try:
                    envelope = await mailbox.receive()
                except trio.EndOfChannel:
                    return
            if waited.cancelled_caught:
                if self._wake_at is None:
                    return  # idle
                await self._pass()
                continue
            replies = [envelope]
            while True:  # fold every queued nudge into this pass
                try:
                    replies.append(mailbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            resend = {
                env.command.resend_to
                for env in replies
                if isinstance(env.command, Nudge) and env.command.resend_to
            }
            try:
                await self._pass(resend)
            finally:
                for env in replies:
                    if env.reply:
                        env.reply.set(None)

    async def _pass(self, resend: set[str] | None = None) -> None:
        self.pending.discard(self.id)  # nudges from now on ask for another pass
        self.faults.check(KIND, "pass", self.id)
        self.passes += 1
        snapshot = await self.store.load_routing(self.id)
        available = self.presence.available(self.id)
        agents = {a.id: a for a in snapshot.agents}
        candidates = [agents[a] for a in sorted(available) if a in agents]
        open_counts: dict[str, int] = {}
        for chat in snapshot.open:
            open_counts[chat.assignee_id] = open_counts.get(chat.assignee_id, 0) + 1

        still_waiting: list[WaitingChat] = []
        for waiting in snapshot.waiting:
            if waiting.routing == ROUND_ROBIN and await self._offer(
                waiting.id, candidates, open_counts, transfer=False
            ):
                continue
            still_waiting.append(waiting)

        self._wake_at = None
        now = self.clock.now()
        for chat in snapshot.open:
            if chat.assignee_id in available:
                continue
            since = self.presence.offline_since(self.id, chat.assignee_id)
            if since is None or chat.routing != ROUND_ROBIN:
                continue  # never seen online here (e.g. after a restart), or manual routing
            due = since + dt.timedelta(seconds=self.reoffer_after)
            if due > now:
                self._wake_at = due if self._wake_at is None else min(self._wake_at, due)
                continue
            others = [a for a in candidates if a.id != chat.assignee_id]
            if await self._offer(chat.id, others, open_counts, transfer=True):
                open_counts[chat.assignee_id] -= 1

        self._publish_positions(
            still_waiting, snapshot.average_wait_seconds, len(candidates), resend or set()
        )

    async def _offer(
        self,
        conversation_id: str,
        candidates: list[RoutingAgent],
        open_counts: dict[str, int],
        *,
        transfer: bool,
    ) -> bool:
        agent = pick_agent(candidates, open_counts, self._last_assigned)
        if agent is None:
            return False
        self.faults.check(KIND, "offer", self.id)
        who = Agent(agent.id, agent.name, agent.avatar_url)
        command = Transfer(who) if transfer else Accept(who)
        try:
            await self.dispatch(CONVERSATION, conversation_id, Guard(self.id, command))
        except EngineError:
            return False  # a colleague accepted it first, or it was solved meanwhile
        self.offers += 1
        open_counts[agent.id] = open_counts.get(agent.id, 0) + 1
        self._last_assigned[agent.id] = trio.current_time()
        return True

    def _publish_positions(
        self,
        waiting: list[WaitingChat],
        average: float | None,
        available: int,
        resend: set[str],
    ) -> None:
        current: dict[str, tuple[int, int | None]] = {}
        now = self.clock.now()
        for position, chat in enumerate(waiting, start=1):
            estimate = None
            if average is not None and available > 0:
                estimate = round(average * position / available)
            current[chat.id] = (position, estimate)
            if self._positions.get(chat.id) == (position, estimate) and (
                chat.visitor_id not in resend
            ):
                continue
            self.broker.publish(
                Event(
                    type=EventType.QUEUE_POSITION.value,
                    at=now,
                    tenant_id=self.id,
                    visitor_id=chat.visitor_id,
                    data={
                        "conversationId": chat.id,
                        "position": position,
                        "ahead": position - 1,
                        "estimatedWaitSeconds": estimate,
                    },
                )
            )
        self._positions = current


ROUTING_EVENTS = frozenset(
    {
        EventType.CONVERSATION_CREATED.value,
        EventType.CONVERSATION_STATUS_CHANGED.value,
        EventType.CONVERSATION_ASSIGNED.value,
        EventType.AGENT_PRESENCE_UPDATE.value,
    }
)


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
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Nudge a tenant's router on every event that matters to routing (Trio; a service that runs
    for ever under the supervisor).

    On every start (the server's, or a restart after the broker dropped it) it subscribes first,
    then makes a **full routing pass**: every tenant ``tenants()`` names (those with waiting chats
    and those whose router runs) is nudged, so an event missed while it was down changes nothing.
    A tenant already nudged and not yet re-examined is not nudged again (``pending``), so a
    router's mailbox never floods and this listener rarely falls behind; if it does, it raises
    :class:`SubscriptionDropped` instead of returning quietly.
    """
    with broker.subscribe(ALL, buffer=4096) as sub:
        pending.clear()  # nudges lost with the previous subscription are re-sent below
        task_status.started()
        for tenant_id in await tenants():
            pending.add(tenant_id)
            await cast(KIND, tenant_id, Nudge())
        async for event in sub.receive:
            faults.check("service", "listen", ROUTING_LISTENER)
            if event.type in ROUTING_EVENTS and event.tenant_id not in pending:
                pending.add(event.tenant_id)
                await cast(KIND, event.tenant_id, Nudge())
    raise SubscriptionDropped(sub.dropped_reason or "the broker closed the routing subscription")
