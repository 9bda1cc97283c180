"""NATS between the processes of a cluster: nats-py (asyncio) under trio-asyncio, confined to this
module as asyncpg is to :mod:`storage.db`.

Three uses (subjects and payloads are :mod:`engine.cluster`'s):

* **requests** (core NATS request/reply): a command to the process owning its actor; the owner's
  handler runs in Trio. Replies come back on one inbox subscription of this process (a token per
  request), where the waiting Trio task is woken: a request never crosses into asyncio, and no
  asyncio timer or future is made for it (the caller's deadline is a Trio one).
* **messages** (core NATS publish/subscribe): answers, commands without answer, presence facts.
* **events** (JetStream, stream :data:`STREAM`): every event after its commit. Published as a
  plain NATS message on a subject the stream captures, with this process's inbox as the reply
  subject: the stream's acknowledgement comes back there and is counted (a refusal is a failure
  in ``curbe_bus_events_total``), with none of ``publish_async``'s per-message future,
  semaphore and ``wait_for``. Each process follows the stream with an ordered consumer from the
  moment it starts, so a reconnect to NATS resumes where it stopped; PostgreSQL stays the source
  of truth (a socket that sees a gap in a conversation's seqs fills it from there).

Publishing never waits and never crosses per message: :meth:`NatsBus.publish`,
:meth:`NatsBus.publish_event` and :meth:`NatsBus.request` put the message on an asyncio queue
(from Trio, on the same thread) that one asyncio task drains into the client's write buffer,
everything queued at once per turn. Incoming messages reach Trio the
other way: nats-py runs a callback per message, which calls the Trio handler synchronously or
queues the request for the Trio task that serves them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import nats
import nats.errors
import nats.js.errors
import trio
import trio_asyncio
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy, DiscardPolicy, StorageType, StreamConfig

from engine import metrics

log = logging.getLogger("curbe.bus")

STREAM = "CURBE_EVENTS"
EVENT_SUBJECTS = "curbe.*.ev.>"  # every cluster on this NATS (engine/cluster.py)
STREAM_MAX_AGE_SECONDS = 600.0  # a process away from NATS longer than this resumes from SQL
STREAM_MAX_BYTES = 256 * 1024 * 1024
REQUEST_SECONDS = 60.0  # a request's longest wait, when its caller has no deadline
REQUESTS_QUEUED = 10_000  # requests received and not yet taken by the Trio side

Handler = Callable[[bytes], None]
RequestHandler = Callable[[bytes], Awaitable[bytes]]


ACK_TOKEN = "ack"  # the last token of the stream's acknowledgements to this process
STATUS_HEADER = "Status"
NO_RESPONDERS_STATUS = "503"


@attrs.define
class _Reply:
    done: trio.Event = attrs.Factory(trio.Event)
    data: bytes = b""
    no_responders: bool = False


class NoResponders(Exception):
    """Nobody subscribes to the subject of a request (no process owns that shard right now)."""


class NatsBus:
    """One NATS connection and its JetStream context. :meth:`connect` inside trio-asyncio's
    loop, :meth:`run` as a service (it serves incoming requests), :meth:`close` at the end."""

    def __init__(self, nc: NATS, name: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.name = name
        self._out: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._requests_in, self._requests = trio.open_memory_channel[
            tuple[RequestHandler, bytes, str]
        ](REQUESTS_QUEUED)
        self._inbox = nc.new_inbox()  # replies to this process: <inbox>.<token>
        self._acks = f"{self._inbox}.{ACK_TOKEN}"
        self._waiting: dict[str, _Reply] = {}
        self._tokens = itertools.count()
        self.published = 0
        self.publish_failures = 0
        self.requests_dropped = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, *, name: str) -> NatsBus:
        """Connect (reconnecting for ever after a first success) and make sure the event stream
        exists (Trio flavour)."""
        bus: NatsBus = await trio_asyncio.aio_as_trio(cls._connect)(url, name)
        return bus

    @classmethod
    async def _connect(cls, url: str, name: str) -> NatsBus:
        async def error_cb(exc: Exception) -> None:
            log.warning("NATS error", extra={"error": repr(exc)})

        async def disconnected_cb() -> None:
            if not nc.is_closed and not nc.is_draining:  # not our own close
                log.warning("NATS connection lost; reconnecting")

        async def reconnected_cb() -> None:
            log.info("NATS connection back")

        nc = NATS()
        await nc.connect(
            url,
            name=name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
        )
        bus = cls(nc, name)
        await bus._ensure_stream()
        await nc.subscribe(f"{bus._inbox}.*", cb=bus._reply)
        bus._pump = asyncio.get_running_loop().create_task(bus._drain_out())
        return bus

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=STREAM,
            subjects=[EVENT_SUBJECTS],
            storage=StorageType.MEMORY,
            max_age=STREAM_MAX_AGE_SECONDS,
            max_bytes=STREAM_MAX_BYTES,
            discard=DiscardPolicy.OLD,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:  # it exists with another configuration
            await self.js.update_stream(config)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve incoming requests, each in its own task (Trio; runs until cancelled)."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for handler, payload, reply in self._requests:
                nursery.start_soon(self._answer, handler, payload, reply)

    async def _answer(self, handler: RequestHandler, payload: bytes, reply: str) -> None:
        answer = await handler(payload)
        if reply:
            self.publish(reply, answer)

    async def close(self) -> None:
        """Flush what is queued and close (Trio flavour, shielded)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await trio_asyncio.aio_as_trio(self._close)()

    async def _close(self) -> None:
        if self._pump is not None:
            await self._out.join()
            self._pump.cancel()
        try:
            await self.nc.drain()
        except nats.errors.Error as exc:
            log.warning("NATS close", extra={"error": repr(exc)})

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    # --- out ---------------------------------------------------------------------------------

    def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Core NATS publish, queued (never waits; callable from Trio)."""
        self._out.put_nowait((subject, payload, reply))

    def publish_event(self, subject: str, payload: bytes) -> None:
        """Publish to the stream, queued; its acknowledgement is counted, not awaited."""
        self._out.put_nowait((subject, payload, self._acks))

    async def _drain_out(self) -> None:
        while True:
            item = await self._out.get()
            while True:  # everything queued by now, into the client's buffer in one turn
                subject, payload, reply = item
                try:
                    await self.nc.publish(subject, payload, reply=reply)
                    self.published += 1
                except Exception as exc:  # one message's trouble (a full buffer while away)
                    self.publish_failures += 1
                    metrics.BUS_EVENTS.labels("failed").inc()
                    log.warning(
                        "NATS publish failed", extra={"subject": subject, "error": repr(exc)}
                    )
                finally:
                    self._out.task_done()
                try:
                    item = self._out.get_nowait()
                except asyncio.QueueEmpty:
                    break

    async def _reply(self, msg: Msg) -> None:
        """A message on this process's inbox: a stream's acknowledgement, or a request's answer
        (runs on Trio's thread: wakes the waiting task directly)."""
        token = msg.subject.rpartition(".")[2]
        refused = (msg.headers or {}).get(STATUS_HEADER) == NO_RESPONDERS_STATUS
        if token == ACK_TOKEN:
            if refused or msg.data.startswith(b'{"error"'):
                self.publish_failures += 1
                metrics.BUS_EVENTS.labels("failed").inc()
                log.warning("the event stream refused an event", extra={"answer": msg.data[:200]})
            return
        waiter = self._waiting.get(token)
        if waiter is None or waiter.done.is_set():  # given up already
            return
        waiter.no_responders = refused
        waiter.data = msg.data
        waiter.done.set()

    async def request(self, subject: str, payload: bytes) -> bytes:
        """A request and its answer (Trio flavour; no crossing), within the caller's deadline
        (at most :data:`REQUEST_SECONDS`). :class:`NoResponders` when nobody listens,
        ``trio.TooSlowError`` when no answer comes in time."""
        token = str(next(self._tokens))
        waiter = self._waiting[token] = _Reply()
        try:
            self.publish(subject, payload, reply=f"{self._inbox}.{token}")
            with trio.move_on_after(REQUEST_SECONDS):
                await waiter.done.wait()
        finally:
            del self._waiting[token]
        if not waiter.done.is_set():
            raise trio.TooSlowError(subject)
        if waiter.no_responders:
            raise NoResponders(subject)
        return waiter.data

    # --- in ----------------------------------------------------------------------------------

    async def serve(self, subject: str, handler: RequestHandler) -> Subscription:
        """Answer requests on ``subject`` with ``handler`` (Trio), until the subscription is
        closed with :meth:`unsubscribe`."""

        async def cb(msg: Msg) -> None:
            try:
                self._requests_in.send_nowait((handler, msg.data, msg.reply))
            except trio.WouldBlock:  # the caller times out and retries
                self.requests_dropped += 1

        subscription: Subscription = await trio_asyncio.aio_as_trio(self.nc.subscribe)(
            subject, cb=cb
        )
        return subscription

    async def listen(self, subject: str, handler: Handler) -> Subscription:
        """Call ``handler`` (synchronous, on Trio's thread) with every message on ``subject``."""

        async def cb(msg: Msg) -> None:
            handler(msg.data)

        subscription: Subscription = await trio_asyncio.aio_as_trio(self.nc.subscribe)(
            subject, cb=cb
        )
        return subscription

    async def follow_events(self, subject: str, handler: Handler) -> Any:
        """Call ``handler`` with every event published on ``subject`` from now on, in stream
        order, through reconnects (JetStream ordered consumer)."""

        async def cb(msg: Msg) -> None:
            handler(msg.data)

        async def subscribe() -> Any:
            return await self.js.subscribe(
                subject,
                cb=cb,
                stream=STREAM,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )

        return await trio_asyncio.aio_as_trio(subscribe)()

    async def unsubscribe(self, subscription: Any) -> None:
        try:
            await trio_asyncio.aio_as_trio(subscription.unsubscribe)()
        except nats.errors.Error:  # closed already
            pass
