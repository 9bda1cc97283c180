"""Bad input, endpoint by endpoint: the contract's "Errors" section, tested against a real server.

Every bad request must answer ``{"error": {"code": snake_case, "message": str}}`` as JSON with the
documented 4xx status, never a 500 and never a traceback, and must leave storage exactly as it was
(row counts of the chat tables are compared before and after each request). WebSocket bad input
either closes the socket with the documented code or answers an ``error`` frame and keeps serving.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest
import trio
import trio_websocket

from storage import queries
from tests.support import (
    OPS_TOKEN,
    Seed,
    Server,
    Socket,
    Visitor,
    inbox_socket,
    login,
    new_visitor,
    row_counts,
    seed,
    visitor_socket,
)
from web.auth import hash_password, new_agent_token, new_id, token_hash

MAX_BODY = 64 * 1024
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


# --- regressions: each was a server bug found by this file, now fixed -----------------------
# (camelCase field names in messages, unstorable strings, deep nesting, NaN, malformed hosts,
# unknown paths under /api/chat/widgets/)

SNAKE_BUG = UNSTORABLE_BUG = NESTING_BUG = NAN_BUG = URL_BUG = ROUTE_BUG = pytest.mark.regression


# --- helpers --------------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error shape, with this status (and code); returns the error object."""
    text = response.text
    assert response.status_code == status, text[:500]
    assert 400 <= status < 500
    assert response.headers["content-type"].split(";")[0].strip() == "application/json", text
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict) and {"code", "message"} <= set(err), err
    assert isinstance(err["code"], str) and SNAKE_CASE.match(err["code"]), err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    if code is not None:
        assert err["code"] == code, err
    return err  # type: ignore[no-any-return]


def names(message: str, field: str) -> bool:
    """True when ``message`` names ``field`` as a whole word (``afterSeq``, not ``after_seq``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(field)}(?![A-Za-z0-9_])", message) is not None


@attrs.frozen
class World:
    """A tenant with an agent, a visitor in an OPEN conversation and a fresh visitor."""

    server: Server
    agent: Seed
    agent_token: str
    visitor: Visitor
    fresh: Visitor
    conversation_id: str

    def token(self, who: str | None) -> str | None:
        return {
            None: None,
            "visitor": self.visitor.token,
            "fresh": self.fresh.token,
            "agent": self.agent_token,
            "ops": OPS_TOKEN,
        }[who]

    def path(self, template: str, ids: dict[str, str]) -> str:
        values = {"w": self.agent.widget_id, "c": self.conversation_id, **ids}
        return template.format(**values)


PASSWORD = "correct horse battery"
_PASSWORD_HASH: list[str] = []  # argon2 is slow on purpose: hash once for the whole module


async def fast_seed(server: Server) -> tuple[Seed, str]:
    """A tenant, its widget and one agent with a session token, straight into storage.

    The same rows as ``tests.support.seed`` + ``login``, without two argon2 rounds per test
    (login itself is covered in test_security.py).
    """
    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(await hash_password(PASSWORD))
    tenant_id, widget_id, agent_id = new_id("ten"), new_id("wgt"), new_id("agt")
    email = f"{agent_id}@example.com"
    await server.run(queries.insert_tenant, tenant_id, "InsureMax")
    await server.run(queries.insert_widget, widget_id, tenant_id, "InsureMax", [], 60)
    await server.run(
        queries.insert_agent, agent_id, tenant_id, email, "Javier Lazo", _PASSWORD_HASH[0]
    )
    token = new_agent_token()
    expires = server.services.clock.now() + dt.timedelta(days=1)
    await server.run(queries.insert_agent_session, token_hash(token), agent_id, tenant_id, expires)
    return Seed(tenant_id, widget_id, agent_id, email, "Javier Lazo", PASSWORD), token


async def make_world(server: Server) -> World:
    agent, token = await fast_seed(server)
    visitor = await new_visitor(server, agent.widget_id)
    fresh = await new_visitor(server, agent.widget_id)
    async with server.http(visitor.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{agent.widget_id}/conversations",
            json={"name": "Carlos Lopez", "email": "carlos@example.com", "message": "hola"},
        )
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
    async with server.http(token) as client:
        r = await client.post(f"/api/chat/conversations/{cid}/accept")
        assert r.status_code == 200, r.text
    return World(server, agent, token, visitor, fresh, cid)


@pytest.fixture
async def world(server: Server) -> World:
    return await make_world(server)


NO_JSON: Any = object()


@attrs.frozen
class Req:
    method: str
    path: str
    auth: str | None = None
    json: Any = NO_JSON
    content: bytes | None = None
    chunked: bool = False
    ids: dict[str, str] = attrs.field(factory=dict)
    headers: dict[str, str | bytes] = attrs.field(factory=dict)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


async def send(world: World, req: Req) -> httpx.Response:
    headers = dict(req.headers)
    kwargs: dict[str, Any] = {}
    if req.json is not NO_JSON:
        kwargs["json"] = req.json
    elif req.content is not None:
        headers["Content-Type"] = "application/json"
        kwargs["content"] = _chunks(req.content) if req.chunked else req.content
    async with world.server.http(world.token(req.auth), headers=headers) as client:
        return await client.request(req.method, world.path(req.path, req.ids), **kwargs)


async def check_rejected(
    world: World, req: Req, status: int, code: str | None, field: str | None
) -> None:
    before = await world.server.run(row_counts)
    response = await send(world, req)
    err = assert_error(response, status, code)
    if field is not None:
        assert names(err["message"], field), f"{field!r} not named in {err['message']!r}"
    assert await world.server.run(row_counts) == before, "bad input changed storage"


# --- bodies -------------------------------------------------------------------------------------


@attrs.frozen
class BodyEndpoint:
    name: str
    method: str
    path: str
    auth: str | None
    valid: dict[str, Any]
    wrong_types: tuple[tuple[str, Any], ...]
    required: tuple[str, ...]
    non_blank: tuple[str, ...]
    too_long: tuple[tuple[str, str], ...]
    invalid: tuple[tuple[str, str], ...] = ()
    storable: tuple[str, ...] = ()  # string fields written to PostgreSQL


EMAILS = ("not-an-email", "a@b", "two@@example.com", "sp ace@example.com", "@example.com")

BODY_ENDPOINTS = (
    BodyEndpoint(
        "heartbeat",
        "POST",
        "/api/chat/widgets/{w}/heartbeat",
        "visitor",
        {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/p"},
        wrong_types=(
            ("currentDomain", 5),
            ("currentUrl", True),
            ("visitorId", 12345),
            ("tenantId", ["ten"]),
            ("timestamp", True),
            ("timestamp", {"at": 1}),
            ("pageTitle", 3.5),
            ("timeZone", False),
        ),
        required=("currentDomain", "currentUrl"),
        non_blank=("currentDomain", "currentUrl"),
        too_long=(
            ("currentDomain", "d" * 250 + ".example"),
            ("currentUrl", "https://shop.example.com/" + "p" * 2048),
            ("visitorId", "v" * 129),
            ("pageTitle", "t" * 501),
            ("referrer", "https://r.example/" + "r" * 2048),
            ("timeZone", "z" * 65),
            ("language", "l" * 36),
        ),
        storable=("currentUrl", "pageTitle"),
    ),
    BodyEndpoint(
        "start-chat",
        "POST",
        "/api/chat/widgets/{w}/conversations",
        "fresh",
        {"name": "Ana", "email": "ana@example.com", "message": "hello"},
        wrong_types=(
            ("name", 5),
            ("email", True),
            ("message", ["hi"]),
            ("message", None),
            ("clientMessageId", 7),
            ("phone", 5551234567),
        ),
        required=("name", "email", "message"),
        non_blank=("name", "email", "message"),
        too_long=(
            ("name", "n" * 201),
            ("email", "e" * 320 + "@example.com"),
            ("message", "m" * 5001),
            ("clientMessageId", "c" * 129),
        ),
        invalid=(*(("email", e) for e in EMAILS), ("phone", "call me maybe")),
        storable=("name", "message"),
    ),
    BodyEndpoint(
        "visitor-message",
        "POST",
        "/api/chat/widgets/{w}/conversations/{c}/messages",
        "visitor",
        {"text": "hello", "clientMessageId": "cm-1"},
        wrong_types=(
            ("text", 5),
            ("text", None),
            ("clientMessageId", True),
            ("clientTimestamp", 1700000000),
        ),
        required=("text",),
        non_blank=("text",),
        too_long=(
            ("text", "t" * 5001),
            ("clientMessageId", "c" * 129),
            ("clientTimestamp", "2" * 65),
        ),
        storable=("text", "clientMessageId"),
    ),
    BodyEndpoint(
        "offline-message",
        "POST",
        "/api/chat/widgets/{w}/offline-messages",
        "fresh",
        {"name": "Ana", "email": "ana@example.com", "message": "call me back"},
        wrong_types=(
            ("name", False),
            ("email", 42),
            ("message", {"text": "x"}),
            ("phone", 5551234567),
            ("conversationId", 9),
        ),
        required=("name", "email", "message"),
        non_blank=("name", "email", "message"),
        too_long=(
            ("name", "n" * 201),
            ("message", "m" * 5001),
            ("conversationId", "c" * 129),
        ),
        invalid=(*(("email", e) for e in EMAILS), ("phone", "12"), ("phone", "+1 555 CALL NOW")),
        storable=("name", "message"),
    ),
    BodyEndpoint(
        "login",
        "POST",
        "/api/auth/login",
        None,
        {"email": "nobody@example.com", "password": "correct horse battery"},
        wrong_types=(("email", 5), ("password", True), ("password", None)),
        required=("email", "password"),
        non_blank=("email", "password"),
        too_long=(("email", "e" * 321), ("password", "p" * 1025)),
        storable=("email",),
    ),
    BodyEndpoint(
        "agent-message",
        "POST",
        "/api/chat/conversations/{c}/messages",
        "agent",
        {"text": "how can I help?", "clientMessageId": "am-1"},
        wrong_types=(("text", 5), ("text", False), ("clientMessageId", 1.5)),
        required=("text",),
        non_blank=("text",),
        too_long=(("text", "t" * 5001), ("clientMessageId", "c" * 129)),
        storable=("text",),
    ),
)


def _body_cases() -> list[Any]:
    out: list[Any] = []
    for ep in BODY_ENDPOINTS:

        def add(
            case: str,
            status: int,
            code: str | None,
            field: str | None = None,
            *,
            ep: BodyEndpoint = ep,
            marks: Any = (),
            **request: Any,
        ) -> None:
            req = Req(ep.method, ep.path, ep.auth, **request)
            out.append(pytest.param(req, status, code, field, id=f"{ep.name}-{case}", marks=marks))

        valid_bytes = json.dumps(ep.valid).encode()
        add("malformed", 400, "malformed_json", content=valid_bytes[:-3])
        add("trailing-garbage", 400, "malformed_json", content=valid_bytes + b"}")
        add("empty", 400, "malformed_json", content=b"")
        add("not-utf8", 400, "malformed_json", content=b'{"\xff\xfe": "\xc3\x28"}')
        add("form-encoded", 400, "malformed_json", content=b"text=hello&name=x")
        nested = b"[" * 30000 + b"]" * 30000
        add("deeply-nested", 400, "malformed_json", content=nested, marks=NESTING_BUG)
        if ep.name == "heartbeat":  # timestamp takes a number: NaN/Infinity get through today
            for literal in (b"NaN", b"Infinity", b"-Infinity"):
                body = valid_bytes[:-1] + b', "timestamp": ' + literal + b"}"
                add(f"{literal.decode()}-literal", 400, "malformed_json", content=body,
                    marks=NAN_BUG)  # fmt: skip
        add("array", 422, "invalid_body", json=[ep.valid])
        add("string", 422, "invalid_body", json="hello")
        add("null", 422, "invalid_body", content=b"null")
        add("number", 422, "invalid_body", content=b"42")
        for field, value in ep.wrong_types:
            marks = SNAKE_BUG if re.search("[A-Z]", field) else ()
            kind = type(value).__name__
            add(f"type-{field}-{kind}", 422, "invalid_body", field, marks=marks,
                json={**ep.valid, field: value})  # fmt: skip
        add("missing-all", 422, "invalid_body", json={})
        for field in ep.required:
            marks = SNAKE_BUG if re.search("[A-Z]", field) else ()
            rest = {k: v for k, v in ep.valid.items() if k != field}
            add(f"missing-{field}", 422, "invalid_body", field, marks=marks, json=rest)
        add("extra-key", 422, "invalid_body", "isAdmin", json={**ep.valid, "isAdmin": True})
        add("camel-and-snake", 422, "invalid_body", json={**ep.valid, "client_message_id": "x"})
        for field in ep.non_blank:
            add(f"empty-{field}", 422, "invalid_body", field, json={**ep.valid, field: ""})
            add(f"blank-{field}", 422, "invalid_body", field, json={**ep.valid, field: " \t\n "})
        for field, value in ep.too_long:
            add(f"too-long-{field}", 422, "invalid_body", field, json={**ep.valid, field: value})
        for n, (field, value) in enumerate(ep.invalid):
            add(f"invalid-{field}-{n}", 422, "invalid_body", field, json={**ep.valid, field: value})
        for field in ep.storable:
            base = ep.valid.get(field, "x")
            add(f"nul-{field}", 422, "invalid_body", field, marks=UNSTORABLE_BUG,
                json={**ep.valid, field: base + "\x00"})  # fmt: skip
            surrogate = json.dumps({k: v for k, v in ep.valid.items() if k != field}).encode()
            surrogate = surrogate[:-1] + f', "{field}": "a\\ud800b"}}'.encode()
            add(f"lone-surrogate-{field}", 422, "invalid_body", field, marks=UNSTORABLE_BUG,
                content=surrogate)  # fmt: skip
        big = b'{"text": "' + b"x" * MAX_BODY + b'"}'
        add("too-large", 413, "body_too_large", content=big)
        add("too-large-chunked", 413, "body_too_large", content=big, chunked=True)
        padded = valid_bytes + b" " * (4 * MAX_BODY)
        add("too-large-whitespace", 413, "body_too_large", content=padded)
    return out


@pytest.mark.parametrize(("req", "status", "code", "field"), _body_cases())
async def test_bad_body(world: World, req: Req, status: int, code: str, field: str | None) -> None:
    await check_rejected(world, req, status, code, field)


async def test_body_at_the_limit_is_accepted_and_one_byte_more_is_not(world: World) -> None:
    path = (
        f"/api/chat/widgets/{world.agent.widget_id}/conversations/{world.conversation_id}/messages"
    )
    exact = json.dumps({"text": "right at the limit"}).encode()
    exact += b" " * (MAX_BODY - len(exact))
    assert len(exact) == MAX_BODY
    before = await world.server.run(row_counts)
    async with world.server.http(world.visitor.token) as client:
        r = await client.post(path, content=exact + b" ")
        assert_error(r, 413, "body_too_large")
        assert await world.server.run(row_counts) == before
        r = await client.post(path, content=exact)
        assert r.status_code == 201, r.text
        assert r.json()["text"] == "right at the limit"
    after = await world.server.run(row_counts)
    assert after["messages"] == before["messages"] + 1


# --- ids in the path ------------------------------------------------------------------------------

UNKNOWN = "unknown0000000000"
ODD_IDS = (
    ("unknown", UNKNOWN),
    ("long-10k", "x" * 10_000),
    ("unicode", quote("ñandú-漢字-😀", safe="")),
    ("sql", quote("x' OR '1'='1", safe="")),
    ("dot-dot", "%2E%2E"),
    ("nul", "%00"),
    ("dotdot-slash", "..%2Fx"),
)

VISITOR_ROUTES = (
    # name, method, path, auth, json body
    ("config", "GET", "/api/chat/widgets/{w}/config", None, NO_JSON),
    ("heartbeat", "POST", "/api/chat/widgets/{w}/heartbeat", "visitor",
     {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}),
    ("start-chat", "POST", "/api/chat/widgets/{w}/conversations", "fresh",
     {"name": "Ana", "email": "ana@example.com", "message": "hi"}),
    ("visitor-conversation", "GET", "/api/chat/widgets/{w}/conversation", "visitor", NO_JSON),
    ("visitor-message", "POST", "/api/chat/widgets/{w}/conversations/{c}/messages", "visitor",
     {"text": "hi"}),
    ("offline-message", "POST", "/api/chat/widgets/{w}/offline-messages", "fresh",
     {"name": "Ana", "email": "ana@example.com", "message": "hi"}),
)  # fmt: skip
CONVERSATION_ROUTES = (
    ("visitor-message", "POST", "/api/chat/widgets/{w}/conversations/{c}/messages", "visitor",
     {"text": "hi"}),
    ("agent-conversation", "GET", "/api/chat/conversations/{c}", "agent", NO_JSON),
    ("accept", "POST", "/api/chat/conversations/{c}/accept", "agent", NO_JSON),
    ("solve", "POST", "/api/chat/conversations/{c}/solve", "agent", NO_JSON),
    ("reopen", "POST", "/api/chat/conversations/{c}/reopen", "agent", NO_JSON),
    ("agent-message", "POST", "/api/chat/conversations/{c}/messages", "agent", {"text": "hi"}),
    ("ops-actor", "GET", "/api/ops/actors/conversation/{c}", "ops", NO_JSON),
)  # fmt: skip


def _id_cases() -> list[Any]:
    out: list[Any] = []
    for slot, routes in (("w", VISITOR_ROUTES), ("c", CONVERSATION_ROUTES)):
        for name, method, path, auth, body in routes:
            for label, odd in ODD_IDS:
                marks: Any = ()
                # U+0000 reaches PostgreSQL everywhere except the in-memory ops lookup
                if label == "nul" and name != "ops-actor":
                    marks = UNSTORABLE_BUG
                # "../x" decodes to a slash; under /api/chat/widgets/ the OPTIONS catch-all answers
                if label == "dotdot-slash" and path.startswith("/api/chat/widgets/"):
                    marks = ROUTE_BUG
                req = Req(method, path, auth, json=body, ids={slot: odd})
                out.append(pytest.param(req, id=f"{name}-{slot}-{label}", marks=marks))
    return out


@pytest.mark.parametrize("req", _id_cases())
async def test_unknown_or_odd_id_is_404(world: World, req: Req) -> None:
    await check_rejected(world, req, 404, "not_found", None)


# --- routes, methods, views, credentials ------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "status", "code"),
    [
        pytest.param(Req("GET", "/api/nope"), 404, "not_found", id="unknown-api-route"),
        pytest.param(Req("GET", "/nope/deeper/still"), 404, "not_found", id="unknown-route"),
        pytest.param(
            Req("GET", "/api/chat/conversations/{c}/nope", "agent"), 404, "not_found",
            id="unknown-conversation-subroute",
        ),
        pytest.param(
            Req("GET", "/api/chat/widgets/{w}/nope", "visitor"), 404, "not_found",
            id="unknown-widget-subroute", marks=ROUTE_BUG,
        ),
        pytest.param(
            Req("POST", "/api/chat/widgets/{w}/config/extra", "visitor"), 404, "not_found",
            id="unknown-widget-deeper-route", marks=ROUTE_BUG,
        ),
        pytest.param(Req("POST", "/healthz"), 405, "method_not_allowed", id="post-healthz"),
        pytest.param(Req("GET", "/api/auth/login"), 405, "method_not_allowed", id="get-login"),
        pytest.param(Req("GET", "/api/auth/logout", "agent"), 405, "method_not_allowed",
                     id="get-logout"),
        pytest.param(Req("DELETE", "/api/auth/me", "agent"), 405, "method_not_allowed",
                     id="delete-me"),
        pytest.param(Req("PUT", "/api/chat/widgets", "agent"), 405, "method_not_allowed",
                     id="put-widgets"),
        pytest.param(Req("POST", "/api/chat/widgets/{w}", "agent"), 405, "method_not_allowed",
                     id="post-widget"),
        pytest.param(Req("PUT", "/api/chat/conversations", "agent"), 405, "method_not_allowed",
                     id="put-conversations"),
        pytest.param(Req("DELETE", "/api/chat/conversations/{c}", "agent"), 405,
                     "method_not_allowed", id="delete-conversation"),
        pytest.param(Req("GET", "/api/chat/conversations/{c}/accept", "agent"), 405,
                     "method_not_allowed", id="get-accept"),
        pytest.param(Req("PUT", "/api/chat/conversations/{c}/solve", "agent"), 405,
                     "method_not_allowed", id="put-solve"),
        pytest.param(Req("GET", "/api/chat/conversations/{c}/reopen", "agent"), 405,
                     "method_not_allowed", id="get-reopen"),
        pytest.param(Req("POST", "/api/chat/visitors/live", "agent"), 405, "method_not_allowed",
                     id="post-live-visitors"),
        pytest.param(Req("POST", "/api/ops/actors", "ops"), 405, "method_not_allowed",
                     id="post-ops-actors"),
        pytest.param(Req("PATCH", "/api/chat/widgets/{w}/config"), 405, "method_not_allowed",
                     id="patch-config"),
        pytest.param(Req("GET", "/api/chat/widgets/{w}/heartbeat", "visitor"), 405,
                     "method_not_allowed", id="get-heartbeat"),
        pytest.param(Req("PUT", "/api/chat/widgets/{w}/conversation", "visitor"), 405,
                     "method_not_allowed", id="put-visitor-conversation"),
        pytest.param(Req("GET", "/api/chat/widgets/{w}/offline-messages", "fresh"), 405,
                     "method_not_allowed", id="get-offline-messages"),
    ],
)  # fmt: skip
async def test_unknown_route_and_wrong_method(
    world: World, req: Req, status: int, code: str
) -> None:
    await check_rejected(world, req, status, code, None)


@pytest.mark.parametrize(
    "view",
    ["nope", "", "ALL", "open ", "solved,open", "%00", quote("ñ", safe=""), "x" * 5000],
    ids=["word", "empty", "upper", "trailing-space", "list", "nul", "unicode", "long"],
)
async def test_unknown_view_is_422(world: World, view: str) -> None:
    req = Req("GET", "/api/chat/conversations?view=" + view, "agent")
    await check_rejected(world, req, 422, "unknown_view", None)


AGENT_ENDPOINTS = (
    ("logout", "POST", "/api/auth/logout"),
    ("me", "GET", "/api/auth/me"),
    ("widgets", "GET", "/api/chat/widgets"),
    ("create-widget", "POST", "/api/chat/widgets"),
    ("widget", "GET", "/api/chat/widgets/{w}"),
    ("edit-widget", "PATCH", "/api/chat/widgets/{w}"),
    ("delete-widget", "DELETE", "/api/chat/widgets/{w}"),
    ("conversations", "GET", "/api/chat/conversations?view=all"),
    ("conversation", "GET", "/api/chat/conversations/{c}"),
    ("accept", "POST", "/api/chat/conversations/{c}/accept"),
    ("solve", "POST", "/api/chat/conversations/{c}/solve"),
    ("reopen", "POST", "/api/chat/conversations/{c}/reopen"),
    ("agent-message", "POST", "/api/chat/conversations/{c}/messages"),
    ("live-visitors", "GET", "/api/chat/visitors/live"),
)
MALFORMED_CREDENTIALS: tuple[tuple[str, dict[str, str | bytes]], ...] = (
    ("bearer-only-word", {"Authorization": "Bearer"}),
    ("bearer-no-space", {"Authorization": "Bearer" + "x" * 43}),
    ("basic-scheme", {"Authorization": "Basic Zm9vOmJhcg=="}),
    ("bearer-garbage", {"Authorization": "bearer nonsense"}),
    ("bearer-10k", {"Authorization": "Bearer " + "t" * 10_000}),
    ("bearer-latin1", {"Authorization": b"Bearer caf\xe9-\xff"}),
    ("bearer-visitor-shaped", {"Authorization": "Bearer vt1.vis_x.ten_x.c2lnbmF0dXJl"}),
    ("cookie-junk", {"Cookie": "curbe_session=%00%ff;;=="}),
    ("cookie-other-name", {"Cookie": "session=anything; token=anything"}),
)


@pytest.mark.parametrize(
    "headers", [pytest.param(h, id=label) for label, h in MALFORMED_CREDENTIALS]
)
async def test_malformed_agent_credentials_are_401(
    world: World, headers: dict[str, str | bytes]
) -> None:
    for _name, method, path in AGENT_ENDPOINTS:
        body = {"text": "hi"} if path.endswith("/messages") else NO_JSON
        req = Req(method, path, None, json=body, headers=headers)
        await check_rejected(world, req, 401, "unauthenticated", None)


@pytest.mark.parametrize(
    "headers", [pytest.param(h, id=label) for label, h in MALFORMED_CREDENTIALS]
)
async def test_malformed_ops_credentials_are_401(
    world: World, headers: dict[str, str | bytes]
) -> None:
    for path in ("/api/ops/actors", "/api/ops/actors?kind=conversation",
                 "/api/ops/actors/conversation/{c}"):  # fmt: skip
        await check_rejected(world, Req("GET", path, headers=headers), 401, "unauthenticated", None)


async def test_heartbeat_tenant_mismatch_is_422(world: World) -> None:
    ok = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}
    req = Req("POST", "/api/chat/widgets/{w}/heartbeat", "visitor",
              json={**ok, "tenantId": "ten_someone_else"})  # fmt: skip
    await check_rejected(world, req, 422, "tenant_mismatch", "tenantId")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param({"currentUrl": "https://[oops/pricing"}, {}, id="url-bracket-host"),
        pytest.param({"currentDomain": "http://[::1"}, {}, id="domain-bracket-host"),
        pytest.param({}, {"Origin": "http://[bad"}, id="origin-bracket-host"),
    ],
)
@URL_BUG
async def test_heartbeat_unparseable_url_is_422(
    world: World, body: dict[str, str], headers: dict[str, str]
) -> None:
    """Targeting checks must not crash on hosts that urlsplit refuses: 422 (or 403), not 500."""
    ok = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}
    req = Req("POST", "/api/chat/widgets/{w}/heartbeat", "visitor", json={**ok, **body},
              headers=headers)  # fmt: skip
    before = await world.server.run(row_counts)
    response = await send(world, req)
    assert response.status_code in (403, 422), response.text
    assert_error(response, response.status_code)
    assert await world.server.run(row_counts) == before


# --- WebSocket -------------------------------------------------------------------------------------


async def close_code(server: Server, path: str) -> int:
    """Connect, and return the close code the server ends the socket with before any frame."""
    async with trio_websocket.open_websocket_url(server.ws_url + path) as ws:
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            frame = await ws.get_message()
            pytest.fail(f"expected a close, got the frame {frame!r}")
    code = closed.value.reason.code
    assert code is not None
    return code


def _visitor_socket_cases() -> list[Any]:
    long = "w" * 10_000
    return [
        pytest.param("/api/chat/widgets/{w}/ws", 4401, id="no-token"),
        pytest.param("/api/chat/widgets/{w}/ws?token=", 4401, id="empty-token"),
        pytest.param("/api/chat/widgets/{w}/ws?token=garbage", 4401, id="garbage-token"),
        pytest.param("/api/chat/widgets/{w}/ws?token=vt1.a.b.c", 4401, id="unsigned-token"),
        pytest.param("/api/chat/widgets/{w}/ws?token={agent}", 4401, id="agent-token"),
        pytest.param("/api/chat/widgets/{w}/ws?token=" + "t" * 5000, 4401, id="token-5k"),
        pytest.param("/api/chat/widgets/" + UNKNOWN + "/ws?token={v}", 4404, id="unknown-widget"),
        pytest.param("/api/chat/widgets/" + long + "/ws?token={v}", 4404, id="widget-10k"),
        pytest.param(
            "/api/chat/widgets/" + quote("漢字", safe="") + "/ws?token={v}",
            4404,
            id="widget-unicode",
        ),
        pytest.param(
            "/api/chat/widgets/%00/ws?token={v}", 4404, id="widget-nul", marks=UNSTORABLE_BUG
        ),
        pytest.param("/api/chat/inbox/ws", 4401, id="inbox-no-token"),
        pytest.param("/api/chat/inbox/ws?token=garbage", 4401, id="inbox-garbage-token"),
        pytest.param("/api/chat/inbox/ws?token={v}", 4401, id="inbox-visitor-token"),
        pytest.param("/api/chat/inbox/ws?token=" + "t" * 5000, 4401, id="inbox-token-5k"),
    ]


@pytest.mark.parametrize(("path", "code"), _visitor_socket_cases())
async def test_socket_refused(world: World, path: str, code: int) -> None:
    path = path.format(w=world.agent.widget_id, v=world.visitor.token, agent=world.agent_token)
    before = await world.server.run(row_counts)
    assert await close_code(world.server, path) == code
    assert await world.server.run(row_counts) == before


def _frame(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else json.dumps(value)


COMMON_FRAMES = (
    ("malformed-json", '{"type": "ping"', "malformed_json", None, ()),
    ("not-utf8-binary", b"\xff\xfe\xfd", "malformed_json", None, ()),
    ("deeply-nested", "[" * 30000 + "]" * 30000, "malformed_json", None, NESTING_BUG),
    ("array", "[]", "invalid_frame", None, ()),
    ("string", '"ping"', "invalid_frame", None, ()),
    ("null", "null", "invalid_frame", None, ()),
    ("no-type", {"text": "hi"}, "invalid_frame", None, ()),
    ("type-number", {"type": 5}, "invalid_frame", None, ()),
    ("unknown-type", {"type": "drop_tables"}, "unknown_frame_type", None, ()),
    ("ping-extra-key", {"type": "ping", "x": 1}, "invalid_body", "x", ()),
    ("resume-afterSeq-string", {"type": "resume", "afterSeq": "3", "conversationId": "{c}"},
     "invalid_body", "afterSeq", SNAKE_BUG),
    ("resume-afterSeq-bool", {"type": "resume", "afterSeq": True, "conversationId": "{c}"},
     "invalid_body", "afterSeq", SNAKE_BUG),
    ("resume-afterSeq-float", {"type": "resume", "afterSeq": 1.5, "conversationId": "{c}"},
     "invalid_body", "afterSeq", SNAKE_BUG),
    ("resume-afterSeq-missing", {"type": "resume", "conversationId": "{c}"},
     "invalid_body", "afterSeq", SNAKE_BUG),
    ("resume-afterSeq-negative", {"type": "resume", "afterSeq": -1, "conversationId": "{c}"},
     "invalid_body", "afterSeq", ()),
    # past PostgreSQL's integer: it reached the database and closed the socket with an error
    ("resume-afterSeq-past-int", {"type": "resume", "afterSeq": 2**31, "conversationId": "{c}"},
     "invalid_body", "afterSeq", ()),
    ("resume-afterSeq-huge", {"type": "resume", "afterSeq": 10**40, "conversationId": "{c}"},
     "invalid_body", "afterSeq", ()),
    ("resume-conversationId-number", {"type": "resume", "afterSeq": 0, "conversationId": 5},
     "invalid_body", "conversationId", SNAKE_BUG),
    ("resume-unknown-conversation", {"type": "resume", "afterSeq": 0, "conversationId": UNKNOWN},
     "not_found", None, ()),
    ("resume-nul-conversation", {"type": "resume", "afterSeq": 0, "conversationId": "\x00"},
     "invalid_body", "conversationId", UNSTORABLE_BUG),
    ("message-text-number", {"type": "message", "text": 5, "conversationId": "{c}"},
     "invalid_body", "text", ()),
    ("message-text-blank", {"type": "message", "text": " \n ", "conversationId": "{c}"},
     "invalid_body", "text", ()),
    ("message-text-too-long", {"type": "message", "text": "t" * 5001, "conversationId": "{c}"},
     "invalid_body", "text", ()),
    ("message-extra-key", {"type": "message", "text": "hi", "conversationId": "{c}", "admin": 1},
     "invalid_body", "admin", ()),
    ("message-clientMessageId-bool",
     {"type": "message", "text": "hi", "conversationId": "{c}", "clientMessageId": True},
     "invalid_body", "clientMessageId", SNAKE_BUG),
    ("message-unknown-conversation", {"type": "message", "text": "hi", "conversationId": UNKNOWN},
     "not_found", None, ()),
    ("message-text-nul", {"type": "message", "text": "a\x00b", "conversationId": "{c}"},
     "invalid_body", "text", UNSTORABLE_BUG),
)  # fmt: skip
VISITOR_ONLY_FRAMES = (
    ("presence", {"type": "presence", "status": "away"}, "unsupported_frame", None, ()),
)
INBOX_ONLY_FRAMES = (
    ("message-no-conversation", {"type": "message", "text": "hi"}, "conversation_required",
     None, ()),
    ("resume-no-conversation", {"type": "resume", "afterSeq": 0}, "conversation_required",
     None, ()),
    ("presence-bad-status", {"type": "presence", "status": "busy"}, "invalid_body", "status", ()),
    ("presence-status-number", {"type": "presence", "status": 1}, "invalid_body", "status", ()),
)  # fmt: skip


def _frame_cases() -> list[Any]:
    out = []
    for side, extra in (("visitor", VISITOR_ONLY_FRAMES), ("inbox", INBOX_ONLY_FRAMES)):
        for label, frame, code, field, marks in (*COMMON_FRAMES, *extra):
            out.append(pytest.param(side, frame, code, field, id=f"{side}-{label}", marks=marks))
    return out


def _fill(frame: Any, cid: str) -> Any:
    if isinstance(frame, dict):
        return {k: (cid if v == "{c}" else v) for k, v in frame.items()}
    return frame


def open_side(world: World, side: str) -> Any:
    if side == "visitor":
        return visitor_socket(world.server, world.visitor)
    return inbox_socket(world.server, world.agent_token)


async def send_bad_frame(sock: Socket, raw: str | bytes) -> list[dict[str, Any]]:
    """Send ``raw``, then a ping; the frames that arrived before the pong."""
    await sock.ws.send_message(raw)
    return await sock.drain()


def assert_error_frame(frames: list[dict[str, Any]], code: str, field: str | None) -> None:
    errors = [f for f in frames if f.get("type") == "error"]
    assert len(errors) == 1, frames
    err = errors[0]["error"]
    assert set(err) >= {"code", "message"}, err
    assert SNAKE_CASE.match(err["code"]) and err["message"].strip(), err
    assert err["code"] == code, err
    assert "Traceback" not in err["message"] and 'File "' not in err["message"]
    if field is not None:
        assert names(err["message"], field), f"{field!r} not named in {err['message']!r}"
    assert not [f for f in frames if f.get("type") in ("ack", "resumed", "message_created")]


@pytest.mark.parametrize(("side", "frame", "code", "field"), _frame_cases())
async def test_bad_frame_answers_error_and_socket_stays_usable(
    world: World, side: str, frame: Any, code: str, field: str | None
) -> None:
    before = await world.server.run(row_counts)
    async with open_side(world, side) as sock:
        frames = await send_bad_frame(sock, _frame(_fill(frame, world.conversation_id)))
        assert_error_frame(frames, code, field)
        # still usable for real work: a valid message is acknowledged and stored
        await sock.send(
            {"type": "message", "text": "still here", "conversationId": world.conversation_id}
        )
        ack = await sock.wait_for("ack")
        assert ack["message"]["text"] == "still here"
    # exactly the one valid message (and its event) was stored; the bad frame stored nothing
    expected = {**before, "messages": before["messages"] + 1}
    expected["conversation_events"] += 1
    assert await world.server.run(row_counts) == expected


@pytest.mark.parametrize("side", ["visitor", "inbox"])
async def test_frame_over_64k_closes_with_1009_and_others_keep_working(
    world: World, side: str
) -> None:
    before = await world.server.run(row_counts)
    async with visitor_socket(world.server, world.fresh) as bystander:
        async with open_side(world, side) as sock:
            big = {"type": "message", "text": "x" * MAX_BODY, "conversationId": "{c}"}
            await sock.ws.send_message(_frame(_fill(big, world.conversation_id)))
            with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
                while True:
                    await sock.ws.get_message()
            assert closed.value.reason.code == 1009
        assert await world.server.run(row_counts) == before
        # the server keeps serving: an open socket answers, a new one opens and works
        # (an inbox opening and closing tells every widget whether agents are online)
        frames = await bystander.drain()
        assert [f for f in frames if f["type"] != "agents_online_changed"] == []
        async with open_side(world, side) as again:
            await again.send(
                {
                    "type": "message",
                    "text": "after the big one",
                    "conversationId": world.conversation_id,
                }
            )
            ack = await again.wait_for("ack")
            assert ack["message"]["text"] == "after the big one"


# --- after all of it ------------------------------------------------------------------------------


async def test_barrage_then_healthy(server: Server) -> None:
    """Every bad request and frame above against one server; then it is healthy and chats."""
    world = await make_world(server)
    requests: list[Req] = [p.values[0] for p in _body_cases()]
    requests += [p.values[0] for p in _id_cases()]
    requests += [Req("GET", "/api/chat/conversations?view=nope", "agent")]
    requests += [
        Req("POST", "/api/chat/widgets/{w}/heartbeat", "visitor", json={"currentUrl": "https://[x"})
    ]
    for req in requests:
        response = await send(world, req)
        # an answer as JSON, never a dropped connection (statuses are checked case by case above,
        # where the known bugs are marked)
        assert isinstance(response.json(), dict), response.text
    for side, frame, _code, _field in (p.values for p in _frame_cases()):
        try:
            async with open_side(world, side) as sock:
                await sock.ws.send_message(_frame(_fill(frame, world.conversation_id)))
                await sock.ws.send_message("x" * (MAX_BODY + 1))
                with trio.fail_after(10):
                    while True:
                        await sock.ws.get_message()
        except trio_websocket.ConnectionClosed:
            pass

    async with server.http() as client:
        r = await client.get("/healthz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"

    # a normal chat flow, start to finish
    [agent] = await seed(server, tenant_name="After")
    token = await login(server, agent)
    v = await new_visitor(server, agent.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        async with server.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{agent.widget_id}/conversations",
                json={"name": "Eva", "email": "eva@example.com", "message": "still up?"},
            )
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
        await inbox.wait_for("conversation_created", conversationId=cid)
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/accept")
            assert r.status_code == 200, r.text
            r = await client.post(f"/api/chat/conversations/{cid}/messages", json={"text": "yes"})
            assert r.status_code == 201, r.text
        while True:  # the visitor's own first message comes first
            created = await vs.wait_for("message_created", conversationId=cid)
            if created["data"]["message"]["senderType"] == "agent":
                break
        assert created["data"]["message"]["text"] == "yes"
        await vs.send({"type": "message", "text": "great", "clientMessageId": "c-1"})
        ack = await vs.wait_for("ack", clientMessageId="c-1")
        assert ack["message"]["conversationId"] == cid
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/solve")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "SOLVED"
        changed = await vs.wait_for("conversation_status_changed", conversationId=cid)
        assert changed["data"]["to"] in ("OPEN", "SOLVED")
