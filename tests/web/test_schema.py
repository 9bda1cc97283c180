"""JSON Schema from attrs classes (``web/schema.py``) and the wire form of values
(``engine/wire.py``): one class gives both, so what the document says is what the server does."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any, Literal

import attrs
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.values import Event, EventType
from engine.wire import OFF_WIRE, Wire, camel, doc, unstructure
from web.app import build_openapi
from web.openapi import EVENT_PAYLOADS
from web.schema import Schemas
from web.wire import EMAIL, AtLeast, MaxLength, Text


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Inner(Wire):
    at: dt.datetime
    colour: Colour | None = None


@attrs.frozen
class Outer(Wire):
    """An answer with a bit of everything.

    This second paragraph is not the description."""

    inner_things: list[Inner]
    secret: str = attrs.field(metadata=OFF_WIRE)
    label: str | None = attrs.field(default=None, metadata=doc("what it is", examples=["x"]))
    kind: Literal["a", "b"] = "a"
    extra: dict[str, Any] = attrs.Factory(dict)


def test_the_wire_form_is_camel_case_with_iso_times_and_enum_values() -> None:
    at = dt.datetime(2026, 11, 29, 13, 20, 0, 123000, tzinfo=dt.UTC)
    value = Outer([Inner(at, Colour.RED)], "hidden", label="l")
    wire = value.to_wire()
    assert wire == {
        "innerThings": [{"at": "2026-11-29T13:20:00.123Z", "colour": "red"}],
        "label": "l",
        "kind": "a",
        "extra": {},
    }
    assert type(wire["innerThings"][0]["colour"]) is str  # the value, not the enum member
    assert unstructure([Inner(at)]) == [{"at": "2026-11-29T13:20:00.123Z", "colour": None}]
    assert camel("from_") == "from" and camel("client_message_id") == "clientMessageId"


def test_an_answer_class_becomes_a_component_that_its_wire_form_satisfies() -> None:
    schemas = Schemas({Inner: "Thing"})
    assert schemas.ref(Outer) == {"$ref": "#/components/schemas/Outer"}
    outer = schemas.components["Outer"]
    assert outer["description"] == "An answer with a bit of everything."
    assert set(outer["properties"]) == {"innerThings", "label", "kind", "extra"}  # no secret
    assert outer["required"] == ["innerThings", "label", "kind", "extra"]  # answers send all
    assert outer["additionalProperties"] is False
    assert outer["properties"]["innerThings"]["items"] == {"$ref": "#/components/schemas/Thing"}
    assert outer["properties"]["label"] == {
        "type": ["string", "null"],
        "description": "what it is",
        "examples": ["x"],
    }
    assert outer["properties"]["kind"] == {"type": "string", "enum": ["a", "b"]}
    thing = schemas.components["Thing"]
    assert thing["properties"]["colour"] == {
        "type": ["string", "null"],
        "enum": ["red", "blue", None],
    }
    document = {
        "$defs": {**schemas.components, "Timestamp": {"type": "string", "pattern": "Z$"}},
        "$ref": "#/$defs/Outer",
    }
    text = json.dumps(document).replace("#/components/schemas/", "#/$defs/")
    validator = Draft202012Validator(json.loads(text))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert validator.is_valid(Outer([Inner(at, Colour.BLUE)], "s").to_wire())
    assert not validator.is_valid({**Outer([], "s").to_wire(), "secret": "s"})


@attrs.frozen
class Request:
    name: str = attrs.field(validator=Text(20))
    email: str = attrs.field(validator=attrs.validators.and_(Text(320), EMAIL))
    nick: str | None = attrs.field(default=None, validator=MaxLength(5))
    seq: int | None = attrs.field(default=None, validator=AtLeast(0))
    mood: str = attrs.field(default="ok", validator=attrs.validators.in_(("ok", "meh")))


def test_a_request_class_says_its_limits_and_requires_what_has_no_default() -> None:
    schemas = Schemas(request_module=__name__)
    body = schemas.object(Request)
    assert body["required"] == ["name", "email"]
    props = body["properties"]
    assert props["name"] == {"type": "string", "minLength": 1, "pattern": r"\S", "maxLength": 20}
    assert props["nick"] == {"type": ["string", "null"], "maxLength": 5}
    assert props["seq"] == {"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1}
    assert props["mood"] == {"type": "string", "enum": ["ok", "meh"]}
    # both patterns hold: not blank, and an email address
    assert props["email"]["allOf"] == [{"pattern": r"\S"}]
    validator = Draft202012Validator(props["email"])
    assert validator.is_valid("ana@example.com")
    assert not validator.is_valid("not an email")
    assert not validator.is_valid("")


def test_an_annotation_without_a_json_form_is_refused() -> None:
    with pytest.raises(TypeError, match="no JSON Schema"):
        Schemas().of(set[int])


def test_every_event_type_has_a_payload_class_and_the_document_checks_it() -> None:
    assert set(EVENT_PAYLOADS) == set(EventType)
    document = build_openapi("http://127.0.0.1")
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", Resource(contents=document, specification=DRAFT202012)
    )
    validator = Draft202012Validator(
        {"$ref": "urn:doc#/components/schemas/Event"}, registry=registry
    )
    at = dt.datetime(2026, 11, 29, 13, 20, tzinfo=dt.UTC)
    created = Event(
        EventType.AGENTS_ONLINE_CHANGED, at, "ten_1", data={"agentsOnline": True}
    ).to_wire()
    assert validator.is_valid(created)
    wrong = {**created, "data": {"agentsOnline": "yes"}}
    assert not validator.is_valid(wrong)  # the payload is checked against its own class
    other = {**created, "type": EventType.MESSAGE_CREATED.value}
    assert not validator.is_valid(other)  # a message event must carry a message
