"""Actors and their supervisor.

An actor is an object with ``kind`` and ``id`` and an ``async run(mailbox)`` (Trio) that serves
commands from its mailbox until it decides to stop (idle, expired) or the mailbox closes. The
:class:`Supervisor` owns the mailboxes, so queued commands outlive a crash of the actor.

Supervision strategy: **one-for-one with an intensity limit** (Erlang's). When an actor raises,
only that actor is restarted (a fresh instance that rehydrates from storage); the command it was
handling fails with :class:`~engine.errors.ActorUnavailable`. More than ``max_restarts`` crashes
within ``within_seconds`` and the supervisor gives up on that actor: queued commands fail, the
record goes, and the next command spawns it anew. Other actors never notice.

Escalation on shutdown: close every mailbox (actors finish what is queued and return) -> wait up
to ``grace_seconds`` -> cancel whatever is left.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import trio

from engine import metrics
from engine.clock import Clock, SystemClock, iso
from engine.errors import ActorUnavailable, EngineError

log = logging.getLogger("curbe.engine")

MAILBOX_SIZE = 64


class Reply:
    """Where an actor puts the answer to one command."""

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
    """An actor's view of its mailbox: receive commands, post commands to itself (timers)."""

    def __init__(self, record: ActorRecord) -> None:
        self._record = record

    async def receive(self) -> Envelope:
        """Next envelope (Trio). Raises ``trio.EndOfChannel`` when the supervisor closes it."""
        envelope = await self._record.receive.receive()
        self._record.last_activity_at = self._record.clock.now()
        return envelope

    def receive_nowait(self) -> Envelope:
        envelope = self._record.receive.receive_nowait()
        self._record.last_activity_at = self._record.clock.now()
        return envelope

    async def post_self(self, command: Any) -> None:
        """Queue a command for this actor with no reply (a timer firing); dropped when closing."""
        try:
            await self._record.send.send(Envelope(command, None))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    @property
    def depth(self) -> int:
        return self._record.receive.statistics().current_buffer_used


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
    crash_times: collections.deque[float] = attrs.field(factory=lambda: collections.deque())
    last_crash: str | None = None


@attrs.frozen
class ActorStatistics:
    """One actor as the operator sees it."""

    kind: str
    id: str
    mailbox: int
    restarts: int
    started_at: dt.datetime
    last_activity_at: dt.datetime
    last_crash: str | None
    detail: dict[str, Any]

    def to_wire(self, subscribers: int) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "tenantId": self.detail.get("tenantId"),
            "state": self.detail.get("state"),
            "subscribers": subscribers,
            "mailbox": self.mailbox,
            "restarts": self.restarts,
            "startedAt": iso(self.started_at),
            "lastActivityAt": iso(self.last_activity_at),
            "lastCrash": self.last_crash,
        }
        wire.update({k: v for k, v in self.detail.items() if k not in ("tenantId", "state")})
        return wire


class Supervisor:
    """Get-or-spawn actors by ``(kind, id)`` and keep them running one-for-one."""

    def __init__(
        self,
        nursery: trio.Nursery,
        factories: Mapping[str, ActorFactory],
        *,
        clock: Clock | None = None,
        max_restarts: int = 3,
        within_seconds: float = 10.0,
    ) -> None:
        self._nursery = nursery
        self._factories = dict(factories)
        self._clock = clock or SystemClock()
        self._records: dict[tuple[str, str], ActorRecord] = {}
        self._closing = False
        self.max_restarts = max_restarts
        self.within_seconds = within_seconds
        self.total_restarts = 0
        self._idle = trio.Event()
        self._idle.set()

    # --- callers -----------------------------------------------------------------------------

    async def call(self, kind: str, actor_id: str, command: Any) -> Any:
        """Send a command to the actor (spawning it if needed) and wait for its answer (Trio)."""
        for _ in range(3):
            record = self._get_or_spawn(kind, actor_id)
            reply = Reply()
            try:
                await record.send.send(Envelope(command, reply))
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                continue  # the actor stopped between lookup and send: spawn it again
            return await reply.wait()
        raise ActorUnavailable(f"{kind} actor {actor_id} is not accepting commands")

    async def cast(self, kind: str, actor_id: str, command: Any) -> None:
        """Send a command without waiting for the answer (Trio)."""
        for _ in range(3):
            record = self._get_or_spawn(kind, actor_id)
            try:
                await record.send.send(Envelope(command, None))
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                continue
            return
        raise ActorUnavailable(f"{kind} actor {actor_id} is not accepting commands")

    def ensure(self, kind: str, actor_id: str) -> None:
        """Make sure the actor runs (used at start-up to re-arm stored timers)."""
        self._get_or_spawn(kind, actor_id)

    def is_running(self, kind: str, actor_id: str) -> bool:
        return (kind, actor_id) in self._records

    def actor(self, kind: str, actor_id: str) -> Actor | None:
        record = self._records.get((kind, actor_id))
        return record.actor if record else None

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
                    last_crash=record.last_crash,
                    detail=record.actor.describe() if record.actor else {},
                )
            )
        return out

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return len(self._records)
        return sum(1 for k, _ in self._records if k == kind)

    # --- lifecycle ---------------------------------------------------------------------------

    def _get_or_spawn(self, kind: str, actor_id: str) -> ActorRecord:
        if self._closing:
            raise ActorUnavailable("the server is shutting down")
        key = (kind, actor_id)
        record = self._records.get(key)
        if record is None:
            if kind not in self._factories:
                raise EngineError(f"unknown actor kind {kind!r}", code="unknown_actor_kind")
            send, receive = trio.open_memory_channel[Envelope](MAILBOX_SIZE)
            now = self._clock.now()
            record = ActorRecord(kind, actor_id, self._clock, send, receive, now, now)
            self._records[key] = record
            self._idle = trio.Event()
            self._nursery.start_soon(self._supervise, record, name=f"actor:{kind}:{actor_id}")
        return record

    async def _supervise(self, record: ActorRecord) -> None:
        try:
            while True:
                actor = self._factories[record.kind](record.id)
                record.actor = actor
                record.started_at = self._clock.now()
                try:
                    await actor.run(Mailbox(record))
                except Exception as exc:  # one-for-one: only this actor restarts
                    if self._crashed(record, exc):
                        continue
                    return
                if record.receive.statistics().current_buffer_used and not self._closing:
                    continue  # commands arrived while it was stopping: serve them
                return
        finally:
            self._forget(record)

    def _crashed(self, record: ActorRecord, exc: Exception) -> bool:
        """Count a crash; True to restart, False when the intensity limit is passed."""
        now = trio.current_time()
        record.restarts += 1
        self.total_restarts += 1
        metrics.ACTOR_RESTARTS.labels(record.kind).inc()
        record.last_crash = f"{type(exc).__name__}: {exc}"
        record.crash_times.append(now)
        while record.crash_times and record.crash_times[0] < now - self.within_seconds:
            record.crash_times.popleft()
        log.error(
            "actor crashed",
            extra={"actor_kind": record.kind, "actor_id": record.id, "restarts": record.restarts},
            exc_info=exc,
        )
        if len(record.crash_times) > self.max_restarts or self._closing:
            log.error(
                "actor gave up: restart intensity exceeded",
                extra={"actor_kind": record.kind, "actor_id": record.id},
            )
            return False
        return True

    def _forget(self, record: ActorRecord) -> None:
        if self._records.get((record.kind, record.id)) is record:
            del self._records[(record.kind, record.id)]
        record.send.close()
        while True:  # fail whatever is still queued
            try:
                envelope = record.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if envelope.reply is not None:
                envelope.reply.fail(
                    ActorUnavailable(f"{record.kind} actor {record.id} stopped; retry")
                )
        record.receive.close()
        if not self._records:
            self._idle.set()

    async def shutdown(self, grace_seconds: float) -> None:
        """Close every mailbox, let actors drain, then hard-stop after ``grace_seconds`` (Trio)."""
        self._closing = True
        for record in list(self._records.values()):
            record.send.close()
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()
        self._nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_supervisor(
    factories: Mapping[str, ActorFactory],
    *,
    clock: Clock | None = None,
    grace_seconds: float = 5.0,
    max_restarts: int = 3,
    within_seconds: float = 10.0,
) -> AsyncIterator[Supervisor]:
    """Run a supervisor for the duration of the block; shut it down gracefully on exit (Trio)."""
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(
            nursery,
            factories,
            clock=clock,
            max_restarts=max_restarts,
            within_seconds=within_seconds,
        )
        try:
            yield supervisor
        finally:
            with trio.CancelScope(shield=True):
                await supervisor.shutdown(grace_seconds)
