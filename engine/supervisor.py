"""Actors, services and their supervisor.

An **actor** is an object with ``kind`` and ``id`` and an ``async run(mailbox)`` (Trio) that serves
commands from its mailbox until it decides to stop (idle, expired) or the mailbox closes. A
**service** is a long-lived engine task with no mailbox (the routing listener): an
``async fn(*, task_status)`` that runs for ever. The :class:`Supervisor` owns the mailboxes, so
queued commands outlive a crash of the actor.

Supervision tree and strategy (``docs/architecture.md`` draws it for each kind)::

    Supervisor                 one-for-one, intensity: max_restarts crashes in within_seconds
     ├── services              permanent: restarted whatever ends them (a crash, or returning)
     └── actors                transient: restarted after a crash, done when they return

Guarantees, each broken on purpose by ``tests/engine/test_supervision.py``:

1. **No caller waits forever.** Whatever ends an actor's run (a crash in its handler, its commit,
   its timer task or an inner nursery; giving up; shutdown) fails every command it took and did
   not answer, and every command still queued when its record goes, with
   :class:`~engine.errors.ActorUnavailable` carrying the cause. :meth:`Supervisor.call` has a
   deadline (``call_timeout``) on top, for an actor that hangs without crashing.
2. **Crashes are told as they happened.** ``lastCrash`` and the log name the real exception
   (single-exception groups unwrapped) and the line of our code where it was raised.
3. **Escalation is visible.** An actor that crashes more than ``max_restarts`` times within
   ``within_seconds`` is given up: its queue fails, its record goes (the next command spawns it
   anew, from storage), and it is listed by :meth:`Supervisor.escalations` (``/healthz`` answers
   ``degraded``, ``/ops`` shows it, ``curbe_actor_escalations_total`` counts it) until a new
   incarnation answers a command or ``escalation_seconds`` pass without another crash. Crashes
   in a row restart after a short back-off (the first at once), so a blip does not use up the
   intensity in a millisecond. A service past its intensity is listed the same way and
   restarted after a back-off that doubles up to ``service_backoff_max``: it is never forgotten.

Escalation on shutdown: close every mailbox (actors finish what is queued and return) -> wait up
to ``grace_seconds`` -> cancel whatever is left; commands taken and not answered fail.
"""

from __future__ import annotations

import collections
import contextvars
import datetime as dt
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from engine import metrics
from engine.clock import Clock, SystemClock
from engine.errors import ActorUnavailable, EngineError, NotOwner
from engine.placement import StaleLease
from engine.wire import OPTIONAL, UNSET, Wire, doc

log = logging.getLogger("curbe.engine")

MAILBOX_SIZE = 64
SERVICE = "service"  # the kind under which services appear in statistics and escalations
MAX_ESCALATIONS = 1000  # remembered at once; the oldest is forgotten first
_ROOT = Path(__file__).resolve().parent.parent
_OUR_CODE = tuple(str(_ROOT / package) for package in ("engine", "storage", "web"))
_SEAM = str(_ROOT / "engine" / "faults.py")  # an injected fault happened where it was checked


# --- crashes ----------------------------------------------------------------------------------


def root_cause(exc: BaseException) -> BaseException:
    """The exception itself, with single-exception groups (from nurseries) unwrapped."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@attrs.frozen
class Crash:
    """What ended an actor's or a service's run, as operators read it."""

    error: str  # "RuntimeError: injected commit failure"
    where: str | None  # "engine/conversation_actor.py:212 in _handle"
    at: dt.datetime

    @classmethod
    def of(cls, exc: BaseException, at: dt.datetime) -> Crash:
        root = root_cause(exc)
        if isinstance(root, BaseExceptionGroup):
            inner = "; ".join(_one_line(e) for e in root.exceptions[:3])
            error = f"{len(root.exceptions)} errors: {inner}"
            root = root.exceptions[0]
            while isinstance(root, BaseExceptionGroup):
                root = root.exceptions[0]
        else:
            error = _one_line(root)
        return cls(error=error, where=_where(root), at=at)

    def __str__(self) -> str:
        return f"{self.error} (at {self.where})" if self.where else self.error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _where(exc: BaseException) -> str | None:
    """``path:line in function`` of the innermost frame in our code (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    ours = [f for f in frames if f.filename.startswith(_OUR_CODE) and f.filename != _SEAM]
    frame = (ours or frames)[-1]
    path = Path(frame.filename)
    try:
        shown = str(path.relative_to(_ROOT))
    except ValueError:
        shown = path.name
    return f"{shown}:{frame.lineno} in {frame.name}"


# --- replies, envelopes, mailboxes -------------------------------------------------------------


class Reply:
    """Where an actor puts the answer to one command. The first answer wins; later ones are
    ignored, so the supervisor may fail a reply the actor will never answer."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def set(self, value: Any) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> Any:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.frozen
class Envelope:
    command: Any
    reply: Reply | None


class Mailbox:
    """An actor's view of its mailbox: receive commands, post commands to itself (timers).

    Every command taken with a reply is remembered until it is answered, so that whatever ends
    the actor's run can fail the ones it left unanswered.
    """

    def __init__(self, record: ActorRecord, supervisor: Supervisor) -> None:
        self._record = record
        self._supervisor = supervisor

    async def receive(self) -> Envelope:
        """Next envelope (Trio). Raises ``trio.EndOfChannel`` when the supervisor closes it."""
        self._supervisor._settle(self._record)
        envelope = await self._record.receive.receive()
        self._took(envelope)
        return envelope

    async def receive_until(self, deadline: float) -> Envelope | None:
        """Next envelope, or None when Trio's clock reaches ``deadline`` first (Trio). Raises
        ``trio.EndOfChannel`` when the supervisor closes the mailbox."""
        with trio.move_on_at(deadline):
            return await self.receive()
        return None

    def receive_nowait(self) -> Envelope:
        envelope = self._record.receive.receive_nowait()
        self._took(envelope)
        return envelope

    def _took(self, envelope: Envelope) -> None:
        record = self._record
        record.last_activity_at = record.clock.now()
        if envelope.reply is not None:
            record.taken.append(envelope.reply)

    async def post_self(self, command: Any) -> None:
        """Queue a command for this actor with no reply (a timer firing); dropped when closing."""
        try:
            await self._record.send.send(Envelope(command, None))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    @property
    def depth(self) -> int:
        return self._record.receive.statistics().current_buffer_used

    @property
    def after_crash(self) -> bool:
        """True when this run follows a crash of the same actor (it may owe a timer's effect)."""
        return self._record.after_crash


class Actor(Protocol):
    kind: str
    id: str

    async def run(self, mailbox: Mailbox) -> None:
        """Serve the mailbox until stopping (Trio)."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view of the actor's state for the introspection endpoint."""
        ...


ActorFactory = Callable[[str], Actor]


class Remote(Protocol):
    """The other processes of a cluster (:class:`engine.cluster.Cluster`): which actors are
    this process's, and how a command reaches the process owning the others."""

    def owns(self, actor_id: str) -> bool: ...

    async def forward(self, kind: str, actor_id: str, command: Any, *, reply: bool) -> Any:
        """Send to the owner and (``reply``) wait for its answer, within the caller's deadline;
        :class:`~engine.errors.NotOwner` when no process owns the actor right now."""
        ...

    def tell(self, kind: str, actor_id: str, command: Any) -> bool:
        """Send without waiting and without an answer."""
        ...


class ServiceFunction(Protocol):
    def __call__(self, *, task_status: trio.TaskStatus[None]) -> Awaitable[None]: ...


@attrs.define(eq=False)
class ActorRecord:
    kind: str
    id: str
    clock: Clock
    send: trio.MemorySendChannel[Envelope]
    receive: trio.MemoryReceiveChannel[Envelope]
    started_at: dt.datetime
    last_activity_at: dt.datetime
    actor: Actor | None = None
    restarts: int = 0
    crash_times: collections.deque[float] = attrs.field(factory=collections.deque)
    last_crash: Crash | None = None
    taken: list[Reply] = attrs.field(factory=list)  # taken by this incarnation, maybe unanswered
    answered: int = 0  # commands this incarnation answered
    after_crash: bool = False  # this incarnation replaces one that crashed
    moving: bool = False  # its shard is leaving this process: it finishes, nothing restarts it
    gone: trio.Event | None = None  # set when the record goes (made by whoever waits for that)


class ServiceState(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"  # crashed, restarting at once
    ESCALATED = "ESCALATED"  # past its intensity: restarting after a back-off


@attrs.define(eq=False)
class ServiceRecord:
    name: str
    fn: ServiceFunction
    describe: Callable[[], dict[str, Any]] | None
    started_at: dt.datetime
    state: ServiceState = attrs.field(default=ServiceState.STARTING)
    restarts: int = 0
    incarnation: int = 0
    crash_times: collections.deque[float] = attrs.field(factory=collections.deque)
    last_crash: Crash | None = None


@attrs.frozen(kw_only=True)
class EscalationReport(Wire):
    """An actor or service given up after repeated crashes. ``id``, ``error`` and ``where`` only
    with the operator token: the health check is public, and they may name tenants and visitors."""

    kind: str = attrs.field(
        metadata=doc("`conversation`, `visitor_session`, `widget`, `router` or `service`")
    )
    at: dt.datetime
    restarts: int
    id: str | None = attrs.field(default=None, metadata=OPTIONAL)
    error: str | None = attrs.field(
        default=None, metadata=OPTIONAL | doc("the last crash: exception type and first line")
    )
    where: str | None = attrs.field(
        default=None, metadata=OPTIONAL | doc("`path:line in function` of our code")
    )


@attrs.frozen
class Escalation:
    """An actor or service that crashed past its restart intensity."""

    kind: str
    id: str
    crash: Crash
    restarts: int

    def report(self, *, detail: bool = True) -> EscalationReport:
        """What operators see; without ``detail`` (a public health check) no id and no error."""
        report = EscalationReport(kind=self.kind, at=self.crash.at, restarts=self.restarts)
        if detail:
            report = attrs.evolve(
                report, id=self.id, error=self.crash.error, where=self.crash.where
            )
        return report

    def to_wire(self, *, detail: bool = True) -> dict[str, Any]:
        return self.report(detail=detail).to_wire()


@attrs.frozen
class RecentEvent(Wire):
    type: str
    seq: int | None
    at: dt.datetime


def _detail(description: str) -> Any:
    """A field of some kinds only: absent for the others, null when that kind has no value."""
    return attrs.field(default=UNSET, metadata=OPTIONAL | doc(description))


@attrs.frozen(kw_only=True)
class ActorReport(Wire):
    """One live actor or service as the operator sees it; each kind adds its own detail fields
    (left out when it has none)."""

    kind: str = attrs.field(metadata=doc("`conversation`, `visitor_session`, `widget`, `router`"))
    id: str = attrs.field(metadata=doc("a conversation actor's id is the conversation's id"))
    tenant_id: str | None
    state: str | None = attrs.field(
        metadata=doc(
            "conversation: NEW, WAITING, OPEN, SOLVED; visitor_session: NEW, LIVE; "
            "widget: NEW, ACTIVE, INACTIVE, MISCONFIGURED; router: IDLE, WATCHING"
        )
    )
    subscribers: int = attrs.field(
        metadata=doc("sockets that hear its events (its topic, its visitor's, its tenant's)")
    )
    mailbox: int = attrs.field(metadata=doc("commands queued, not yet handled"))
    restarts: int
    started_at: dt.datetime
    last_activity_at: dt.datetime
    last_crash: str | None = attrs.field(
        metadata=doc("the last crash's exception, when it restarted")
    )
    visitor_id: str | None = _detail("conversation")
    last_seq: int | None = _detail("conversation")
    wait_deadline: dt.datetime | None = _detail("conversation: the wait timer")
    recent_events: list[RecentEvent] | None = _detail("conversation: the last 20 events")
    current_url: str | None = _detail("visitor_session")
    conversation_id: str | None = _detail("visitor_session")
    expires_at: dt.datetime | None = _detail("visitor_session")
    coalesced_heartbeats: int | None = _detail("visitor_session")
    last_seen_at: dt.datetime | None = _detail("widget")
    active_until: dt.datetime | None = _detail("widget")
    unsaved_ping: bool | None = _detail("widget")
    waiting: int | None = _detail("router")
    passes: int | None = _detail("router")
    offers: int | None = _detail("router")
    pending_tenants: int | None = _detail("service routing_listener")
    tenants_holding: int | None = _detail(
        "services presence_batches, activity_batches: tenants with events held"
    )
    held_updates: int | None = _detail("services presence_batches, activity_batches: held now")
    batches_sent: int | None = _detail(
        "services presence_batches, activity_batches: frames that carried several events"
    )
    updates_held: int | None = _detail(
        "services presence_batches, activity_batches: events that waited, in all"
    )
    marks_pending: int | None = _detail("service read_marks: visitors' read marks not written yet")
    marks_taken: int | None = _detail("service read_marks: read marks from sockets, in all")
    mark_writes: int | None = _detail("service read_marks: statements that wrote them")
    updates_superseded: int | None = _detail(
        "service activity_batches: held typing hints dropped because their sender's message came"
    )
    signing_kid: str | None = _detail("service visitor_keys: the key that signs new tokens")
    kids: list[str] | None = _detail("service visitor_keys: the keys that verify tokens")
    reloads: int | None = _detail("service visitor_keys: key reloads since start")
    nodes_heard: list[str] | None = _detail("service presence_sharing (several processes)")
    agents_here: int | None = _detail("service presence_sharing: inbox sockets here")
    node_id: str | None = _detail("service lease_keeper (several processes)")
    shards: list[int] | None = _detail("service lease_keeper: the shards this node holds")
    draining: list[int] | None = _detail("service lease_keeper: shards being handed over")
    trusted_for_seconds: float | None = _detail("service lease_keeper: until a lease renewal")
    takeovers: int | None = _detail("service lease_keeper")
    losses: int | None = _detail("service lease_keeper")
    files_removed: int | None = _detail("service file_janitor: files removed since start")
    sweeps: int | None = _detail("service file_janitor: sweeps since start")
    serving_shards: int | None = _detail("service lease_keeper")
    forwarded: int | None = _detail("service lease_keeper: calls sent to another node")
    served: int | None = _detail("service lease_keeper: calls served for another node")


@attrs.frozen
class ActorStatistics:
    """One actor (or service) as the operator sees it. ``detail``: what its ``describe()`` says,
    by :class:`ActorReport` field name (``tenant_id``, ``state`` and the kind's own)."""

    kind: str
    id: str
    mailbox: int
    restarts: int
    started_at: dt.datetime
    last_activity_at: dt.datetime
    last_crash: str | None
    detail: dict[str, Any]

    def report(self, subscribers: int) -> ActorReport:
        detail = {"tenant_id": None, "state": None, **self.detail}
        return ActorReport(
            kind=self.kind,
            id=self.id,
            subscribers=subscribers,
            mailbox=self.mailbox,
            restarts=self.restarts,
            started_at=self.started_at,
            last_activity_at=self.last_activity_at,
            last_crash=self.last_crash,
            **detail,
        )

    def to_wire(self, subscribers: int) -> dict[str, Any]:
        return self.report(subscribers).to_wire()


class _ServiceStatus:
    """The ``task_status`` a service gets: the first ``started()`` reaches whoever started it."""

    def __init__(self, on_started: Callable[[], None]) -> None:
        self._on_started = on_started

    def started(self, value: None = None) -> None:
        self._on_started()


class Supervisor:
    """Get-or-spawn actors by ``(kind, id)``, run services, keep both running one-for-one."""

    def __init__(
        self,
        nursery: trio.Nursery,
        factories: Mapping[str, ActorFactory],
        *,
        clock: Clock | None = None,
        max_restarts: int = 3,
        within_seconds: float = 10.0,
        call_timeout: float = 10.0,
        service_backoff_max: float = 30.0,
        escalation_seconds: float = 300.0,
        restart_delay: float = 0.05,
        remote: Remote | None = None,
    ) -> None:
        self._nursery = nursery
        self.remote = remote  # several processes: actors of other shards live elsewhere
        # An actor runs in the supervisor's context, not in a copy of its first caller's: Trio
        # gives a spawned task a copy of the spawner's context variables, and a caller is often a
        # request handler, whose context holds the whole request (Quart keeps it there). The
        # actor would have kept that request alive for as long as it lived.
        self._context = contextvars.copy_context()
        self._factories = dict(factories)
        self._clock = clock or SystemClock()
        self._records: dict[tuple[str, str], ActorRecord] = {}
        self._services: dict[str, ServiceRecord] = {}
        self._escalations: dict[tuple[str, str], Escalation] = {}
        self._escalated_until: dict[tuple[str, str], float] = {}  # Trio time an entry expires
        self._closing = False
        self.max_restarts = max_restarts
        self.within_seconds = within_seconds
        self.call_timeout = call_timeout
        self.service_backoff_max = service_backoff_max
        self.escalation_seconds = escalation_seconds
        self.restart_delay = restart_delay
        self.total_restarts = 0
        self._idle = trio.Event()
        self._idle.set()

    # --- callers -----------------------------------------------------------------------------

    async def call(self, kind: str, actor_id: str, command: Any) -> Any:
        """Send a command to the actor (spawning it if needed) and wait for its answer (Trio).

        With several processes, an actor of a shard this process does not own is reached
        through :attr:`remote`, and a command whose actor moved while it was queued is sent again
        to the new owner, all within the same deadline.

        Raises :class:`ActorUnavailable` when the actor stops before answering, is given up or
        shutting down, or does not answer within ``call_timeout`` seconds (a caller that wants
        less wraps the call in its own cancel scope).
        A command that timed out may still be carried out later: commands that create things
        carry a client id so that a retry is recognised.
        """
        limit = self.call_timeout
        with trio.move_on_after(limit):
            return await self._route(kind, actor_id, command, reply=True)
        metrics.CALL_TIMEOUTS.labels(kind).inc()
        log.warning(
            "actor call timed out",
            extra={"actor_kind": kind, "actor_id": actor_id, "timeout_seconds": limit},
        )
        raise ActorUnavailable(
            f"the {kind} actor did not answer within {limit:g} s; retry",
            code="actor_timeout",
            cause=f"no answer within {limit:g} s",
        )

    async def cast(self, kind: str, actor_id: str, command: Any) -> None:
        """Send a command without waiting for the answer (Trio); bounded like :meth:`call`."""
        limit = self.call_timeout
        with trio.move_on_after(limit):
            await self._route(kind, actor_id, command, reply=False)
            return
        raise ActorUnavailable(
            f"the {kind} actor's mailbox stayed full for {limit:g} s; retry", code="actor_timeout"
        )

    async def _route(self, kind: str, actor_id: str, command: Any, *, reply: bool) -> Any:
        """To the actor here, or to the process that owns it; again while it moves."""
        delay = 0.005
        while True:
            try:
                if self.remote is not None and not self.remote.owns(actor_id):
                    return await self.remote.forward(kind, actor_id, command, reply=reply)
                return await self.call_here(kind, actor_id, command, reply=reply)
            except NotOwner:
                if self.remote is None:
                    raise
            await trio.sleep(delay)  # a shard changing hands: its new owner is moments away
            delay = min(delay * 2, 0.25)

    async def call_here(self, kind: str, actor_id: str, command: Any, *, reply: bool) -> Any:
        """Send to the actor in this process, never elsewhere (Trio): a forwarded command.
        :class:`NotOwner` when this process does not own the actor."""
        for _ in range(3):
            record = self._get_or_spawn(kind, actor_id)
            answer = Reply() if reply else None
            try:
                await record.send.send(Envelope(command, answer))
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                if record.moving:
                    raise NotOwner() from None
                continue  # the actor stopped between lookup and send: spawn it again
            return None if answer is None else await answer.wait()
        raise ActorUnavailable(f"the {kind} actor is not accepting commands; retry")

    def try_cast(self, kind: str, actor_id: str, command: Any) -> bool:
        """Queue a command if the mailbox has room, without waiting (Trio-safe, synchronous):
        for hints that the next full pass makes up for (False: dropped)."""
        if self.remote is not None and not self.remote.owns(actor_id):
            return self.remote.tell(kind, actor_id, command)
        try:
            record = self._get_or_spawn(kind, actor_id)
            record.send.send_nowait(Envelope(command, None))
        except (
            ActorUnavailable,
            trio.WouldBlock,
            trio.ClosedResourceError,
            trio.BrokenResourceError,
        ):
            return False
        return True

    def ensure(self, kind: str, actor_id: str) -> None:
        """Make sure the actor runs (used at start-up, and when this process takes a shard, to
        re-arm stored timers); an actor another process owns is left to it."""
        if self.remote is not None and not self.remote.owns(actor_id):
            return
        self._get_or_spawn(kind, actor_id)

    async def evict(self, belongs: Callable[[str], bool], grace_seconds: float) -> int:
        """Stop the actors whose id ``belongs`` (their shard is leaving this process): each
        finishes what is queued, then stops; nothing restarts them here, and a command that
        reaches one after that is answered :class:`NotOwner` (its caller sends it to the new
        owner). Waits up to ``grace_seconds`` (Trio); answers how many were stopped."""
        records = [r for r in self._records.values() if belongs(r.id)]
        for record in records:
            record.moving = True
            if record.gone is None:
                record.gone = trio.Event()
            record.send.close()
        with trio.move_on_after(grace_seconds):
            for record in records:
                assert record.gone is not None
                await record.gone.wait()
        return len(records)

    def is_running(self, kind: str, actor_id: str) -> bool:
        return (kind, actor_id) in self._records

    def actor(self, kind: str, actor_id: str) -> Actor | None:
        record = self._records.get((kind, actor_id))
        return record.actor if record else None

    def ids(self, kind: str) -> list[str]:
        """Ids of the running actors of one kind."""
        return [actor_id for k, actor_id in self._records if k == kind]

    def escalations(self) -> list[Escalation]:
        """Actors and services that crashed past their restart intensity, oldest first.

        An actor leaves the list when a new incarnation answers a command, or after
        ``escalation_seconds`` without crashing again (a blip must not leave the server
        "degraded" for ever: the log keeps every one). A service leaves it once it has run
        ``within_seconds`` without crashing.
        """
        now = trio.current_time()
        for key, until in list(self._escalated_until.items()):
            if until <= now:
                del self._escalated_until[key]
                self._escalations.pop(key, None)
        return list(self._escalations.values())

    def statistics(self, kind: str | None = None) -> list[ActorStatistics]:
        out = []
        for record in self._records.values():
            if kind is not None and record.kind != kind:
                continue
            out.append(
                ActorStatistics(
                    kind=record.kind,
                    id=record.id,
                    mailbox=record.receive.statistics().current_buffer_used,
                    restarts=record.restarts,
                    started_at=record.started_at,
                    last_activity_at=record.last_activity_at,
                    last_crash=str(record.last_crash) if record.last_crash else None,
                    detail=record.actor.describe() if record.actor else {},
                )
            )
        if kind in (None, SERVICE):
            for service in self._services.values():
                detail: dict[str, Any] = {"tenant_id": None, "state": service.state.value}
                if service.describe is not None:
                    detail.update(service.describe())
                out.append(
                    ActorStatistics(
                        kind=SERVICE,
                        id=service.name,
                        mailbox=0,
                        restarts=service.restarts,
                        started_at=service.started_at,
                        last_activity_at=service.started_at,
                        last_crash=str(service.last_crash) if service.last_crash else None,
                        detail=detail,
                    )
                )
        return out

    def count(self, kind: str | None = None) -> int:
        """Running actors (services are not counted)."""
        if kind is None:
            return len(self._records)
        return sum(1 for k, _ in self._records if k == kind)

    # --- actors ------------------------------------------------------------------------------

    def _get_or_spawn(self, kind: str, actor_id: str) -> ActorRecord:
        if self._closing:
            raise ActorUnavailable("the server is shutting down; retry", cause="shutdown")
        key = (kind, actor_id)
        record = self._records.get(key)
        if record is None:
            if self.remote is not None and not self.remote.owns(actor_id):
                raise NotOwner()
            if kind not in self._factories:
                raise EngineError(f"unknown actor kind {kind!r}", code="unknown_actor_kind")
            send, receive = trio.open_memory_channel[Envelope](MAILBOX_SIZE)
            now = self._clock.now()
            record = ActorRecord(kind, actor_id, self._clock, send, receive, now, now)
            self._records[key] = record
            self._idle = trio.Event()
            name = f"actor:{kind}:{actor_id}"
            self._context.copy().run(
                lambda: self._nursery.start_soon(self._supervise, record, name=name)
            )
        return record

    async def _supervise(self, record: ActorRecord) -> None:
        reason = f"the {record.kind} actor stopped before answering; retry"
        try:
            while True:
                record.taken = []
                record.answered = 0
                record.started_at = self._clock.now()
                try:
                    record.actor = self._factories[record.kind](record.id)
                    await record.actor.run(Mailbox(record, self))
                except Exception as exc:  # one-for-one: only this actor restarts
                    if record.moving or isinstance(root_cause(exc), StaleLease):
                        # its shard left this process: its commit was refused (fenced), or it
                        # was stopping anyway. Not a crash; its callers find the new owner.
                        record.moving = True
                        self._fail_taken(record, "", None)
                        return
                    crash = Crash.of(exc, self._clock.now())
                    self._fail_taken(record, reason, crash)
                    if self._crashed(record.kind, record.id, record, crash, exc):
                        record.after_crash = True
                        # the first restart is at once; crashes in a row back off (a database
                        # blip passes instead of using up the intensity in a millisecond)
                        crashes = len(record.crash_times)
                        if crashes > 1:
                            await trio.sleep(self.restart_delay * 2 ** (crashes - 2))
                        continue
                    self._escalate(record.kind, record.id, record.restarts, crash)
                    reason = (
                        f"the {record.kind} actor was given up after {record.restarts} "
                        "crashes; retry"
                    )
                    self._forget(record, reason, crash)
                    return
                except BaseException:  # cancelled (shutdown's hard stop) or interrupted
                    self._fail_taken(record, "the server is shutting down; retry", None)
                    raise
                if self._fail_taken(record, reason, None):
                    log.error(
                        "actor returned without answering every command it took",
                        extra={"actor_kind": record.kind, "actor_id": record.id},
                    )
                if (
                    record.receive.statistics().current_buffer_used
                    and not self._closing
                    and not record.moving
                ):
                    record.after_crash = False
                    continue  # commands arrived while it was stopping: serve them
                return
        finally:
            self._forget(record, reason, None)

    def _settle(self, record: ActorRecord) -> None:
        """The actor is back for more: forget answered replies; a given-up actor that answered
        again has recovered."""
        if record.taken:
            still = [r for r in record.taken if not r.done]
            record.answered += len(record.taken) - len(still)
            record.taken = still
        if record.answered and not record.taken:
            self._escalated_until.pop((record.kind, record.id), None)
            if self._escalations.pop((record.kind, record.id), None) is not None:
                log.info(
                    "actor recovered",
                    extra={"actor_kind": record.kind, "actor_id": record.id},
                )

    def _fail_taken(self, record: ActorRecord, message: str, crash: Crash | None) -> bool:
        """Fail the commands this incarnation took and did not answer (an actor that moved:
        :class:`NotOwner`, so that they are sent to the new owner); True if there were any."""
        failed = False
        for reply in record.taken:
            if not reply.done:
                reply.fail(self._unavailable(record, message, crash))
                failed = True
        record.taken = []
        return failed

    def _crashed(
        self,
        kind: str,
        name: str,
        record: ActorRecord | ServiceRecord,
        crash: Crash,
        exc: BaseException,
    ) -> bool:
        """Count a crash; True to restart, False when the intensity limit is passed."""
        now = trio.current_time()
        record.restarts += 1
        self.total_restarts += 1
        metrics.ACTOR_RESTARTS.labels(kind).inc()
        record.last_crash = crash
        record.crash_times.append(now)
        while record.crash_times and record.crash_times[0] < now - self.within_seconds:
            record.crash_times.popleft()
        log.error(
            f"{kind} crashed: {crash}",
            extra={
                "actor_kind": kind,
                "actor_id": name,
                "restarts": record.restarts,
                "error": crash.error,
                "where": crash.where,
            },
            exc_info=root_cause(exc),
        )
        return len(record.crash_times) <= self.max_restarts and not self._closing

    def _escalate(self, kind: str, name: str, restarts: int, crash: Crash) -> None:
        if self._closing:
            return  # shutting down: nothing to escalate to
        metrics.ACTOR_ESCALATIONS.labels(kind).inc()
        key = (kind, name)
        self._escalations.pop(key, None)
        self._escalations[key] = Escalation(kind, name, crash, restarts)
        if kind != SERVICE:
            self._escalated_until[key] = trio.current_time() + self.escalation_seconds
        while len(self._escalations) > MAX_ESCALATIONS:
            oldest = next(iter(self._escalations))
            del self._escalations[oldest]
            self._escalated_until.pop(oldest, None)
        log.error(
            f"{kind} gave up: more than {self.max_restarts} crashes in "
            f"{self.within_seconds:g} s; last: {crash}",
            extra={"actor_kind": kind, "actor_id": name, "error": crash.error},
        )

    def _forget(self, record: ActorRecord, message: str, crash: Crash | None) -> None:
        if self._records.get((record.kind, record.id)) is record:
            del self._records[(record.kind, record.id)]
        record.send.close()
        if self._closing:
            message, crash = "the server is shutting down; retry", None
        while True:  # fail whatever is still queued
            try:
                envelope = record.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if envelope.reply is not None:
                envelope.reply.fail(self._unavailable(record, message, crash))
        record.receive.close()
        if record.gone is not None:
            record.gone.set()
        if not self._records:
            self._idle.set()

    def _unavailable(
        self, record: ActorRecord, message: str, crash: Crash | None
    ) -> ActorUnavailable:
        if record.moving and not self._closing:
            return NotOwner()
        return ActorUnavailable(message, cause=str(crash) if crash else None)

    # --- services ----------------------------------------------------------------------------

    async def start_service(
        self,
        name: str,
        fn: ServiceFunction,
        *,
        describe: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Start a permanent service and return once it reports ``started`` (Trio).

        A failure before its first ``started()`` propagates to the caller (the server does not
        start half-wired); after that, the supervisor restarts it whatever ends it.
        """
        if name in self._services:
            raise EngineError(f"service {name!r} is already running", code="service_exists")
        record = ServiceRecord(name, fn, describe, self._clock.now())
        self._services[name] = record
        await self._nursery.start(self._supervise_service, record, name=f"service:{name}")

    async def _supervise_service(
        self, record: ServiceRecord, *, task_status: trio.TaskStatus[None]
    ) -> None:
        first = True
        backoff = 0.0

        def started() -> None:
            nonlocal first
            record.state = ServiceState.RUNNING
            record.started_at = self._clock.now()
            if first:
                first = False
                task_status.started()
            if (SERVICE, record.name) in self._escalations:
                self._nursery.start_soon(self._clear_if_stable, record, record.incarnation)

        while True:
            record.incarnation += 1
            try:
                await record.fn(task_status=_ServiceStatus(started))
                if self._closing:
                    return
                raise ServiceStopped(f"the {record.name} service returned; it must run for ever")
            except Exception as exc:
                if first:
                    raise  # it never started: the caller of start_service hears it
                if self._closing:
                    return  # shutting down: actors refuse its casts; not a crash
                crash = Crash.of(exc, self._clock.now())
                if self._crashed(SERVICE, record.name, record, crash, exc):
                    record.state = ServiceState.RESTARTING
                    backoff = 0.0
                    continue
                self._escalate(SERVICE, record.name, record.restarts, crash)
                record.state = ServiceState.ESCALATED
                backoff = min(self.service_backoff_max, max(0.5, backoff * 2))
                await trio.sleep(backoff)

    async def _clear_if_stable(self, record: ServiceRecord, incarnation: int) -> None:
        """A restarted service that runs ``within_seconds`` without crashing has recovered."""
        await trio.sleep(self.within_seconds)
        if record.incarnation == incarnation and record.state is ServiceState.RUNNING:
            if self._escalations.pop((SERVICE, record.name), None) is not None:
                log.info(
                    "service recovered", extra={"actor_kind": SERVICE, "actor_id": record.name}
                )

    # --- shutdown ----------------------------------------------------------------------------

    async def shutdown(self, grace_seconds: float) -> None:
        """Close every mailbox, let actors drain, then hard-stop after ``grace_seconds`` (Trio)."""
        self._closing = True
        for record in list(self._records.values()):
            record.send.close()
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()
        self._nursery.cancel_scope.cancel()


class ServiceStopped(Exception):
    """A permanent service returned: the supervisor treats it as a crash."""


@asynccontextmanager
async def open_supervisor(
    factories: Mapping[str, ActorFactory],
    *,
    clock: Clock | None = None,
    grace_seconds: float = 5.0,
    max_restarts: int = 3,
    within_seconds: float = 10.0,
    call_timeout: float = 10.0,
    service_backoff_max: float = 30.0,
    escalation_seconds: float = 300.0,
    remote: Remote | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a supervisor for the duration of the block; shut it down gracefully on exit (Trio)."""
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(
            nursery,
            factories,
            clock=clock,
            max_restarts=max_restarts,
            within_seconds=within_seconds,
            call_timeout=call_timeout,
            service_backoff_max=service_backoff_max,
            escalation_seconds=escalation_seconds,
            remote=remote,
        )
        try:
            yield supervisor
        finally:
            with trio.CancelScope(shield=True):
                await supervisor.shutdown(grace_seconds)
