"""What one process of a cluster says to another: commands, their answers, errors and events,
as JSON with the type of every value kept.

A command forwarded to the process that owns its actor (:mod:`engine.placement`) and the answer
that comes back are engine values: attrs classes (``Heartbeat``, ``Outcome``, ``Conversation``),
enums, datetimes, tuples, the engine's errors. JSON keeps none of those types, so every value
that is not plain JSON is written as an object with one ``$`` key saying what it is::

    {"$": "visitor.Heartbeat", "tenant_id": "ten_1", ...}    an attrs instance, by its field names
    {"$": "datetime", "v": "2026-12-06T07:30:00+00:00"}
    {"$": "values.Status", "v": "OPEN"}                        an enum member, by value
    {"$": "tuple", "v": [...]}  {"$": "frozenset", "v": [...]}  {"$": "dict", "v": [[k, v], ...]}
    {"$": "error", "class": "errors.AlreadyAssigned", "message": "...", "state": {...}}

A field already in wire form (``RAW`` metadata: an event's ``data``, JSON by construction) is
carried as ``{"$": "raw", "v": ...}`` and neither walked nor decoded: the commonest crossing,
an event, costs one walk of its few typed fields.

Only the classes of :data:`TYPES` (and the engine's errors) are decoded: the bus is not trusted
to name a class to build (no pickle), and anything else is a :class:`CodecError`. A dict whose
keys are all strings and that has no ``$`` key stays a plain dict.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, cast

import attrs

from engine import conversation, conversation_actor, errors, routing, values, visitor, widget


class CodecError(ValueError):
    """A value that cannot cross between processes (an unknown type, a malformed document)."""


def _name(cls: type) -> str:
    return f"{cls.__module__.removeprefix('engine.')}.{cls.__qualname__}"


def _attrs_classes(*modules: Any) -> list[type]:
    """Every attrs class and enum defined in ``modules`` (not the ones they import)."""
    out = []
    for module in modules:
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != module.__name__:
                continue
            if attrs.has(value) or issubclass(value, enum.Enum):
                out.append(value)
    return out


# The values that may cross: the commands of every actor kind, what they answer, and the values
# those are made of. An actor kind that gains a command in one of these modules is covered.
TYPES: dict[str, type] = {
    _name(cls): cls
    for cls in _attrs_classes(values, conversation, conversation_actor, visitor, widget, routing)
}


def _errors() -> dict[str, type[errors.EngineError]]:
    found: dict[str, type[errors.EngineError]] = {}
    pending: list[type[errors.EngineError]] = [errors.EngineError]
    while pending:
        cls = pending.pop()
        found[_name(cls)] = cls
        pending.extend(cls.__subclasses__())
    return found


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data, every type kept (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, enum.Enum):  # a StrEnum is a str: keep its class
            return {"$": _name(type(value)), "v": value.value}
        return value
    if isinstance(value, enum.Enum):
        return {"$": _name(type(value)), "v": value.value}
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, errors.EngineError):
        state = {k: encode(v) for k, v in vars(value).items()}
        return {"$": "error", "class": _name(type(value)), "message": str(value), "state": state}
    if attrs.has(type(value)):
        name, fields = _plan(cast(Hashable, type(value)))
        out: dict[str, Any] = {"$": name}
        for alias, attribute, raw in fields:
            field_value = getattr(value, attribute)
            # a field already in wire form (an event's payload: JSON by construction) is
            # carried as it is, unwalked both ways; a "$" key inside it stays a plain key
            out[alias] = {"$": "raw", "v": field_value} if raw else encode(field_value)
        return out
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$": "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$": "frozenset", "v": [encode(v) for v in value]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and "$" not in value:
            return {k: encode(v) for k, v in value.items()}
        return {"$": "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    raise CodecError(f"a {type(value).__name__} cannot cross between processes")


@functools.cache
def _plan(cls: Any) -> tuple[str, tuple[tuple[str, str, bool], ...]]:
    """An allowed attrs class's tag and its fields: (alias, attribute, carried raw)."""
    name = _name(cls)
    if TYPES.get(name) is not cls:
        raise CodecError(f"{name} may not cross between processes: add it to codec.TYPES")
    fields = tuple(
        (f.alias, f.name, bool(f.metadata.get("raw"))) for f in attrs.fields(cast(Any, cls))
    )
    return name, fields


def decode(data: Any) -> Any:
    """The value :func:`encode` wrote; :class:`CodecError` for anything it could not have."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise CodecError(f"not JSON data: {type(data).__name__}")
    tag = data.get("$")
    if tag is None:
        return {k: decode(v) for k, v in data.items()}
    try:
        return _decode_tagged(tag, data)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise CodecError(f"a malformed {tag}: {exc}") from None


def _decode_tagged(tag: str, data: dict[str, Any]) -> Any:
    if tag == "raw":
        return data["v"]
    if tag == "datetime":
        return dt.datetime.fromisoformat(data["v"])
    if tag == "date":
        return dt.date.fromisoformat(data["v"])
    if tag == "tuple":
        return tuple(decode(v) for v in _items(data["v"]))
    if tag == "frozenset":
        return frozenset(decode(v) for v in _items(data["v"]))
    if tag == "dict":
        return {decode(k): decode(v) for k, v in _items(data["v"])}
    if tag == "error":
        return _decode_error(data)
    cls = TYPES.get(tag)
    if cls is None:
        raise CodecError(f"unknown type {tag!r}")
    if issubclass(cls, enum.Enum):
        return cls(data["v"])
    kwargs = {k: decode(v) for k, v in data.items() if k != "$"}
    return cls(**kwargs)


def _items(value: Any) -> Iterable[Any]:
    if not isinstance(value, list):
        raise CodecError("expected a list")
    return value


ERRORS = _errors()


def _decode_error(data: dict[str, Any]) -> errors.EngineError:
    cls = ERRORS.get(data["class"])
    if cls is None:
        raise CodecError(f"unknown error {data['class']!r}")
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data["message"]))
    state = decode(data["state"])
    if not isinstance(state, dict):
        raise CodecError("an error's state must be an object")
    vars(exc).update(state)
    return exc


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(encode(value), separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:  # a raw field that was not JSON after all
        raise CodecError(f"cannot be written as JSON: {exc}") from None


def loads(payload: bytes) -> Any:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    return decode(data)
