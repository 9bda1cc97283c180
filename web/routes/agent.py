"""The agent's API and socket: sign-in and profile (``/api/auth/…``), conversations and their
commands, live visitors and proactive chats (``/api/chat/…``), and the inbox WebSocket.

An agent authenticates with a bearer token or the session cookie (:func:`web.deps.require_agent`);
every query is scoped to the agent's tenant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, jsonify, request, websocket

from engine.conversation import Accept, Agent, Reopen, Solve
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard, Outcome
from engine.events import Event, EventType
from engine.visitor import JoinedChat, LeftChat
from storage import queries
from web import auth
from web.deps import (
    agent_of,
    bearer,
    body,
    client_ip,
    current_agent,
    require_agent,
    services,
)
from web.presenters import (
    agent_wire,
    contact_wire,
    conversation_wire,
    created,
    last_message_wire,
)
from web.streams import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, EventStream, serve_socket
from web.usecases import send_agent_message, start_chat, tell_visitor
from web.wire import (
    ApiError,
    LoginBody,
    MessageBody,
    MessageFrame,
    PresenceFrame,
    ProactiveChatBody,
    ProfileBody,
    ReadBody,
    ResumeFrame,
    decode_json,
    structure,
)

bp = Blueprint("agent", __name__)


# --- sign-in and profile ----------------------------------------------------------------------


@bp.post("/api/auth/login")
async def login() -> Response:
    s = services()
    creds = await body(LoginBody)
    ip = client_ip()
    wait = s.login_limiter.retry_after(creds.email, ip)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed sign-ins; try again in {int(wait + 0.999)} seconds",
            retryAfterSeconds=int(wait + 0.999),
        )
    row = await s.db.run(queries.select_agent_by_email, creds.email)
    ok = await auth.verify_password(
        row["password_hash"] if row else auth.DUMMY_HASH, creds.password
    )
    if row is None or not ok:
        s.login_limiter.failed(creds.email, ip)
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    s.login_limiter.succeeded(creds.email, ip)
    token = auth.new_agent_token()
    expires = s.clock.now() + dt.timedelta(days=s.settings.session_days)
    await s.db.run(
        queries.insert_agent_session, auth.token_hash(token), row["id"], row["tenant_id"], expires
    )
    response = jsonify({"token": token, "agent": agent_wire(row)})
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        max_age=s.settings.session_days * 86400,
        path="/",
    )
    return response


@bp.post("/api/auth/logout")
async def logout() -> Response:
    await require_agent()
    token = bearer(request.headers) or request.cookies.get(auth.SESSION_COOKIE)
    assert token is not None
    await services().db.run(queries.delete_agent_session, auth.token_hash(token))
    response = jsonify({"ok": True})
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@bp.get("/api/auth/me")
async def me() -> Response:
    agent = await require_agent()
    presence = services().presence.status(agent["tenant_id"], agent["id"])
    return jsonify({"agent": agent_wire(agent), "presence": presence})


@bp.patch("/api/auth/me")
async def edit_profile() -> Response:
    """The agent's own name and avatar (shown to visitors when the agent joins a chat)."""
    agent = await require_agent()
    profile = await body(ProfileBody)
    row = await services().db.run(
        queries.update_agent_profile,
        agent["id"],
        profile.name.strip() if profile.name else None,
        profile.avatar_url or None,
        profile.avatar_url == "",
    )
    assert row is not None
    return jsonify({"agent": agent_wire(row)})


# --- conversations ----------------------------------------------------------------------------


@bp.get("/api/chat/conversations")
async def list_conversations() -> Response:
    agent = await require_agent()
    s = services()
    view = request.args.get("view", "all")
    if view not in queries.VIEWS:
        raise ApiError(422, "unknown_view", f"view must be one of {', '.join(queries.VIEWS)}")
    rows = await s.db.run(queries.select_conversations, agent["tenant_id"], view, agent["id"])
    out = []
    for conversation, contact, last, first, unread in rows:
        wire = conversation.to_wire()
        wire["contact"] = contact_wire(contact, conversation.visitor_id)
        wire["lastMessage"] = last_message_wire(last)
        wire["firstMessage"] = last_message_wire(first)
        wire["unread"] = unread
        # an OPEN chat whose agent has no inbox open is flagged in the inbox
        wire["assigneeOnline"] = (
            s.presence.status(agent["tenant_id"], conversation.assignee.id) != "offline"
            if conversation.assignee is not None
            else None
        )
        out.append(wire)
    return jsonify({"conversations": out, "view": view})


@bp.get("/api/chat/conversations/<conversation_id>")
async def conversation_detail(conversation_id: str) -> Response:
    agent = await require_agent()
    found = await services().db.run(
        queries.select_conversation_detail, agent["tenant_id"], conversation_id
    )
    if found is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    conversation, contact, messages = found
    contact_shape = contact_wire(contact, conversation.visitor_id)
    return jsonify(conversation_wire(conversation, messages, contact_shape))


async def agent_command(conversation_id: str, make: Callable[[Agent], Any]) -> Outcome:
    """One of the signed-in agent's commands, guarded by the agent's tenant."""
    agent = await require_agent()
    command = Guard(agent["tenant_id"], make(agent_of(agent)))
    return await services().supervisor.call(CONVERSATION, conversation_id, command)  # type: ignore[no-any-return]


@bp.post("/api/chat/conversations/<conversation_id>/accept")
async def accept(conversation_id: str) -> Response:
    # the agent's limit is checked inside the accepting commit (409 ``at_capacity``), the same
    # check round robin's offers meet: no interleaving passes it
    outcome = await agent_command(conversation_id, Accept)
    return jsonify(conversation_wire(outcome))


@bp.post("/api/chat/conversations/<conversation_id>/solve")
async def solve(conversation_id: str) -> Response:
    outcome = await agent_command(conversation_id, Solve)
    tell_visitor(services(), outcome.conversation, LeftChat(conversation_id))
    return jsonify(conversation_wire(outcome))


@bp.post("/api/chat/conversations/<conversation_id>/reopen")
async def reopen(conversation_id: str) -> Response:
    # refused (409 ``conversation_active``) by the commit if the visitor has another live chat
    outcome = await agent_command(conversation_id, Reopen)
    tell_visitor(services(), outcome.conversation, JoinedChat(conversation_id))
    return jsonify(conversation_wire(outcome))


@bp.post("/api/chat/conversations/<conversation_id>/messages")
async def agent_message(conversation_id: str) -> Response:
    agent = await require_agent()
    msg = await body(MessageBody)
    outcome = await send_agent_message(services(), agent, conversation_id, msg)
    return created(outcome.message.to_wire())  # type: ignore[union-attr]


@bp.post("/api/chat/conversations/<conversation_id>/read")
async def mark_read(conversation_id: str) -> Response:
    """The agent opened the conversation: visitor messages up to ``seq`` are read."""
    agent = await require_agent()
    s = services()
    raw = await request.get_data(cache=True)
    read = structure(decode_json(raw), ReadBody) if raw.strip() else ReadBody()
    now = s.clock.now()
    mark = await s.db.run(
        queries.mark_read, agent["tenant_id"], agent["id"], conversation_id, read.seq, now
    )
    if mark is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    wire = {"agentId": agent["id"], "conversationId": conversation_id, "lastReadSeq": mark}
    s.broker.publish(Event(EventType.CONVERSATION_READ.value, now, agent["tenant_id"], data=wire))
    return jsonify({"conversationId": conversation_id, "lastReadSeq": mark})


@bp.get("/api/chat/conversations/counts")
async def conversation_counts() -> Response:
    """How many conversations each view holds for this agent, and how many live visitors."""
    agent = await require_agent()
    s = services()
    counts = await s.db.run(queries.count_conversations, agent["tenant_id"], agent["id"])
    since = s.clock.now() - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
    visitors = await s.db.run(queries.select_live_visitors, agent["tenant_id"], since)
    return jsonify({"counts": {**counts, "liveVisitors": len(visitors)}})


# --- visitors ---------------------------------------------------------------------------------


@bp.post("/api/chat/visitors/<visitor_id>/conversations")
async def proactive_chat(visitor_id: str) -> Response:
    """An agent starts a chat with a live visitor: OPEN, assigned to the agent at once. A command
    of the visitor's actor, like the visitor's own start (one live chat each)."""
    agent = await require_agent()
    start = await body(ProactiveChatBody)
    return await start_chat(
        services(),
        visitor_id,
        agent["tenant_id"],
        start.message,
        start.client_message_id,
        opened_by=agent_of(agent),
    )


@bp.get("/api/chat/visitors/live")
async def live_visitors() -> Response:
    agent = await require_agent()
    s = services()
    now = s.clock.now()
    since = now - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
    sessions = await s.db.run(queries.select_live_visitors, agent["tenant_id"], since)
    return jsonify({"visitors": [v.to_wire(now) for v in sessions]})


# --- the inbox socket -------------------------------------------------------------------------


@bp.websocket("/api/chat/inbox/ws")
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
        if isinstance(frame, PresenceFrame):
            s.presence.set_away(tenant_id, agent["id"], frame.status == "away")
            return
        if frame.conversation_id is None:  # a resume or a message
            raise ApiError(
                422,
                "conversation_required",
                "the inbox resumes one conversation at a time"
                if isinstance(frame, ResumeFrame)
                else "say which conversation the message is for",
            )
        if isinstance(frame, ResumeFrame):
            await stream.resume_frame(frame.conversation_id, frame.after_seq)
        elif isinstance(frame, MessageFrame):
            outcome = await send_agent_message(s, agent, frame.conversation_id, frame)
            await stream.ack(frame.client_message_id, outcome)

    if counts_as_online:
        s.presence.connect(tenant_id, agent["id"])
    try:
        await serve_socket(
            [("tenant", tenant_id)],
            lambda: EventStream(websocket.send, load),
            handle,
            {"agentId": agent["id"], "tenantId": tenant_id},
            side="agent",
        )
    finally:
        if counts_as_online:
            s.presence.disconnect(tenant_id, agent["id"])
