"""The OpenAPI 3.1 document of every HTTP endpoint, served at ``GET /api/openapi.json``.

Plain data, written by hand next to the routes it describes and checked against them by
``tests/web/test_openapi.py``: every (method, path) of ``app.url_map`` is documented here and
every documented operation exists, the document validates (``openapi-spec-validator``), its
examples validate against their schemas, and real answers of a running server validate against
the documented response schemas. Change a route, change this file.

What is in it:

* **Every HTTP operation** — operators, the visitor side, sign-in, the agent side — with its
  parameters, the request body schema (camelCase, required fields, string limits, enums,
  ``additionalProperties: false`` where the server refuses unknown keys), each response with its
  schema, and the error envelope for every 4xx the endpoint really answers. An error response's
  schema narrows ``error.code`` to the codes that endpoint answers with that status.
* **The pages** (``/login``, ``/inbox``, ``/settings/…``, ``/demo``, ``/ops``, ``/widget.js``),
  tagged ``pages`` with ``text/html`` (or JavaScript) answers: they are real routes a browser or
  a probe calls, and listing them keeps "every route is documented" free of exceptions. Only
  ``/static/{filename}`` (the pages' CSS and scripts) is left out.
* **The two WebSockets**, which OpenAPI cannot express, under the root extension
  ``x-websockets``: path, parameters, security, the client frames and server frames as JSON
  Schemas (references into ``components/schemas``) and the close codes. ``docs/events.md`` says
  the same in prose.

Response objects are strict (``additionalProperties: false``) so the live test notices a field
that the server sends and this document does not name. Actor introspection objects are the
exception: each actor kind adds its own detail fields (listed, but open).
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

Schema = dict[str, Any]

# --- limits (the same numbers as web/wire.py and web/widgets.py) --------------------------------

MAX_NAME = 200
MAX_EMAIL = 320
MAX_URL = 2048
MAX_ID = 128
MAX_TEXT = 5000
MAX_BODY_BYTES = 64 * 1024

ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^(\+?[0-9 ()\-.]{5,32})?$"  # empty = none given
NOT_BLANK = r"\S"  # at least one character that is not white space

VIEWS = ["open", "unread", "assigned", "unassigned", "waiting", "solved", "all"]
EVENT_TYPES = [
    "conversation_created",
    "conversation_status_changed",
    "conversation_assigned",
    "message_created",
    "conversation_wait_timeout",
    "visitor_presence_update",
    "agent_presence_update",
    "agents_online_changed",
    "queue_position",
    "conversation_read",
    "widget_status_changed",
    "widget_updated",
    "widget_deleted",
]

# --- example values -----------------------------------------------------------------------------

T0 = "2026-11-29T13:20:00.123Z"
T1 = "2026-11-29T13:21:00.000Z"
TENANT = "ten_6b1f0c2a9d3e4f57"
WIDGET = "wgt_2c9e41f07a5b8d36"
VISITOR = "vis_3f9c0a51d2e84b7c"
AGENT = "agt_91d0e3c4b5a6f728"
CONVERSATION = "conv_5e7a9c1b3d2f4068"
MESSAGE = "msg_0a1b2c3d4e5f6789"
VISITOR_TOKEN = f"vt1.{VISITOR}.{TENANT}.q5W1mXb0c9R7t2Yv3Zk8HnLpA4sDfGjE6uIoPwQeRtY"

# --- small helpers --------------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null``."""
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
    out["type"] = [*kinds, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


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


BOOLEAN: Schema = {"type": "boolean"}
ID: Schema = {"type": "string", "pattern": ID_PATTERN}
TIMESTAMP = ref("Timestamp")
MAYBE_TIMESTAMP = nullable(ref("Timestamp"))
MAYBE_STRING: Schema = {"type": ["string", "null"]}


def list_of(item: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": item, **extra}


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or ID,
    }


def query_param(name: str, description: str, schema: Schema, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def json_body(
    schema: Schema, example: Any, *, required: bool = True, description: str = ""
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
    schema: Schema,
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


def html_response(description: str) -> Schema:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


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
        {"assignee": {"id": AGENT, "name": "Ana Ruiz"}},
    ),
    "at_capacity": (
        409,
        "you have 5 open chats, your limit; solve one first",
        {"openChats": 5, "capacity": 5},
    ),
    "conversation_active": (
        409,
        f"this visitor already has an active conversation ({CONVERSATION}); resume it",
        {"conversationId": CONVERSATION},
    ),
    "visitor_gone": (409, "this visitor left the site", {}),
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
    "illegal_transition": (
        409,
        "cannot accept a SOLVED conversation; only WAITING ones can be accepted",
        {},
    ),
    "body_too_large": (413, f"the body is larger than {MAX_BODY_BYTES} bytes", {}),
    "invalid_body": (422, "body.email: email is not an email address", {}),
    "tenant_mismatch": (422, "tenantId does not match this widget's tenant", {}),
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
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.",
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
        "bearerFormat": "vt1.<visitorId>.<tenantId>.<hmac>",
        "description": (
            "A visitor token from `POST /api/chat/widgets/{widgetId}/heartbeat` "
            "(`visitorToken`). Signed, not stored; valid for every widget of its tenant; "
            "survives restarts. The WebSocket takes it as `?token=`."
        ),
    },
    "opsBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token: the `CURBE_OPS_TOKEN` environment variable.",
    },
}

# --- schemas ----------------------------------------------------------------------------------

_CONVERSATION_PROPS: dict[str, Schema] = {
    "id": ID,
    "tenantId": ID,
    "widgetId": ID,
    "visitorId": ID,
    "kind": enum("live_chat", "offline_message"),
    "status": ref("ConversationStatus"),
    "assignee": nullable(ref("AgentRef")),
    "createdAt": TIMESTAMP,
    "updatedAt": TIMESTAMP,
    "solvedAt": MAYBE_TIMESTAMP,
    "waitDeadline": nullable(
        {**TIMESTAMP, "description": "when `conversation_wait_timeout` fires (WAITING live chats)"}
    ),
    "waitTimedOut": BOOLEAN,
    "lastSeq": integer(0, description="the seq of the conversation's latest event"),
}

_APPEARANCE_DEFAULTS_NOTE = "`null` (or leaving it out) keeps or restores the default."


def _widget_settings(*, for_request: bool) -> dict[str, Schema]:
    """The editable widget document's sections (requests: every leaf may be null = default)."""

    def maybe(schema: Schema) -> Schema:
        return nullable(schema) if for_request else schema

    phone = string(
        32,
        pattern=r"^(\+?[0-9][0-9 ()\-.]{4,31})?$",
        description="a phone number, never a visitor id",
    )
    appearance = obj(
        {
            "colorTheme": maybe(string(pattern="^#[0-9a-fA-F]{6}$", examples=["#2563eb"])),
            "minimized": maybe(enum("bubble", "bar")),
            "position": maybe(enum("right", "left")),
            "showAgentAvatar": maybe(BOOLEAN),
            "branding": maybe(
                obj(
                    {"enabled": maybe(BOOLEAN), "text": nullable(string(60))},
                    [] if for_request else "all",
                )
            ),
            "welcome": maybe(
                obj(
                    {
                        "title": maybe(string(80, not_blank=for_request)),
                        "text": nullable(string(300)),
                    },
                    [] if for_request else "all",
                )
            ),
        },
        [] if for_request else "all",
    )
    channels = obj(
        {
            "liveChat": maybe(BOOLEAN),
            "sms": nullable(phone),
            "call": nullable(phone),
            "whatsapp": nullable(phone),
            "telegram": nullable(string(33, pattern="^(@?[A-Za-z][A-Za-z0-9_]{4,31})?$")),
            "messenger": nullable(string(500, pattern="^(https://[^\\s<>\"']+)?$")),
            "email": nullable(string(320)),
        },
        [] if for_request else "all",
    )
    return {
        "domains": maybe(
            list_of(
                string(
                    255,
                    pattern=r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$",
                    description="a host name or a `*.` pattern",
                ),
                maxItems=50,
                description="Targeting: where the widget may run (empty = anywhere)",
            )
        ),
        "waitTimeoutSeconds": maybe(integer(1, 3600)),
        "locale": maybe(enum("auto", "en", "es")),
        "routing": maybe(enum("manual", "round_robin")),
        "appearance": maybe(appearance),
        "channels": maybe(channels),
    }


def _schemas() -> dict[str, Schema]:
    message = obj(
        {
            "id": ID,
            "conversationId": ID,
            "seq": integer(1),
            "senderType": enum("visitor", "agent"),
            "senderId": ID,
            "senderName": MAYBE_STRING,
            "text": {"type": "string"},
            "clientMessageId": MAYBE_STRING,
            "clientTimestamp": nullable(
                string(description="whatever the browser sent, kept for reference only")
            ),
            "createdAt": TIMESTAMP,
        }
    )
    message_summary = obj(
        {
            "id": ID,
            "seq": integer(1),
            "senderType": enum("visitor", "agent"),
            "senderId": ID,
            "senderName": MAYBE_STRING,
            "text": {"type": "string"},
            "createdAt": TIMESTAMP,
        }
    )
    contact = obj(
        {
            "visitorId": ID,
            "displayName": string(description='the name given, else a stable alias ("Pink Lion")'),
            "name": MAYBE_STRING,
            "email": MAYBE_STRING,
            "phone": nullable(string(description="only what a person typed")),
            "ip": MAYBE_STRING,
            "userAgent": MAYBE_STRING,
            "currentUrl": MAYBE_STRING,
            "location": MAYBE_STRING,
            "browser": MAYBE_STRING,
            "os": MAYBE_STRING,
            "device": MAYBE_STRING,
        }
    )
    widget_props: dict[str, Schema] = {
        "id": ID,
        "tenantId": ID,
        "name": string(100),
        "status": ref("WidgetStatus"),
        "statusReason": nullable(string(description="why INACTIVE or MISCONFIGURED")),
        "domain": nullable(string(description="detected domain, else the first Targeting entry")),
        "domains": list_of({"type": "string"}),
        "lastSeenAt": MAYBE_TIMESTAMP,
        "lastSeenDomain": MAYBE_STRING,
        "lastSeenUrl": MAYBE_STRING,
        "lastRefusedAt": MAYBE_TIMESTAMP,
        "lastRefusedDomain": MAYBE_STRING,
        "waitTimeoutSeconds": integer(1, 3600),
        "locale": enum("auto", "en", "es"),
        "routing": enum("manual", "round_robin"),
        "appearance": ref("WidgetAppearance"),
        "channels": ref("WidgetChannels"),
        "embedCode": string(description="the `<script async src=…/widget.js …>` snippet"),
        "createdAt": MAYBE_TIMESTAMP,
        "updatedAt": MAYBE_TIMESTAMP,
    }
    response_settings = _widget_settings(for_request=False)
    request_settings = _widget_settings(for_request=True)
    visitor = obj(
        {
            "visitorId": ID,
            "displayName": string(description='the name given, else a stable alias ("Pink Lion")'),
            "name": nullable(string(description="the name the visitor gave when starting a chat")),
            "widgetId": ID,
            "currentUrl": MAYBE_STRING,
            "pageTitle": MAYBE_STRING,
            "referrer": MAYBE_STRING,
            "firstSeenAt": TIMESTAMP,
            "lastSeenAt": TIMESTAMP,
            "timeOnSiteSeconds": integer(0),
            "inChat": BOOLEAN,
            "conversationId": nullable(ID),
            "location": nullable(
                string(description="the browser's time zone and language, labelled")
            ),
        }
    )
    actor_props: dict[str, Schema] = {
        "kind": string(
            description="`conversation`, `visitor_session`, `widget`, `router`",
            examples=["conversation"],
        ),
        "id": string(description="a conversation actor's id is the conversation's id"),
        "tenantId": MAYBE_STRING,
        "state": nullable(
            string(
                description=(
                    "conversation: NEW, WAITING, OPEN, SOLVED; visitor_session: NEW, LIVE; "
                    "widget: NEW, ACTIVE, INACTIVE, MISCONFIGURED; router: IDLE, WATCHING"
                )
            )
        ),
        "subscribers": integer(
            0, description="sockets that hear its events (its topic, its visitor's, its tenant's)"
        ),
        "mailbox": integer(0, description="commands queued, not yet handled"),
        "restarts": integer(0),
        "startedAt": TIMESTAMP,
        "lastActivityAt": TIMESTAMP,
        "lastCrash": nullable(string(description="the last crash's exception, when it restarted")),
        # kind-specific detail
        "visitorId": nullable(string(description="conversation")),
        "lastSeq": integer(0, description="conversation"),
        "waitDeadline": nullable({**TIMESTAMP, "description": "conversation: the wait timer"}),
        "currentUrl": MAYBE_STRING,
        "conversationId": MAYBE_STRING,
        "expiresAt": nullable({**TIMESTAMP, "description": "visitor_session"}),
        "coalescedHeartbeats": integer(0, description="visitor_session"),
        "lastSeenAt": nullable({**TIMESTAMP, "description": "widget"}),
        "activeUntil": nullable({**TIMESTAMP, "description": "widget"}),
        "unsavedPing": {"type": "boolean", "description": "widget"},
        "waiting": integer(0, description="router"),
        "passes": integer(0, description="router"),
        "offers": integer(0, description="router"),
    }
    base_actor = [
        "kind",
        "id",
        "tenantId",
        "state",
        "subscribers",
        "mailbox",
        "restarts",
        "startedAt",
        "lastActivityAt",
        "lastCrash",
    ]
    recent_event = obj({"type": enum(*EVENT_TYPES), "seq": nullable(integer(1)), "at": TIMESTAMP})

    return {
        "Timestamp": {
            "type": "string",
            "format": "date-time",
            "pattern": "Z$",
            "description": "ISO 8601, UTC, milliseconds, `Z`; always the server's clock",
            "examples": [T0],
        },
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": string(pattern="^[a-z][a-z0-9]*(_[a-z0-9]+)*$"),
                        "message": string(not_blank=True, description="a human sentence"),
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "`invalid_widget`: every bad field, by path",
                        },
                        "widgetStatus": enum("MISCONFIGURED"),
                        "assignee": obj({"id": ID, "name": {"type": "string"}}),
                        "openChats": integer(0),
                        "capacity": integer(0),
                        "conversationId": ID,
                        "retryAfterSeconds": integer(1),
                    },
                    ["code", "message"],
                )
            },
            description='Every error: `{"error": {"code", "message", …}}`.',
        ),
        "ConversationStatus": enum(
            "WAITING",
            "OPEN",
            "SOLVED",
            description="WAITING (nobody accepted yet), OPEN (assigned), SOLVED (closed)",
        ),
        "WidgetStatus": enum(
            "ACTIVE",
            "INACTIVE",
            "MISCONFIGURED",
            description="computed from the installation pings; never Unknown",
        ),
        "AgentRef": obj({"id": ID, "name": {"type": "string"}, "avatarUrl": MAYBE_STRING}),
        "Agent": obj(
            {
                "id": ID,
                "tenantId": ID,
                "email": {"type": "string"},
                "name": {"type": "string"},
                "avatarUrl": MAYBE_STRING,
            }
        ),
        "Message": message,
        "MessageSummary": message_summary,
        "Contact": contact,
        "Conversation": obj(_CONVERSATION_PROPS),
        "ConversationWithMessages": obj(
            {
                **_CONVERSATION_PROPS,
                "messages": list_of(ref("Message")),
                "assignedSeq": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "seq of the latest conversation_assigned event (where the "
                    'widget draws "{agent} joined the chat"); null while never assigned',
                },
            },
            description="The visitor's view: the conversation and every message, in seq order.",
        ),
        "NewConversation": obj(
            {
                **_CONVERSATION_PROPS,
                "messages": list_of(ref("Message")),
                "agentsOnline": BOOLEAN,
            },
            description="A conversation just created, with its first message.",
        ),
        "ConversationDetail": obj(
            {
                **_CONVERSATION_PROPS,
                "messages": list_of(ref("Message")),
                "contact": ref("Contact"),
            }
        ),
        "ConversationListItem": obj(
            {
                **_CONVERSATION_PROPS,
                "contact": ref("Contact"),
                "lastMessage": nullable(ref("MessageSummary")),
                "firstMessage": nullable(ref("MessageSummary")),
                "unread": {
                    "type": "boolean",
                    "description": "a visitor message this agent has not opened yet",
                },
                "assigneeOnline": nullable(
                    {"type": "boolean", "description": "false: the assignee has no inbox open"}
                ),
            }
        ),
        "WidgetAppearance": response_settings["appearance"],
        "WidgetChannels": response_settings["channels"],
        "Widget": obj(widget_props),
        "WidgetPatch": obj(
            {"name": nullable(string(100, not_blank=True)), **request_settings},
            [],
            description=(
                "A JSON merge patch (RFC 7396) of the widget document: nested objects merge, "
                "`null` resets a setting to its default. The merged document is validated as a "
                "whole; a bad field answers 422 `invalid_widget` naming every bad field."
            ),
        ),
        "WidgetCreate": obj(
            {"name": string(100, not_blank=True), **request_settings},
            ["name"],
            description="A widget document; anything left out takes its default. "
            + _APPEARANCE_DEFAULTS_NOTE,
        ),
        "WidgetConfig": obj(
            {
                "id": ID,
                "tenantId": ID,
                "name": {"type": "string"},
                "status": ref("WidgetStatus"),
                "appearance": ref("WidgetAppearance"),
                "channels": ref("WidgetChannels"),
                "locale": enum("auto", "en", "es"),
                "agentsOnline": {
                    "type": "boolean",
                    "description": "at least one agent of the tenant is online",
                },
                "waitTimeoutSeconds": integer(1, 3600),
            }
        ),
        "LiveVisitor": visitor,
        "Escalation": obj(
            {
                "kind": string(
                    description="`conversation`, `visitor_session`, `widget`, `router` or `service`"
                ),
                "id": string(description="only with the operator token"),
                "error": string(
                    description="the last crash: exception type and first line (operator token)"
                ),
                "where": nullable(
                    string(description="`path:line in function` of our code (operator token)")
                ),
                "at": string(format="date-time"),
                "restarts": integer(0),
            },
            required=["kind", "at", "restarts"],
        ),
        "ActorSummary": obj(
            dict(actor_props),
            base_actor,
            strict=False,
            description="One live actor; kinds add their own detail fields.",
        ),
        "Actor": obj(
            {**actor_props, "recentEvents": list_of(ref("RecentEvent"), maxItems=20)},
            base_actor,
            strict=False,
            description="One live actor; conversation actors add `recentEvents` (last 20).",
        ),
        "RecentEvent": recent_event,
        "BrokerStatistics": obj(
            {
                "subscribers": integer(0),
                "published": integer(0),
                "delivered": integer(0),
                "droppedSubscribers": integer(0, description="slow sockets dropped (1013)"),
            }
        ),
        **_frame_schemas(),
    }


def _frame_schemas() -> dict[str, Schema]:
    """The WebSocket frames (documented under ``x-websockets``)."""

    def frame(type_: str, props: dict[str, Schema], required: list[str]) -> Schema:
        return obj({"type": {"const": type_}, **props}, ["type", *required])

    return {
        "Event": obj(
            {
                "type": enum(*EVENT_TYPES),
                "at": TIMESTAMP,
                "tenantId": ID,
                "conversationId": ID,
                "seq": integer(1, description="counts up by one per conversation"),
                "data": {"type": "object", "description": "the event's payload (docs/events.md)"},
            },
            ["type", "at", "tenantId", "data"],
            description=(
                "One realtime event. `conversationId` and `seq` are on every conversation event "
                "and absent on the others (presence, widgets, queue_position)."
            ),
        ),
        "ClientMessageFrame": frame(
            "message",
            {
                "text": string(MAX_TEXT, not_blank=True),
                "clientMessageId": nullable(string(MAX_ID)),
                "conversationId": nullable(
                    string(MAX_ID, description="required on the inbox; visitors: latest if absent")
                ),
                "clientTimestamp": nullable(string(64)),
            },
            ["text"],
        ),
        "ResumeFrame": frame(
            "resume",
            {
                "afterSeq": integer(0),
                "conversationId": nullable(
                    string(MAX_ID, description="required on the inbox; visitors: latest if absent")
                ),
            },
            ["afterSeq"],
        ),
        "PingFrame": frame("ping", {}, []),
        "PresenceFrame": frame("presence", {"status": enum("online", "away")}, ["status"]),
        "ReadyFrame": obj(
            {
                "type": {"const": "ready"},
                "serverTime": TIMESTAMP,
                "visitorId": ID,
                "agentsOnline": BOOLEAN,
                "agentId": ID,
                "tenantId": ID,
            },
            ["type", "serverTime"],
            description="First frame; visitors get visitorId and agentsOnline, the inbox agentId and tenantId.",
        ),
        "ResumedFrame": frame(
            "resumed", {"conversationId": ID, "lastSeq": integer(0)}, ["conversationId", "lastSeq"]
        ),
        "AckFrame": frame(
            "ack",
            {"clientMessageId": MAYBE_STRING, "message": ref("Message")},
            ["clientMessageId", "message"],
        ),
        "PongFrame": frame("pong", {"serverTime": TIMESTAMP}, ["serverTime"]),
        "ErrorFrame": frame(
            "error",
            {
                "error": obj({"code": {"type": "string"}, "message": {"type": "string"}}),
                "clientMessageId": MAYBE_STRING,
            },
            ["error"],
        ),
    }


# --- examples ---------------------------------------------------------------------------------

EX_AGENT = {
    "id": AGENT,
    "tenantId": TENANT,
    "email": "javier@insuremax.com",
    "name": "Javier Lazo",
    "avatarUrl": None,
}
EX_MESSAGE = {
    "id": MESSAGE,
    "conversationId": CONVERSATION,
    "seq": 2,
    "senderType": "visitor",
    "senderId": VISITOR,
    "senderName": "María López",
    "text": "Hi, I need a quote for my car",
    "clientMessageId": "c-7f3a",
    "clientTimestamp": None,
    "createdAt": T0,
}
EX_MESSAGE_SUMMARY = {
    k: EX_MESSAGE[k]
    for k in ("id", "seq", "senderType", "senderId", "senderName", "text", "createdAt")
}
EX_CONVERSATION = {
    "id": CONVERSATION,
    "tenantId": TENANT,
    "widgetId": WIDGET,
    "visitorId": VISITOR,
    "kind": "live_chat",
    "status": "WAITING",
    "assignee": None,
    "createdAt": T0,
    "updatedAt": T0,
    "solvedAt": None,
    "waitDeadline": "2026-11-29T13:21:00.123Z",
    "waitTimedOut": False,
    "lastSeq": 2,
}
EX_OPEN_CONVERSATION = {
    **EX_CONVERSATION,
    "status": "OPEN",
    "assignee": {"id": AGENT, "name": "Javier Lazo", "avatarUrl": None},
    "updatedAt": T1,
    "waitDeadline": None,
    "lastSeq": 4,
}
EX_CONTACT = {
    "visitorId": VISITOR,
    "displayName": "María López",
    "name": "María López",
    "email": "maria@example.com",
    "phone": None,
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
    "currentUrl": "https://www.insuremax.com/quote",
    "location": "America/Mexico_City, es-MX (from the browser)",
    "browser": "Chrome 131",
    "os": "Linux",
    "device": None,
}
EX_APPEARANCE = {
    "colorTheme": "#2563eb",
    "minimized": "bubble",
    "position": "right",
    "showAgentAvatar": True,
    "branding": {"enabled": True, "text": None},
    "welcome": {
        "title": "Hi there",
        "text": "Questions? We are here to help. We usually answer in a few minutes.",
    },
}
EX_CHANNELS = {
    "liveChat": True,
    "sms": None,
    "call": None,
    "whatsapp": "+52 55 1234 5678",
    "telegram": None,
    "messenger": None,
    "email": None,
}


def _ex_widget(base_url: str) -> dict[str, Any]:
    return {
        "id": WIDGET,
        "tenantId": TENANT,
        "name": "InsureMax",
        "status": "ACTIVE",
        "statusReason": None,
        "domain": "www.insuremax.com",
        "domains": ["*.insuremax.com"],
        "lastSeenAt": T0,
        "lastSeenDomain": "www.insuremax.com",
        "lastSeenUrl": "https://www.insuremax.com/quote",
        "lastRefusedAt": None,
        "lastRefusedDomain": None,
        "waitTimeoutSeconds": 60,
        "locale": "auto",
        "routing": "manual",
        "appearance": EX_APPEARANCE,
        "channels": EX_CHANNELS,
        "embedCode": (
            f'<script async src="{base_url.rstrip("/")}/widget.js" data-widget-id="{WIDGET}" '
            f'data-tenant="{TENANT}"></script>'
        ),
        "createdAt": "2026-11-01T09:00:00.000Z",
        "updatedAt": "2026-11-20T10:30:00.000Z",
    }


EX_ESCALATION = {
    "kind": "conversation",
    "id": "conv_9f1c2a7d0b3e4f5a",
    "error": "RuntimeError: injected commit failure",
    "where": "engine/conversation_actor.py:207 in _handle",
    "at": "2026-11-29T13:20:00.000Z",
    "restarts": 4,
}

EX_ACTOR = {
    "kind": "conversation",
    "id": CONVERSATION,
    "tenantId": TENANT,
    "state": "WAITING",
    "subscribers": 2,
    "mailbox": 0,
    "restarts": 0,
    "startedAt": T0,
    "lastActivityAt": T0,
    "lastCrash": None,
    "visitorId": VISITOR,
    "lastSeq": 2,
    "waitDeadline": "2026-11-29T13:21:00.123Z",
}

# --- operations -------------------------------------------------------------------------------


def op(
    operation_id: str,
    summary: str,
    tag: str,
    security: list[dict[str, list[str]]],
    responses: dict[str, Schema],
    *,
    description: str | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["security"] = security
    operation["responses"] = responses
    return operation


def agent_op(
    operation_id: str,
    summary: str,
    tag: str,
    method: str,
    responses: dict[str, Schema],
    *,
    error_codes: tuple[str, ...] = (),
    parameters: list[Schema] | None = None,
    **kwargs: Any,
) -> Schema:
    """An agent operation: bearer or cookie; writes take the CSRF header and may answer 403."""
    write = method in ("post", "patch", "delete")
    params = list(parameters or [])
    base_errors: tuple[str, ...] = AGENT_WRITE if write else ("unauthenticated",)
    if write:
        params.append({"$ref": "#/components/parameters/CsrfHeader"})
    return op(
        operation_id,
        summary,
        tag,
        AGENT_AUTH,
        {**responses, **errors(*base_errors, *error_codes)},
        parameters=params,
        **kwargs,
    )


WIDGET_ID = path_param("widgetId", "the widget's id (`wgt_…`)")
CONVERSATION_ID = path_param("conversationId", "the conversation's id (`conv_…`)")
VISITOR_ID = path_param("visitorId", "the visitor's id (`vis_…`)")


def _paths(base_url: str) -> dict[str, Schema]:
    ex_widget = _ex_widget(base_url)
    return {
        # --- operators ----------------------------------------------------------------------
        "/healthz": {
            "get": op(
                "getHealth",
                "Liveness and database check",
                "operators",
                PUBLIC,
                {
                    "200": json_response(
                        "The server and its database answer. `degraded`: it serves, but the "
                        "supervisor gave up on the actors or services listed in `escalated` "
                        "(they crashed past their restart intensity); each leaves the list when "
                        "it answers a command again.",
                        obj(
                            {
                                "status": {"enum": ["ok", "degraded"]},
                                "actors": integer(0),
                                "escalated": list_of(ref("Escalation")),
                            }
                        ),
                        {"status": "degraded", "actors": 12, "escalated": [EX_ESCALATION]},
                    ),
                    **errors("database_unavailable"),
                },
            )
        },
        "/metrics": {
            "get": op(
                "getMetrics",
                "Prometheus metrics",
                "operators",
                PUBLIC,
                {
                    "200": {
                        "description": (
                            "Prometheus text exposition format: actors by kind, connections by "
                            "side, events published and dropped, messages stored, commit and "
                            "delivery latency histograms, heartbeats, restarts."
                        ),
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/api/openapi.json": {
            "get": op(
                "getOpenApi",
                "This document",
                "operators",
                PUBLIC,
                {
                    "200": json_response(
                        "The OpenAPI 3.1 document of every HTTP endpoint; any origin may read it "
                        "(`Access-Control-Allow-Origin: *`).",
                        {"type": "object"},
                    )
                },
            )
        },
        "/api/ops/actors": {
            "get": op(
                "listActors",
                "Every live actor",
                "operators",
                OPS_AUTH,
                {
                    "200": json_response(
                        "The live actors (without `recentEvents`) and the broker's counters.",
                        obj(
                            {
                                "actors": list_of(ref("ActorSummary")),
                                "broker": ref("BrokerStatistics"),
                                "escalated": list_of(ref("Escalation")),
                            }
                        ),
                        {
                            "actors": [EX_ACTOR],
                            "broker": {
                                "subscribers": 4,
                                "published": 120,
                                "delivered": 310,
                                "droppedSubscribers": 0,
                            },
                            "escalated": [],
                        },
                    ),
                    **errors("unauthenticated"),
                },
                parameters=[
                    query_param(
                        "kind",
                        "only this kind (`conversation`, `visitor_session`, `widget`, `router`, "
                        "`service`); "
                        "send no `kind` for every kind",
                        string(examples=["conversation"]),
                    ),
                    query_param("tenant", "only this tenant's actors (`ten_…`)", string()),
                ],
            )
        },
        "/api/ops/actors/{kind}/{actorId}": {
            "get": op(
                "getActor",
                "One live actor with its recent events",
                "operators",
                OPS_AUTH,
                {
                    "200": json_response(
                        "The actor; a conversation actor includes its last 20 events.",
                        ref("Actor"),
                        {
                            **EX_ACTOR,
                            "recentEvents": [
                                {"type": "conversation_created", "seq": 1, "at": T0},
                                {"type": "message_created", "seq": 2, "at": T0},
                            ],
                        },
                    ),
                    **errors("unauthenticated", "not_found"),
                },
                parameters=[
                    path_param(
                        "kind",
                        "`conversation`, `visitor_session`, `widget` or `router`",
                        {"type": "string"},
                    ),
                    path_param(
                        "actorId", "the actor's id (a conversation actor's is the conversation's)"
                    ),
                ],
            )
        },
        # --- visitor side -------------------------------------------------------------------
        "/api/chat/widgets/{widgetId}/config": {
            "get": op(
                "getWidgetConfig",
                "What the embedded widget needs to render",
                "visitor",
                PUBLIC,
                {
                    "200": json_response(
                        "Appearance, channels, language, whether an agent is online.",
                        ref("WidgetConfig"),
                        {
                            "id": WIDGET,
                            "tenantId": TENANT,
                            "name": "InsureMax",
                            "status": "ACTIVE",
                            "appearance": EX_APPEARANCE,
                            "channels": EX_CHANNELS,
                            "locale": "auto",
                            "agentsOnline": True,
                            "waitTimeoutSeconds": 60,
                        },
                    ),
                    **errors("not_found", "actor_unavailable", "actor_timeout"),
                },
                parameters=[WIDGET_ID],
            )
        },
        "/api/chat/widgets/{widgetId}/heartbeat": {
            "post": op(
                "visitorHeartbeat",
                "Installation ping and visitor presence",
                "visitor",
                VISITOR_OPTIONAL,
                {
                    "200": json_response(
                        "The ping was recorded; use `visitorToken` on every visitor call.",
                        obj(
                            {
                                "widgetStatus": {"const": "ACTIVE"},
                                "visitorId": ID,
                                "visitorToken": string(512),
                                "serverTime": TIMESTAMP,
                                "conversationId": nullable(ID),
                                "agentsOnline": BOOLEAN,
                            }
                        ),
                        {
                            "widgetStatus": "ACTIVE",
                            "visitorId": VISITOR,
                            "visitorToken": VISITOR_TOKEN,
                            "serverTime": T0,
                            "conversationId": None,
                            "agentsOnline": True,
                        },
                    ),
                    **errors(
                        *BODY_ERRORS,
                        "tenant_mismatch",
                        "domain_not_allowed",
                        "not_found",
                        "actor_unavailable",
                        "actor_timeout",
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
                parameters=[WIDGET_ID],
                body=json_body(
                    obj(
                        {
                            "currentDomain": string(255, not_blank=True),
                            "currentUrl": string(MAX_URL, not_blank=True),
                            "tenantId": nullable(
                                string(MAX_ID, description="must be the widget's tenant (422)")
                            ),
                            "visitorId": nullable(string(MAX_ID)),
                            "timestamp": {
                                "type": ["string", "number", "null"],
                                "description": "the browser's clock; informational only",
                            },
                            "pageTitle": nullable(string(500)),
                            "referrer": nullable(string(MAX_URL)),
                            "timeZone": nullable(string(64, examples=["America/Mexico_City"])),
                            "language": nullable(string(35, examples=["es-MX"])),
                            "visitorToken": nullable(
                                string(512, description="for beacons, which cannot send headers")
                            ),
                        },
                        ["currentDomain", "currentUrl"],
                    ),
                    {
                        "tenantId": TENANT,
                        "visitorId": VISITOR,
                        "currentDomain": "www.insuremax.com",
                        "currentUrl": "https://www.insuremax.com/quote",
                        "timestamp": T0,
                        "pageTitle": "Get a quote",
                        "referrer": None,
                        "timeZone": "America/Mexico_City",
                        "language": "es-MX",
                    },
                ),
            )
        },
        "/api/chat/widgets/{widgetId}/conversations": {
            "post": op(
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
                            **EX_CONVERSATION,
                            "lastSeq": 2,
                            "messages": [EX_MESSAGE],
                            "agentsOnline": True,
                        },
                    ),
                    **errors(
                        *BODY_ERRORS,
                        "unauthenticated",
                        "forbidden",
                        "not_found",
                        "conversation_active",
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                parameters=[WIDGET_ID],
                body=json_body(
                    obj(
                        {
                            "name": string(MAX_NAME, not_blank=True),
                            "email": string(MAX_EMAIL, not_blank=True, pattern=EMAIL_PATTERN),
                            "message": string(MAX_TEXT, not_blank=True),
                            "clientMessageId": nullable(string(MAX_ID)),
                            "phone": nullable(string(pattern=PHONE_PATTERN)),
                        },
                        ["name", "email", "message"],
                    ),
                    {
                        "name": "María López",
                        "email": "maria@example.com",
                        "message": "Hi, I need a quote for my car",
                        "clientMessageId": "c-7f3a",
                    },
                ),
            )
        },
        "/api/chat/widgets/{widgetId}/conversation": {
            "get": op(
                "getVisitorConversation",
                "The visitor's latest conversation (rehydration after a reload)",
                "visitor",
                VISITOR_AUTH,
                {
                    "200": json_response(
                        "The latest conversation with every message and `lastSeq`; resume the "
                        "WebSocket from `lastSeq`.",
                        ref("ConversationWithMessages"),
                        {**EX_CONVERSATION, "messages": [EX_MESSAGE], "assignedSeq": None},
                    ),
                    **errors(
                        "unauthenticated",
                        "forbidden",
                        "not_found",
                        "actor_unavailable",
                        "actor_timeout",
                    ),
                },
                parameters=[WIDGET_ID],
            )
        },
        "/api/chat/widgets/{widgetId}/conversations/{conversationId}/messages": {
            "post": op(
                "postVisitorMessage",
                "A visitor's message",
                "visitor",
                VISITOR_AUTH,
                {
                    "201": json_response(
                        "The stored message (the same one again for a repeated `clientMessageId`).",
                        ref("Message"),
                        EX_MESSAGE,
                    ),
                    **errors(
                        *BODY_ERRORS,
                        "unauthenticated",
                        "forbidden",
                        "not_found",
                        "conversation_solved",
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                description="404 for a conversation that is not this visitor's.",
                parameters=[WIDGET_ID, CONVERSATION_ID],
                body=json_body(
                    ref("MessageRequest"),
                    {"text": "Is it cheaper yearly?", "clientMessageId": "c-81b2"},
                ),
            )
        },
        "/api/chat/widgets/{widgetId}/offline-messages": {
            "post": op(
                "leaveOfflineMessage",
                "Leave a message (a ticket) when nobody is online",
                "visitor",
                VISITOR_OPTIONAL,
                {
                    "201": json_response(
                        "A conversation of kind `offline_message` with the message.",
                        ref("NewConversation"),
                        {
                            **EX_CONVERSATION,
                            "kind": "offline_message",
                            "waitDeadline": None,
                            "messages": [EX_MESSAGE],
                            "agentsOnline": False,
                        },
                    ),
                    **errors(*BODY_ERRORS, "not_found"),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                description="With a valid visitor token the ticket is that visitor's; else a new visitor id is minted.",
                parameters=[WIDGET_ID],
                body=json_body(
                    obj(
                        {
                            "name": string(MAX_NAME, not_blank=True),
                            "email": string(MAX_EMAIL, not_blank=True, pattern=EMAIL_PATTERN),
                            "message": string(MAX_TEXT, not_blank=True),
                            "phone": nullable(string(pattern=PHONE_PATTERN)),
                            "conversationId": nullable(
                                string(
                                    MAX_ID,
                                    description="the chat that timed out, if any (informational)",
                                )
                            ),
                        },
                        ["name", "email", "message"],
                    ),
                    {
                        "name": "María López",
                        "email": "maria@example.com",
                        "phone": "+52 55 1234 5678",
                        "message": "Please call me back about a car quote",
                    },
                ),
            )
        },
        # --- sign-in ------------------------------------------------------------------------
        "/api/auth/login": {
            "post": op(
                "login",
                "Sign in",
                "auth",
                PUBLIC,
                {
                    "200": json_response(
                        "The token (also set as the `curbe_session` cookie) and the agent.",
                        obj({"token": string(), "agent": ref("Agent")}),
                        {"token": "Xq0k…43 characters…", "agent": EX_AGENT},
                        headers={
                            "Set-Cookie": {
                                "description": "`curbe_session=<token>; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000`",
                                "schema": {"type": "string"},
                            }
                        },
                    ),
                    **errors(*BODY_ERRORS, "invalid_credentials", "too_many_attempts"),
                },
                description=(
                    "429 `too_many_attempts` (with `retryAfterSeconds` and `Retry-After`) after 5 "
                    "failures for one email from one address, or 30 from one address, within 15 minutes."
                ),
                body=json_body(
                    obj(
                        {
                            "email": string(MAX_EMAIL, not_blank=True),
                            "password": string(1024, not_blank=True),
                        }
                    ),
                    {"email": "javier@insuremax.com", "password": "correct horse battery"},
                ),
            )
        },
        "/api/auth/logout": {
            "post": agent_op(
                "logout",
                "Sign out (revoke the token)",
                "auth",
                "post",
                {
                    "200": json_response(
                        "The token is revoked and the cookie cleared.",
                        obj({"ok": {"const": True}}),
                        {"ok": True},
                    )
                },
            )
        },
        "/api/auth/me": {
            "get": agent_op(
                "getMe",
                "The signed-in agent and their presence",
                "auth",
                "get",
                {
                    "200": json_response(
                        "The agent; `presence` is online (an inbox open, not away), away or offline.",
                        obj({"agent": ref("Agent"), "presence": enum("online", "away", "offline")}),
                        {"agent": EX_AGENT, "presence": "online"},
                    )
                },
            ),
            "patch": agent_op(
                "updateMe",
                "Edit the agent's name and avatar",
                "auth",
                "patch",
                {
                    "200": json_response(
                        "The agent as visitors will see them.",
                        obj({"agent": ref("Agent")}),
                        {"agent": {**EX_AGENT, "avatarUrl": "https://cdn.example.com/javier.png"}},
                    )
                },
                error_codes=BODY_ERRORS,
                body=json_body(
                    obj(
                        {
                            "name": nullable(string(MAX_NAME, not_blank=True)),
                            "avatarUrl": nullable(
                                string(
                                    MAX_URL,
                                    pattern="^(https?://[^\\s<>\"']+)?$",
                                    description='an http(s) image URL; `""` removes the avatar',
                                )
                            ),
                        },
                        [],
                    ),
                    {"name": "Javier Lazo", "avatarUrl": "https://cdn.example.com/javier.png"},
                ),
            ),
        },
        # --- agent side: widgets ------------------------------------------------------------
        "/api/chat/widgets": {
            "get": agent_op(
                "listWidgets",
                "The tenant's widgets",
                "widgets",
                "get",
                {
                    "200": json_response(
                        "Every widget with its status, detected domain, last ping and embed code.",
                        obj({"widgets": list_of(ref("Widget"))}),
                        {"widgets": [ex_widget]},
                    )
                },
                error_codes=(
                    "actor_unavailable",
                    "actor_timeout",
                ),
            ),
            "post": agent_op(
                "createWidget",
                "Create a widget",
                "widgets",
                "post",
                {
                    "201": json_response(
                        "The new widget (INACTIVE until its first ping).",
                        ref("Widget"),
                        {
                            **ex_widget,
                            "status": "INACTIVE",
                            "statusReason": "no installation ping yet: paste the embed code into your site",
                            "domain": "*.insuremax.com",
                            "lastSeenAt": None,
                            "lastSeenDomain": None,
                            "lastSeenUrl": None,
                        },
                    )
                },
                error_codes=("malformed_json", "body_too_large", "invalid_body", "invalid_widget"),
                body=json_body(
                    ref("WidgetCreate"),
                    {
                        "name": "InsureMax",
                        "domains": ["*.insuremax.com"],
                        "appearance": {"colorTheme": "#2563eb"},
                        "channels": {"whatsapp": "+52 55 1234 5678"},
                    },
                ),
            ),
        },
        "/api/chat/widgets/{widgetId}": {
            "get": agent_op(
                "getWidget",
                "One widget",
                "widgets",
                "get",
                {"200": json_response("The widget.", ref("Widget"), ex_widget)},
                error_codes=("not_found", "actor_unavailable", "actor_timeout"),
                parameters=[WIDGET_ID],
            ),
            "patch": agent_op(
                "updateWidget",
                "Edit a widget (JSON merge patch)",
                "widgets",
                "patch",
                {"200": json_response("The widget after the patch.", ref("Widget"), ex_widget)},
                error_codes=(
                    "malformed_json",
                    "body_too_large",
                    "invalid_body",
                    "invalid_widget",
                    "actor_unavailable",
                    "actor_timeout",
                    "not_found",
                ),
                parameters=[WIDGET_ID],
                body=json_body(
                    ref("WidgetPatch"),
                    {"appearance": {"welcome": {"title": "¡Hola!"}}, "waitTimeoutSeconds": 90},
                ),
            ),
            "delete": agent_op(
                "deleteWidget",
                "Delete a widget",
                "widgets",
                "delete",
                {
                    "200": json_response(
                        "Deleted (soft): the visitor side answers 404 from now on.",
                        obj({"id": ID, "deleted": {"const": True}}),
                        {"id": WIDGET, "deleted": True},
                    )
                },
                error_codes=("not_found", "actor_unavailable", "actor_timeout"),
                parameters=[WIDGET_ID],
            ),
        },
        # --- agent side: conversations ------------------------------------------------------
        "/api/chat/conversations": {
            "get": agent_op(
                "listConversations",
                "The conversations of one inbox view",
                "conversations",
                "get",
                {
                    "200": json_response(
                        "Newest first. The Open view holds OPEN live chats and unsolved offline "
                        "messages; `unread` is per agent.",
                        obj(
                            {
                                "conversations": list_of(ref("ConversationListItem")),
                                "view": enum(*VIEWS),
                            }
                        ),
                        {
                            "view": "waiting",
                            "conversations": [
                                {
                                    **EX_CONVERSATION,
                                    "contact": EX_CONTACT,
                                    "lastMessage": EX_MESSAGE_SUMMARY,
                                    "firstMessage": EX_MESSAGE_SUMMARY,
                                    "unread": True,
                                    "assigneeOnline": None,
                                }
                            ],
                        },
                    )
                },
                error_codes=("unknown_view",),
                parameters=[
                    query_param(
                        "view",
                        "which view (default `all`); anything else answers 422 `unknown_view`",
                        {**enum(*VIEWS), "default": "all"},
                    )
                ],
            )
        },
        "/api/chat/conversations/counts": {
            "get": agent_op(
                "countConversations",
                "How many conversations each view holds, and live visitors",
                "conversations",
                "get",
                {
                    "200": json_response(
                        "Counts for the calling agent (`unread` and `assigned` are per agent).",
                        obj(
                            {
                                "counts": obj(
                                    {**{v: integer(0) for v in VIEWS}, "liveVisitors": integer(0)}
                                )
                            }
                        ),
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
        },
        "/api/chat/conversations/{conversationId}": {
            "get": agent_op(
                "getConversation",
                "A conversation with its contact and messages",
                "conversations",
                "get",
                {
                    "200": json_response(
                        "The conversation, the contact and every message in seq order.",
                        ref("ConversationDetail"),
                        {**EX_CONVERSATION, "contact": EX_CONTACT, "messages": [EX_MESSAGE]},
                    )
                },
                error_codes=("not_found",),
                parameters=[CONVERSATION_ID],
            )
        },
        "/api/chat/conversations/{conversationId}/accept": {
            "post": agent_op(
                "acceptConversation",
                "Accept a waiting chat",
                "conversations",
                "post",
                {
                    "200": json_response(
                        "The conversation, now OPEN and assigned to the caller (accepting twice "
                        "is harmless). Emits `conversation_assigned` then `conversation_status_changed`.",
                        ref("Conversation"),
                        EX_OPEN_CONVERSATION,
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                error_codes=("not_found", "already_assigned", "at_capacity", "illegal_transition"),
                description=(
                    "409 `already_assigned` (with `assignee`) when another agent got it first; "
                    "409 `at_capacity` (with `openChats`, `capacity`) past the agent's limit of "
                    "OPEN chats; 409 `illegal_transition` for a SOLVED conversation."
                ),
                parameters=[CONVERSATION_ID],
            )
        },
        "/api/chat/conversations/{conversationId}/solve": {
            "post": agent_op(
                "solveConversation",
                "Close a conversation",
                "conversations",
                "post",
                {
                    "200": json_response(
                        "The conversation, now SOLVED.",
                        ref("Conversation"),
                        {**EX_OPEN_CONVERSATION, "status": "SOLVED", "solvedAt": T1, "lastSeq": 5},
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                error_codes=("not_found", "already_solved"),
                parameters=[CONVERSATION_ID],
            )
        },
        "/api/chat/conversations/{conversationId}/reopen": {
            "post": agent_op(
                "reopenConversation",
                "Reopen a solved conversation",
                "conversations",
                "post",
                {
                    "200": json_response(
                        "The conversation, OPEN again and assigned to the caller.",
                        ref("Conversation"),
                        {**EX_OPEN_CONVERSATION, "lastSeq": 6},
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                error_codes=(
                    "not_found",
                    "illegal_transition",
                    "conversation_active",
                    "at_capacity",
                ),
                parameters=[CONVERSATION_ID],
            )
        },
        "/api/chat/conversations/{conversationId}/messages": {
            "post": agent_op(
                "postAgentMessage",
                "An agent's reply",
                "conversations",
                "post",
                {
                    "201": json_response(
                        "The stored message; sending marks the conversation read.",
                        ref("Message"),
                        {
                            **EX_MESSAGE,
                            "seq": 5,
                            "senderType": "agent",
                            "senderId": AGENT,
                            "senderName": "Javier Lazo",
                            "text": "Hi María, happy to help. Which car is it?",
                            "clientMessageId": "a-19c0",
                        },
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                error_codes=(
                    *BODY_ERRORS,
                    "not_found",
                    "conversation_not_open",
                    "conversation_solved",
                ),
                parameters=[CONVERSATION_ID],
                body=json_body(
                    ref("MessageRequest"),
                    {
                        "text": "Hi María, happy to help. Which car is it?",
                        "clientMessageId": "a-19c0",
                    },
                ),
            )
        },
        "/api/chat/conversations/{conversationId}/read": {
            "post": agent_op(
                "markConversationRead",
                "Mark a conversation read up to a seq",
                "conversations",
                "post",
                {
                    "200": json_response(
                        "The agent's read mark (it never moves back). Emits `conversation_read`.",
                        obj({"conversationId": ID, "lastReadSeq": integer(0)}),
                        {"conversationId": CONVERSATION, "lastReadSeq": 5},
                    )
                },
                error_codes=(*BODY_ERRORS, "not_found"),
                parameters=[CONVERSATION_ID],
                body=json_body(
                    obj({"seq": nullable(integer(0, description="default: everything"))}, []),
                    {"seq": 5},
                    required=False,
                    description="Optional; an empty body marks everything read.",
                ),
            )
        },
        "/api/chat/visitors/live": {
            "get": agent_op(
                "listLiveVisitors",
                "Visitors on the tenant's sites now",
                "visitors",
                "get",
                {
                    "200": json_response(
                        "Visitors with a heartbeat in the last 60 s (`CURBE_VISITOR_EXPIRY_SECONDS`).",
                        obj({"visitors": list_of(ref("LiveVisitor"))}),
                        {
                            "visitors": [
                                {
                                    "visitorId": VISITOR,
                                    "displayName": "Pink Lion",
                                    "name": None,
                                    "widgetId": WIDGET,
                                    "currentUrl": "https://www.insuremax.com/quote",
                                    "pageTitle": "Get a quote",
                                    "referrer": None,
                                    "firstSeenAt": T0,
                                    "lastSeenAt": T1,
                                    "timeOnSiteSeconds": 60,
                                    "inChat": False,
                                    "conversationId": None,
                                    "location": "America/Mexico_City, es-MX (from the browser)",
                                }
                            ]
                        },
                    )
                },
            )
        },
        "/api/chat/visitors/{visitorId}/conversations": {
            "post": agent_op(
                "startProactiveChat",
                "Start a chat with a live visitor",
                "visitors",
                "post",
                {
                    "201": json_response(
                        "The conversation: OPEN, assigned to the caller, the first message the "
                        "agent's, no wait timer. It reaches the visitor's stream.",
                        ref("NewConversation"),
                        {
                            **EX_OPEN_CONVERSATION,
                            "lastSeq": 3,
                            "messages": [
                                {
                                    **EX_MESSAGE,
                                    "seq": 3,
                                    "senderType": "agent",
                                    "senderId": AGENT,
                                    "senderName": "Javier Lazo",
                                    "text": "Hi! Can I help you with your quote?",
                                }
                            ],
                            "agentsOnline": True,
                        },
                    ),
                    **errors("actor_unavailable", "actor_timeout"),
                },
                error_codes=(
                    *BODY_ERRORS,
                    "not_found",
                    "conversation_active",
                    "visitor_gone",
                    "at_capacity",
                ),
                description="404 for another tenant's visitor; 409 `visitor_gone` when its last heartbeat is too old.",
                parameters=[VISITOR_ID],
                body=json_body(
                    obj(
                        {
                            "message": string(MAX_TEXT, not_blank=True),
                            "clientMessageId": nullable(string(MAX_ID)),
                        },
                        ["message"],
                    ),
                    {"message": "Hi! Can I help you with your quote?", "clientMessageId": "a-0001"},
                ),
            )
        },
        # --- pages --------------------------------------------------------------------------
        "/widget.js": {
            "get": op(
                "getWidgetLoader",
                "The embeddable loader",
                "pages",
                PUBLIC,
                {
                    "200": {
                        "description": "JavaScript; `Cache-Control: public, max-age=300`, any origin.",
                        "content": {"application/javascript": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/login": {
            "get": op(
                "loginPage",
                "Sign-in page",
                "pages",
                PUBLIC,
                {
                    "200": html_response("The sign-in form."),
                    "302": {
                        "description": "Already signed in: to `next` (a local path) or `/inbox`.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                },
                parameters=[
                    query_param("next", "a local path to go to after signing in", string(2000))
                ],
            )
        },
        "/inbox": {
            "get": op(
                "inboxPage",
                "The Inbox",
                "pages",
                [{"agentCookie": []}],
                {"200": html_response("The inbox shell, filled by inbox.js."), "302": REDIRECT},
            )
        },
        "/settings": {
            "get": op(
                "settingsPage",
                "Settings (redirect)",
                "pages",
                PUBLIC,
                {
                    "302": {
                        "description": "To `/settings/widgets`.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/settings/widgets": {
            "get": op(
                "widgetsPage",
                "Settings › Chat widgets",
                "pages",
                [{"agentCookie": []}],
                {"200": html_response("The widget list, kept live."), "302": REDIRECT},
            )
        },
        "/settings/widgets/new": {
            "get": op(
                "newWidgetPage",
                "The widget editor for a new widget",
                "pages",
                [{"agentCookie": []}],
                {"200": html_response("The editor with its live preview."), "302": REDIRECT},
            )
        },
        "/settings/widgets/{widgetRef}": {
            "get": op(
                "editWidgetPage",
                "The widget editor",
                "pages",
                [{"agentCookie": []}],
                {
                    "200": html_response("The editor with its live preview."),
                    "302": REDIRECT,
                    "404": html_response("Unknown id or another tenant's widget (an HTML page)."),
                },
                parameters=[path_param("widgetRef", "the widget's id", {"type": "string"})],
            )
        },
        "/demo": {
            "get": op(
                "demoPage",
                "A customer's page holding the demo widget",
                "pages",
                PUBLIC,
                {
                    "200": html_response("The demo site (only with `curbe-chat serve --demo`)."),
                    **errors("not_found"),
                },
            )
        },
        "/ops": {
            "get": op(
                "opsPage",
                "The operator page: live actors",
                "pages",
                PUBLIC,
                {
                    "200": html_response(
                        "Asks for the operator token (kept in sessionStorage) and renders "
                        "`GET /api/ops/actors` every 2 s, with a detail view per actor."
                    )
                },
            )
        },
    }


def _websockets() -> dict[str, Schema]:
    close_codes = {
        "1001": "the server is shutting down: reconnect",
        "1009": "a frame larger than 64 KiB",
        "1013": "the socket fell behind (more than 256 unread events): reconnect and resume",
        "4401": "missing or bad token",
    }
    client_frames = "Client frames: JSON objects of at most 64 KiB, tagged by `type`. A bad frame gets an `error` frame; the socket stays open."
    return {
        "/api/chat/widgets/{widgetId}/ws": {
            "summary": "The visitor's event stream",
            "description": (
                "That visitor's conversations only, plus `agents_online_changed` and "
                "`queue_position`. On connect the server subscribes, then sends `ready`; every "
                "event committed after `ready` reaches the socket. A client that saw seq N sends "
                "`resume` with `afterSeq: N` (no `conversationId`: the latest conversation) and "
                "gets every later event once, then `resumed`. " + client_frames
            ),
            "tags": ["visitor"],
            "parameters": [
                WIDGET_ID,
                query_param(
                    "token",
                    "the visitor token (or `Authorization: Bearer`)",
                    string(512),
                ),
            ],
            "security": VISITOR_AUTH,
            "clientFrames": {
                "oneOf": [ref("ClientMessageFrame"), ref("ResumeFrame"), ref("PingFrame")]
            },
            "serverFrames": {
                "oneOf": [
                    ref("ReadyFrame"),
                    ref("Event"),
                    ref("ResumedFrame"),
                    ref("AckFrame"),
                    ref("PongFrame"),
                    ref("ErrorFrame"),
                ]
            },
            "closeCodes": {**close_codes, "4404": "unknown or deleted widget"},
        },
        "/api/chat/inbox/ws": {
            "summary": "The tenant's event stream (the inbox)",
            "description": (
                "Every event of the agent's tenant. An open inbox socket makes the agent online "
                "unless `presence=0` (pages that only watch) or they chose away (`presence` "
                "frame). `resume` must name its `conversationId`; a `message` frame must too. "
                + client_frames
            ),
            "tags": ["conversations"],
            "parameters": [
                query_param(
                    "token", "the agent token (or the bearer header, or the cookie)", string()
                ),
                query_param(
                    "presence",
                    "`0`: this socket does not count for the agent's presence",
                    enum("0", "1"),
                ),
            ],
            "security": AGENT_AUTH,
            "clientFrames": {
                "oneOf": [
                    ref("ClientMessageFrame"),
                    ref("ResumeFrame"),
                    ref("PingFrame"),
                    ref("PresenceFrame"),
                ]
            },
            "serverFrames": {
                "oneOf": [
                    ref("ReadyFrame"),
                    ref("Event"),
                    ref("ResumedFrame"),
                    ref("AckFrame"),
                    ref("PongFrame"),
                    ref("ErrorFrame"),
                ]
            },
            "closeCodes": {
                **close_codes,
                "4403": "the session cookie used from another origin",
            },
        },
    }


DESCRIPTION = f"""\
Curbe Chat's HTTP API: the embedded widget's visitor endpoints, the agents' inbox API, sign-in
and the operator endpoints. `docs/api.md` and `docs/events.md` say the same in prose.

* JSON in and out, camelCase keys. A list answers as an object holding it under a plural key.
* Ids are opaque strings matching `{ID_PATTERN}`; anything else in a path answers 404.
* Every timestamp is the server's, ISO 8601 UTC with milliseconds and `Z`.
* Request bodies are at most {MAX_BODY_BYTES // 1024} KiB (413 `body_too_large`). Unknown keys,
  wrong types (`"5"` is not a number), NUL characters and unpaired surrogates answer 422
  `invalid_body`, which names the field. Bad input never changes stored data.
* Errors: `{{"error": {{"code": "snake_case", "message": "human sentence", …}}}}` with a 4xx
  status (503 for an outage).
* Visitor endpoints (`/api/chat/widgets/{{widgetId}}/…`) answer CORS for any origin (the
  request's `Origin` is echoed; Targeting decides where the widget runs). Agent and operator
  endpoints grant no CORS.
* Pages (tag `pages`) are listed with their HTML answers; `/static/…` is not.
* The two WebSockets, which OpenAPI cannot describe, are under `x-websockets`.
"""

TAGS = [
    {"name": "visitor", "description": "Called by the embedded widget from the customer's site."},
    {"name": "auth", "description": "Agent sign-in, sign-out and profile."},
    {"name": "widgets", "description": "Agents manage the tenant's widgets (docs/widgets.md)."},
    {"name": "conversations", "description": "The agents' inbox."},
    {"name": "visitors", "description": "Live visitors and proactive chats."},
    {"name": "operators", "description": "Health, metrics, actor introspection, this document."},
    {"name": "pages", "description": "Server-rendered pages (text/html)."},
]


def _version() -> str:
    try:
        return metadata.version("curbe-chat")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def build_openapi(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with ``base_url`` as its server (a fresh dict every call)."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Curbe Chat API",
            "version": _version(),
            "summary": "Live chat for websites: widget, inbox, operators.",
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "tags": TAGS,
        "paths": _paths(base_url),
        "components": {
            "schemas": {
                **_schemas(),
                "MessageRequest": obj(
                    {
                        "text": string(MAX_TEXT, not_blank=True),
                        "clientMessageId": nullable(
                            string(
                                MAX_ID,
                                description="the same id twice from the same sender stores one message",
                            )
                        ),
                        "clientTimestamp": nullable(string(64)),
                    },
                    ["text"],
                ),
            },
            "parameters": {"CsrfHeader": CSRF_PARAMETER},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-websockets": _websockets(),
    }
    return copy.deepcopy(document)  # shared constants must not be aliased into callers' dicts
