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

from engine.errors import ErrorAnswer
from engine.values import (
    PAYLOADS,
    Agent,
    Conversation,
    Event,
    EventType,
    LiveVisitor,
    Message,
    Rating,
)
from engine.wire import camel
from web import shapes, streams, widgets, wire
from web.apidoc import (
    AGENT,
    AGENT_AUTH,
    AGENT_WRITE,
    CSRF_PARAMETER,
    ID,
    ID_PATTERN,
    MAX_BODY_BYTES,
    PATH_PARAMETERS,
    SECURITY_SCHEMES,
    VISITOR_AUTH,
    described,
    enum,
    errors,
    obj,
    query_param,
    string,
)
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
    "Widget": widgets.WidgetView,
    "WidgetConfig": widgets.WidgetConfig,
    "WidgetAppearance": widgets.Appearance,
    "WidgetChannels": widgets.Channels,
    "Error": ErrorAnswer,
    "Event": Event,
    "Rating": Rating,
    "ReadyFrame": streams.ReadyFrame,
    "ResumedFrame": streams.ResumedFrame,
    "AckFrame": streams.AckFrame,
    "PongFrame": streams.PongFrame,
    "BeatFrame": streams.BeatFrame,
    "ErrorFrame": streams.ErrorFrame,
}
# frames by their ``type`` -> component name
FRAME_NAMES = {
    "message": "ClientMessageFrame",
    "resume": "ResumeFrame",
    "ping": "PingFrame",
    "presence": "PresenceFrame",
    "heartbeat": "HeartbeatFrame",
    "typing": "TypingFrame",
    "read": "ReadFrame",
}


# --- schemas ----------------------------------------------------------------------------------


def _websockets() -> dict[str, Schema]:
    close_codes = {
        "1001": "the server is shutting down: reconnect",
        "1009": "a frame larger than 64 KiB",
        "1013": "try again later: the socket fell behind (more than 256 unread events), the "
        "widget could not answer, or too many sockets came from one address; reconnect "
        '(after the reason\'s "retry in N s") and resume',
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
                "BeatFrame",
                "ErrorFrame",
            )
        ]
    }
    client_frames = "Client frames: JSON objects of at most 64 KiB, tagged by `type`. A bad frame gets an `error` frame; the socket stays open."
    resume_in_address = [
        query_param(
            "afterSeq",
            "resume in the address: the `resume` frame `{afterSeq, conversationId}` answered "
            "right after `ready` and before any live event, so the missed events come first, "
            "in order, none twice (a `resume` frame sent after `ready` may follow a live event "
            "committed in between). Invalid: an `error` frame, the socket stays open",
            {"type": "string", "maxLength": 16},
        ),
        query_param("conversationId", "the conversation `afterSeq` resumes", string(128)),
    ]
    return {
        "/api/chat/widgets/{widgetId}/ws": {
            "summary": "The visitor's event stream",
            "description": (
                "That visitor's conversations only, plus `agents_online_changed` and "
                "`queue_position`. On connect the server subscribes, then sends `ready`; every "
                "event committed after `ready` reaches the socket. A client that saw seq N sends "
                "`resume` with `afterSeq: N` (no `conversationId`: the latest conversation) and "
                "gets every later event once, then `resumed`; a reconnecting widget puts that "
                "resume in the address (`afterSeq`, `conversationId`). " + client_frames
            ),
            "tags": ["visitor"],
            "parameters": [
                *_path_parameters("<widget_id>"),
                query_param(
                    "token",
                    "the visitor token (or `Authorization: Bearer`)",
                    string(512),
                ),
                *resume_in_address,
            ],
            "security": VISITOR_AUTH,
            "clientFrames": {
                "oneOf": [
                    ref("ClientMessageFrame"),
                    ref("ResumeFrame"),
                    ref("PingFrame"),
                    ref("HeartbeatFrame"),
                    ref("TypingFrame"),
                    ref("ReadFrame"),
                ]
            },
            "serverFrames": server_frames,
            "closeCodes": {**close_codes, "4404": "unknown or deleted widget"},
        },
        "/api/chat/inbox/ws": {
            "summary": "The tenant's event stream (the inbox)",
            "description": (
                "Every event of the agent's tenant. An open inbox socket makes the agent online "
                "unless `presence=0` (pages that only watch) or they chose away (`presence` "
                "frame). `resume` must name its `conversationId` (in the address too); a "
                "`message` frame must too. " + client_frames
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
                *resume_in_address,
            ],
            "security": AGENT_AUTH,
            "clientFrames": {
                "oneOf": [
                    ref("ClientMessageFrame"),
                    ref("ResumeFrame"),
                    ref("PingFrame"),
                    ref("PresenceFrame"),
                    ref("TypingFrame"),
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
    {"name": "files", "description": "Files and images sent in conversations, and fetched back."},
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


def _inline(schema: Any, schemas: Schemas) -> Any:
    """``schema`` with every reference to a component replaced by the component itself."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(schemas.components[schema["$ref"].rsplit("/", 1)[1]], schemas)
        return {k: _inline(v, schemas) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, schemas) for v in schema]
    return schema


def _patchable(schema: Schema) -> Schema:
    """A request's view of a document: every setting may be left out or ``null`` (its default);
    objects keep refusing unknown keys."""
    out = {k: v for k, v in schema.items() if k not in ("required", "description")}
    if "properties" in out:
        out["properties"] = {k: nullable(_patchable(v)) for k, v in out["properties"].items()}
    return out


def _widget_requests(schemas: Schemas) -> dict[str, Schema]:
    """``WidgetCreate`` and ``WidgetPatch`` from :class:`web.widgets.WidgetDocument`."""
    whole = _inline(schemas.object(widgets.WidgetDocument), schemas)
    settings = _patchable(whole)["properties"]
    name = whole["properties"]["name"]
    return {
        "WidgetCreate": {
            **obj({**settings, "name": name}, ["name"]),
            "description": "A widget document; anything left out takes its default. `null` (or "
            "leaving it out) keeps or restores the default.",
        },
        "WidgetPatch": {
            **obj({**settings, "name": nullable(name)}, []),
            "description": "A JSON merge patch (RFC 7396) of the widget document: nested objects "
            "merge, `null` resets a setting to its default. The merged document is validated as a "
            "whole; a bad field answers 422 `invalid_widget` naming every bad field.",
        },
    }


# the payload class of every event type: the engine's, and the web's widget shape
EVENT_PAYLOADS: dict[EventType, type[Any]] = {
    **PAYLOADS,
    EventType.WIDGET_UPDATED: widgets.WidgetView,
    EventType.WIDGET_STATUS_CHANGED: widgets.WidgetView,
}


def _event_payloads(schemas: Schemas) -> None:
    """``Event.data`` is the payload class of its ``type``: one ``if``/``then`` per type, so a
    validator checks each event's payload against its own class."""
    event = schemas.components["Event"]
    event["allOf"] = [
        {
            "if": {"properties": {"type": {"const": type_.value}}, "required": ["type"]},
            "then": {"properties": {"data": schemas.ref(cls)}},
        }
        for type_, cls in EVENT_PAYLOADS.items()
    ]


def document(base_url: str, app: Quart) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes, with ``base_url`` as its server (a fresh dict
    every call)."""
    schemas = Schemas({cls: name for name, cls in CLASSES.items()})
    for cls in CLASSES.values():
        schemas.ref(cls)
    paths = _operations(app, schemas)
    frames = _frames(schemas)
    requests = _widget_requests(schemas)
    _event_payloads(schemas)
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
            "schemas": {**frames, **requests, **schemas.components},
            "parameters": {"CsrfHeader": CSRF_PARAMETER},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-websockets": _websockets(),
    }
    return copy.deepcopy(result)  # shared constants must not be aliased into callers' dicts
