"""The OpenAPI 3.1 document of every HTTP endpoint, served at ``GET /api/openapi.json``.

Written from the code, not beside it: the paths from the app's route table and the
:func:`~web.apidoc.api` declaration each route carries (summary, answers, error codes, examples);
request bodies and WebSocket frames from their wire classes (:mod:`web.wire`); the conversation,
message and agent from the engine's own classes (:mod:`web.schema` turns attrs classes into JSON
Schema, limits included). ``tests/web/test_openapi.py`` checks that every route is documented,
that the document is valid OpenAPI 3.1, that its examples validate, and that a live server's
answers validate against it.

The pages are listed (tag ``pages``) with their HTML answers; only ``/static/{filename}`` is left
out. The two WebSockets, which OpenAPI cannot express, are under the root extension
``x-websockets`` (frames as JSON Schemas, close codes); ``docs/events.md`` says the same in prose.
"""

from __future__ import annotations

import copy
import re
from importlib import metadata
from typing import Any

from quart import Quart

from engine.values import Agent, Conversation, EventType, LiveVisitor, Message
from engine.wire import camel
from web import shapes, wire
from web.apidoc import (
    AGENT,
    AGENT_AUTH,
    AGENT_WRITE,
    BOOLEAN,
    CSRF_PARAMETER,
    ID,
    ID_PATTERN,
    MAX_BODY_BYTES,
    MAYBE_STRING,
    MAYBE_TIMESTAMP,
    PATH_PARAMETERS,
    SECURITY_SCHEMES,
    TIMESTAMP,
    VISITOR_AUTH,
    described,
    enum,
    errors,
    integer,
    list_of,
    obj,
    query_param,
    string,
)
from web.examples import T0
from web.schema import Schema, Schemas, nullable, ref

EVENT_TYPES = [e.value for e in EventType]

# classes whose schema is their component (the class's own name unless given here)
CLASSES: dict[str, type[Any]] = {
    "Message": Message,
    "AgentRef": Agent,
    "Conversation": Conversation,
    "MessageSummary": shapes.MessageSummary,
    "Contact": shapes.Contact,
    "ConversationWithMessages": shapes.ConversationWithMessages,
    "NewConversation": shapes.NewConversation,
    "ConversationDetail": shapes.ConversationDetail,
    "ConversationListItem": shapes.ConversationListItem,
    "LiveVisitor": LiveVisitor,
    "Agent": shapes.AgentProfile,
}
# frames by their ``type`` -> component name
FRAME_NAMES = {
    "message": "ClientMessageFrame",
    "resume": "ResumeFrame",
    "ping": "PingFrame",
    "presence": "PresenceFrame",
}


# --- schemas ----------------------------------------------------------------------------------


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
        "WidgetStatus": enum(
            "ACTIVE",
            "INACTIVE",
            "MISCONFIGURED",
            description="computed from the installation pings; never Unknown",
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


def _websockets() -> dict[str, Schema]:
    close_codes = {
        "1001": "the server is shutting down: reconnect",
        "1009": "a frame larger than 64 KiB",
        "1013": "the socket fell behind (more than 256 unread events): reconnect and resume",
        "4401": "missing or bad token",
    }
    server_frames = {
        "oneOf": [
            ref(name)
            for name in (
                "ReadyFrame",
                "Event",
                "ResumedFrame",
                "AckFrame",
                "PongFrame",
                "ErrorFrame",
            )
        ]
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
                *_path_parameters("<widget_id>"),
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
            "serverFrames": server_frames,
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
            "serverFrames": server_frames,
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


def _path(rule: str) -> str:
    """``/api/chat/widgets/<widget_id>/config`` -> ``/api/chat/widgets/{widgetId}/config``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "{" + camel(m.group(1)) + "}", rule)


def _path_parameters(rule: str) -> list[Schema]:
    out = []
    for variable in re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule):
        name, description, schema = PATH_PARAMETERS[variable]
        out.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": schema or ID,
            }
        )
    return out


def _classes_to_refs(node: Any, schemas: Schemas) -> Any:
    """A class where a schema goes becomes a reference to its component."""
    if isinstance(node, type):
        return schemas.ref(node)
    if isinstance(node, dict):
        return {k: _classes_to_refs(v, schemas) for k, v in node.items()}
    if isinstance(node, list):
        return [_classes_to_refs(v, schemas) for v in node]
    return node


def _operations(app: Quart, schemas: Schemas) -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for rule in app.url_map.iter_rules():
        if getattr(rule, "websocket", False):
            continue
        described_as = described(app.view_functions[rule.endpoint])
        if described_as is None:
            continue  # /static/<path:filename>: the pages' CSS and scripts
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            o = described_as
            parameters = _path_parameters(rule.rule) + o.parameters
            responses = dict(o.responses)
            security = o.security
            base: tuple[str, ...] = ()
            if security == AGENT:
                write = method in ("POST", "PATCH", "DELETE")
                security = AGENT_AUTH
                if write:
                    parameters.append({"$ref": "#/components/parameters/CsrfHeader"})
                base = AGENT_WRITE if write else ("unauthenticated",)
            if base or o.error_codes:
                responses = {**responses, **errors(*dict.fromkeys((*base, *o.error_codes)))}
            operation: Schema = {
                "operationId": o.operation_id,
                "summary": o.summary,
                "tags": [o.tag],
            }
            if o.description:
                operation["description"] = o.description
            if parameters:
                operation["parameters"] = parameters
            if o.body is not None:
                operation["requestBody"] = o.body
            operation["security"] = security
            operation["responses"] = responses
            paths.setdefault(_path(rule.rule), {})[method.lower()] = _classes_to_refs(
                operation, schemas
            )
    return paths


def _frames(schemas: Schemas) -> dict[str, Schema]:
    """The client frames from their wire classes, each with its ``type``."""
    out = {}
    for type_, cls in wire.FRAMES.items():
        schema = schemas.object(cls)
        schema["properties"] = {"type": {"const": type_}, **schema["properties"]}
        schema["required"] = ["type", *schema.get("required", [])]
        out[FRAME_NAMES[type_]] = schema
    return out


def document(base_url: str, app: Quart) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes, with ``base_url`` as its server (a fresh dict
    every call)."""
    schemas = Schemas({cls: name for name, cls in CLASSES.items()})
    for cls in CLASSES.values():
        schemas.ref(cls)
    paths = _operations(app, schemas)
    frames = _frames(schemas)
    result: dict[str, Any] = {
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
        "paths": paths,
        "components": {
            "schemas": {**_schemas(), **frames, **schemas.components},
            "parameters": {"CsrfHeader": CSRF_PARAMETER},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-websockets": _websockets(),
    }
    return copy.deepcopy(result)  # shared constants must not be aliased into callers' dicts
