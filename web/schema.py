"""JSON Schema from attrs classes: the OpenAPI components are written nowhere else.

A wire class (a request body, a response, an event payload, a frame) is an attrs class. Its
fields give the properties (camelCase, as :mod:`engine.wire` and :mod:`web.wire` convert them),
their annotations the JSON types, the fields without a default the ``required`` list, and every
validator that has a ``schema()`` method its limits (``maxLength``, ``pattern``, ``minimum``,
``enum``…), so a limit is written once, where it is checked; a ``rule`` in the field's metadata
(the widget document's checks, :mod:`web.widgets`) counts the same. ``metadata=doc(…)`` on a field adds a
description or examples; the class's docstring describes the object.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any, Literal, Union

import attrs

from engine.wire import camel, on_wire, optional

Schema = dict[str, Any]

TIMESTAMP_NAME = "Timestamp"
# every timestamp on the wire (engine.clock.iso writes them)
TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": "Z$",
    "description": "ISO 8601, UTC, milliseconds, `Z`; always the server's clock",
    "examples": ["2026-11-29T13:20:00.123Z"],
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null`` (a schema that admits null already is returned as it is)."""
    if {"type": "null"} in schema.get("anyOf", []) or "null" in (schema.get("type") or ()):
        return schema
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
    out["type"] = [*kinds, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def checks(validator: Any) -> Iterator[Any]:
    """Every validator inside ``validator`` (attrs' ``and_`` and lists unfolded)."""
    if validator is None:
        return
    inner = getattr(validator, "_validators", None)
    if inner is not None:
        for v in inner:
            yield from checks(v)
    elif isinstance(validator, list | tuple):
        for v in validator:
            yield from checks(v)
    else:
        yield validator


def check_schema(validator: Any) -> Schema:
    """What one validator promises, as JSON Schema keywords."""
    own = getattr(validator, "schema", None)
    if callable(own):
        return dict(own())
    options = getattr(validator, "options", None)  # attrs.validators.in_
    if options is not None:
        return {"enum": list(options)}
    return {}


def _first_paragraph(text: str | None) -> str | None:
    if not text:
        return None
    paragraph = text.strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


class Schemas:
    """Components collected while schemas are made: ``ref(cls)`` adds ``cls`` (and every class it
    names) once, under its class name or ``names[cls]``. A request class (of ``request_module``)
    requires its fields without a default; an answer class, every field (it always sends them)."""

    def __init__(
        self, names: dict[type[Any], str] | None = None, *, request_module: str = "web.wire"
    ) -> None:
        self.components: dict[str, Schema] = {}
        self.names = dict(names or {})
        # a request class requires its fields without a default; an answer always has them all
        self.request_module = request_module

    def name_of(self, cls: type[Any]) -> str:
        return self.names.get(cls, cls.__name__)

    def ref(self, cls: type[Any]) -> Schema:
        name = self.name_of(cls)
        if name not in self.components:
            self.components[name] = {}  # a class that names itself finds its own ref
            self.components[name] = self.object(cls)
        return ref(name)

    def object(self, cls: type[Any], *, required: Sequence[str] | None = None) -> Schema:
        """The object schema of attrs class ``cls`` (no unknown keys)."""
        hints = typing.get_type_hints(cls)
        properties: dict[str, Schema] = {}
        needed: list[str] = []
        absent: set[str] = set()  # OPTIONAL fields: left out when they have no value
        for field in attrs.fields(cls):
            if not on_wire(field):
                continue
            name = field.metadata.get("name") or camel(field.name)
            schema = self.of(hints[field.name])
            for validator in [*checks(field.validator), field.metadata.get("rule")]:
                schema = _merge(schema, check_schema(validator))
            schema = _merge(schema, field.metadata.get("schema") or {})
            if field.metadata.get("description"):
                schema = {**schema, "description": field.metadata["description"]}
            if field.metadata.get("examples") is not None:
                schema = {**schema, "examples": field.metadata["examples"]}
            properties[name] = schema
            if field.default is attrs.NOTHING:
                needed.append(name)
            if optional(field):
                absent.add(name)
        out: Schema = {"type": "object", "properties": properties}
        if required is not None:
            names = list(required)
        elif cls.__module__ == self.request_module:
            names = needed
        else:
            names = [name for name in properties if name not in absent]
        if names:
            out["required"] = names
        out["additionalProperties"] = False
        description = _first_paragraph(cls.__doc__)
        if description:
            out["description"] = description
        return out

    def of(self, annotation: Any) -> Schema:
        """The schema of one annotation (classes become references)."""
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is Any:
            return {}
        if annotation is type(None):
            return {"type": "null"}
        if origin in (Union, types.UnionType):
            present = [a for a in args if a is not type(None)]
            inner = (
                self.of(present[0])
                if len(present) == 1
                else {"anyOf": [self.of(a) for a in present]}
            )
            return nullable(inner) if len(present) < len(args) else inner
        if origin is Literal:
            kind = {"type": "string"} if all(isinstance(a, str) for a in args) else {}
            return {**kind, "enum": list(args)}
        if origin in (list, tuple, Sequence) or annotation in (list, tuple):
            return {"type": "array", "items": self.of(args[0]) if args else {}}
        if origin is dict or annotation is dict:
            value = self.of(args[1]) if args else {}
            return {"type": "object", **({"additionalProperties": value} if value else {})}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer"}
        if annotation is float:
            return {"type": "number"}
        if annotation is str:
            return {"type": "string"}
        if annotation is dt.datetime:
            self.components.setdefault(TIMESTAMP_NAME, TIMESTAMP)
            return ref(TIMESTAMP_NAME)
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return {"type": "string", "enum": [m.value for m in annotation]}
        if isinstance(annotation, type) and attrs.has(annotation):
            return self.ref(annotation)
        raise TypeError(f"no JSON Schema for {annotation!r}")


def _merge(schema: Schema, extra: Schema) -> Schema:
    """``extra``'s keywords on ``schema``. Two checks with a pattern each must both hold: the
    earlier one moves into ``allOf``; an ``enum`` on a nullable field keeps ``null``."""
    out = {**schema, **extra}
    if "pattern" in schema and "pattern" in extra and schema["pattern"] != extra["pattern"]:
        out["allOf"] = [*schema.get("allOf", []), {"pattern": schema["pattern"]}]
    if "enum" in extra and "null" in (schema.get("type") or ()):
        out["enum"] = [*extra["enum"], None]
    return out
