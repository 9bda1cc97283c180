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

import attrs
from quart import Blueprint, Response, jsonify, request, websocket

from engine.conversation import Accept, Reopen, Solve, Transfer, Typing
from engine.values import (
    Agent,
    Conversation,
    Event,
    SenderType,
    VisitorSession,
)
from engine.visitor import KIND as VISITOR
from engine.visitor import JoinedChat, LeftChat
from storage import queries
from web import auth
from web import examples as ex
from web.apidoc import (
    ACTOR,
    AGENT,
    BODY_ERRORS,
    PUBLIC,
    api,
    enum,
    json_body,
    json_response,
    query_param,
    ref,
)
from web.deps import (
    agent_of,
    bearer,
    body,
    client_ip,
    current_agent,
    optional_body,
    require_agent,
    services,
)
from web.paging import Paging
from web.presenters import (
    answer,
    contact_of,
    created,
    extend,
    profile_of,
    rating_of,
    summary_of,
)
from web.services import Services
from web.shapes import (
    Contact,
    ConversationDetail,
    ConversationList,
    ConversationListItem,
    Counts,
    Done,
    LiveVisitors,
    Me,
    MessagePage,
    ProfileAnswer,
    ReadMark,
    SignedIn,
    Team,
    TeamMember,
)
from web.signin import sign_in
from web.streams import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    FRAME_KINDS,
    INBOX_BUFFER,
    REPLAY_PAGE,
    EventStream,
    ReadyFrame,
    serve_socket,
)
from web.throttles import SOCKETS_PER_AGENT
from web.usecases import (
    MESSAGES,
    TypingSockets,
    agent_read,
    conversation_command,
    message_page,
    send_agent_message,
    start_chat,
)
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
    TransferBody,
    TypingFrame,
)

bp = Blueprint("agent", __name__)


# --- sign-in and profile ----------------------------------------------------------------------


@bp.post("/api/auth/login")
@api(
    "login",
    "Sign in",
    "auth",
    PUBLIC,
    {
        "200": json_response(
            "The token (also set as the `curbe_session` cookie) and the agent.",
            SignedIn,
            {"token": "Xq0k…43 characters…", "agent": ex.EX_AGENT},
            headers={
                "Set-Cookie": {
                    "description": "`curbe_session=<token>; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000`",
                    "schema": {"type": "string"},
                }
            },
        ),
    },
    description=(
        "Every attempt is counted before its password is checked. 429 `too_many_attempts` "
        "(with `retryAfterSeconds` and `Retry-After`), even for the right password, after 5 "
        "attempts for one email from one address, 20 for one email from anywhere, or 30 from "
        "one address, within 15 minutes; a success clears its email's failures from its "
        "address. 503 `busy` (with `Retry-After`) when more sign-ins than the server checks at "
        "once wait longer than 5 s. The cookie is `Secure` when the public URL is https."
    ),
    body=json_body(
        LoginBody,
        {"email": "javier@insuremax.com", "password": "correct horse battery"},
    ),
    error_codes=(*BODY_ERRORS, "invalid_credentials", "too_many_attempts", "busy"),
)
async def login() -> Response:
    s = services()
    creds = await body(LoginBody)
    row = await sign_in(s, creds.email, creds.password, client_ip())
    token = auth.new_agent_token()
    expires = s.clock.now() + dt.timedelta(days=s.settings.session_days)
    await s.db.run(
        queries.insert_agent_session, auth.token_hash(token), row["id"], row["tenant_id"], expires
    )
    response = answer(SignedIn(token, profile_of(row)))
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        max_age=s.settings.session_days * 86400,
        path="/",
        secure=s.settings.secure_cookies,
    )
    return response


@bp.post("/api/auth/logout")
@api(
    "logout",
    "Sign out (revoke the token)",
    "auth",
    AGENT,
    {
        "200": json_response(
            "The token is revoked and the cookie cleared.",
            Done,
            {"ok": True},
        )
    },
)
async def logout() -> Response:
    await require_agent()
    token = bearer(request.headers) or request.cookies.get(auth.SESSION_COOKIE)
    assert token is not None
    await services().db.run(queries.delete_agent_session, auth.token_hash(token))
    response = answer(Done())
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@bp.get("/api/auth/me")
@api(
    "getMe",
    "The signed-in agent and their presence",
    "auth",
    AGENT,
    {
        "200": json_response(
            "The agent; `presence` is online (an inbox open, not away), away or offline.",
            Me,
            {"agent": ex.EX_AGENT, "presence": "online"},
        )
    },
)
async def me() -> Response:
    agent = await require_agent()
    presence = services().presence.status(agent["tenant_id"], agent["id"])
    return answer(Me(profile_of(agent), presence))


@bp.patch("/api/auth/me")
@api(
    "updateMe",
    "Edit the agent's name and avatar",
    "auth",
    AGENT,
    {
        "200": json_response(
            "The agent as visitors will see them.",
            ProfileAnswer,
            {"agent": {**ex.EX_AGENT, "avatarUrl": "https://cdn.example.com/javier.png"}},
        )
    },
    error_codes=BODY_ERRORS,
    body=json_body(
        ProfileBody,
        {"name": "Javier Lazo", "avatarUrl": "https://cdn.example.com/javier.png"},
    ),
)
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
    return answer(ProfileAnswer(profile_of(row)))


# --- conversations ----------------------------------------------------------------------------


# lists that grow without bound come a page at a time (web/paging.py)
CONVERSATIONS = Paging("conversations", default=200, most=200)
# a visitor flood must not make one answer (or the inbox that renders it) unbounded
LIVE_VISITORS = Paging("live_visitors", default=100, most=500)


@bp.get("/api/chat/conversations")
@api(
    "listConversations",
    "The conversations of one inbox view",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The most recently updated first, a page at a time (`nextCursor`). The Open view "
            "holds OPEN live chats and unsolved offline messages; `unread` is per agent.",
            ConversationList,
            {
                "view": "waiting",
                "conversations": [
                    {
                        **ex.EX_CONVERSATION,
                        "contact": ex.EX_CONTACT,
                        "lastMessage": ex.EX_MESSAGE_SUMMARY,
                        "firstMessage": ex.EX_MESSAGE_SUMMARY,
                        "unread": True,
                        "assigneeOnline": None,
                        "views": ["unread", "unassigned", "waiting", "all"],
                    }
                ],
                "nextCursor": None,
            },
        )
    },
    error_codes=("unknown_view", "invalid_limit", "invalid_cursor"),
    parameters=[
        query_param(
            "view",
            "which view (default `all`); anything else answers 422 `unknown_view`",
            {**enum(*queries.VIEWS), "default": "all"},
        ),
        *CONVERSATIONS.parameters("the most recently updated first"),
    ],
)
async def list_conversations() -> Response:
    agent = await require_agent()
    s = services()
    view = request.args.get("view", "all")
    if view not in queries.VIEWS:
        raise ApiError(422, "unknown_view", f"view must be one of {', '.join(queries.VIEWS)}")
    limit, after = CONVERSATIONS.limit(), CONVERSATIONS.after_key()
    rows = await s.db.run(
        queries.select_conversations,
        agent["tenant_id"],
        view,
        agent["id"],
        limit=limit + 1,
        after=after,
    )
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        cursor = CONVERSATIONS.cursor([last.updated_at.isoformat(), last.id])

    def online(conversation: Conversation) -> bool | None:
        # an OPEN chat whose agent has no inbox open is flagged in the inbox
        if conversation.assignee is None:
            return None
        return s.presence.status(agent["tenant_id"], conversation.assignee.id) != "offline"

    out = [
        extend(
            conversation,
            ConversationListItem,
            contact=live_page(s, contact_of(contact, conversation.visitor_id)),
            last_message=summary_of(last),
            first_message=summary_of(first),
            unread=unread,
            assignee_online=online(conversation),
            views=views,
        )
        for conversation, contact, last, first, unread, views in rows
    ]
    return answer(ConversationList(out, view, next_cursor=cursor))


@bp.get("/api/chat/conversations/<conversation_id>")
@api(
    "getConversation",
    "A conversation with its contact and messages",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The conversation, the contact and its latest messages (`limit`, 200 by default) "
            "in seq order; `earlierMessages` pages back to the rest.",
            ref("ConversationDetail"),
            {
                **ex.EX_CONVERSATION,
                "contact": ex.EX_CONTACT,
                "messages": [ex.EX_MESSAGE],
                "earlierMessages": None,
                "views": ["unread", "unassigned", "waiting", "all"],
                "visitorLastReadSeq": 0,
                "rating": None,
            },
        )
    },
    error_codes=("not_found", "invalid_limit"),
    parameters=MESSAGES.parameters("seq order")[:1],
)
async def conversation_detail(conversation_id: str) -> Response:
    agent = await require_agent()
    last = MESSAGES.limit()
    found = await services().db.run(
        queries.select_conversation_detail,
        agent["tenant_id"],
        conversation_id,
        agent["id"],
        last_messages=last + 1,
    )
    if found is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    conversation, contact, messages, views, visitor_mark, rating = found
    messages, earlier = MESSAGES.earlier(messages, last)
    contact_card = live_page(services(), contact_of(contact, conversation.visitor_id))
    return answer(
        extend(
            conversation,
            ConversationDetail,
            messages=messages,
            earlier_messages=earlier,
            contact=contact_card,
            views=views,
            visitor_last_read_seq=visitor_mark,
            rating=rating_of(rating),
        )
    )


@bp.get("/api/chat/conversations/<conversation_id>/messages")
@api(
    "listConversationMessages",
    "Earlier messages of a conversation",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The messages before the cursor, in seq order (up to `limit`), and the cursor of "
            "the page before them.",
            MessagePage,
            {"messages": [ex.EX_MESSAGE], "earlierMessages": None},
        )
    },
    error_codes=("not_found", "invalid_limit", "invalid_cursor"),
    parameters=MESSAGES.parameters("seq order, read back"),
)
async def conversation_messages(conversation_id: str) -> Response:
    agent = await require_agent()
    return await message_page(agent["tenant_id"], conversation_id)


def command_api(
    operation_id: str,
    summary: str,
    answer: str,
    example: dict[str, Any],
    conflicts: tuple[str, ...],
    description: str | None = None,
) -> Callable[[Any], Any]:
    """An agent's command on a conversation: it answers the conversation after the command."""
    return api(
        operation_id,
        summary,
        "conversations",
        AGENT,
        {"200": json_response(answer, Conversation, example)},
        error_codes=(*ACTOR, "not_found", *conflicts),
        description=description,
    )


async def agent_command(
    conversation_id: str, make: Callable[[Agent], Any], tell: Any = None
) -> Response:
    """One of the signed-in agent's commands, guarded by the agent's tenant; the conversation
    after it is the answer. ``tell``: a hint for the visitor's actor (joined or left a chat)."""
    agent = await require_agent()
    outcome = await conversation_command(services(), agent, conversation_id, make, tell)
    return jsonify(outcome.conversation.to_wire())


@bp.post("/api/chat/conversations/<conversation_id>/accept")
@command_api(
    "acceptConversation",
    "Accept a waiting chat",
    "The conversation, now OPEN and assigned to the caller (accepting twice is harmless). "
    "Emits `conversation_assigned` then `conversation_status_changed`.",
    ex.EX_OPEN_CONVERSATION,
    ("already_assigned", "at_capacity", "illegal_transition"),
    description=(
        "409 `already_assigned` (with `assignee`) when another agent got it first; "
        "409 `at_capacity` (with `openChats`, `capacity`) past the agent's limit of "
        "OPEN chats; 409 `illegal_transition` for a SOLVED conversation."
    ),
)
async def accept(conversation_id: str) -> Response:
    # the agent's limit is checked inside the accepting commit (409 ``at_capacity``), the same
    # check round robin's offers meet: no interleaving passes it
    return await agent_command(conversation_id, Accept)


@bp.post("/api/chat/conversations/<conversation_id>/solve")
@command_api(
    "solveConversation",
    "Close a conversation",
    "The conversation, now SOLVED.",
    {**ex.EX_OPEN_CONVERSATION, "status": "SOLVED", "solvedAt": ex.T1, "lastSeq": 5},
    ("already_solved",),
    description=(
        "Emits `conversation_status_changed`; the visitor's widget shows its closing screen and "
        "the visitor may start a new chat."
    ),
)
async def solve(conversation_id: str) -> Response:
    return await agent_command(conversation_id, Solve, LeftChat(conversation_id))


@bp.post("/api/chat/conversations/<conversation_id>/reopen")
@command_api(
    "reopenConversation",
    "Reopen a solved conversation",
    "The conversation, OPEN again and assigned to the caller.",
    {**ex.EX_OPEN_CONVERSATION, "lastSeq": 6},
    ("illegal_transition", "conversation_active", "at_capacity"),
)
async def reopen(conversation_id: str) -> Response:
    # refused (409 ``conversation_active``) by the commit if the visitor has another live chat
    return await agent_command(conversation_id, Reopen, JoinedChat(conversation_id))


@bp.post("/api/chat/conversations/<conversation_id>/transfer")
@api(
    "transferConversation",
    "Hand an OPEN chat to a colleague",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The conversation, now assigned to that agent (to the one who holds it: nothing "
            "changes). Emits `conversation_assigned` with `previousAgent`: the visitor reads "
            '"You are now chatting with …", the chat moves to the new agent\'s Assigned to me.',
            Conversation,
            {**ex.EX_OPEN_CONVERSATION, "lastSeq": 7},
        )
    },
    error_codes=(
        *ACTOR,
        *BODY_ERRORS,
        "not_found",
        "unknown_agent",
        "agent_unavailable",
        "at_capacity",
        "illegal_transition",
    ),
    description=(
        "Any agent of the workspace may hand an OPEN live chat on. 422 `unknown_agent` for an "
        "agent not of this workspace; 409 `agent_unavailable` (with `presence`) when that agent "
        "is away or has no inbox open; 409 `at_capacity` past their limit of OPEN chats "
        "(checked in the commit, as an accept is); 409 `illegal_transition` unless OPEN."
    ),
    body=json_body(TransferBody, {"agentId": ex.AGENT}),
)
async def transfer(conversation_id: str) -> Response:
    agent = await require_agent()
    target = (await body(TransferBody)).agent_id
    s = services()
    tenant_id = agent["tenant_id"]
    member = next((m for m in await team(s, tenant_id) if m.id == target), None)
    if member is None:
        raise ApiError(422, "unknown_agent", f"no agent {target} in this workspace")
    if member.status != "online":
        raise ApiError(
            409,
            "agent_unavailable",
            f"{member.name} is {member.status}; a chat can be handed to an agent who is online",
            presence=member.status,
        )
    to = Agent(member.id, member.name, member.avatar_url)
    outcome = await conversation_command(s, agent, conversation_id, lambda _: Transfer(to))
    return jsonify(outcome.conversation.to_wire())


@bp.get("/api/chat/agents")
@api(
    "listAgents",
    "The workspace's agents, with presence and load",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "Every agent of the caller's workspace (the caller too), by name: who can be handed "
            "a chat now (`online`, `openChats` below `capacity`).",
            Team,
            {
                "agents": [
                    {
                        "id": ex.AGENT,
                        "name": "Javier Lazo",
                        "avatarUrl": None,
                        "status": "online",
                        "openChats": 2,
                        "capacity": 5,
                    }
                ]
            },
        )
    },
)
async def list_agents() -> Response:
    agent = await require_agent()
    return answer(Team(await team(services(), agent["tenant_id"])))


async def team(s: Services, tenant_id: str) -> list[TeamMember]:
    rows = await s.db.run(queries.select_team, tenant_id)
    members = [
        TeamMember(
            id=r["id"],
            name=r["name"],
            avatar_url=r["avatar_url"],
            status=s.presence.status(tenant_id, r["id"]),
            open_chats=int(r["held"]),
            capacity=int(r["max_open_chats"]),
        )
        for r in rows
    ]
    return sorted(members, key=lambda m: (m.name.casefold(), m.id))


@bp.post("/api/chat/conversations/<conversation_id>/messages")
@api(
    "postAgentMessage",
    "An agent's reply",
    "conversations",
    AGENT,
    {
        "201": json_response(
            "The stored message; sending marks the conversation read.",
            ref("Message"),
            {
                **ex.EX_MESSAGE,
                "seq": 5,
                "senderType": "agent",
                "senderId": ex.AGENT,
                "senderName": "Javier Lazo",
                "text": "Hi María, happy to help. Which car is it?",
                "clientMessageId": "a-19c0",
            },
        ),
    },
    error_codes=(*ACTOR, *BODY_ERRORS, "not_found", "conversation_not_open", "conversation_solved"),
    body=json_body(
        MessageBody,
        {
            "text": "Hi María, happy to help. Which car is it?",
            "clientMessageId": "a-19c0",
        },
    ),
)
async def agent_message(conversation_id: str) -> Response:
    agent = await require_agent()
    msg = await body(MessageBody)
    outcome = await send_agent_message(services(), agent, conversation_id, msg)
    return created(outcome.message.to_wire())  # type: ignore[union-attr]


@bp.post("/api/chat/conversations/<conversation_id>/read")
@api(
    "markConversationRead",
    "Mark a conversation read up to a seq",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The agent's read mark (it never moves back). When it moved past a visitor's "
            "message, emits `conversation_read` to the inbox and to the conversation's "
            'visitor (its "Seen").',
            ReadMark,
            {"conversationId": ex.CONVERSATION, "lastReadSeq": 5},
        )
    },
    error_codes=(*BODY_ERRORS, "not_found"),
    body=json_body(
        ReadBody,
        {"seq": 5},
        required=False,
        description="Optional; an empty body marks everything read.",
    ),
)
async def mark_read(conversation_id: str) -> Response:
    """The agent opened the conversation: visitor messages up to ``seq`` are read."""
    agent = await require_agent()
    read = await optional_body(ReadBody)
    mark = await agent_read(services(), agent, conversation_id, read.seq)
    return answer(ReadMark(conversation_id, mark))


@bp.get("/api/chat/conversations/counts")
@api(
    "countConversations",
    "How many conversations each view holds, and live visitors",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "Counts for the calling agent (`unread` and `assigned` are per agent).",
            Counts,
            {
                "counts": {
                    "open": 3,
                    "unread": 1,
                    "assigned": 2,
                    "unassigned": 1,
                    "waiting": 1,
                    "solved": 40,
                    "all": 44,
                    "liveVisitors": 7,
                }
            },
        )
    },
)
async def conversation_counts() -> Response:
    """How many conversations each view holds for this agent, and how many live visitors."""
    agent = await require_agent()
    s = services()
    counts = await s.db.run(queries.count_conversations, agent["tenant_id"], agent["id"])
    since = s.clock.now() - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
    live = await s.db.run(queries.count_live_visitors, agent["tenant_id"], since)
    return answer(Counts({**counts, "liveVisitors": live}))


# --- visitors ---------------------------------------------------------------------------------


@bp.post("/api/chat/visitors/<visitor_id>/conversations")
@api(
    "startProactiveChat",
    "Start a chat with a live visitor",
    "visitors",
    AGENT,
    {
        "201": json_response(
            "The conversation: OPEN, assigned to the caller, the first message the "
            "agent's, no wait timer. It reaches the visitor's stream.",
            ref("NewConversation"),
            {
                **ex.EX_OPEN_CONVERSATION,
                "lastSeq": 3,
                "messages": [
                    {
                        **ex.EX_MESSAGE,
                        "seq": 3,
                        "senderType": "agent",
                        "senderId": ex.AGENT,
                        "senderName": "Javier Lazo",
                        "text": "Hi! Can I help you with your quote?",
                    }
                ],
                "agentsOnline": True,
            },
        ),
    },
    error_codes=(
        *ACTOR,
        *BODY_ERRORS,
        "not_found",
        "conversation_active",
        "visitor_gone",
        "at_capacity",
    ),
    description="404 for another tenant's visitor; 409 `visitor_gone` when its last heartbeat is too old.",
    body=json_body(
        ProactiveChatBody,
        {"message": "Hi! Can I help you with your quote?", "clientMessageId": "a-0001"},
    ),
)
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
@api(
    "listLiveVisitors",
    "Visitors on the tenant's sites now",
    "visitors",
    AGENT,
    {
        "200": json_response(
            "Visitors with a heartbeat in the last 60 s (`CURBE_VISITOR_EXPIRY_SECONDS`), one "
            "page in the order they arrived; `total` counts them all.",
            LiveVisitors,
            {
                "visitors": [
                    {
                        "visitorId": ex.VISITOR,
                        "displayName": "Pink Lion",
                        "name": None,
                        "widgetId": ex.WIDGET,
                        "currentUrl": "https://www.insuremax.com/quote",
                        "pageTitle": "Get a quote",
                        "referrer": None,
                        "firstSeenAt": ex.T0,
                        "lastSeenAt": ex.T1,
                        "timeOnSiteSeconds": 60,
                        "inChat": False,
                        "conversationId": None,
                        "location": "America/Mexico_City, es-MX (from the browser)",
                    }
                ],
                "total": 1,
                "nextCursor": None,
            },
        )
    },
    error_codes=("invalid_limit", "invalid_cursor"),
    parameters=LIVE_VISITORS.parameters("arrival order: first seen, then id"),
)
async def live_visitors() -> Response:
    agent = await require_agent()
    s = services()
    limit, after = LIVE_VISITORS.limit(), LIVE_VISITORS.after_key()
    now = s.clock.now()
    since = now - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
    sessions, total = await s.db.run(
        queries.select_live_visitors_page, agent["tenant_id"], since, limit=limit + 1, after=after
    )
    page = sessions[:limit]
    cursor = None
    if len(sessions) > limit:
        last = page[-1]
        cursor = LIVE_VISITORS.cursor([last.first_seen_at.isoformat(), last.visitor_id])
    return answer(
        LiveVisitors(
            [fresh_presence(s, v).live(now) for v in page], total=total, next_cursor=cursor
        )
    )


def live_page(s: Services, card: Contact) -> Contact:
    """A contact card with the page its visitor is on now, as the visitor's live actor holds it
    (the stored row may lag a round: presence writes are queued)."""
    live: VisitorSession | None = getattr(
        s.supervisor.actor(VISITOR, card.visitor_id), "session", None
    )
    if live is None or live.current_url is None or live.current_url == card.current_url:
        return card
    return attrs.evolve(card, current_url=live.current_url)


def fresh_presence(s: Services, stored: VisitorSession) -> VisitorSession:
    """The stored session with its presence as the visitor's live actor holds it: the actor
    owns presence, and its later writes are queued (soft state), so the row may lag a round."""
    actor = s.supervisor.actor(VISITOR, stored.visitor_id)
    live: VisitorSession | None = getattr(actor, "session", None)
    return stored if live is None else stored.with_presence_of(live)


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
        return await s.db.run(queries.select_events_after, cid, after, tenant_id, limit=REPLAY_PAGE)

    typing = TypingSockets(
        s, tenant_id, Typing(SenderType.AGENT, agent["id"], agent["name"], on=False)
    )

    async def handle(stream: EventStream, frame: Any) -> None:
        if isinstance(frame, PresenceFrame):
            s.presence.set_away(tenant_id, agent["id"], frame.status == "away")
            return
        if not isinstance(frame, ResumeFrame | MessageFrame | TypingFrame):  # a heartbeat, say
            raise ApiError(
                422,
                "unsupported_frame",
                "the inbox can send message, resume, typing, presence and ping",
            )
        if frame.conversation_id is None:
            raise ApiError(
                422,
                "conversation_required",
                "the inbox resumes one conversation at a time"
                if isinstance(frame, ResumeFrame)
                else f"say which conversation the {FRAME_KINDS[type(frame)]} is for",
            )
        if isinstance(frame, ResumeFrame):
            await stream.resume_frame(frame.conversation_id, frame.after_seq)
        elif isinstance(frame, MessageFrame):
            outcome = await send_agent_message(s, agent, frame.conversation_id, frame)
            typing.sent_message(frame.conversation_id)
            await stream.ack(frame.client_message_id, outcome)
        elif isinstance(frame, TypingFrame):
            await typing.send(frame.conversation_id, frame.state == "on")

    if counts_as_online:
        s.presence.connect(tenant_id, agent["id"])
    try:
        await serve_socket(
            [("tenant", tenant_id)],
            lambda: EventStream(websocket.send, load),
            handle,
            ReadyFrame(server_time=s.clock.now(), agent_id=agent["id"], tenant_id=tenant_id),
            side="agent",
            buffer=INBOX_BUFFER,
            owner=f"agent:{agent['id']}",
            cap=SOCKETS_PER_AGENT,
        )
    finally:
        typing.close()
        if counts_as_online:
            s.presence.disconnect(tenant_id, agent["id"])
