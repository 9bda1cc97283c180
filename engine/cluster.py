"""Several processes as one server: commands forwarded to the owner of their actor, events over
the bus, agent presence shared (``docs/architecture.md``, "Several processes").

:class:`Cluster` is what the supervisor calls :class:`~engine.supervisor.Remote` and what the
broker publishes through. It stands on a :class:`Bus` (NATS: :class:`storage.bus.NatsBus`) and
the :class:`~engine.placement.Placement` its lease keeper maintains.

Subjects (every id token made safe for NATS by :func:`token`; ``<cluster>`` is the id of the
database, :func:`cluster_id`, so that clusters on one NATS never hear each other)::

    curbe.<cluster>.cmd.<shard>                     a command for an actor of that shard, to its owner
    curbe.<cluster>.ev.<tenant>.c.<conversation>    an event of a conversation (JetStream)
    curbe.<cluster>.ev.<tenant>.v.<visitor>         an event of a visitor without a conversation
    curbe.<cluster>.ev.<tenant>.t                   an event of the tenant (its inbox)
    curbe.<cluster>.presence                        agent presence facts (engine/presence.py)

A command is ``{"k": kind, "i": actor id, "c": command, "t": seconds left}`` in the encoding of
:mod:`engine.codec`; its answer ``{"ok": value}`` or ``{"error": EngineError}``. The owner runs it
within the caller's remaining time. A process that does not own the actor (no longer, or not
yet) answers :class:`~engine.errors.NotOwner`, and so does the absence of any subscriber: the
supervisor sends the command again, with a short back-off, until its deadline.

An event is ``{"n": node, "e": event}``; each process delivers the events of the others to its
own broker (never to the routing listener: the publishing process routes), and skips its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from engine import codec, metrics
from engine.broker import Broker
from engine.errors import ActorUnavailable, EngineError, NotOwner
from engine.placement import Placement, shard_of
from engine.values import Event

log = logging.getLogger("curbe.cluster")

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def token(value: str) -> str:
    """An id as one NATS subject token (ids are minted by the server; this is a backstop)."""
    return _UNSAFE.sub("_", value) or "_"


def cluster_id(secret: bytes) -> str:
    """The subject token of a cluster, from a random value its database keeps."""
    return secret[:6].hex()


def command_subject(cluster: str, shard: int) -> str:
    return f"curbe.{cluster}.cmd.{shard}"


def presence_subject(cluster: str) -> str:
    return f"curbe.{cluster}.presence"


def events_subject(cluster: str) -> str:
    return f"curbe.{cluster}.ev.>"


def event_subject(cluster: str, event: Event) -> str:
    tenant = token(event.tenant_id)
    if event.conversation_id is not None:
        return f"curbe.{cluster}.ev.{tenant}.c.{token(event.conversation_id)}"
    if event.visitor_id is not None:
        return f"curbe.{cluster}.ev.{tenant}.v.{token(event.visitor_id)}"
    return f"curbe.{cluster}.ev.{tenant}.t"


class Bus(Protocol):
    """What the cluster needs from NATS (:class:`storage.bus.NatsBus`)."""

    @property
    def connected(self) -> bool: ...

    def publish(self, subject: str, payload: bytes, reply: str = "") -> None: ...

    def publish_event(self, subject: str, payload: bytes) -> None: ...

    async def request(self, subject: str, payload: bytes) -> bytes:
        """Within the caller's deadline; ``trio.TooSlowError`` past it."""
        ...

    async def serve(self, subject: str, handler: Callable[[bytes], Awaitable[bytes]]) -> Any: ...

    async def follow_events(self, subject: str, handler: Callable[[bytes], None]) -> Any: ...

    async def unsubscribe(self, subscription: Any) -> None: ...


class Here(Protocol):
    """The local side a forwarded command is handed to (the supervisor)."""

    async def call_here(self, kind: str, actor_id: str, command: Any, *, reply: bool) -> Any: ...


class Cluster:
    """The supervisor's :class:`~engine.supervisor.Remote` and the broker's way out."""

    def __init__(
        self,
        placement: Placement,
        bus: Bus,
        broker: Broker,
        *,
        cluster: str,
        no_responders: type[Exception],
        call_timeout: float = 10.0,
    ) -> None:
        self.cluster = cluster
        self.placement = placement
        self.bus = bus
        self.broker = broker
        self.here: Here | None = None  # the supervisor, once it runs
        self.call_timeout = call_timeout
        self._no_responders = no_responders
        self._serving: dict[int, Any] = {}  # shard -> its command subscription
        self._events: Any = None
        # every process follows every event of the cluster, its own included: those are known
        # by their first bytes (what publish writes first) and dropped without decoding
        self._own = codec.dumps({"n": placement.node_id})[:-1] + b","
        self.forwarded = 0
        self.served = 0

    @property
    def node_id(self) -> str:
        return self.placement.node_id

    # --- the supervisor's Remote ------------------------------------------------------------

    def owns(self, actor_id: str) -> bool:
        return self.placement.owns(actor_id)

    async def forward(self, kind: str, actor_id: str, command: Any, *, reply: bool) -> Any:
        if not reply:
            self.tell(kind, actor_id, command)
            return None
        left = min(self.call_timeout, trio.current_effective_deadline() - trio.current_time())
        payload = codec.dumps({"k": kind, "i": actor_id, "c": command, "t": left, "r": True})
        t0 = trio.current_time()
        try:
            with trio.fail_after(left):
                data = await self.bus.request(
                    command_subject(self.cluster, shard_of(actor_id)), payload
                )
        except self._no_responders:
            metrics.FORWARDED.labels("no_owner").inc()
            raise NotOwner() from None
        except trio.TooSlowError:
            metrics.FORWARDED.labels("timeout").inc()
            raise ActorUnavailable(
                f"the {kind} actor's process did not answer in time; retry", code="actor_timeout"
            ) from None
        self.forwarded += 1
        metrics.FORWARD_SECONDS.observe(trio.current_time() - t0)
        answer = codec.loads(data)
        if "error" in answer:
            error = answer["error"]
            metrics.FORWARDED.labels("moved" if isinstance(error, NotOwner) else "error").inc()
            raise error
        metrics.FORWARDED.labels("ok").inc()
        return answer["ok"]

    def tell(self, kind: str, actor_id: str, command: Any) -> bool:
        payload = codec.dumps(
            {"k": kind, "i": actor_id, "c": command, "t": self.call_timeout, "r": False}
        )
        self.bus.publish(command_subject(self.cluster, shard_of(actor_id)), payload)
        metrics.FORWARDED.labels("told").inc()
        return True

    # --- the owner's side ---------------------------------------------------------------------

    async def handle(self, payload: bytes) -> bytes:
        """A forwarded command, run here; its answer (never raises)."""
        try:
            message = codec.loads(payload)
            kind, actor_id, command = message["k"], message["i"], message["c"]
            left, reply = float(message["t"]), bool(message["r"])
        except (codec.CodecError, KeyError, TypeError, ValueError) as exc:
            log.warning("a forwarded command could not be read", extra={"error": str(exc)})
            return codec.dumps(
                {"error": ActorUnavailable("unreadable command", code="bad_command")}
            )
        if self.here is None or not self.placement.owns(actor_id):
            return codec.dumps({"error": NotOwner()})
        self.served += 1
        try:
            with trio.fail_after(max(left, 0.001)):
                value = await self.here.call_here(kind, actor_id, command, reply=reply)
            return codec.dumps({"ok": value})
        except EngineError as exc:
            return codec.dumps({"error": exc})
        except trio.TooSlowError:
            return codec.dumps({"error": ActorUnavailable("no answer in time; retry")})
        except codec.CodecError:
            log.exception("an answer could not cross between processes")
            return codec.dumps({"error": ActorUnavailable("unsendable answer; retry")})

    async def serve_shards(self, shards: frozenset[int]) -> None:
        """Answer the commands of ``shards`` (this process just took them)."""
        for shard in sorted(shards):
            if shard not in self._serving:
                self._serving[shard] = await self.bus.serve(
                    command_subject(self.cluster, shard), self.handle
                )

    async def stop_serving(self, shards: frozenset[int]) -> None:
        """No more commands for ``shards`` here (they are leaving this process)."""
        for shard in sorted(shards):
            subscription = self._serving.pop(shard, None)
            if subscription is not None:
                await self.bus.unsubscribe(subscription)

    # --- events -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """After the local fan-out: the event to every other process (the broker's way out)."""
        message = {"n": self.node_id, "e": event, "t": time.time()}
        self.bus.publish_event(event_subject(self.cluster, event), codec.dumps(message))
        metrics.BUS_EVENTS.labels("out").inc()

    async def follow_events(self) -> None:
        """Deliver the other processes' events to this process's broker from now on."""
        self._events = await self.bus.follow_events(events_subject(self.cluster), self._deliver)

    def _deliver(self, payload: bytes) -> None:
        if payload.startswith(self._own):
            return
        try:
            message = codec.loads(payload)
            node, event = message["n"], message["e"]
        except (codec.CodecError, KeyError, TypeError) as exc:
            log.warning("an event from the bus could not be read", extra={"error": str(exc)})
            return
        if node == self.node_id or not isinstance(event, Event):
            return
        metrics.BUS_EVENTS.labels("in").inc()
        now = time.time()
        metrics.BUS_LAG_SECONDS.observe(max(0.0, now - event.at.timestamp()))
        if isinstance(message.get("t"), float):  # absent from a process of an older version
            metrics.BUS_HOP_SECONDS.observe(max(0.0, now - message["t"]))
        self.broker.deliver(event)

    def describe(self) -> dict[str, Any]:
        return {
            **self.placement.describe(),
            "serving_shards": len(self._serving),
            "forwarded": self.forwarded,
            "served": self.served,
        }
