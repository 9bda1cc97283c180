"""The publishing seam: every realtime event goes through :meth:`Broker.publish`.

Subscribers (a widget's WebSocket, an agent's inbox WebSocket) subscribe to *topics*:
``("tenant", id)`` is the inbox's truth stream, ``("visitor", id)`` a visitor's own stream and
``("conversation", id)`` a single conversation, ``("visitors", tenant)`` every visitor of a tenant
(for news that concerns them all, such as agents coming online), and :data:`ROUTING` the events
the router acts on, from every tenant (for the engine's routing listener, never a socket). Each subscriber has a small bounded queue.
Publishing never waits: a subscriber whose queue is full is dropped with a reason (its socket is
then closed by the web layer), so one stalled socket never holds back the actor or the others.

With several processes (``engine/cluster.py``) the broker also has a way **out**: every event
published here is handed to the bus after the local fan-out, and the events the other processes
publish come back in through :meth:`Broker.deliver`, to this process's subscribers only (the
routing listener hears the events of its own process: the process that published an event routes
on it). Actors and state machines do not change.

Visitor presence is **coalesced per tenant** before the fan-out (:class:`PresenceBatcher`): a
flood of visitors (anyone can mint one from a public widget id) costs each inbox socket at most
one presence frame a second, however many visitors arrive. Typing hints and read marks are
coalesced the same way on their way to the inboxes (:class:`ActivityBatcher`, four frames a
second at most).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from engine import metrics
from engine.clock import Clock
from engine.values import Event, EventType

Topic = tuple[str, str]

DEFAULT_BUFFER = 256
ROUTING: Topic = ("routing", "*")
# What reaches ROUTING: the event types that can change who should get a chat. A message or a
# presence tick never wakes the routing listener (at 2,000 msg/s a listener of every event fell
# more than its 4,096 buffered events behind and was dropped).
ROUTING_TYPES = frozenset(
    {
        EventType.CONVERSATION_CREATED.value,
        EventType.CONVERSATION_STATUS_CHANGED.value,
        EventType.CONVERSATION_ASSIGNED.value,
        EventType.AGENT_PRESENCE_UPDATE.value,
    }
)


def topics_of(event: Event) -> list[Topic]:
    """Where an event goes: its tenant's inbox, its conversation and its visitor; the router's
    listener when it is a :data:`ROUTING_TYPES` event."""
    topics: list[Topic] = [("tenant", event.tenant_id)]
    if event.type in ROUTING_TYPES:
        topics.append(ROUTING)
    if event.conversation_id is not None:
        topics.append(("conversation", event.conversation_id))
    if event.visitor_id is not None:
        topics.append(("visitor", event.visitor_id))
    if event.to_all_visitors:
        topics.append(("visitors", event.tenant_id))
    return topics


class EventQueue:
    """A bounded queue with one receiving task: what a Trio memory channel does for a
    subscriber, at a tenth of its memory (every open widget holds one: a list and at most one
    parked task, where a channel pair holds two objects, a state, a deque and two ordered dicts).

    ``receive`` checkpoints as a channel's does; a second task receiving at once is an error
    (``trio.BusyResourceError``), as it is on a trio-websocket or a stream.
    """

    __slots__ = ("_closed", "_items", "_size", "_waiter")

    def __init__(self, size: int) -> None:
        self._items: list[Event] = []
        self._size = size
        self._waiter: trio.lowlevel.Task | None = None
        self._closed = False

    def put_nowait(self, item: Event) -> bool:
        """Queue without waiting; False when full or closed."""
        if self._closed or len(self._items) >= self._size:
            return False
        self._items.append(item)
        self._wake()
        return True

    def close(self) -> None:
        """No more items: the receiver takes what is queued, then ``trio.EndOfChannel``."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            task, self._waiter = self._waiter, None
            trio.lowlevel.reschedule(task)

    def __len__(self) -> int:
        return len(self._items)

    def receive_nowait(self) -> Event:
        if self._items:
            return self._items.pop(0)
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Event:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            item = self.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        while True:
            if self._waiter is not None:
                raise trio.BusyResourceError("another task is receiving from this queue")
            self._waiter = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                continue

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Subscription:
    """One subscriber: a bounded queue of events and, once dropped, the reason."""

    __slots__ = ("buffer", "dropped_reason", "receive", "topics")

    def __init__(self, topics: Iterable[Topic], buffer: int) -> None:
        self.topics = tuple(topics)
        self.buffer = buffer
        self.receive = EventQueue(buffer)
        self.dropped_reason: str | None = None

    def offer(self, event: Event) -> bool:
        """Queue an event without waiting; False when the queue is full or closed."""
        return self.receive.put_nowait(event)

    def close(self, reason: str | None = None) -> None:
        if reason and self.dropped_reason is None:
            self.dropped_reason = reason
        self.receive.close()

    def __aiter__(self) -> EventQueue:
        return self.receive


@attrs.frozen
class BrokerStatistics:
    subscribers: int
    topics: int
    published: int
    delivered: int
    dropped_subscribers: int


class Broker:
    """Topic fan-out with a drop-the-slow-subscriber policy."""

    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._topics: dict[Topic, set[Subscription]] = {}
        self._published = 0
        self._delivered = 0
        self._dropped = 0
        self.out: Callable[[Event], None] | None = None  # several processes: to the bus
        self.batcher: PresenceBatcher | None = None  # coalesces visitor presence (the server's)
        self.activity: ActivityBatcher | None = None  # coalesces typing and read marks (same)

    @contextmanager
    def subscribe(self, *topics: Topic, buffer: int | None = None) -> Iterator[Subscription]:
        """Subscribe for the duration of the ``with`` block."""
        sub = Subscription(topics, self._buffer if buffer is None else buffer)
        for topic in topics:
            self._topics.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            self._remove(sub)
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self._topics.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._topics[topic]

    def publish(self, event: Event) -> None:
        """Deliver to every subscriber of the event's topics, at most once each, then (several
        processes) to the bus; never blocks."""
        self._published += 1
        metrics.child(metrics.EVENTS_PUBLISHED, event.type).inc()
        self._fan_out(event, topics_of(event))
        if self.out is not None:
            self.out(event)

    def publish_here(self, event: Event, *, routing: bool = True) -> None:
        """Deliver to this process's subscribers only: for what every process derives for
        itself (agent presence, from facts the bus shares). ``routing=False``: not to the routing
        listener either (another process routes on it)."""
        self._published += 1
        metrics.child(metrics.EVENTS_PUBLISHED, event.type).inc()
        topics = topics_of(event)
        self._fan_out(event, topics if routing else [t for t in topics if t != ROUTING])

    def deliver(self, event: Event) -> None:
        """An event another process published: to the subscribers here, not the routing
        listener (the publishing process routes on it)."""
        self._fan_out(event, [t for t in topics_of(event) if t != ROUTING])

    def _fan_out(self, event: Event, topics: list[Topic]) -> None:
        kind = event.type
        if self.batcher is not None and kind in self.batcher.types and self.batcher.hold(event):
            return  # goes out in its tenant's next batch (presence goes to the tenant only)
        activity = self.activity
        if activity is not None:
            if kind in activity.types and activity.hold(event):
                inbox: Topic = ("tenant", event.tenant_id)
                rest = [t for t in topics if t != inbox]
                if rest:  # a visitor's stream hears it now; the inboxes in the next batch
                    self.fan_out(event, rest, besides=inbox)
                return
            if kind is EventType.MESSAGE_CREATED:
                activity.message(event)
        self.fan_out(event, topics)

    def fan_out(self, event: Event, topics: Iterable[Topic], besides: Topic | None = None) -> None:
        """To every subscriber of ``topics``, at most once each (no batching), none of those of
        ``besides`` (they hear it another way)."""
        seen: set[int] = set()
        if besides is not None:
            seen.update(id(sub) for sub in self._topics.get(besides, ()))
        delivered = 0
        for topic in topics:
            for sub in list(self._topics.get(topic, ())):
                if id(sub) in seen:
                    continue
                seen.add(id(sub))
                if sub.offer(event):
                    delivered += 1
                else:
                    self._dropped += 1
                    metrics.SUBSCRIBERS_DROPPED.inc()
                    self._remove(sub)
                    sub.close(f"slow subscriber: more than {sub.buffer} events unread")
        # one counter update per event, not one per subscriber (the counter takes a lock)
        self._delivered += delivered
        metrics.EVENTS_DELIVERED.inc(delivered)

    def subscriber_count(self, topic: Topic) -> int:
        return len(self._topics.get(topic, ()))

    def audience(self, *topics: Topic) -> int:
        """How many distinct subscribers hear at least one of ``topics``."""
        return len({id(sub) for topic in topics for sub in self._topics.get(topic, ())})

    def statistics(self) -> BrokerStatistics:
        subs = {id(s) for group in self._topics.values() for s in group}
        return BrokerStatistics(
            subscribers=len(subs),
            topics=len(self._topics),
            published=self._published,
            delivered=self._delivered,
            dropped_subscribers=self._dropped,
        )


# A tenant's presence frames go out at most this often (seconds): the first change in a quiet
# second at once, the rest of that second together when it is up.
PRESENCE_WINDOW = 1.0
# A tenant's typing and read-mark frames (:class:`ActivityBatcher`): at most four a second.
ACTIVITY_WINDOW = 0.25
# Tenants whose last frame time is remembered before the stale ones are forgotten.
_REMEMBERED = 1024


class TenantBatcher:
    """Coalesces one kind of a tenant's events on their way to its inbox sockets (the
    ``("tenant", id)`` topic): at most one frame per ``window`` reaches them.

    The first event in a quiet window goes out at once, as itself. Events within the window are
    held, the latest per :meth:`key`, and go out together when it is up: the event itself when
    only one is held, else one :attr:`batch_type` event (:meth:`batch_data`). What the event also
    goes to (a visitor's stream, a conversation's) is not held. :meth:`run` is a supervised
    service; windows are measured on Trio's clock (a test's fake clock moves them).
    """

    types: frozenset[EventType] = frozenset()
    batch_type: EventType

    def __init__(self, broker: Broker, clock: Clock, window: float) -> None:
        self.broker = broker
        self.clock = clock
        self.window = window
        self._sent_at: dict[str, float] = {}  # tenant -> Trio time of its last frame
        self._held: dict[str, dict[Any, Event]] = {}  # tenant -> key -> latest event
        self._wake = trio.Event()
        self.batches = 0  # frames that carried more than one event
        self.held = 0  # events that waited for a window to end
        self.superseded = 0  # held events dropped: something later made them moot

    def key(self, event: Event) -> Any:
        raise NotImplementedError

    def batch_data(self, events: list[Event]) -> dict[str, Any]:
        raise NotImplementedError

    def hold(self, event: Event) -> bool:
        """True: ``event`` is held for its tenant's batch; False: send it now."""
        tenant = event.tenant_id
        now = trio.current_time()
        held = self._held.get(tenant)
        if held is None and now - self._sent_at.get(tenant, -math.inf) >= self.window:
            if len(self._sent_at) >= _REMEMBERED:
                self._forget(now)
            self._sent_at[tenant] = now
            return False
        if held is None:
            held = self._held[tenant] = {}
        key = self.key(event)
        held.pop(key, None)  # re-insert: the batch lists events in the order they came
        held[key] = event
        self.held += 1
        self._wake.set()
        return True

    def drop(self, tenant: str, key: Any) -> None:
        """Forget the held event of ``key`` (something published since makes it moot)."""
        held = self._held.get(tenant)
        if held is not None and held.pop(key, None) is not None:
            self.superseded += 1
            if not held:
                del self._held[tenant]

    def _forget(self, now: float) -> None:
        for tenant, at in list(self._sent_at.items()):
            if now - at >= self.window and tenant not in self._held:
                del self._sent_at[tenant]

    def flush_due(self) -> float | None:
        """Send every batch whose window is up; return when the next one is due (Trio time)."""
        now = trio.current_time()
        due: float | None = None
        for tenant in list(self._held):
            at = self._sent_at.get(tenant, -math.inf) + self.window
            if at > now:
                due = at if due is None else min(due, at)
                continue
            held = self._held.pop(tenant)
            self._sent_at[tenant] = now
            self.broker.fan_out(self._frame(tenant, list(held.values())), [("tenant", tenant)])
        return due

    def _frame(self, tenant: str, events: list[Event]) -> Event:
        if len(events) == 1:
            return events[0]
        self.batches += 1
        return Event(
            type=self.batch_type,
            at=self.clock.now(),
            tenant_id=tenant,
            data=self.batch_data(events),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send each held batch when its window is up (a service; Trio)."""
        task_status.started()
        while True:
            due = self.flush_due()
            if due is None:
                await self._wake.wait()
                self._wake = trio.Event()
            else:
                await trio.sleep_until(due)

    def describe(self) -> dict[str, Any]:
        return {
            "tenants_holding": len(self._held),
            "held_updates": sum(len(h) for h in self._held.values()),
            "batches_sent": self.batches,
            "updates_held": self.held,
            "updates_superseded": self.superseded,
        }


class PresenceBatcher(TenantBatcher):
    """Coalesces ``visitor_presence_update`` per tenant: at most one presence frame a second
    reaches a tenant's inbox sockets (one ``visitor_presence_update`` when only one visitor
    changed, else one ``visitor_presence_batch``, the latest of each visitor in the order they
    changed). Per-visitor coalescing (one update a second per visitor) stays in the visitor's
    actor; this bounds the tenant as a whole."""

    types = frozenset({EventType.VISITOR_PRESENCE_UPDATE})
    batch_type = EventType.VISITOR_PRESENCE_BATCH

    def __init__(self, broker: Broker, clock: Clock, window: float = PRESENCE_WINDOW) -> None:
        super().__init__(broker, clock, window)

    def key(self, event: Event) -> Any:
        return str(event.data.get("visitorId"))

    def batch_data(self, events: list[Event]) -> dict[str, Any]:
        return {"visitors": [e.data for e in events]}


class ActivityBatcher(TenantBatcher):
    """Coalesces ``typing`` and ``conversation_read`` on their way to a tenant's inbox sockets:
    at most four such frames a second per inbox, however many visitors type and read (one event
    when only one is held, else one ``activity_batch`` of the latest per conversation and
    sender or reader). A held ``on`` whose sender's message is published meanwhile is dropped:
    the message ends the typing, and a late ``on`` would show it again. The visitor's own
    stream (an agent typing, its other tabs' read marks) is not held."""

    types = frozenset({EventType.TYPING, EventType.CONVERSATION_READ})
    batch_type = EventType.ACTIVITY_BATCH

    def __init__(self, broker: Broker, clock: Clock, window: float = ACTIVITY_WINDOW) -> None:
        super().__init__(broker, clock, window)

    def key(self, event: Event) -> Any:
        d = event.data
        if event.type is EventType.TYPING:
            return ("typing", event.conversation_id, d.get("senderType"), d.get("senderId"))
        return ("read", event.conversation_id, d.get("reader"), d.get("agentId"))

    def batch_data(self, events: list[Event]) -> dict[str, Any]:
        return {"events": [e.to_wire() for e in events]}

    def message(self, event: Event) -> None:
        """A message was published: its sender's held typing hint is moot."""
        if event.tenant_id in self._held:
            m = event.data.get("message") or {}
            key = ("typing", event.conversation_id, m.get("senderType"), m.get("senderId"))
            self.drop(event.tenant_id, key)
