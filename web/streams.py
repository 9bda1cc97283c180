"""What the two WebSocket streams share: a visitor's (``/api/chat/widgets/{id}/ws``, in
:mod:`web.routes.visitor`) and the inbox's (``/api/chat/inbox/ws``, in :mod:`web.routes.agent`).

Both carry the same event envelope. On connect the server subscribes first and then sends
``{"type": "ready"}``: every event committed after ``ready`` reaches the socket. A client that saw
seq N of a conversation sends ``{"type": "resume", "conversationId", "afterSeq": N}`` and gets every
later event of that conversation exactly once, in seq order: :class:`EventStream` remembers the
last seq it sent per conversation, drops what it already sent and fills any gap from PostgreSQL.

Close codes: 4401 bad or missing token, 4403 the session cookie used from another origin,
4404 unknown widget, 1013 the socket fell too far behind (:data:`INBOX_BUFFER` events for an inbox,
the broker's default for a visitor) or the widget's actor could not answer
(the client reconnects and resumes), 1001 server shutting down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs
import trio
from quart import websocket

from engine import metrics
from engine.broker import Subscription, Topic
from engine.conversation_actor import Outcome
from engine.errors import EngineError, ErrorBody
from engine.values import Event, Message
from engine.wire import OPTIONAL, Wire
from storage.db import unavailable
from web.deps import services
from web.services import Services
from web.throttles import FrameLimits
from web.wire import FRAMES, ApiError, PingFrame, structure_frame

log = logging.getLogger("curbe.web.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 1013
CLOSE_TRY_AGAIN = 1013  # "try again later": the server could not serve this socket now
CLOSE_GOING_AWAY = 1001  # the server is stopping: reconnect (to another node) and resume

# Events a socket may have queued, unsent, before it is closed 1013 (the client then reconnects
# and resumes from storage). A visitor's stream is its own conversation: the broker's default.
# An inbox hears its whole tenant: at 1,000 msg/s the default 256 is a quarter second of lag,
# and a burst that one busy moment of the server queues (publishing never yields) closed agents'
# inboxes that were keeping up (docs/benchmarks.md, run 4). The queue holds references to
# events shared with every other socket: 4,096 of them cost ~32 KiB per open inbox.
INBOX_BUFFER = 4096
# A replay (a resume, a gap filled) reads a conversation's events this many at a time: a client
# resuming a long conversation from seq 0 costs one page of memory at once, not the whole log.
REPLAY_PAGE = 500


# --- server frames (besides events) ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReadyFrame(Wire):
    """First frame; visitors get visitorId and agentsOnline, the inbox agentId and tenantId."""

    type: Literal["ready"] = "ready"
    server_time: dt.datetime
    visitor_id: str | None = attrs.field(default=None, metadata=OPTIONAL)
    agents_online: bool | None = attrs.field(default=None, metadata=OPTIONAL)
    agent_id: str | None = attrs.field(default=None, metadata=OPTIONAL)
    tenant_id: str | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen(kw_only=True)
class ResumedFrame(Wire):
    type: Literal["resumed"] = "resumed"
    conversation_id: str
    last_seq: int


@attrs.frozen(kw_only=True)
class AckFrame(Wire):
    """The sender's message is committed (sent after the commit, never before)."""

    type: Literal["ack"] = "ack"
    client_message_id: str | None
    message: Message


@attrs.frozen(kw_only=True)
class PongFrame(Wire):
    type: Literal["pong"] = "pong"
    server_time: dt.datetime


@attrs.frozen(kw_only=True)
class BeatFrame(Wire):
    """The answer to a visitor's ``heartbeat`` frame: what the HTTP heartbeat answers, less the
    token (the socket has one)."""

    type: Literal["heartbeat"] = "heartbeat"
    widget_status: Literal["ACTIVE"] = "ACTIVE"
    server_time: dt.datetime
    conversation_id: str | None
    agents_online: bool


@attrs.frozen(kw_only=True)
class ErrorFrame(Wire):
    """A frame the server could not take; the socket stays open."""

    type: Literal["error"] = "error"
    error: ErrorBody
    client_message_id: str | None = attrs.field(default=None, metadata=OPTIONAL)


_TEXTS: OrderedDict[int, tuple[Event, str]] = OrderedDict()
_TEXTS_KEPT = 1024


def event_text(event: Event) -> str:
    """An event's JSON, serialised once however many sockets send it (a message reaches its
    visitor and every inbox of the tenant). Kept for the last events; the entry holds the event
    itself, so its ``id`` cannot be reused while it is kept."""
    kept = _TEXTS.get(id(event))
    if kept is not None and kept[0] is event:
        return kept[1]
    text = json.dumps(event.to_wire())
    _TEXTS[id(event)] = (event, text)
    if len(_TEXTS) > _TEXTS_KEPT:
        _TEXTS.popitem(last=False)
    return text


class EventStream:
    """Writes events to one socket exactly once per (conversation, seq), in seq order."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        load: Callable[[str, int], Awaitable[tuple[int, list[Event]] | None]],
    ) -> None:
        self._send_text = send
        self._load = load
        self._lock = trio.Lock()
        self.sent: dict[str, int] = {}
        self.seen: dict[str, set[int]] = {}

    async def send_frame(self, frame: Wire) -> None:
        async with self._lock:
            await self._send_text(json.dumps(frame.to_wire()))

    async def _emit(self, event: Event) -> None:
        await self._send_text(event_text(event))
        if event.conversation_id is not None and event.seq is not None:
            self.seen.setdefault(event.conversation_id, set()).add(event.seq)
            self.sent[event.conversation_id] = max(
                event.seq, self.sent.get(event.conversation_id, 0)
            )

    async def live(self, event: Event) -> None:
        async with self._lock:
            cid = event.conversation_id
            if cid is None or event.seq is None:
                await self._emit(event)
                return
            if event.seq in self.seen.get(cid, ()):
                return  # already sent (by a replay)
            last = self.sent.get(cid)
            if last is not None and event.seq > last + 1:
                await self._replay(cid, last)  # fill the gap from storage
                if event.seq in self.seen.get(cid, ()):
                    return
            await self._emit(event)

    async def ack(self, client_message_id: str | None, outcome: Outcome) -> None:
        """Tell the sender its message is committed (after the commit, never before)."""
        assert outcome.message is not None  # a PostMessage outcome always carries its message
        await self.send_frame(
            AckFrame(client_message_id=client_message_id, message=outcome.message)
        )

    async def resume_frame(self, conversation_id: str, after_seq: int) -> None:
        """Answer a ``resume`` frame: the missed events, then ``resumed`` with the last seq."""
        last = await self.resume(conversation_id, after_seq)
        await self.send_frame(ResumedFrame(conversation_id=conversation_id, last_seq=last))

    async def resume(self, conversation_id: str, after_seq: int) -> int:
        """Send every stored event after ``after_seq`` not yet sent on this socket.

        Returns the last seq of the conversation this socket now holds (``after_seq`` when the
        conversation has no later event).
        """
        async with self._lock:
            last_stored = await self._replay(conversation_id, after_seq)
            return min(max(self.sent.get(conversation_id, 0), after_seq), last_stored)

    async def _replay(self, conversation_id: str, after_seq: int) -> int:
        """Send the stored events after ``after_seq`` not sent yet, a page (``load`` answers
        at most :data:`REPLAY_PAGE`) at a time; the conversation's last seq."""
        seen = self.seen.setdefault(conversation_id, set())
        while True:
            loaded = await self._load(conversation_id, after_seq)
            if loaded is None:
                raise EngineError(f"no conversation {conversation_id}", code="not_found")
            last_stored, events = loaded
            for event in events:
                if event.seq is not None and event.seq not in seen:
                    await self._emit(event)
            if len(events) < REPLAY_PAGE or events[-1].seq is None:
                return last_stored
            after_seq = events[-1].seq


def resume_in_address(args: Any) -> str | None:
    """The ``resume`` frame a socket's address asks for (``?afterSeq=N[&conversationId=…]``), as
    the client would have sent it; None when the address asks for none. Answered like the frame
    (an ``error`` frame when it is not valid), but before any live event: a client resuming this
    way gets its missed events first and in order, with nothing sent twice, where a ``resume``
    frame sent after ``ready`` may follow a live event committed in between."""
    after = args.get("afterSeq")
    if after is None:
        return None
    frame: dict[str, Any] = {
        "type": "resume",
        "afterSeq": int(after) if after.isascii() and after.isdigit() else after,
    }
    if args.get("conversationId"):
        frame["conversationId"] = args.get("conversationId")
    return json.dumps(frame)


def _error_frame(exc: Exception, client_message_id: Any = None) -> ErrorFrame:
    if isinstance(exc, ApiError | EngineError):
        error = ErrorBody.of(exc.code, exc.message, exc.extra)
    elif unavailable(exc):
        error = ErrorBody("database_unavailable", "the database does not answer; retry")
    else:
        error = ErrorBody("internal_error", "something went wrong on our side; it has been logged")
    return ErrorFrame(error=error, client_message_id=client_message_id)


async def _pump(sub: Subscription, stream: EventStream, side: str, clock: Any) -> None:
    delivery = metrics.DELIVERY_SECONDS.labels(side)
    async for event in sub:
        await stream.live(event)
        delivery.observe(max(0.0, (clock.now() - event.at).total_seconds()))
    if sub.dropped_reason:
        await websocket.close(CLOSE_TOO_SLOW, sub.dropped_reason[:120])
    raise _Stop


FRAME_KINDS = {cls: kind for kind, cls in FRAMES.items()}


async def _close_on_shutdown(stopping: trio.Event) -> None:
    """Close 1001 once the server stops: Hypercorn would otherwise cancel the socket after the
    grace period, without a close frame (1006 to the client)."""
    await stopping.wait()
    await websocket.close(CLOSE_GOING_AWAY, "server shutting down")
    raise _Stop


class _Stop(Exception):
    pass


async def serve_socket(
    topics: list[Topic],
    stream_factory: Callable[[], EventStream],
    handle: Callable[[EventStream, Any], Awaitable[None]],
    hello: ReadyFrame,
    side: str,
    buffer: int | None = None,
    *,
    owner: str,
    cap: int,
) -> None:
    """Serve one socket: subscribe to ``topics`` (queue of ``buffer`` events, the broker's default
    when None), send ``hello``, answer the ``resume`` the address carries (``?afterSeq=N`` and,
    optionally, ``conversationId``), then pump events out and hand client frames to ``handle``.
    ``owner`` (``visitor:<id>``, ``agent:<id>``) may hold ``cap`` sockets at once in this
    process; one more is closed 1013."""
    s = services()
    connections = metrics.CONNECTIONS.labels(side)
    if s.open_sockets[owner] >= cap:  # this visitor's tabs or this agent's inboxes, here
        await websocket.close(CLOSE_TRY_AGAIN, f"more than {cap} open sockets; close one")
        return
    s.open_sockets[owner] += 1
    try:
        first = resume_in_address(websocket.args)
        await _serve_socket(
            s, topics, stream_factory, handle, hello, side, buffer, connections, first
        )
    finally:
        s.open_sockets[owner] -= 1
        if not s.open_sockets[owner]:
            del s.open_sockets[owner]


async def _serve_socket(
    s: Services,
    topics: list[Topic],
    stream_factory: Callable[[], EventStream],
    handle: Callable[[EventStream, Any], Awaitable[None]],
    hello: ReadyFrame,
    side: str,
    buffer: int | None,
    connections: Any,
    first: str | None = None,
) -> None:
    with s.broker.subscribe(*topics, buffer=buffer) as sub:
        stream = stream_factory()
        await stream.send_frame(attrs.evolve(hello, server_time=s.clock.now()))
        connections.inc()
        limits = FrameLimits(s.settings.throttle_scale)

        async def take(raw: str | bytes) -> None:
            frame: Any = None
            try:
                try:
                    frame = structure_frame(raw)
                except ApiError:
                    limits.check(None)
                    raise
                limits.check(FRAME_KINDS.get(type(frame)))
                if isinstance(frame, PingFrame):
                    await stream.send_frame(PongFrame(server_time=s.clock.now()))
                else:
                    await handle(stream, frame)
            except Exception as exc:
                # a refusal is answered; anything unexpected is logged and answered too (the
                # socket stays open), never a silent close
                if not isinstance(exc, ApiError | EngineError) and not unavailable(exc):
                    log.exception("socket frame failed", extra={"status": side})
                # the id of the frame refused, when it is one the document allows
                echo = getattr(frame if frame is not None else exc, "client_message_id", None)
                await stream.send_frame(_error_frame(exc, echo))

        try:
            if first is not None:
                # before the pump starts: its replay precedes every live event, which waits in
                # the subscription and is then sent once, in seq order
                await take(first)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, sub, stream, side, s.clock)
                nursery.start_soon(_close_on_shutdown, s.stopping)
                while True:
                    await take(await websocket.receive())
        except* _Stop:
            pass
        finally:
            connections.dec()
