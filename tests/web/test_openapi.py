"""The OpenAPI document (``web/openapi.py``, served at ``GET /api/openapi.json``) against the app.

* **Valid**: ``openapi-spec-validator`` accepts it as OpenAPI 3.1, and every example in it
  validates against the schema it illustrates.
* **Matches the routes**: every (method, path) of ``app.url_map`` is an operation of the document
  and every operation is a route (``<widget_id>`` is ``{widgetId}``), HEAD and OPTIONS aside. The
  only route left out is ``/static/<path:filename>``. The WebSocket rules match ``x-websockets``.
  Path parameters match the placeholders.
* **Matches the code**: request body schemas name exactly the fields of the cattrs wire classes
  (``web/wire.py``) and of the widget document (``web/widgets.py``), with the same required
  ones; the event types are ``engine.values.EventType``.
* **Matches the live server**: a run through every JSON operation, valid and invalid, where each
  answer's status must be documented for that operation and its body must validate against the
  documented schema (errors included: the code must be one the operation lists for that status);
  for every request body, a string one character over its documented ``maxLength``, an unknown
  key and a missing required field are each refused with a documented 422; WebSocket frames
  validate against the ``x-websockets`` frame schemas.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import attrs
import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.values import EventType
from tests.support import (
    OPS_TOKEN,
    Server,
    Visitor,
    inbox_socket,
    login,
    new_visitor,
    seed,
    visitor_socket,
)
from web import wire
from web.app import build_openapi, create_app
from web.uploads import ALLOWED_TYPES
from web.widgets import DEFAULT_APPEARANCE, DEFAULT_CHANNELS, DEFAULT_DOCUMENT

BASE = "http://127.0.0.1:8000"
DOC_URI = "urn:curbe-chat:openapi"
METHODS = ("get", "post", "put", "patch", "delete")
# Routes the document leaves out on purpose (method, rule): the pages' CSS and scripts.
UNDOCUMENTED = {("GET", "/static/<path:filename>")}


# --- helpers --------------------------------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def openapi_path(rule: str) -> str:
    """``/api/chat/widgets/<widget_id>/config`` -> ``/api/chat/widgets/{widgetId}/config``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "{" + camel(m.group(1)) + "}", rule)


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Doc:
    """The document plus a validator for any schema inside it (``$ref`` resolved in place)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.d = document
        self.registry: Registry[Any] = Registry().with_resource(
            DOC_URI, Resource(contents=document, specification=DRAFT202012)
        )

    def validator(self, json_pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": DOC_URI + json_pointer},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def errors(self, json_pointer: str, value: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in self.validator(json_pointer).iter_errors(value)
        ]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            parts = schema["$ref"].removeprefix("#/").split("/")
            node: Any = self.d
            for part in parts:
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def operations(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (method, path, item[method])
            for path, item in self.d["paths"].items()
            for method in METHODS
            if method in item
        ]


@pytest.fixture(scope="module")
def doc() -> Doc:
    return Doc(build_openapi(BASE))


def app_routes(server: Server) -> tuple[set[tuple[str, str]], set[str]]:
    """The app's HTTP (method, rule) pairs (no HEAD/OPTIONS) and its WebSocket rules."""
    app = create_app(server.services)
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for rule in app.url_map.iter_rules():
        if getattr(rule, "websocket", False):
            sockets.add(rule.rule)
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                http.add((method, rule.rule))
    return http, sockets


# --- the document itself ----------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc: Doc) -> None:
    validate_spec(doc.d)
    assert doc.d["openapi"] == "3.1.0"
    assert doc.d["servers"] == [{"url": BASE}]
    assert build_openapi(BASE + "/")["servers"] == [{"url": BASE}]
    json.dumps(doc.d)  # plain JSON data
    ids = [o["operationId"] for _, _, o in doc.operations()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_every_operation_is_described(doc: Doc) -> None:
    for method, path, o in doc.operations():
        where = f"{method.upper()} {path}"
        assert o.get("summary"), where
        assert o.get("tags"), where
        assert "security" in o, where
        statuses = set(o["responses"])
        assert any(s.startswith(("2", "3")) for s in statuses), where
        placeholders = set(re.findall(r"{([^}]+)}", path))
        declared = {
            doc.resolve(p)["name"]
            for p in o.get("parameters", [])
            if doc.resolve(p)["in"] == "path"
        }
        assert placeholders == declared, where
        if "pages" in o["tags"]:
            continue
        for status, response in o["responses"].items():
            if status.startswith(("4", "5")) and "application/json" in response.get("content", {}):
                schema = response["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, where
        body = o.get("requestBody")
        if body is not None and "application/json" not in body["content"]:  # a file's upload
            assert set(body["content"]) == set(ALLOWED_TYPES), where
            for media in body["content"].values():
                assert media["schema"] == {"type": "string", "format": "binary"}, where
        elif body is not None:
            schema = doc.resolve(body["content"]["application/json"]["schema"])
            assert schema.get("additionalProperties") is False, f"{where}: extra keys are refused"
            assert "example" in body["content"]["application/json"], where
        main = next(s for s in sorted(statuses) if s.startswith("2"))
        media = o["responses"][main].get("content", {}).get("application/json")
        if media is not None and path != "/api/openapi.json":
            assert "example" in media, f"{where}: an example of the main answer"


def test_examples_validate_against_their_schemas(doc: Doc) -> None:
    checked = 0
    for method, path, o in doc.operations():
        sections = [("requestBody",)] if "requestBody" in o else []
        sections += [("responses", status) for status in o["responses"]]
        for section in sections:
            node = o
            for key in section:
                node = node[key]
            for media_type, media in node.get("content", {}).items():
                at = pointer("paths", path, method, *section, "content", media_type, "schema")
                examples = [media["example"]] if "example" in media else []
                examples += [e["value"] for e in media.get("examples", {}).values()]
                for example in examples:
                    problems = doc.errors(at, example)
                    assert not problems, (method, path, section, problems)
                    checked += 1
    assert checked > 50


def test_websockets_are_documented(doc: Doc) -> None:
    sockets = doc.d["x-websockets"]
    assert set(sockets) == {"/api/chat/widgets/{widgetId}/ws", "/api/chat/inbox/ws"}
    for path, ws in sockets.items():
        assert ws["summary"] and ws["description"] and ws["closeCodes"], path
        for part in ("clientFrames", "serverFrames"):
            Draft202012Validator.check_schema(ws[part])
            doc.validator(pointer("x-websockets", path, part))  # every $ref resolves
            for item in ws[part]["oneOf"]:
                assert doc.resolve(item)
        assert "4401" in ws["closeCodes"]
    # every frame type each socket takes (docs/events.md); the visitor's heartbeat frame was missing
    accepted = {
        "/api/chat/widgets/{widgetId}/ws": {
            "message",
            "resume",
            "ping",
            "heartbeat",
            "typing",
            "read",
        },
        "/api/chat/inbox/ws": {"message", "resume", "ping", "presence", "typing"},
    }
    for path, types in accepted.items():
        listed = {
            doc.resolve(item)["properties"]["type"]["const"]
            for item in sockets[path]["clientFrames"]["oneOf"]
        }
        assert listed == types, path
    event_types = doc.d["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
    assert set(event_types) == {e.value for e in EventType}


# --- the document against the code ------------------------------------------------------------

# request body schema (by operationId or component) -> the wire class the server converts it with
WIRE_CLASSES = {
    "visitorHeartbeat": wire.HeartbeatBody,
    "startChat": wire.StartChatBody,
    "postVisitorMessage": wire.MessageBody,
    "leaveOfflineMessage": wire.OfflineMessageBody,
    "login": wire.LoginBody,
    "updateMe": wire.ProfileBody,
    "postAgentMessage": wire.MessageBody,
    "markConversationRead": wire.ReadBody,
    "markVisitorRead": wire.ReadBody,
    "transferConversation": wire.TransferBody,
    "createCannedReply": wire.CannedReplyBody,
    "updateCannedReply": wire.CannedReplyPatch,
    "postNote": wire.NoteBody,
    "rateConversation": wire.RatingBody,
    "updateWorkspace": wire.WorkspacePatch,
    "startProactiveChat": wire.ProactiveChatBody,
}
FRAME_CLASSES = {
    "ClientMessageFrame": wire.MessageFrame,
    "ResumeFrame": wire.ResumeFrame,
    "PingFrame": wire.PingFrame,
    "PresenceFrame": wire.PresenceFrame,
    "HeartbeatFrame": wire.HeartbeatFrame,
    "TypingFrame": wire.TypingFrame,
    "ReadFrame": wire.ReadFrame,
}


def wire_fields(cls: type[Any]) -> tuple[set[str], set[str]]:
    fields = attrs.fields(cls)
    return (
        {camel(f.name) for f in fields},
        {camel(f.name) for f in fields if f.default is attrs.NOTHING},
    )


def test_request_bodies_match_the_wire_classes(doc: Doc) -> None:
    by_id = {o["operationId"]: o for _, _, o in doc.operations()}
    for operation_id, cls in WIRE_CLASSES.items():
        schema = doc.resolve(
            by_id[operation_id]["requestBody"]["content"]["application/json"]["schema"]
        )
        names, required = wire_fields(cls)
        assert set(schema["properties"]) == names, operation_id
        assert set(schema.get("required", [])) == required, operation_id
    bodies = {o["operationId"] for _, _, o in doc.operations() if "requestBody" in o}
    files = {"uploadVisitorFile", "uploadAgentFile"}  # the file itself, not JSON
    assert bodies == {*WIRE_CLASSES, "createWidget", "updateWidget", *files}
    schemas = doc.d["components"]["schemas"]
    for name, cls in FRAME_CLASSES.items():
        names, required = wire_fields(cls)
        assert set(schemas[name]["properties"]) == {"type", *names}, name
        assert set(schemas[name]["required"]) == {"type", *required}, name
    assert set(wire.FRAMES) == {schemas[n]["properties"]["type"]["const"] for n in FRAME_CLASSES}


def test_widget_document_matches_the_editable_model(doc: Doc) -> None:
    schemas = doc.d["components"]["schemas"]
    for name in ("WidgetCreate", "WidgetPatch"):
        schema = schemas[name]
        assert set(schema["properties"]) == set(DEFAULT_DOCUMENT), name
        appearance = schema["properties"]["appearance"]
        assert set(appearance["properties"]) == set(DEFAULT_APPEARANCE), name
        assert appearance["additionalProperties"] is False
        channels = schema["properties"]["channels"]
        assert set(channels["properties"]) == set(DEFAULT_CHANNELS), name
    assert schemas["WidgetCreate"]["required"] == ["name"]
    assert set(schemas["WidgetAppearance"]["properties"]) == set(DEFAULT_APPEARANCE)
    assert set(schemas["WidgetChannels"]["properties"]) == set(DEFAULT_CHANNELS)


async def test_document_matches_the_app_routes(server: Server, doc: Doc) -> None:
    http, sockets = app_routes(server)
    routes = {(m, openapi_path(r)) for m, r in http - UNDOCUMENTED}
    documented = {(m.upper(), p) for m, p, _ in doc.operations()}
    assert not routes - documented, (
        f"routes missing from web/openapi.py: {sorted(routes - documented)}"
    )
    assert not documented - routes, (
        f"documented but not routes of the app: {sorted(documented - routes)}"
    )
    assert UNDOCUMENTED <= http, "an exclusion that no longer exists: drop it"
    assert {openapi_path(r) for r in sockets} == set(doc.d["x-websockets"])


async def test_served_document(server: Server) -> None:
    async with server.http() as client:
        r = await client.get("/api/openapi.json")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == build_openapi(server.base_url)


# --- the document against the live server -----------------------------------------------------


@attrs.define
class Conformance:
    """Sends requests and checks each answer against the documented operation."""

    doc: Doc
    server: Server
    exercised: set[tuple[str, str, str]] = attrs.field(factory=set)

    async def call(
        self,
        method: str,
        template: str,
        *,
        token: str | None = None,
        expect: int | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        **path: str,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        for key in ("json", "content"):
            if key in path:
                kwargs[key] = path.pop(key)
        url = template.format(**path)
        operation = self.doc.d["paths"][template][method]
        async with self.server.http(token, headers=headers or {}, cookies=cookies) as client:
            r = await client.request(method.upper(), url, params=params, **kwargs)
        status = str(r.status_code)
        where = f"{method.upper()} {url} -> {status}: {r.text[:300]}"
        if expect is not None:
            assert r.status_code == expect, where
        assert status in operation["responses"], f"undocumented status: {where}"
        content = operation["responses"][status].get("content", {})
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        if content:
            assert media_type in content, f"undocumented content type {media_type}: {where}"
        if media_type == "application/json":
            at = pointer(
                "paths", template, method, "responses", status, "content", media_type, "schema"
            )
            problems = self.doc.errors(at, r.json())
            assert not problems, f"{where}\n" + "\n".join(problems)
        self.exercised.add((method, template, status))
        return r


async def test_live_answers_match_the_documented_schemas(server: Server, doc: Doc) -> None:
    c = Conformance(doc, server)
    one, two = await seed(server, agents=2)
    strict = (await seed(server, domains=["insuremax.com"], tenant_name="Strict"))[0]
    w = one.widget_id

    # operators and the loader
    await c.call("get", "/healthz", expect=200)
    await c.call("get", "/widget.js", expect=200)
    await c.call("get", "/login", expect=200)
    await c.call("get", "/inbox", expect=302)
    await c.call("get", "/settings", expect=302)
    await c.call("get", "/settings/widgets", expect=302)
    await c.call("get", "/settings/widgets/new", expect=302)
    await c.call("get", "/settings/canned-replies", expect=302)
    await c.call("get", "/settings/workspace", expect=302)
    await c.call("get", "/reports", expect=302)
    await c.call("get", "/settings/widgets/{widgetRef}", widgetRef=w, expect=302)
    await c.call("get", "/demo", expect=404)

    # visitor side
    await c.call("get", "/api/chat/widgets/{widgetId}/config", widgetId=w, expect=200)
    await c.call("get", "/api/chat/widgets/{widgetId}/config", widgetId="wgt_nope", expect=404)
    hb = "/api/chat/widgets/{widgetId}/heartbeat"
    page = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}
    r = await c.call("post", hb, widgetId=w, json=page, expect=200)
    visitor = Visitor(w, r.json()["visitorId"], r.json()["visitorToken"])
    await c.call("post", hb, widgetId=w, json={"currentDomain": "shop.example.com"}, expect=422)
    await c.call("post", hb, widgetId=w, content=b"{not json", expect=400)
    await c.call("post", hb, widgetId=w, json={**page, "tenantId": "ten_other"}, expect=422)
    await c.call("post", hb, widgetId=w, content=b" " * (65 * 1024), expect=413)
    await c.call(
        "post",
        hb,
        widgetId=strict.widget_id,
        json={"currentDomain": "evil.example", "currentUrl": "https://evil.example/"},
        expect=403,
    )
    await c.call("post", hb, widgetId="wgt_nope", json=page, expect=404)

    start = "/api/chat/widgets/{widgetId}/conversations"
    first = {
        "name": "María López",
        "email": "maria@example.com",
        "message": "hola",
        "clientMessageId": "c-1",
    }
    await c.call("post", start, widgetId=w, json=first, expect=401)
    await c.call(
        "post", start, widgetId=strict.widget_id, token=visitor.token, json=first, expect=403
    )
    r = await c.call("post", start, widgetId=w, token=visitor.token, json=first, expect=201)
    cid = r.json()["id"]
    await c.call(
        "post", start, widgetId=w, token=visitor.token, json=first, expect=201
    )  # same again
    await c.call(
        "post",
        start,
        widgetId=w,
        token=visitor.token,
        json={**first, "clientMessageId": "c-2"},
        expect=409,
    )
    latest = "/api/chat/widgets/{widgetId}/conversation"
    await c.call("get", latest, widgetId=w, token=visitor.token, expect=200)
    stranger = await new_visitor(server, w)
    await c.call("get", latest, widgetId=w, token=stranger.token, expect=404)
    vmsg = "/api/chat/widgets/{widgetId}/conversations/{conversationId}/messages"
    await c.call(
        "post",
        vmsg,
        widgetId=w,
        conversationId=cid,
        token=visitor.token,
        json={"text": "¿sigue ahí?", "clientMessageId": "c-3"},
        expect=201,
    )
    await c.call(
        "post",
        vmsg,
        widgetId=w,
        conversationId=cid,
        token=stranger.token,
        json={"text": "not mine"},
        expect=404,
    )
    await c.call("get", vmsg, widgetId=w, conversationId=cid, token=visitor.token, expect=200)
    vread = "/api/chat/widgets/{widgetId}/conversations/{conversationId}/read"
    for token, status in ((visitor.token, 200), (stranger.token, 404)):
        await c.call(
            "post",
            vread,
            widgetId=w,
            conversationId=cid,
            token=token,
            json={"seq": 2},
            expect=status,
        )
    await c.call("get", vmsg, widgetId=w, conversationId=cid, token=stranger.token, expect=404)
    await c.call(
        "get",
        vmsg,
        widgetId=w,
        conversationId=cid,
        token=visitor.token,
        params={"before": "nope"},
        expect=422,
    )
    await c.call("get", latest, widgetId=w, token=visitor.token, params={"limit": 0}, expect=422)
    offline = "/api/chat/widgets/{widgetId}/offline-messages"
    await c.call(
        "post",
        offline,
        widgetId=w,
        token=stranger.token,
        json={
            "name": "Ana",
            "email": "ana@example.com",
            "message": "call me",
            "phone": "+52 55 1234 5678",
        },
        expect=201,
    )

    # sign-in
    wrong = {"email": one.agent_email, "password": "wrong password"}
    await c.call("post", "/api/auth/login", json=wrong, expect=401)
    r = await c.call(
        "post",
        "/api/auth/login",
        json={"email": one.agent_email, "password": one.password},
        expect=200,
    )
    token = r.json()["token"]
    token2 = await login(server, two)
    await c.call("get", "/api/auth/me", token=token, expect=200)
    await c.call("get", "/api/auth/me", expect=401)
    await c.call("patch", "/api/auth/me", token=token, json={"name": "Javier L."}, expect=200)
    await c.call(
        "patch", "/api/auth/me", cookies={"curbe_session": token}, json={"name": "X"}, expect=403
    )
    await c.call(
        "patch",
        "/api/auth/me",
        cookies={"curbe_session": token},
        headers={"X-Curbe-CSRF": "1"},
        json={"name": "Javier Lazo"},
        expect=200,
    )

    # widgets
    await c.call("get", "/api/chat/widgets", token=token, expect=200)
    one_widget = "/api/chat/widgets/{widgetId}"
    await c.call("get", one_widget, widgetId=w, token=token, expect=200)
    await c.call("get", one_widget, widgetId=strict.widget_id, token=token, expect=404)
    r = await c.call(
        "post",
        "/api/chat/widgets",
        token=token,
        json={
            "name": "Second",
            "domains": ["*.example.com"],
            "appearance": {"colorTheme": "#112233"},
        },
        expect=201,
    )
    new_id = r.json()["id"]
    await c.call(
        "post",
        "/api/chat/widgets",
        token=token,
        json={"name": "Bad", "appearance": {"colorTheme": "red"}},
        expect=422,
    )
    await c.call(
        "patch",
        one_widget,
        widgetId=new_id,
        token=token,
        json={"channels": {"whatsapp": "+52 55 1234 5678"}, "routing": "round_robin"},
        expect=200,
    )
    await c.call(
        "patch", one_widget, widgetId=new_id, token=token, json={"locale": "fr"}, expect=422
    )
    await c.call("delete", one_widget, widgetId=new_id, token=token, expect=200)
    await c.call("delete", one_widget, widgetId=new_id, token=token, expect=404)

    # conversations
    await c.call(
        "get", "/api/chat/conversations", token=token, params={"view": "waiting"}, expect=200
    )
    await c.call(
        "get", "/api/chat/conversations", token=token, params={"view": "bogus"}, expect=422
    )
    await c.call("get", "/api/chat/conversations/counts", token=token, expect=200)
    conv = "/api/chat/conversations/{conversationId}"
    await c.call("get", conv, conversationId=cid, token=token, expect=200)
    await c.call("get", conv, conversationId="conv_nope", token=token, expect=404)
    amsg = conv + "/messages"
    await c.call("get", amsg, conversationId=cid, token=token, params={"limit": 1}, expect=200)
    await c.call("get", amsg, conversationId="conv_nope", token=token, expect=404)
    await c.call("get", amsg, conversationId=cid, token=token, params={"limit": 501}, expect=422)
    reply = {"text": "Hola María", "clientMessageId": "a-1"}
    await c.call("post", amsg, conversationId=cid, token=token, json=reply, expect=409)
    await c.call("post", conv + "/accept", conversationId=cid, token=token, expect=200)
    await c.call("post", conv + "/accept", conversationId=cid, token=token2, expect=409)
    await c.call("post", amsg, conversationId=cid, token=token, json=reply, expect=201)
    await c.call(
        "post", conv + "/read", conversationId=cid, token=token, json={"seq": 2}, expect=200
    )
    await c.call("post", conv + "/read", conversationId=cid, token=token, content=b"", expect=200)
    await c.call("post", conv + "/solve", conversationId=cid, token=token, expect=200)
    rating = "/api/chat/widgets/{widgetId}/conversations/{conversationId}/rating"
    for score, status in ((5, 200), (9, 422)):
        await c.call(
            "post",
            rating,
            widgetId=w,
            conversationId=cid,
            token=visitor.token,
            json={"score": score, "comment": "gracias"},
            expect=status,
        )
    await c.call("post", conv + "/solve", conversationId=cid, token=token, expect=409)
    late = {"text": "one more thing", "clientMessageId": "a-2"}
    await c.call("post", amsg, conversationId=cid, token=token, json=late, expect=409)
    await c.call("post", conv + "/accept", conversationId=cid, token=token2, expect=409)
    await c.call("post", conv + "/reopen", conversationId=cid, token=token, expect=200)
    await c.call("post", conv + "/reopen", conversationId=cid, token=token, expect=409)
    await c.call("get", "/api/chat/agents", token=token, expect=200)
    transfer = conv + "/transfer"
    to_self = {"agentId": one.agent_id}  # no inbox of theirs open yet: offline
    await c.call("post", transfer, conversationId=cid, token=token, json=to_self, expect=409)
    await c.call(
        "post", transfer, conversationId=cid, token=token, json={"agentId": "agt_x"}, expect=422
    )
    async with inbox_socket(server, token):
        await c.call("post", transfer, conversationId=cid, token=token, json=to_self, expect=200)

    # internal notes and mentions
    notes = conv + "/notes"
    written = {"text": "@Javier check this", "clientNoteId": "n-1"}
    await c.call("post", notes, conversationId=cid, token=token, json=written, expect=201)
    await c.call("post", notes, conversationId=cid, token=token, json={"text": ""}, expect=422)
    await c.call("post", notes, conversationId="conv_nope", token=token, json=written, expect=404)
    await c.call("get", notes, conversationId=cid, token=token, expect=200)
    await c.call("get", notes, conversationId="conv_nope", token=token, expect=404)
    await c.call("get", "/api/chat/mentions", token=token, expect=200)

    # reports
    report = "/api/chat/reports/agents"
    await c.call("get", report, token=token, expect=200)
    await c.call("get", report, token=token, params={"weeks": "0"}, expect=422)

    # canned replies
    canned = "/api/chat/canned-replies"
    one_canned = canned + "/{replyId}"
    saved = {"shortcut": "hours", "text": "9 to 6"}
    r = await c.call("post", canned, token=token, json=saved, expect=201)
    await c.call("post", canned, token=token, json=saved, expect=409)
    await c.call("post", canned, token=token, json={"shortcut": "a b", "text": "x"}, expect=422)
    await c.call("get", canned, token=token, expect=200)
    await c.call("get", canned, token=token, params={"q": "ho"}, expect=200)
    await c.call("get", canned, token=token, params={"q": "x" * 101}, expect=422)
    reply_id = r.json()["id"]
    await c.call(
        "patch", one_canned, replyId=reply_id, token=token, json={"text": "8-8"}, expect=200
    )
    await c.call("patch", one_canned, replyId="cr_nope", token=token, json={}, expect=404)
    await c.call("delete", one_canned, replyId=reply_id, token=token, expect=200)
    await c.call("delete", one_canned, replyId=reply_id, token=token, expect=404)

    # search and the workspace's search language
    workspace = "/api/chat/workspace"
    await c.call("get", workspace, token=token, expect=200)
    spanish = {"searchLanguage": "spanish"}
    await c.call("patch", workspace, token=token, json=spanish, expect=200)
    await c.call("patch", workspace, token=token, json={"searchLanguage": "x"}, expect=422)
    search = "/api/chat/search"
    # the agent's reply and the visitor (both answers' kinds of hit, checked against the schema)
    r = await c.call("get", search, token=token, params={"q": "hola"}, expect=200)
    assert r.json()["messages"], r.text
    r = await c.call("get", search, token=token, params={"q": "maría"}, expect=200)
    assert r.json()["contacts"], r.text
    await c.call("get", search, token=token, params={"q": ""}, expect=422)

    # files and images: both sides send one, both fetch it and its thumbnail
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    vup = "/api/chat/widgets/{widgetId}/conversations/{conversationId}/attachments"
    vfile = vup + "/{attachmentId}"
    named = {"X-File-Name": "a.png"}
    r = await c.call(
        "post",
        vup,
        widgetId=w,
        conversationId=cid,
        token=visitor.token,
        headers=named,
        content=png.getvalue(),
        expect=201,
    )
    image_id = r.json()["attachments"][0]["id"]
    await c.call(
        "post",
        vup,
        widgetId=w,
        conversationId=cid,
        token=visitor.token,
        content=b"<svg/>",
        expect=415,
    )
    await c.call(
        "post", vup, widgetId=w, conversationId=cid, token=visitor.token, content=b"", expect=422
    )
    await c.call(
        "post",
        vup,
        widgetId=w,
        conversationId=cid,
        token=stranger.token,
        content=png.getvalue(),
        expect=404,
    )
    for path in (vfile, vfile + "/thumbnail"):
        await c.call(
            "get",
            path,
            widgetId=w,
            conversationId=cid,
            attachmentId=image_id,
            token=visitor.token,
            expect=200,
        )
        await c.call(
            "get",
            path,
            widgetId=w,
            conversationId=cid,
            attachmentId=image_id,
            token=stranger.token,
            expect=404,
        )
    aup = "/api/chat/conversations/{conversationId}/attachments"
    r = await c.call(
        "post", aup, conversationId=cid, token=token, content=b"%PDF-1.4\n", expect=201
    )
    pdf_id = r.json()["attachments"][0]["id"]
    await c.call("post", aup, conversationId=cid, token=token, content=b"MZ", expect=415)
    afile = aup + "/{attachmentId}"
    await c.call("get", afile, conversationId=cid, attachmentId=pdf_id, token=token, expect=200)
    await c.call(
        "get",
        afile + "/thumbnail",
        conversationId=cid,
        attachmentId=image_id,
        token=token,
        expect=200,
    )
    await c.call(
        "get",
        afile + "/thumbnail",
        conversationId=cid,
        attachmentId=pdf_id,
        token=token,
        expect=404,
    )

    # live visitors and proactive chats
    await c.call("get", "/api/chat/visitors/live", token=token, expect=200)
    proactive = "/api/chat/visitors/{visitorId}/conversations"
    hello = {"message": "Can I help?", "clientMessageId": "p-1"}
    await c.call(
        "post", proactive, visitorId=visitor.visitor_id, token=token, json=hello, expect=409
    )
    third = await new_visitor(server, w)
    await c.call("post", proactive, visitorId=third.visitor_id, token=token, json=hello, expect=201)
    await c.call("post", proactive, visitorId="vis_nope", token=token, json=hello, expect=404)

    # operators
    actors = "/api/ops/actors"
    await c.call("get", actors, token="wrong", expect=401)
    r = await c.call("get", actors, token=OPS_TOKEN, params={"tenant": one.tenant_id}, expect=200)
    assert ("conversation", cid) in {(a["kind"], a["id"]) for a in r.json()["actors"]}
    r = await c.call("get", actors, token=OPS_TOKEN, params={"kind": "visitor_session"}, expect=200)
    assert {a["kind"] for a in r.json()["actors"]} == {"visitor_session"}
    one_actor = "/api/ops/actors/{kind}/{actorId}"
    r = await c.call(
        "get", one_actor, kind="conversation", actorId=cid, token=OPS_TOKEN, expect=200
    )
    assert [e["type"] for e in r.json()["recentEvents"]][:2] == [
        "conversation_created",
        "message_created",
    ]
    await c.call(
        "get", one_actor, kind="conversation", actorId="conv_nope", token=OPS_TOKEN, expect=404
    )
    await c.call("get", one_actor, kind="conversation", actorId=cid, expect=401)
    r = await c.call("get", "/api/ops/cluster", token=OPS_TOKEN, expect=200)
    assert (r.json()["mode"], r.json()["nodes"]) == ("single", [])
    await c.call("get", "/api/ops/cluster", token="wrong", expect=401)

    # sign-out last
    await c.call("post", "/api/auth/logout", token=token, expect=200)
    await c.call("get", "/api/auth/me", token=token, expect=401)

    # every JSON API operation answered at least one documented success
    succeeded = {(m, p) for m, p, s in c.exercised if s.startswith("2")}
    api = {
        (m, p)
        for m, p, o in doc.operations()
        if "pages" not in o["tags"] and p not in ("/metrics", "/api/openapi.json")
    }
    assert not api - succeeded, f"operations never exercised: {sorted(api - succeeded)}"


async def test_pages_and_metrics_answer_as_documented(server: Server, doc: Doc) -> None:
    c = Conformance(doc, server)
    r = await c.call("get", "/ops", expect=200)
    assert "text/html" in r.headers["content-type"]
    r = await c.call("get", "/metrics", expect=200)
    assert r.headers["content-type"].startswith("text/plain")
    await c.call("get", "/api/openapi.json", expect=200)


def request_bodies(doc: Doc) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(method, path, schema, example) of every JSON request body."""
    out = []
    for method, path, o in doc.operations():
        if "requestBody" in o and "application/json" in o["requestBody"]["content"]:
            media = o["requestBody"]["content"]["application/json"]
            out.append((method, path, doc.resolve(media["schema"]), media["example"]))
    return out


def max_length(schema: dict[str, Any]) -> int | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if "maxLength" in option:
            return int(option["maxLength"])
    return None


async def test_bad_bodies_are_refused_as_documented(server: Server, doc: Doc) -> None:
    """For every request body: too long, an unknown key, a missing required field -> 422."""
    c = Conformance(doc, server)
    who = (await seed(server))[0]
    token = await login(server, who)
    visitor = await new_visitor(server, who.widget_id)
    path_values = {
        "widgetId": who.widget_id,
        "conversationId": "conv_any",
        "visitorId": visitor.visitor_id,
        "replyId": "cr_any",
    }
    checked = 0
    for method, path, schema, example in request_bodies(doc):
        names = set(re.findall(r"{([^}]+)}", path))
        args = {k: v for k, v in path_values.items() if k in names}
        operation = doc.d["paths"][path][method]
        auth = visitor.token if {"visitorBearer": []} in operation["security"] else token
        bad: list[tuple[str, dict[str, Any]]] = [("unknown key", {**example, "unexpectedKey": 1})]
        for name, prop in schema["properties"].items():
            limit = max_length(prop)
            if limit is not None:
                bad.append((f"{name} over {limit}", {**example, name: "x" * (limit + 1)}))
        for name in schema.get("required", []):
            bad.append((f"no {name}", {k: v for k, v in example.items() if k != name}))
        for what, body in bad:
            r = await c.call(method, path, token=auth, json=body, **args)
            assert r.status_code == 422, (
                f"{method.upper()} {path} with {what}: {r.status_code} {r.text[:200]}"
            )
            checked += 1
    assert checked > 40


async def test_websocket_frames_match_the_documented_schemas(server: Server, doc: Doc) -> None:
    who = (await seed(server))[0]
    visitor = await new_visitor(server, who.widget_id)
    path = "/api/chat/widgets/{widgetId}/ws"
    server_frames = pointer("x-websockets", path, "serverFrames")
    client_frames = pointer("x-websockets", path, "clientFrames")
    async with server.http(visitor.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{who.widget_id}/conversations",
            json={"name": "Ana", "email": "ana@example.com", "message": "hola"},
        )
        assert r.status_code == 201, r.text
    frames = [
        {"type": "resume", "afterSeq": 0},
        {"type": "message", "text": "¿hay alguien?", "clientMessageId": "ws-1"},
        {"type": "ping"},
        {"type": "resume", "afterSeq": "0"},  # a bad frame: an error frame, the socket stays
    ]
    async with visitor_socket(server, visitor) as sock:
        for frame in frames[:3]:
            assert not doc.errors(client_frames, frame), frame
        for frame in frames:
            await sock.send(frame)
        await sock.wait_for("error")
        assert {"ready", "resumed", "ack", "pong", "error", "message_created"} <= {
            f["type"] for f in sock.seen
        }
        for frame in sock.seen:
            problems = doc.errors(server_frames, frame)
            assert not problems, (frame, problems)
