"""What every route needs from a request: the services, the body, who is asking, a widget.

Request dependencies, shared by every Blueprint of :mod:`web.routes` (HTTP routes, pages and
sockets); this module imports none of them.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
from typing import Any

from quart import Response, current_app, g, jsonify, request, websocket

from engine.errors import NotFound as EngineNotFound
from engine.values import Agent
from engine.widget import KIND as WIDGET
from engine.widget import Describe
from storage import queries
from web import auth
from web.services import Services
from web.wire import ApiError, decode_json, structure

VISITOR_PREFIX = "/api/chat/widgets/"


ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
_ID = re.compile(ID_PATTERN)


def is_visitor_route(path: str) -> bool:
    """``/api/chat/widgets/{id}/…`` (the embedded widget's calls, CORS for any allowed origin);
    not ``/api/chat/widgets`` or ``/api/chat/widgets/{id}`` themselves (agents: no CORS)."""
    return path.startswith(VISITOR_PREFIX) and "/" in path[len(VISITOR_PREFIX) :].strip("/")


def valid_id(value: Any) -> bool:
    """Ids are short and plain; anything else cannot exist (404 without a database trip)."""
    return isinstance(value, str) and bool(_ID.match(value))


def error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def services() -> Services:
    """The running app's services (engine, database, settings): set by the app factory."""
    return current_app.config["SERVICES"]  # type: ignore[no-any-return]


async def body(cls: type[Any]) -> Any:
    """The request's JSON body as ``cls`` (422/400 on bad input, 413 when too large)."""
    raw = await request.get_data(cache=True)
    return structure(decode_json(raw), cls)


async def optional_body(cls: type[Any]) -> Any:
    """:func:`body`, or ``cls()`` (its defaults) when the request has no body."""
    raw = await request.get_data(cache=True)
    return structure(decode_json(raw), cls) if raw.strip() else cls()


def client_ip() -> str | None:
    """The address of the client of this request (see :func:`forwarded_client`)."""
    return _client_of(request)


def socket_client_ip() -> str | None:
    """The address of the client of this WebSocket (see :func:`forwarded_client`)."""
    return _client_of(websocket)


def _client_of(connection: Any) -> str | None:
    return forwarded_client(
        connection.remote_addr,
        connection.headers.get("X-Forwarded-For"),
        trusted_networks(services().settings.trusted_proxies),
    )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool | None:
    """Whether ``address`` is a trusted proxy; None when it is no address at all."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return any(ip in network for network in trusted)


def forwarded_client(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str | None:
    """The client's address: the socket's peer, unless that peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` hop that is not a trusted proxy itself. Each proxy appends the
    address it got the request from, so every hop left of the first untrusted one may be forged
    by the client; a hop that is not an address ends the walk at the peer."""
    if not trusted or peer is None or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        trusted_hop = _trusted(hop, trusted)
        if trusted_hop is None:
            return peer
        if not trusted_hop:
            return str(ipaddress.ip_address(hop))
    return str(ipaddress.ip_address(hops[0])) if hops else peer


def bearer(headers: Any) -> str | None:
    value = headers.get("Authorization", "")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return None


async def current_agent(token: str | None) -> dict[str, Any]:
    if not token:
        raise ApiError(401, "unauthenticated", "sign in first: no bearer token or session cookie")
    s = services()
    agent = await s.db.run(queries.select_agent_by_session, auth.token_hash(token), s.clock.now())
    if agent is None:
        raise ApiError(401, "unauthenticated", "the token or session is invalid or expired")
    return agent


CSRF_HEADER = "X-Curbe-CSRF"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def require_agent() -> dict[str, Any]:
    """The signed-in agent, from a bearer token or the session cookie.

    A write authenticated by the cookie alone must carry the ``X-Curbe-CSRF`` header: a page on
    another origin cannot add a custom header without a CORS preflight, which agent endpoints
    never grant, so a forged cross-site form or fetch is refused (403 ``csrf_required``).
    """
    token = bearer(request.headers)
    by_cookie = token is None
    if by_cookie:
        token = request.cookies.get(auth.SESSION_COOKIE)
    agent = await current_agent(token)
    if by_cookie and request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
        raise ApiError(
            403, "csrf_required", f"a write signed in by cookie needs the {CSRF_HEADER} header"
        )
    g.agent = agent
    return agent


async def widget_visitor(widget_id: str) -> tuple[dict[str, Any], auth.VisitorIdentity]:
    """The widget (404 unless it exists) and the visitor its token names (401/403)."""
    widget = await load_widget(widget_id)
    return widget, await require_visitor(widget)


async def require_visitor(widget: dict[str, Any]) -> auth.VisitorIdentity:
    identity = await services().tokens.identify(bearer(request.headers))
    if identity is None:
        raise ApiError(
            401, "unauthenticated", "a visitor token is required: send a heartbeat first"
        )
    if identity.tenant_id != widget["tenant_id"]:
        raise ApiError(403, "forbidden", "this visitor token belongs to another site")
    return identity


def has_ops_token() -> bool:
    token = services().settings.ops_token
    given = bearer(request.headers)
    return bool(token and given and _same(token, given))


def require_ops() -> None:
    if not has_ops_token():
        raise ApiError(
            401, "unauthenticated", "operator endpoints need Authorization: Bearer $CURBE_OPS_TOKEN"
        )


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def load_widget(widget_id: str, tenant_id: str | None = None) -> dict[str, Any]:
    """The widget's row from its actor (no database trip once the actor is warm).

    With ``tenant_id`` (an agent asking), another tenant's widget is a 404 like an unknown one.
    A running actor that holds its row is read directly, with no trip through its mailbox: every
    heartbeat of every visitor of a site reads it, and one actor answering them all in turn was
    a queue (the actor replaces its row whole on each transition, so a read sees one state or
    the next, never a mix; a command that changed it was answered after the change).
    """
    if not valid_id(widget_id):
        raise ApiError(404, "not_found", "no such widget")
    s = services()
    held: dict[str, Any] | None = getattr(s.supervisor.actor(WIDGET, widget_id), "row", None)
    if held is not None:
        if tenant_id is not None and held["tenant_id"] != tenant_id:
            raise ApiError(404, "not_found", f"no widget {widget_id}")
        return dict(held)
    # the actor is on another process: a visitor's read may reuse a row read there within the
    # last second (web/nearby.py); an agent's read (to edit it) always asks the actor
    shared = s.cluster is not None and tenant_id is None
    if shared:
        cached = s.widget_rows.get(widget_id, s.clock.now())
        if cached is not None:
            return cached
    try:
        row: dict[str, Any] = await s.supervisor.call(WIDGET, widget_id, Describe(tenant_id))
    except EngineNotFound:
        raise ApiError(404, "not_found", f"no widget {widget_id}") from None
    if shared:
        s.widget_rows.put(widget_id, row, s.clock.now())
    return row


async def tenant_widget_rows(tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's widget rows, as ``GET /api/chat/widgets`` reads them (Trio flavour).

    A warm widget actor holds pings it has not written yet, so its in-memory row wins.
    """
    s = services()
    rows = await s.db.run(queries.select_widgets, tenant_id)
    out = []
    for row in rows:
        if s.supervisor.is_running(WIDGET, row["id"]):
            try:
                row = await s.supervisor.call(WIDGET, row["id"], Describe(tenant_id))
            except EngineNotFound:
                continue  # deleted meanwhile
        out.append(row)
    return out


def agent_of(row: dict[str, Any]) -> Agent:
    return Agent(row["id"], row["name"], row.get("avatar_url"))
