"""The two WebSocket streams: a visitor's (``/api/chat/widgets/{id}/ws``) and the inbox's
(``/api/chat/inbox/ws``).

Both carry the same event envelope. On connect the server subscribes first and then sends
``{"type": "ready"}``: every event committed after ``ready`` reaches the socket. A client that saw
seq N of a conversation sends ``{"type": "resume", "conversationId", "afterSeq": N}`` and gets every
later event of that conversation exactly once, in seq order: :class:`EventStream` remembers the
last seq it sent per conversation, drops what it already sent and fills any gap from PostgreSQL.

Close codes: 4401 bad or missing token, 4403 the session cookie used from another origin,
4404 unknown widget, 1013 the socket fell too far behind or the widget's actor could not answer
(the client reconnects and resumes), 1001 server shutting down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import trio
from quart import Quart, websocket

from engine import metrics
from engine.broker import Subscription, Topic
from engine.clock import iso
from engine.errors import ActorUnavailable, EngineError
from engine.events import Event
from engine.routing import KIND as ROUTER
from engine.routing import Nudge
from engine.visitor import KIND as VISITOR
from storage import queries
from web import auth
from web.deps import bearer, current_agent, load_widget, services
from web.usecases import send_agent_message, send_visitor_message
from web.wire import ApiError, MessageFrame, PingFrame, PresenceFrame, ResumeFrame, structure_frame

log = logging.getLogger("curbe.web.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 1013
CLOSE_TRY_AGAIN = 1013  # "try again later": the server could not serve this socket now


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

    async def send_frame(self, frame: dict[str, Any]) -> None:
        async with self._lock:
            await self._send_text(json.dumps(frame))

    async def _emit(self, event: Event) -> None:
        await self._send_text(json.dumps(event.to_wire()))
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

    async def resume(self, conversation_id: str, after_seq: int) -> int:
        """Send every stored event after ``after_seq`` not yet sent on this socket.

        Returns the last seq of the conversation this socket now holds (``after_seq`` when the
        conversation has no later event).
        """
        async with self._lock:
            last_stored = await self._replay(conversation_id, after_seq)
            return min(max(self.sent.get(conversation_id, 0), after_seq), last_stored)

    async def _replay(self, conversation_id: str, after_seq: int) -> int:
        loaded = await self._load(conversation_id, after_seq)
        if loaded is None:
            raise EngineError(f"no conversation {conversation_id}", code="not_found")
        last_stored, events = loaded
        seen = self.seen.setdefault(conversation_id, set())
        for event in events:
            if event.seq is not None and event.seq not in seen:
                await self._emit(event)
        return last_stored


def _error_frame(exc: Exception, **extra: Any) -> dict[str, Any]:
    if isinstance(exc, ApiError):
        error: dict[str, Any] = exc.to_wire()["error"]
    elif isinstance(exc, EngineError):
        error = exc.to_wire()
    else:
        error = {"code": "internal_error", "message": "something went wrong on our side"}
    return {"type": "error", "error": error, **extra}


async def _pump(sub: Subscription, stream: EventStream, side: str, clock: Any) -> None:
    delivery = metrics.DELIVERY_SECONDS.labels(side)
    async for event in sub:
        await stream.live(event)
        delivery.observe(max(0.0, (clock.now() - event.at).total_seconds()))
    if sub.dropped_reason:
        await websocket.close(CLOSE_TOO_SLOW, sub.dropped_reason[:120])
    raise _Stop


class _Stop(Exception):
    pass


async def _serve(
    topics: list[Topic],
    stream_factory: Callable[[], EventStream],
    handle: Callable[[EventStream, Any], Awaitable[None]],
    hello: dict[str, Any],
    side: str,
) -> None:

    s = services()
    connections = metrics.CONNECTIONS.labels(side)
    with s.broker.subscribe(*topics) as sub:
        stream = stream_factory()
        await stream.send_frame({"type": "ready", "serverTime": iso(s.clock.now()), **hello})
        connections.inc()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, sub, stream, side, s.clock)
                while True:
                    raw = await websocket.receive()
                    try:
                        frame = structure_frame(raw)
                        if isinstance(frame, PingFrame):
                            await stream.send_frame(
                                {"type": "pong", "serverTime": iso(s.clock.now())}
                            )
                        else:
                            await handle(stream, frame)
                    except (ApiError, EngineError) as exc:
                        extra = {}
                        if isinstance(raw, str) and '"clientMessageId"' in raw:
                            try:
                                extra["clientMessageId"] = json.loads(raw).get("clientMessageId")
                            except ValueError:
                                pass
                        await stream.send_frame(_error_frame(exc, **extra))
        except* _Stop:
            pass
        finally:
            connections.dec()


def register_sockets(app: Quart) -> None:

    @app.websocket("/api/chat/widgets/<widget_id>/ws")
    async def visitor_socket(widget_id: str) -> None:
        s = services()
        unavailable = False
        try:
            widget: dict[str, Any] | None = await load_widget(widget_id)
        except ApiError:
            widget = None
        except ActorUnavailable:  # the widget's actor crashed or did not answer: try again
            widget, unavailable = None, True
        await websocket.accept()
        if unavailable:
            await websocket.close(CLOSE_TRY_AGAIN, "temporarily unavailable; reconnect")
            return
        if widget is None:
            await websocket.close(CLOSE_NOT_FOUND, "unknown widget")
            return
        identity = s.signer.check(websocket.args.get("token") or bearer(websocket.headers))
        if identity is None or identity.tenant_id != widget["tenant_id"]:
            await websocket.close(CLOSE_UNAUTHENTICATED, "a valid visitor token is required")
            return
        tenant_id, visitor_id = widget["tenant_id"], identity.visitor_id

        async def load(cid: str, after: int) -> tuple[int, list[Event]] | None:
            return await s.db.run(queries.select_events_after, cid, after, tenant_id, visitor_id)

        async def latest_id() -> str:
            latest = await s.db.run(queries.select_latest_conversation, tenant_id, visitor_id)
            if latest is None:
                raise ApiError(404, "not_found", "this visitor has no conversation yet")
            return latest.id

        async def handle(stream: EventStream, frame: Any) -> None:
            if isinstance(frame, ResumeFrame):
                cid = frame.conversation_id or await latest_id()
                last = await stream.resume(cid, frame.after_seq)
                await stream.send_frame({"type": "resumed", "conversationId": cid, "lastSeq": last})
            elif isinstance(frame, MessageFrame):
                cid = frame.conversation_id or await latest_id()
                outcome = await send_visitor_message(
                    s,
                    tenant_id,
                    visitor_id,
                    cid,
                    frame.text,
                    frame.client_message_id,
                    frame.client_timestamp,
                    name=None,
                )
                assert outcome.message is not None
                await stream.send_frame(
                    {
                        "type": "ack",
                        "clientMessageId": frame.client_message_id,
                        "message": outcome.message.to_wire(),
                    }
                )
            else:
                raise ApiError(
                    422, "unsupported_frame", "visitors can send message, resume and ping"
                )

        session = getattr(s.supervisor.actor(VISITOR, visitor_id), "session", None)
        if session is not None and session.conversation_id is not None:
            # a (re)connected widget in a queue hears its position again (positions are not
            # stored); a hint: dropped if the router's mailbox is full (a pass is coming anyway)
            s.supervisor.try_cast(ROUTER, tenant_id, Nudge(resend_to=visitor_id))
        await _serve(
            [("visitor", visitor_id), ("visitors", tenant_id)],
            lambda: EventStream(websocket.send, load),
            handle,
            {"visitorId": visitor_id, "agentsOnline": s.presence.agents_online(tenant_id)},
            side="visitor",
        )

    @app.websocket("/api/chat/inbox/ws")
    async def inbox_socket() -> None:
        s = services()
        token = websocket.args.get("token") or bearer(websocket.headers)
        by_cookie = token is None
        if by_cookie:
            token = websocket.cookies.get(auth.SESSION_COOKIE)
        await websocket.accept()
        try:
            agent = await current_agent(token)
        except ApiError:
            await websocket.close(CLOSE_UNAUTHENTICATED, "sign in first")
            return
        origin = websocket.headers.get("Origin")
        if by_cookie and origin and urlsplit(origin).netloc != websocket.headers.get("Host"):
            # a cookie rides along wherever the browser goes: only our own pages may use it here
            await websocket.close(CLOSE_FORBIDDEN, "cross-origin use of the session cookie")
            return
        tenant_id = agent["tenant_id"]
        # ``presence=0``: a page that only watches (Settings) does not make the agent available
        counts_as_online = websocket.args.get("presence", "1") != "0"

        async def load(cid: str, after: int) -> tuple[int, list[Event]] | None:
            return await s.db.run(queries.select_events_after, cid, after, tenant_id)

        async def handle(stream: EventStream, frame: Any) -> None:
            if isinstance(frame, ResumeFrame):
                if frame.conversation_id is None:
                    raise ApiError(
                        422, "conversation_required", "the inbox resumes one conversation at a time"
                    )
                last = await stream.resume(frame.conversation_id, frame.after_seq)
                await stream.send_frame(
                    {"type": "resumed", "conversationId": frame.conversation_id, "lastSeq": last}
                )
            elif isinstance(frame, PresenceFrame):
                s.presence.set_away(tenant_id, agent["id"], frame.status == "away")
            elif isinstance(frame, MessageFrame):
                if frame.conversation_id is None:
                    raise ApiError(
                        422, "conversation_required", "say which conversation the message is for"
                    )
                outcome = await send_agent_message(s, agent, frame.conversation_id, frame)
                assert outcome.message is not None
                await stream.send_frame(
                    {
                        "type": "ack",
                        "clientMessageId": frame.client_message_id,
                        "message": outcome.message.to_wire(),
                    }
                )

        if counts_as_online:
            s.presence.connect(tenant_id, agent["id"])
        try:
            await _serve(
                [("tenant", tenant_id)],
                lambda: EventStream(websocket.send, load),
                handle,
                {"agentId": agent["id"], "tenantId": tenant_id},
                side="agent",
            )
        finally:
            if counts_as_online:
                s.presence.disconnect(tenant_id, agent["id"])
