"""The Quart-Trio application: HTTP routes for visitors, agents and operators.

Routes are thin: authenticate, convert the body at the edge (:mod:`web.wire`), send one command to
an actor or run one storage verb, answer JSON. Every error leaves as
``{"error": {"code", "message"}}`` with a 4xx status (5xx only for a real outage: 503).
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import logging
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Quart, Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from engine import metrics
from engine.clock import iso
from engine.conversation import (
    Accept,
    Reopen,
    Solve,
)
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard, Outcome
from engine.errors import ActorUnavailable, EngineError
from engine.errors import NotFound as EngineNotFound
from engine.events import Event, EventType
from engine.routing import KIND as ROUTER
from engine.visitor import KIND as VISITOR
from engine.visitor import Heartbeat, JoinedChat, LeftChat, StartChat
from engine.widget import KIND as WIDGET
from engine.widget import Delete, Ping, Refuse, Update
from storage import queries
from web import auth
from web.demo import DEMO_EMAIL, DEMO_PAGE
from web.deps import (
    VISITOR_PREFIX,
    agent_of,
    bearer,
    body,
    client_ip,
    error,
    has_ops_token,
    is_visitor_route,
    load_widget,
    require_agent,
    require_ops,
    require_visitor,
    tenant_widget_rows,
    valid_id,
)
from web.openapi import build_openapi
from web.ops_page import register_ops_page
from web.pages import register_pages
from web.presenters import (
    agent_wire,
    contact_wire,
    conversation_wire,
    created,
    last_message_wire,
)
from web.services import Services
from web.streams import register_sockets
from web.usecases import (
    leave_offline_message,
    send_agent_message,
    send_visitor_message,
    started_response,
    tell_visitor,
)
from web.widgets import (
    apply_patch,
    domain_allowed,
    embed_code,
    normalize_domain,
    widget_config,
    widget_to_wire,
)
from web.wire import (
    ApiError,
    HeartbeatBody,
    LoginBody,
    MessageBody,
    OfflineMessageBody,
    ProactiveChatBody,
    ProfileBody,
    ReadBody,
    StartChatBody,
    decode_json,
    structure,
)

log = logging.getLogger("curbe.web")

WIDGET_JS = Path(__file__).resolve().parent.parent / "widget" / "widget.js"


@functools.cache
def _widget_js() -> bytes:
    """The loader's bytes, read once per process."""
    return WIDGET_JS.read_bytes()


# --- authentication ---------------------------------------------------------------------------


# --- the app ----------------------------------------------------------------------------------


def create_app(s: Services) -> Quart:
    app = QuartTrio(__name__)
    app.config["SERVICES"] = s
    app.config["MAX_CONTENT_LENGTH"] = s.settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.config["BODY_TIMEOUT"] = 30

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        response = jsonify(exc.to_wire())
        response.status_code = exc.status
        if "retryAfterSeconds" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retryAfterSeconds"])
        return response

    @app.errorhandler(EngineError)
    async def engine_error(exc: EngineError) -> Response:
        response = jsonify({"error": exc.to_wire()})
        response.status_code = exc.status
        if isinstance(exc, ActorUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
            log.warning(
                "answered 503: actor unavailable",
                extra={"path": request.path, "error": exc.message, "cause": exc.cause},
            )
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            400: "bad_request",
        }.get(exc.code or 400, "http_error")
        message = {
            413: f"the body is larger than {s.settings.max_body_bytes} bytes",
            404: "no such endpoint",
        }.get(exc.code or 400, exc.description or "bad request")
        return error(exc.code or 400, code, message)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error(500, "internal_error", "something went wrong on our side; it has been logged")

    @app.after_request
    async def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and is_visitor_route(request.path):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.before_request
    async def preflight() -> Response | None:
        if request.method == "OPTIONS" and is_visitor_route(request.path):
            return Response("", status=204)  # CORS headers come from the after_request hook
        return None

    @app.before_request
    async def check_ids() -> None:
        for key, value in (request.view_args or {}).items():
            if key.endswith("_id") and not valid_id(value):
                raise ApiError(404, "not_found", "no such resource")

    # --- operators -----------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> Response:
        try:
            with trio.fail_after(2):
                await s.db.run(queries.select_tenant, "__healthz__")
        except Exception:
            return error(503, "database_unavailable", "the database does not answer")
        # actors and services given up past their restart intensity: the server still serves
        # (200), but an operator should look (docs/operations.md). Ids and error texts only
        # with the operator token: this endpoint is public.
        detail = has_ops_token()
        escalated = [e.to_wire(detail=detail) for e in s.supervisor.escalations()]
        return jsonify(
            {
                "status": "degraded" if escalated else "ok",
                "actors": s.supervisor.count(),
                "escalated": escalated,
            }
        )

    @app.get("/api/openapi.json")
    async def openapi_document() -> Response:
        """The OpenAPI 3.1 document of every HTTP endpoint (web/openapi.py)."""
        response = jsonify(build_openapi(s.settings.base_url))
        response.headers["Access-Control-Allow-Origin"] = "*"  # public: any docs viewer may read it
        return response

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus text format: counters, latency histograms, live actors and sockets."""
        for kind in (CONVERSATION, VISITOR, WIDGET, ROUTER):
            metrics.ACTORS.labels(kind).set(s.supervisor.count(kind))
        metrics.ACTORS_ESCALATED.set(len(s.supervisor.escalations()))
        return Response(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)

    @app.get("/api/ops/actors")
    async def ops_actors() -> Response:
        require_ops()
        kind = request.args.get("kind") or None  # an empty filter is no filter
        tenant = request.args.get("tenant") or None
        actors = []
        for stat in s.supervisor.statistics(kind):
            wire = stat.to_wire(_audience(s, stat))
            if tenant and wire.get("tenantId") != tenant:
                continue
            wire.pop("recentEvents", None)
            actors.append(wire)
        return jsonify(
            {
                "actors": actors,
                "broker": _broker_stats(s),
                "escalated": [e.to_wire() for e in s.supervisor.escalations()],
            }
        )

    @app.get("/api/ops/actors/<kind>/<actor_id>")
    async def ops_actor(kind: str, actor_id: str) -> Response:
        require_ops()
        for stat in s.supervisor.statistics(kind):
            if stat.id == actor_id:
                return jsonify(stat.to_wire(_audience(s, stat)))
        raise ApiError(404, "not_found", f"no live {kind} actor {actor_id}")

    # --- visitor side --------------------------------------------------------------------

    @app.get(VISITOR_PREFIX + "<widget_id>/config")
    async def visitor_widget_config(widget_id: str) -> Response:
        widget = await load_widget(widget_id)
        return jsonify(
            widget_config(widget, s.clock.now(), s.presence.agents_online(widget["tenant_id"]))
        )

    @app.post(VISITOR_PREFIX + "<widget_id>/heartbeat")
    async def heartbeat(widget_id: str) -> Response:
        widget = await load_widget(widget_id)
        hb = await body(HeartbeatBody)
        now = s.clock.now()
        if hb.tenant_id is not None and hb.tenant_id != widget["tenant_id"]:
            raise ApiError(422, "tenant_mismatch", "tenantId does not match this widget's tenant")
        targeting = list(widget["domains"] or [])
        origin = request.headers.get("Origin")
        try:
            origin_host = normalize_domain(origin) if origin and origin != "null" else None
            body_host = normalize_domain(hb.current_domain)
            url_host = normalize_domain(hb.current_url)
        except ValueError:
            raise ApiError(
                422,
                "invalid_body",
                "currentUrl, currentDomain or Origin is not a valid URL or host",
            ) from None
        for host in (origin_host, body_host, url_host):
            if host is not None and not domain_allowed(host, targeting):
                await s.supervisor.call(WIDGET, widget_id, Refuse(host))
                metrics.HEARTBEATS.labels("refused").inc()
                log.warning(
                    "heartbeat refused: outside Targeting",
                    extra={
                        "tenant_id": widget["tenant_id"],
                        "widget_id": widget_id,
                        "domain": host,
                    },
                )
                raise ApiError(
                    403,
                    "domain_not_allowed",
                    f"{host} is not in this widget's Targeting; the widget is not served there",
                    widgetStatus="MISCONFIGURED",
                )
        identity = s.signer.check(bearer(request.headers) or hb.visitor_token)
        if (
            identity is not None
            and identity.tenant_id == widget["tenant_id"]
            and (hb.visitor_id is None or hb.visitor_id == identity.visitor_id)
        ):
            visitor_id = identity.visitor_id
        else:  # no proof of who this is: a new visitor (a bare visitorId proves nothing)
            visitor_id = auth.new_id("vis")
        location = None
        if hb.time_zone:
            language = f", {hb.language}" if hb.language else ""
            location = f"{hb.time_zone}{language} (from the browser)"
        await s.supervisor.call(WIDGET, widget_id, Ping(origin_host or body_host, hb.current_url))
        metrics.HEARTBEATS.labels("accepted").inc()
        session = await s.supervisor.call(
            VISITOR,
            visitor_id,
            Heartbeat(
                tenant_id=widget["tenant_id"],
                widget_id=widget_id,
                current_url=hb.current_url,
                current_domain=origin_host or body_host,
                page_title=hb.page_title,
                referrer=hb.referrer,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent"),
                location=location,
            ),
        )
        return jsonify(
            {
                "widgetStatus": "ACTIVE",
                "visitorId": visitor_id,
                "visitorToken": s.signer.issue(visitor_id, widget["tenant_id"]),
                "serverTime": iso(now),
                "conversationId": session.conversation_id,
                "agentsOnline": s.presence.agents_online(widget["tenant_id"]),
            }
        )

    @app.post(VISITOR_PREFIX + "<widget_id>/conversations")
    async def start_chat(widget_id: str) -> Response:
        """The visitor starts a live chat: a command of its visitor-session actor, which keeps
        one live chat per visitor (409 ``conversation_active``; the same request again answers
        the same conversation)."""
        widget = await load_widget(widget_id)
        visitor = require_visitor(widget)
        start = await body(StartChatBody)
        started = await s.supervisor.call(
            VISITOR,
            visitor.visitor_id,
            StartChat(
                tenant_id=widget["tenant_id"],
                conversation_id=auth.new_id("conv"),
                message_id=auth.new_id("msg"),
                message=start.message,
                client_message_id=start.client_message_id,
                widget_id=widget_id,
                wait_timeout_seconds=widget["wait_timeout_seconds"],
                name=start.name,
                email=start.email,
                phone=start.phone,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent"),
            ),
        )
        return await started_response(s, started)

    @app.get(VISITOR_PREFIX + "<widget_id>/conversation")
    async def visitor_conversation(widget_id: str) -> Response:
        widget = await load_widget(widget_id)
        visitor = require_visitor(widget)
        thread = await s.db.run(
            queries.select_visitor_thread, widget["tenant_id"], visitor.visitor_id
        )
        if thread is None:
            raise ApiError(404, "not_found", "this visitor has no conversation yet")
        latest, messages, assigned_seq = thread
        wire = conversation_wire(latest, messages)
        wire["assignedSeq"] = assigned_seq  # where "{agent} joined the chat" goes in the thread
        return jsonify(wire)

    @app.post(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/messages")
    async def visitor_message(widget_id: str, conversation_id: str) -> Response:
        widget = await load_widget(widget_id)
        visitor = require_visitor(widget)
        msg = await body(MessageBody)
        outcome = await send_visitor_message(
            s,
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

    @app.post(VISITOR_PREFIX + "<widget_id>/offline-messages")
    async def offline_message(widget_id: str) -> Response:
        widget = await load_widget(widget_id)
        identity = s.signer.check(bearer(request.headers))
        if identity is not None and identity.tenant_id != widget["tenant_id"]:
            identity = None
        offline = await body(OfflineMessageBody)
        visitor_id = identity.visitor_id if identity else auth.new_id("vis")
        return await leave_offline_message(s, widget, visitor_id, offline)

    # --- agent side ----------------------------------------------------------------------

    @app.post("/api/auth/login")
    async def login() -> Response:
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
            queries.insert_agent_session,
            auth.token_hash(token),
            row["id"],
            row["tenant_id"],
            expires,
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

    @app.post("/api/auth/logout")
    async def logout() -> Response:
        await require_agent()
        token = bearer(request.headers) or request.cookies.get(auth.SESSION_COOKIE)
        assert token is not None
        await s.db.run(queries.delete_agent_session, auth.token_hash(token))
        response = jsonify({"ok": True})
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    @app.get("/api/auth/me")
    async def me() -> Response:
        agent = await require_agent()
        return jsonify(
            {
                "agent": agent_wire(agent),
                "presence": s.presence.status(agent["tenant_id"], agent["id"]),
            }
        )

    @app.patch("/api/auth/me")
    async def edit_profile() -> Response:
        """The agent's own name and avatar (shown to visitors when the agent joins a chat)."""
        agent = await require_agent()
        profile = await body(ProfileBody)
        row = await s.db.run(
            queries.update_agent_profile,
            agent["id"],
            profile.name.strip() if profile.name else None,
            profile.avatar_url or None,
            profile.avatar_url == "",
        )
        assert row is not None
        return jsonify({"agent": agent_wire(row)})

    @app.get("/api/chat/widgets")
    async def list_widgets() -> Response:
        agent = await require_agent()
        rows = await tenant_widget_rows(agent["tenant_id"])
        now = s.clock.now()
        return jsonify({"widgets": [widget_to_wire(r, now, s.settings.base_url) for r in rows]})

    @app.post("/api/chat/widgets")
    async def create_widget() -> Response:
        agent = await require_agent()
        columns = apply_patch(None, decode_json(await request.get_data(cache=True)))
        row = await s.db.run(
            queries.insert_widget,
            auth.new_id("wgt"),
            agent["tenant_id"],
            columns["name"],
            columns["domains"],
            columns["wait_timeout_seconds"],
            columns["settings"],
        )
        now = s.clock.now()
        wire = widget_to_wire(row, now, s.settings.base_url)
        s.broker.publish(Event(EventType.WIDGET_UPDATED.value, now, agent["tenant_id"], data=wire))
        return created(wire)

    @app.get("/api/chat/widgets/<widget_id>")
    async def get_widget(widget_id: str) -> Response:
        agent = await require_agent()
        row = await load_widget(widget_id, agent["tenant_id"])
        return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))

    @app.patch("/api/chat/widgets/<widget_id>")
    async def patch_widget(widget_id: str) -> Response:
        agent = await require_agent()
        patch = decode_json(await request.get_data(cache=True))
        row = await load_widget(widget_id, agent["tenant_id"])
        columns = apply_patch(row, patch)
        try:
            row = await s.supervisor.call(WIDGET, widget_id, Update(agent["tenant_id"], columns))
        except EngineNotFound:
            raise ApiError(404, "not_found", f"no widget {widget_id}") from None
        return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))

    @app.delete("/api/chat/widgets/<widget_id>")
    async def delete_widget(widget_id: str) -> Response:
        agent = await require_agent()
        try:
            await s.supervisor.call(WIDGET, widget_id, Delete(agent["tenant_id"]))
        except EngineNotFound:
            raise ApiError(404, "not_found", f"no widget {widget_id}") from None
        return jsonify({"id": widget_id, "deleted": True})

    @app.get("/api/chat/conversations")
    async def list_conversations() -> Response:
        agent = await require_agent()
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

    @app.get("/api/chat/conversations/<conversation_id>")
    async def conversation_detail(conversation_id: str) -> Response:
        agent = await require_agent()
        found = await s.db.run(
            queries.select_conversation_detail, agent["tenant_id"], conversation_id
        )
        if found is None:
            raise ApiError(404, "not_found", f"no conversation {conversation_id}")
        conversation, contact, messages = found
        return jsonify(
            conversation_wire(
                conversation, messages, contact_wire(contact, conversation.visitor_id)
            )
        )

    async def agent_command(conversation_id: str, make: Any) -> Outcome:
        agent = await require_agent()
        command = Guard(agent["tenant_id"], make(agent_of(agent)))
        return await s.supervisor.call(CONVERSATION, conversation_id, command)  # type: ignore[no-any-return]

    @app.post("/api/chat/conversations/<conversation_id>/accept")
    async def accept(conversation_id: str) -> Response:
        # the agent's limit is checked inside the accepting commit (409 ``at_capacity``), the
        # same check round robin's offers meet: no interleaving passes it
        outcome = await agent_command(conversation_id, Accept)
        return jsonify(conversation_wire(outcome))

    @app.post("/api/chat/conversations/<conversation_id>/solve")
    async def solve(conversation_id: str) -> Response:
        outcome = await agent_command(conversation_id, Solve)
        tell_visitor(s, outcome.conversation, LeftChat(conversation_id))
        return jsonify(conversation_wire(outcome))

    @app.post("/api/chat/conversations/<conversation_id>/reopen")
    async def reopen(conversation_id: str) -> Response:
        # refused (409 ``conversation_active``) by the commit if the visitor has another live chat
        outcome = await agent_command(conversation_id, Reopen)
        tell_visitor(s, outcome.conversation, JoinedChat(conversation_id))
        return jsonify(conversation_wire(outcome))

    @app.post("/api/chat/conversations/<conversation_id>/messages")
    async def agent_message(conversation_id: str) -> Response:
        agent = await require_agent()
        msg = await body(MessageBody)
        outcome = await send_agent_message(s, agent, conversation_id, msg)
        return created(outcome.message.to_wire())  # type: ignore[union-attr]

    @app.post("/api/chat/conversations/<conversation_id>/read")
    async def mark_read(conversation_id: str) -> Response:
        """The agent opened the conversation: visitor messages up to ``seq`` are read."""
        agent = await require_agent()
        raw = await request.get_data(cache=True)
        read = structure(decode_json(raw), ReadBody) if raw.strip() else ReadBody()
        mark = await s.db.run(
            queries.mark_read,
            agent["tenant_id"],
            agent["id"],
            conversation_id,
            read.seq,
            s.clock.now(),
        )
        if mark is None:
            raise ApiError(404, "not_found", f"no conversation {conversation_id}")
        s.broker.publish(
            Event(
                EventType.CONVERSATION_READ.value,
                s.clock.now(),
                agent["tenant_id"],
                data={
                    "agentId": agent["id"],
                    "conversationId": conversation_id,
                    "lastReadSeq": mark,
                },
            )
        )
        return jsonify({"conversationId": conversation_id, "lastReadSeq": mark})

    @app.get("/api/chat/conversations/counts")
    async def conversation_counts() -> Response:
        """How many conversations each view holds for this agent, and how many live visitors."""
        agent = await require_agent()
        counts = await s.db.run(queries.count_conversations, agent["tenant_id"], agent["id"])
        since = s.clock.now() - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
        visitors = await s.db.run(queries.select_live_visitors, agent["tenant_id"], since)
        return jsonify({"counts": {**counts, "liveVisitors": len(visitors)}})

    @app.post("/api/chat/visitors/<visitor_id>/conversations")
    async def proactive_chat(visitor_id: str) -> Response:
        """An agent starts a chat with a live visitor: OPEN, assigned to the agent at once. A
        command of the visitor's actor, like the visitor's own start (one live chat each)."""
        agent = await require_agent()
        start = await body(ProactiveChatBody)
        started = await s.supervisor.call(
            VISITOR,
            visitor_id,
            StartChat(
                tenant_id=agent["tenant_id"],
                conversation_id=auth.new_id("conv"),
                message_id=auth.new_id("msg"),
                message=start.message,
                client_message_id=start.client_message_id,
                opened_by=agent_of(agent),
            ),
        )
        return await started_response(s, started)

    @app.get("/api/chat/visitors/live")
    async def live_visitors() -> Response:
        agent = await require_agent()
        now = s.clock.now()
        since = now - dt.timedelta(seconds=s.settings.visitor_expiry_seconds)
        sessions = await s.db.run(queries.select_live_visitors, agent["tenant_id"], since)
        return jsonify({"visitors": [v.to_wire(now) for v in sessions]})

    @app.get("/demo")
    async def demo_site() -> Response:
        """A customer's page with the demo widget's snippet (only with ``serve --demo``)."""
        agent = (
            await s.db.run(queries.select_agent_by_email, DEMO_EMAIL) if s.settings.demo else None
        )
        widgets = await s.db.run(queries.select_widgets, agent["tenant_id"]) if agent else []
        if not widgets:
            raise ApiError(404, "not_found", "the demo site exists with `curbe-chat serve --demo`")
        w = widgets[0]
        snippet = embed_code(s.settings.base_url, w["id"], w["tenant_id"])
        page = DEMO_PAGE.replace("{{snippet}}", snippet).replace(
            "{{snippet_text}}", html.escape(snippet)
        )
        return Response(page, content_type="text/html; charset=utf-8")

    @app.get("/widget.js")
    async def widget_js() -> Response:
        response = Response(_widget_js(), content_type="application/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    register_pages(app)
    register_ops_page(app)
    register_sockets(app)
    return app


def _audience(s: Services, stat: Any) -> int:
    """The sockets that hear an actor's events: its own topic, its visitor's, its tenant's."""
    info = stat.detail
    topics: list[tuple[str, str]] = []
    if stat.kind == CONVERSATION:
        topics.append(("conversation", stat.id))
        if info.get("visitorId"):
            topics.append(("visitor", info["visitorId"]))
    elif stat.kind == VISITOR:
        topics.append(("visitor", stat.id))
    if info.get("tenantId"):
        topics.append(("tenant", info["tenantId"]))
    return s.broker.audience(*topics)


def _broker_stats(s: Services) -> dict[str, Any]:
    st = s.broker.statistics()
    return {
        "subscribers": st.subscribers,
        "published": st.published,
        "delivered": st.delivered,
        "droppedSubscribers": st.dropped_subscribers,
    }
