"""How a route describes itself for the OpenAPI document.

Each route carries :func:`api` next to it: its operation id, summary, tag, who may call it, its
answers (with examples) and the error codes it answers with. ``web/openapi.py`` reads the app's
route table and these declarations and writes the document; request bodies are their wire classes
(:mod:`web.wire`), answers name classes or components, and the schemas come from the classes
(:mod:`web.schema`). Path parameters come from the route's rule (:data:`PATH_PARAMETERS`); an agent
route gets its authentication errors, and a write its CSRF header, from ``AGENT``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from web import examples as ex
from web.deps import ID_PATTERN as ID_PATTERN  # re-exported: the document's description
from web.schema import Schema
from web.schema import nullable as nullable  # re-exported for the routes' declarations
from web.schema import ref as ref
from web.services import Settings

F = TypeVar("F", bound=Callable[..., Any])

MAX_BODY_BYTES = Settings().max_body_bytes
NOT_BLANK = r"\S"  # at least one character that is not white space

# --- small helpers --------------------------------------------------------------------------------


def obj(
    properties: dict[str, Schema],
    required: list[str] | str = "all",
    *,
    strict: bool = True,
    description: str | None = None,
) -> Schema:
    """An object schema; ``required="all"`` (the default) requires every property."""
    schema: Schema = {"type": "object", "properties": properties}
    names = list(properties) if required == "all" else list(required)
    if names:
        schema["required"] = names
    if strict:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def string(
    max_length: int | None = None,
    *,
    not_blank: bool = False,
    pattern: str | None = None,
    description: str | None = None,
    **extra: Any,
) -> Schema:
    schema: Schema = {"type": "string"}
    if not_blank:
        schema["minLength"] = 1
        schema["pattern"] = NOT_BLANK
    if pattern:
        schema["pattern"] = pattern
    if max_length is not None:
        schema["maxLength"] = max_length
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def enum(*values: str, description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    schema.update(extra)
    return schema


ID: Schema = {"type": "string", "pattern": ID_PATTERN}


def query_param(name: str, description: str, schema: Schema, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def json_body(
    schema: Schema | type[Any], example: Any, *, required: bool = True, description: str = ""
) -> Schema:
    body: Schema = {
        "required": required,
        "content": {"application/json": {"schema": schema, "example": example}},
    }
    if description:
        body["description"] = description
    return body


def json_response(
    description: str,
    schema: Schema | type[Any],
    example: Any = None,
    *,
    headers: dict[str, Any] | None = None,
) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    response: Schema = {"description": description, "content": {"application/json": media}}
    if headers:
        response["headers"] = headers
    return response


def html_response(description: str, media_type: str = "text/html") -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def redirect_response(description: str) -> Schema:
    """A 302 whose ``Location`` says where to go."""
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}


REDIRECT: Schema = {
    "description": "Not signed in (no valid `curbe_session` cookie): 302 to `/login?next=<this page>`.",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "where to go"}},
}

# --- errors -----------------------------------------------------------------------------------

# code -> (status, a typical message, extra fields of the error object in the example)
ERRORS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "malformed_json": (400, "the body is not valid JSON", {}),
    "unauthenticated": (401, "sign in first: no bearer token or session cookie", {}),
    "invalid_credentials": (401, "wrong email or password", {}),
    "csrf_required": (403, "a write signed in by cookie needs the X-Curbe-CSRF header", {}),
    "forbidden": (403, "this visitor token belongs to another site", {}),
    "domain_not_allowed": (
        403,
        "evil.example is not in this widget's Targeting; the widget is not served there",
        {"widgetStatus": "MISCONFIGURED"},
    ),
    "not_found": (404, "no such resource", {}),
    "already_assigned": (
        409,
        "Ana Ruiz already accepted this conversation",
        {"assignee": {"id": ex.AGENT, "name": "Ana Ruiz"}},
    ),
    "at_capacity": (
        409,
        "you have 5 open chats, your limit; solve one first",
        {"openChats": 5, "capacity": 5},
    ),
    "conversation_active": (
        409,
        f"this visitor already has an active conversation ({ex.CONVERSATION}); resume it",
        {"conversationId": ex.CONVERSATION},
    ),
    "visitor_gone": (409, "this visitor left the site", {}),
    "agent_unavailable": (
        409,
        "Ana Ruiz is away; a chat can be handed to an agent who is online",
        {"presence": "away"},
    ),
    "unknown_agent": (422, "no agent agt_91d0 in this workspace", {}),
    "shortcut_taken": (409, "/hours is another canned reply's shortcut", {}),
    "too_many": (409, "a workspace keeps at most 500 canned replies", {}),
    "invalid_query": (422, "q is at most 100 characters", {}),
    "empty_file": (422, "the body holds no file", {}),
    "unsupported_file": (
        415,
        "not an image or a PDF we can take: send a PNG, JPEG, GIF or WebP image, or a PDF document",
        {},
    ),
    "invalid_weeks": (422, "weeks must be a whole number, 1 to 52", {}),
    "conversation_not_open": (
        409,
        "agents reply to OPEN conversations; this one is WAITING: accept it first",
        {},
    ),
    "conversation_solved": (
        409,
        "this conversation is SOLVED; start a new one or reopen it first",
        {},
    ),
    "already_solved": (409, "this conversation is already SOLVED", {}),
    "conversation_not_solved": (
        409,
        "a chat is rated once it is solved; it is still open",
        {},
    ),
    "illegal_transition": (
        409,
        "cannot accept a SOLVED conversation; only WAITING ones can be accepted",
        {},
    ),
    "body_too_large": (413, f"the body is larger than {MAX_BODY_BYTES} bytes", {}),
    "invalid_body": (422, "body.email: email is not an email address", {}),
    "tenant_mismatch": (422, "tenantId does not match this widget's tenant", {}),
    "invalid_limit": (422, "limit must be a whole number, 1 to 500", {}),
    "invalid_cursor": (422, "after must be a cursor this list answered", {}),
    "unknown_view": (
        422,
        "view must be one of open, unread, assigned, unassigned, waiting, solved, all",
        {},
    ),
    "invalid_widget": (
        422,
        "appearance.colorTheme must be a colour like #2563eb",
        {"fields": {"appearance.colorTheme": "must be a colour like #2563eb"}},
    ),
    "too_many_attempts": (
        429,
        "too many failed sign-ins; try again in 840 seconds",
        {"retryAfterSeconds": 840},
    ),
    "too_many_requests": (
        429,
        "too many requests; retry in 12 seconds",
        {"retryAfterSeconds": 12},
    ),
    "busy": (
        503,
        "too many sign-ins at once; retry",
        {"retryAfterSeconds": 2},
    ),
    "actor_unavailable": (
        503,
        "the conversation actor stopped before answering; retry",
        {"retryAfterSeconds": 1},
    ),
    "actor_timeout": (
        503,
        "the conversation actor did not answer within 10 s; retry",
        {"retryAfterSeconds": 1},
    ),
    "database_unavailable": (503, "the database does not answer", {}),
}

STATUS_TEXT = {
    400: "The body is not JSON.",
    401: "No or bad credentials.",
    403: "Not allowed.",
    404: "Unknown id (or another tenant's, or another visitor's: the same answer).",
    409: "Conflict with the resource's current state.",
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB (a file's upload: than the "
    "server's limit, 10 MB by default).",
    415: "Not a kind of file we take; nothing was stored.",
    422: "Bad input; nothing was stored.",
    429: "Rate limited.",
    503: "Temporarily unavailable.",
}


def errors(*codes: str) -> dict[str, Schema]:
    """The error responses of an operation: one per status, ``error.code`` narrowed to ``codes``."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERRORS[code][0], []).append(code)
    out: dict[str, Schema] = {}
    for status, status_codes in sorted(by_status.items()):
        schema: Schema = {
            "allOf": [
                ref("Error"),
                {"properties": {"error": {"properties": {"code": {"enum": status_codes}}}}},
            ]
        }
        examples = {}
        for code in status_codes:
            _, message, extra = ERRORS[code]
            examples[code] = {"value": {"error": {"code": code, "message": message, **extra}}}
        response: Schema = {
            "description": STATUS_TEXT[status]
            + " Codes: "
            + ", ".join(f"`{c}`" for c in status_codes)
            + ".",
            "content": {"application/json": {"schema": schema, "examples": examples}},
        }
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait (the same as `retryAfterSeconds`)",
                    "schema": {"type": "integer"},
                }
            }
        out[str(status)] = response
    return out


BODY_ERRORS = ("malformed_json", "body_too_large", "invalid_body")
# a route that calls an actor may answer 503 when it crashed or did not answer in time
ACTOR = ("actor_unavailable", "actor_timeout")
AGENT_WRITE = ("unauthenticated", "csrf_required")

# --- security -------------------------------------------------------------------------------------

AGENT_AUTH: list[dict[str, list[str]]] = [{"agentBearer": []}, {"agentCookie": []}]
VISITOR_AUTH: list[dict[str, list[str]]] = [{"visitorBearer": []}]
VISITOR_OPTIONAL: list[dict[str, list[str]]] = [{}, {"visitorBearer": []}]
OPS_AUTH: list[dict[str, list[str]]] = [{"opsBearer": []}]
PUBLIC: list[dict[str, list[str]]] = []

CSRF_PARAMETER: Schema = {
    "name": "X-Curbe-CSRF",
    "in": "header",
    "required": False,
    "description": (
        "Required (any non-empty value; pages send `1`) when the request is authenticated by the "
        "`curbe_session` cookie alone; without it a cookie write answers 403 `csrf_required`. "
        "Bearer-token clients need nothing extra."
    ),
    "schema": {"type": "string", "enum": ["1"]},
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "agentBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An agent's token from `POST /api/auth/login` (`token`). Opaque, 256-bit; only its "
            "hash is stored, so it survives restarts until logout or expiry (30 days)."
        ),
    },
    "agentCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "curbe_session",
        "description": (
            "The same token as an HttpOnly, SameSite=Lax cookie, set by `POST /api/auth/login`. "
            "A write (POST, PATCH, DELETE) authenticated by the cookie alone must also send "
            "`X-Curbe-CSRF: 1` (403 `csrf_required` otherwise): another origin cannot add that "
            "header without a CORS preflight, which agent endpoints never grant."
        ),
    },
    "visitorBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "vt2.<keyId>.<visitorId>.<tenantId>.<expiresAt>.<hmac>",
        "description": (
            "A visitor token from `POST /api/chat/widgets/{widgetId}/heartbeat` "
            "(`visitorToken`). Signed, not stored; valid for every widget of its tenant; "
            "survives restarts; expires after `CURBE_VISITOR_TOKEN_DAYS` (30), renewed by the "
            "heartbeat while the visitor is active (keep the last one received). The WebSocket "
            "takes it as `?token=`."
        ),
    },
    "opsBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token: the `CURBE_OPS_TOKEN` environment variable.",
    },
}


# the rule's variable -> (the document's name, its description, its schema when not an id)
PATH_PARAMETERS: dict[str, tuple[str, str, Schema | None]] = {
    "widget_id": ("widgetId", "the widget's id (`wgt_…`)", None),
    "conversation_id": ("conversationId", "the conversation's id (`conv_…`)", None),
    "visitor_id": ("visitorId", "the visitor's id (`vis_…`)", None),
    "reply_id": ("replyId", "the canned reply's id (`cr_…`)", None),
    "attachment_id": ("attachmentId", "the attachment's id (`att_…`)", None),
    "kind": ("kind", "`conversation`, `visitor_session`, `widget` or `router`", {"type": "string"}),
    "actor_id": ("actorId", "the actor's id (a conversation actor's is the conversation's)", None),
    "widget_ref": ("widgetRef", "the widget's id", {"type": "string"}),
}

# ``security`` of an agent route: bearer or cookie; it answers 401, a write also 403 csrf_required
AGENT = "agent"


@attrs.frozen
class Operation:
    """One route's part of the document (see :func:`api`)."""

    operation_id: str
    summary: str
    tag: str
    security: list[dict[str, list[str]]] | str
    responses: dict[str, Schema]
    description: str | None = None
    parameters: list[Schema] = attrs.Factory(list)
    body: Schema | None = None
    error_codes: tuple[str, ...] = ()


def api(
    operation_id: str,
    summary: str,
    tag: str,
    security: list[dict[str, list[str]]] | str,
    responses: dict[str, Schema],
    *,
    description: str | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    error_codes: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Describe the route below for the OpenAPI document (``parameters``: query only)."""
    operation = Operation(
        operation_id,
        summary,
        tag,
        security,
        responses,
        description,
        list(parameters or []),
        body,
        error_codes,
    )

    def describe(view: F) -> F:
        view.__api__ = operation  # type: ignore[attr-defined]
        return view

    return describe


def page(operation_id: str, summary: str, shows: str) -> Callable[[F], F]:
    """A page for signed-in agents: 200 with HTML, else 302 to the sign-in page."""
    return api(
        operation_id,
        summary,
        "pages",
        [{"agentCookie": []}],
        {"200": html_response(shows), "302": REDIRECT},
    )


def described(view: Any) -> Operation | None:
    return getattr(view, "__api__", None)
