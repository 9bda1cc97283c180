"""The embedded widget's endpoints (``/api/chat/widgets/{id}/…``, CORS for any allowed origin), its
socket, and ``/widget.js`` (the loader a site pastes).

A visitor proves who it is with the visitor token a heartbeat issues (``Authorization: Bearer``);
a token of another tenant's site is refused.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import attrs
from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print
from quart import Blueprint, Response, jsonify, request, websocket

from engine import metrics
from engine.conversation import Typing
from engine.errors import ActorUnavailable
from engine.routing import KIND as ROUTER
from engine.routing import Nudge
from engine.values import Event, SenderType, VisitorSession
from engine.visitor import KIND as VISITOR
from engine.visitor import Heartbeat
from engine.widget import KIND as WIDGET
from engine.widget import Ping, Refuse
from storage import queries
from web import auth
from web import examples as ex
from web.apidoc import (
    ACTOR,
    BODY_ERRORS,
    PUBLIC,
    VISITOR_AUTH,
    VISITOR_OPTIONAL,
    api,
    html_response,
    json_body,
    json_response,
    ref,
)
from web.deps import (
    VISITOR_PREFIX,
    bearer,
    body,
    client_ip,
    load_widget,
    optional_body,
    services,
    socket_client_ip,
    widget_visitor,
)
from web.presenters import answer, created, extend, rating_of
from web.shapes import ConversationWithMessages, HeartbeatAnswer, MessagePage, ReadMark
from web.streams import (
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHENTICATED,
    REPLAY_PAGE,
    BeatFrame,
    EventStream,
    ReadyFrame,
    serve_socket,
)
from web.throttles import SOCKETS_PER_VISITOR
from web.usecases import (
    MESSAGES,
    TypingSockets,
    leave_offline_message,
    message_page,
    rate_conversation,
    send_visitor_message,
    start_chat,
    visitor_read,
)
from web.widgets import domain_allowed, normalize_domain, widget_config
from web.wire import (
    ApiError,
    HeartbeatBody,
    HeartbeatFrame,
    MessageBody,
    MessageFrame,
    OfflineMessageBody,
    RatingBody,
    ReadBody,
    ReadFrame,
    ResumeFrame,
    StartChatBody,
    TypingFrame,
)

bp = Blueprint("visitor", __name__)
log = logging.getLogger("curbe.web")

WIDGET_JS = Path(__file__).resolve().parent.parent.parent / "widget" / "widget.js"


@attrs.frozen
class Loader:
    """``widget.js`` as served: minified (calmjs.parse: comments and spaces gone, local names
    shortened; globals and properties kept), its gzip, and an ETag naming its content, so a
    returning visitor's browser revalidates for a 304."""

    plain: bytes
    gzipped: bytes
    etag: str


@functools.cache
def _widget_js() -> Loader:
    """The loader, read, minified and compressed once per process (about half a second)."""
    tree = es5(WIDGET_JS.read_text(encoding="utf-8"))
    plain = minify_print(tree, obfuscate=True, obfuscate_globals=False).encode()
    gzipped = gzip.compress(plain, compresslevel=9, mtime=0)
    return Loader(plain, gzipped, '"' + hashlib.sha256(plain).hexdigest()[:20] + '"')


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip (``q=0`` refuses it)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


@bp.get("/widget.js")
@api(
    "getWidgetLoader",
    "The embeddable loader",
    "pages",
    PUBLIC,
    {
        "200": html_response(
            "JavaScript, minified; gzip when the client accepts it; an `ETag` (a matching "
            "`If-None-Match` answers 304); `Cache-Control: public, max-age=300`, any origin.",
            "application/javascript",
        ),
        "304": {"description": "The browser's copy (`If-None-Match`) is current."},
    },
)
async def widget_js() -> Response:
    loader = _widget_js()
    if loader.etag in request.headers.get("If-None-Match", ""):
        response = Response(b"", status=304)
    elif accepts_gzip(request.headers.get("Accept-Encoding", "")):
        response = Response(loader.gzipped, content_type="application/javascript; charset=utf-8")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(loader.plain, content_type="application/javascript; charset=utf-8")
    response.headers["ETag"] = loader.etag
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get(VISITOR_PREFIX + "<widget_id>/config")
@api(
    "getWidgetConfig",
    "What the embedded widget needs to render",
    "visitor",
    PUBLIC,
    {
        "200": json_response(
            "Appearance, channels, language, whether an agent is online.",
            ref("WidgetConfig"),
            {
                "id": ex.WIDGET,
                "tenantId": ex.TENANT,
                "name": "InsureMax",
                "status": "ACTIVE",
                "appearance": ex.EX_APPEARANCE,
                "channels": ex.EX_CHANNELS,
                "locale": "auto",
                "agentsOnline": True,
                "waitTimeoutSeconds": 60,
                "maxUploadBytes": 10485760,
            },
        ),
    },
    error_codes=("not_found", "too_many_requests", *ACTOR),
)
async def visitor_widget_config(widget_id: str) -> Response:
    s = services()
    s.throttles.check("config_address", client_ip())
    widget = await load_widget(widget_id)
    return jsonify(
        widget_config(
            widget,
            s.clock.now(),
            s.presence.agents_online(widget["tenant_id"]),
            s.settings.max_upload_bytes,
        )
    )


@bp.post(VISITOR_PREFIX + "<widget_id>/heartbeat")
@api(
    "visitorHeartbeat",
    "Installation ping and visitor presence",
    "visitor",
    VISITOR_OPTIONAL,
    {
        "200": json_response(
            "The ping was recorded; use `visitorToken` on every visitor call.",
            HeartbeatAnswer,
            {
                "widgetStatus": "ACTIVE",
                "visitorId": ex.VISITOR,
                "visitorToken": ex.VISITOR_TOKEN,
                "serverTime": ex.T0,
                "conversationId": None,
                "agentsOnline": True,
            },
        ),
    },
    description=(
        "Sent by `widget.js` on load, every 15 s, on in-page navigation and on "
        "`pagehide` (as a beacon, which carries the token in the body). Targeting is "
        "checked against the `Origin` header, `currentDomain` and the host of "
        "`currentUrl`: any of them outside it answers 403 `domain_not_allowed`, marks "
        "the widget MISCONFIGURED and issues no token. A visitor is known only by a "
        "valid token (the `Authorization` header or `visitorToken`); a bare "
        "`visitorId` proves nothing and gets a new id."
    ),
    body=json_body(
        HeartbeatBody,
        {
            "tenantId": ex.TENANT,
            "visitorId": ex.VISITOR,
            "currentDomain": "www.insuremax.com",
            "currentUrl": "https://www.insuremax.com/quote",
            "timestamp": ex.T0,
            "pageTitle": "Get a quote",
            "referrer": None,
            "timeZone": "America/Mexico_City",
            "language": "es-MX",
        },
    ),
    error_codes=(
        *BODY_ERRORS,
        "tenant_mismatch",
        "domain_not_allowed",
        "not_found",
        "too_many_requests",
        *ACTOR,
    ),
)
async def heartbeat(widget_id: str) -> Response:
    s = services()
    ip = client_ip()
    s.throttles.check("heartbeat_address", ip)
    s.throttles.check("heartbeat_widget", widget_id)
    widget = await load_widget(widget_id)
    hb = await body(HeartbeatBody)
    if hb.tenant_id is not None and hb.tenant_id != widget["tenant_id"]:
        raise ApiError(422, "tenant_mismatch", "tenantId does not match this widget's tenant")
    origin = request.headers.get("Origin")
    origin_host = check_targeting_host(origin)  # before any visitor is minted
    presented = bearer(request.headers) or hb.visitor_token
    identity = await s.tokens.identify(presented)
    if (
        identity is not None
        and identity.tenant_id == widget["tenant_id"]
        and (hb.visitor_id is None or hb.visitor_id == identity.visitor_id)
    ):
        visitor_id = identity.visitor_id
        token = s.tokens.renew(presented, identity)  # the same until it is a day old
    else:  # no proof of who this is: a new visitor (a bare visitorId proves nothing)
        s.throttles.check("new_visitor_address", ip)  # each is an actor, a row, an event
        visitor_id = auth.new_id("vis")
        token = s.tokens.issue(visitor_id, widget["tenant_id"])
    session = await record_heartbeat(
        widget,
        visitor_id,
        hb,
        origin_host=origin_host,
        ip=ip,
        user_agent=request.headers.get("User-Agent"),
    )
    return answer(
        HeartbeatAnswer(
            widget_status="ACTIVE",
            visitor_id=visitor_id,
            visitor_token=token,
            server_time=s.clock.now(),
            conversation_id=session.conversation_id,
            agents_online=s.presence.agents_online(widget["tenant_id"]),
        )
    )


def check_targeting_host(origin: str | None) -> str | None:
    """The ``Origin`` header's normalised host (None when absent); 422 when it is no host."""
    try:
        return normalize_domain(origin) if origin and origin != "null" else None
    except ValueError:
        raise ApiError(422, "invalid_body", "Origin is not a valid URL or host") from None


def outside_targeting(host: str) -> ApiError:
    """403 ``domain_not_allowed``: ``host`` (normalised) is not in the widget's Targeting."""
    return ApiError(
        403,
        "domain_not_allowed",
        f"{host} is not in this widget's Targeting; the widget is not served there",
        widgetStatus="MISCONFIGURED",
    )


async def record_heartbeat(
    widget: dict[str, Any],
    visitor_id: str,
    hb: HeartbeatBody | HeartbeatFrame,
    *,
    origin_host: str | None,
    ip: str | None,
    user_agent: str | None,
) -> VisitorSession:
    """One heartbeat, over HTTP or on the visitor's socket: Targeting checked against the page's
    origin and what it says of itself (403 ``domain_not_allowed``, and the widget's actor hears
    of the refusal), then the widget's ping and the visitor's presence. Answers the session."""
    s = services()
    widget_id = widget["id"]
    targeting = list(widget["domains"] or [])
    try:
        body_host = normalize_domain(hb.current_domain)
        url_host = normalize_domain(hb.current_url)
    except ValueError:
        raise ApiError(
            422, "invalid_body", "currentUrl, currentDomain or Origin is not a valid URL or host"
        ) from None
    for host in (origin_host, body_host, url_host):
        if host is not None and not domain_allowed(host, targeting):
            s.pings.reopen(widget_id)
            await s.supervisor.call(WIDGET, widget_id, Refuse(host))
            metrics.child(metrics.HEARTBEATS, "refused").inc()
            log.warning(
                "heartbeat refused: outside Targeting",
                extra={"tenant_id": widget["tenant_id"], "widget_id": widget_id, "domain": host},
            )
            raise outside_targeting(host)
    location = None
    if hb.time_zone:
        language = f", {hb.language}" if hb.language else ""
        location = f"{hb.time_zone}{language} (from the browser)"
    # the ping's answer is not needed: queued, it is still handled before any later command
    # (queued at once when the mailbox has room, which needs no turn of the scheduler)
    ping = Ping(origin_host or body_host, hb.current_url)
    # several processes: a site's pings are coalesced here, one per domain every 5 s, rather
    # than each crossing to the widget's process (web/nearby.py); one process sends them all
    if s.cluster is None or s.pings.due(widget_id, ping.domain, s.clock.now()):
        if not s.supervisor.try_cast(WIDGET, widget_id, ping):
            await s.supervisor.cast(WIDGET, widget_id, ping)
    metrics.child(metrics.HEARTBEATS, "accepted").inc()
    session: VisitorSession = await s.supervisor.call(
        VISITOR,
        visitor_id,
        Heartbeat(
            tenant_id=widget["tenant_id"],
            widget_id=widget_id,
            current_url=hb.current_url,
            current_domain=origin_host or body_host,
            page_title=hb.page_title,
            referrer=hb.referrer,
            ip=ip,
            user_agent=user_agent,
            location=location,
        ),
    )
    return session


@bp.post(VISITOR_PREFIX + "<widget_id>/conversations")
@api(
    "startChat",
    "Start a live chat",
    "visitor",
    VISITOR_AUTH,
    {
        "201": json_response(
            "The conversation, WAITING, with its first message. The same "
            "`clientMessageId` again answers the same conversation (201).",
            ref("NewConversation"),
            {
                **ex.EX_CONVERSATION,
                "lastSeq": 2,
                "messages": [ex.EX_MESSAGE],
                "agentsOnline": True,
            },
        ),
    },
    body=json_body(
        StartChatBody,
        {
            "name": "María López",
            "email": "maria@example.com",
            "message": "Hi, I need a quote for my car",
            "clientMessageId": "c-7f3a",
        },
    ),
    error_codes=(
        *BODY_ERRORS,
        "unauthenticated",
        "forbidden",
        "not_found",
        "conversation_active",
        "too_many_requests",
        *ACTOR,
    ),
)
async def visitor_start_chat(widget_id: str) -> Response:
    """The visitor starts a live chat: a command of its visitor-session actor, which keeps one
    live chat per visitor (409 ``conversation_active``; the same request again answers the same
    conversation)."""
    services().throttles.check("start_chat_address", client_ip())
    widget, visitor = await widget_visitor(widget_id)
    start = await body(StartChatBody)
    return await start_chat(
        services(),
        visitor.visitor_id,
        widget["tenant_id"],
        start.message,
        start.client_message_id,
        widget_id=widget_id,
        wait_timeout_seconds=widget["wait_timeout_seconds"],
        name=start.name,
        email=start.email,
        phone=start.phone,
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent"),
    )


@bp.get(VISITOR_PREFIX + "<widget_id>/conversation")
@api(
    "getVisitorConversation",
    "The visitor's latest conversation (rehydration after a reload)",
    "visitor",
    VISITOR_AUTH,
    {
        "200": json_response(
            "The latest conversation with its latest messages (`limit`, 200 by default; "
            "`earlierMessages` pages back to the rest) and `lastSeq`; resume the WebSocket "
            "from `lastSeq`.",
            ref("ConversationWithMessages"),
            {
                **ex.EX_CONVERSATION,
                "messages": [ex.EX_MESSAGE],
                "earlierMessages": None,
                "assignedSeq": None,
                "visitorLastReadSeq": 0,
                "agentsLastReadSeq": 1,
                "rating": None,
            },
        ),
    },
    error_codes=("unauthenticated", "forbidden", "not_found", "invalid_limit", *ACTOR),
    parameters=MESSAGES.parameters("seq order")[:1],
)
async def visitor_conversation(widget_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    last = MESSAGES.limit()
    thread = await services().db.run(
        queries.select_visitor_thread,
        widget["tenant_id"],
        visitor.visitor_id,
        last_messages=last + 1,
    )
    if thread is None:
        raise ApiError(404, "not_found", "this visitor has no conversation yet")
    latest, messages, assigned_seq, (visitor_mark, agents_mark), rating = thread
    messages, earlier = MESSAGES.earlier(messages, last)
    return answer(
        extend(
            latest,
            ConversationWithMessages,
            messages=messages,
            earlier_messages=earlier,
            assigned_seq=assigned_seq,
            visitor_last_read_seq=visitor_mark,
            agents_last_read_seq=agents_mark,
            rating=rating_of(rating),
        )
    )


@bp.get(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/messages")
@api(
    "listVisitorMessages",
    "Earlier messages of the visitor's conversation",
    "visitor",
    VISITOR_AUTH,
    {
        "200": json_response(
            "The messages before the cursor, in seq order (up to `limit`), and the cursor of "
            "the page before them; 404 for a conversation that is not this visitor's.",
            MessagePage,
            {"messages": [ex.EX_MESSAGE], "earlierMessages": None},
        ),
    },
    error_codes=(
        "unauthenticated",
        "forbidden",
        "not_found",
        "invalid_limit",
        "invalid_cursor",
        *ACTOR,
    ),
    parameters=MESSAGES.parameters("seq order, read back"),
)
async def visitor_messages(widget_id: str, conversation_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    return await message_page(widget["tenant_id"], conversation_id, visitor.visitor_id)


@bp.post(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/messages")
@api(
    "postVisitorMessage",
    "A visitor's message",
    "visitor",
    VISITOR_AUTH,
    {
        "201": json_response(
            "The stored message (the same one again for a repeated `clientMessageId`).",
            ref("Message"),
            ex.EX_MESSAGE,
        ),
    },
    description="404 for a conversation that is not this visitor's.",
    body=json_body(
        MessageBody,
        {"text": "Is it cheaper yearly?", "clientMessageId": "c-81b2"},
    ),
    error_codes=(
        *BODY_ERRORS,
        "unauthenticated",
        "forbidden",
        "not_found",
        "conversation_solved",
        *ACTOR,
    ),
)
async def visitor_message(widget_id: str, conversation_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    msg = await body(MessageBody)
    outcome = await send_visitor_message(
        services(),
        widget["tenant_id"],
        visitor.visitor_id,
        conversation_id,
        msg.text,
        msg.client_message_id,
        msg.client_timestamp,
        name=None,
    )
    assert outcome.message is not None  # a PostMessage outcome always carries its message
    return created(outcome.message.to_wire())


@bp.post(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/read")
@api(
    "markVisitorRead",
    "The visitor read its conversation up to a seq",
    "visitor",
    VISITOR_AUTH,
    {
        "200": json_response(
            "The visitor's read mark (it never moves back). When it moved past anything but "
            'the visitor\'s own messages, emits `conversation_read` with `reader: "visitor"` '
            "to the inbox (which agent messages the visitor has seen).",
            ReadMark,
            {"conversationId": ex.CONVERSATION, "lastReadSeq": 5},
        )
    },
    description="404 for a conversation that is not this visitor's. The widget sends the "
    "`read` frame on its socket instead while the socket is open.",
    body=json_body(
        ReadBody,
        {"seq": 5},
        required=False,
        description="Optional; an empty body marks everything read.",
    ),
    error_codes=(*BODY_ERRORS, "unauthenticated", "forbidden", "not_found"),
)
async def visitor_mark_read(widget_id: str, conversation_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    read = await optional_body(ReadBody)
    mark = await visitor_read(
        services(), widget["tenant_id"], visitor.visitor_id, conversation_id, read.seq
    )
    return answer(ReadMark(conversation_id, mark))


@bp.post(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/rating")
@api(
    "rateConversation",
    "The visitor rates its solved chat",
    "visitor",
    VISITOR_AUTH,
    {
        "200": json_response(
            "The rating (rating again replaces it). Emits `conversation_rated` to the inbox.",
            ref("Rating"),
            {
                "conversationId": ex.CONVERSATION,
                "score": 5,
                "comment": "Quick and clear, thanks!",
                "ratedAt": ex.T1,
            },
        )
    },
    description="404 for a conversation that is not this visitor's; 409 "
    "`conversation_not_solved` before the chat is solved.",
    body=json_body(RatingBody, {"score": 5, "comment": "Quick and clear, thanks!"}),
    error_codes=(
        *BODY_ERRORS,
        "unauthenticated",
        "forbidden",
        "not_found",
        "conversation_not_solved",
    ),
)
async def rate(widget_id: str, conversation_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    given = await body(RatingBody)
    rating = await rate_conversation(
        services(),
        widget["tenant_id"],
        visitor.visitor_id,
        conversation_id,
        given.score,
        (given.comment or "").strip() or None,
    )
    return answer(rating)


@bp.post(VISITOR_PREFIX + "<widget_id>/offline-messages")
@api(
    "leaveOfflineMessage",
    "Leave a message (a ticket) when nobody is online",
    "visitor",
    VISITOR_OPTIONAL,
    {
        "201": json_response(
            "A conversation of kind `offline_message` with the message.",
            ref("NewConversation"),
            {
                **ex.EX_CONVERSATION,
                "kind": "offline_message",
                "waitDeadline": None,
                "messages": [ex.EX_MESSAGE],
                "agentsOnline": False,
            },
        ),
    },
    description="With a valid visitor token the ticket is that visitor's; else a new visitor id is minted.",
    body=json_body(
        OfflineMessageBody,
        {
            "name": "María López",
            "email": "maria@example.com",
            "phone": "+52 55 1234 5678",
            "message": "Please call me back about a car quote",
        },
    ),
    error_codes=(*BODY_ERRORS, "domain_not_allowed", "not_found", "too_many_requests", *ACTOR),
)
async def offline_message(widget_id: str) -> Response:
    s = services()
    s.throttles.check("offline_address", client_ip())
    widget = await load_widget(widget_id)
    # Targeting, as for a heartbeat: a page outside it gets no chat and leaves no message
    origin_host = check_targeting_host(request.headers.get("Origin"))
    if origin_host is not None and not domain_allowed(origin_host, list(widget["domains"] or [])):
        raise outside_targeting(origin_host)
    identity = await s.tokens.identify(bearer(request.headers))
    if identity is not None and identity.tenant_id != widget["tenant_id"]:
        identity = None
    offline = await body(OfflineMessageBody)
    visitor_id = identity.visitor_id if identity else auth.new_id("vis")
    return await leave_offline_message(s, widget, visitor_id, offline)


@bp.websocket(VISITOR_PREFIX + "<widget_id>/ws")
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
    wait = s.throttles.wait("socket_address", socket_client_ip())
    if wait is not None:
        await websocket.close(
            CLOSE_TRY_AGAIN, f"too many connections; retry in {math.ceil(wait)} s"
        )
        return
    if widget is None:
        await websocket.close(CLOSE_NOT_FOUND, "unknown widget")
        return
    identity = await s.tokens.identify(websocket.args.get("token") or bearer(websocket.headers))
    if identity is None or identity.tenant_id != widget["tenant_id"]:
        await websocket.close(CLOSE_UNAUTHENTICATED, "a valid visitor token is required")
        return
    tenant_id, visitor_id = widget["tenant_id"], identity.visitor_id
    try:
        origin_host = check_targeting_host(websocket.headers.get("Origin"))
    except ApiError:
        origin_host = None  # the frame's own currentUrl and currentDomain are still checked

    async def load(cid: str, after: int) -> tuple[int, list[Event]] | None:
        return await s.db.run(
            queries.select_events_after, cid, after, tenant_id, visitor_id, limit=REPLAY_PAGE
        )

    async def latest_id() -> str:
        latest = await s.db.run(queries.select_latest_conversation, tenant_id, visitor_id)
        if latest is None:
            raise ApiError(404, "not_found", "this visitor has no conversation yet")
        return latest.id

    typing = TypingSockets(
        s, tenant_id, Typing(SenderType.VISITOR, visitor_id, None, on=False), visitor_id
    )

    async def handle(stream: EventStream, frame: Any) -> None:
        if isinstance(frame, ResumeFrame):
            await stream.resume_frame(frame.conversation_id or await latest_id(), frame.after_seq)
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
            typing.sent_message(cid)
            await stream.ack(frame.client_message_id, outcome)
        elif isinstance(frame, TypingFrame):
            await typing.send(frame.conversation_id or await latest_id(), frame.state == "on")
        elif isinstance(frame, ReadFrame):
            cid = frame.conversation_id or await latest_id()
            shown = stream.sent.get(cid)  # the last seq this socket gave the visitor
            if shown is not None and s.reads is not None:
                # this socket delivered the conversation's events: it is the visitor's own. The
                # mark is written with others (web/reads.py); "everything" is what it was shown
                s.reads.mark(tenant_id, visitor_id, cid, shown if frame.seq is None else frame.seq)
            else:  # not one it has shown: checked and written now (404 if not the visitor's)
                await visitor_read(s, tenant_id, visitor_id, cid, frame.seq)
        elif isinstance(frame, HeartbeatFrame):
            session = await record_heartbeat(
                await load_widget(widget_id),  # Targeting as it is now, not as at connect
                visitor_id,
                frame,
                origin_host=origin_host,
                ip=socket_client_ip(),
                user_agent=websocket.headers.get("User-Agent"),
            )
            await stream.send_frame(
                BeatFrame(
                    server_time=s.clock.now(),
                    conversation_id=session.conversation_id,
                    agents_online=s.presence.agents_online(tenant_id),
                )
            )
        else:
            raise ApiError(
                422,
                "unsupported_frame",
                "visitors can send message, resume, heartbeat, typing, read and ping",
            )

    session = getattr(s.supervisor.actor(VISITOR, visitor_id), "session", None)
    if session is not None and session.conversation_id is not None:
        # a (re)connected widget in a queue hears its position again (positions are not stored);
        # a hint: dropped if the router's mailbox is full (a pass is coming anyway)
        s.supervisor.try_cast(ROUTER, tenant_id, Nudge(resend_to=visitor_id))
    try:
        await serve_socket(
            [("visitor", visitor_id), ("visitors", tenant_id)],
            lambda: EventStream(websocket.send, load),
            handle,
            ReadyFrame(
                server_time=s.clock.now(),
                visitor_id=visitor_id,
                agents_online=s.presence.agents_online(tenant_id),
            ),
            side="visitor",
            owner=f"visitor:{visitor_id}",
            cap=SOCKETS_PER_VISITOR,
        )
    finally:
        typing.close()
