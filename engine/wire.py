"""The wire form of engine values: one cattrs converter, camelCase both ways.

Every value that leaves the server as JSON (a conversation, a message, an event's payload) is an
attrs class; :func:`unstructure` turns it into its wire form: camelCase keys, timestamps as
:func:`~engine.clock.iso` strings, enums as their values, nested classes and lists converted
alike. A field with ``metadata=OFF_WIRE`` stays on the server. The same classes give the
OpenAPI schemas (``web/schema.py``), so a shape is written once.
"""

from __future__ import annotations

import datetime as dt
import functools
from enum import Enum, StrEnum
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from engine.clock import iso

OFF_WIRE = {"wire": False}
# on the wire only when it differs from its default: a default of None leaves it out when it is
# None; a default of UNSET leaves it out until it is given (then None is sent as null)
OPTIONAL = {"optional": True}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
# already in wire form (JSON-ready): passed on as it is, not copied
RAW = {"raw": True}
T = TypeVar("T")


def camel(name: str) -> str:
    """``client_message_id`` -> ``clientMessageId`` (a trailing ``_`` dropped: ``from_``)."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p.title() for p in rest)


def on_wire(attribute: attrs.Attribute[Any]) -> bool:
    return attribute.metadata.get("wire", True) is not False


def _structure_hook(converter: cattrs.Converter, cls: type[Any]) -> Any:
    overrides: dict[str, Any] = {
        a.name: override(rename=camel(a.name), omit=not on_wire(a)) for a in attrs.fields(cls)
    }
    return make_dict_structure_fn(cls, converter, **overrides)


def _as_it_is(value: Any) -> Any:
    return value


def optional(attribute: attrs.Attribute[Any]) -> bool:
    return bool(attribute.metadata.get("optional"))


def _unstructure_hook(converter: cattrs.Converter, cls: type[Any]) -> Any:
    overrides: dict[str, Any] = {
        a.name: override(
            rename=camel(a.name),
            omit=not on_wire(a),
            omit_if_default=optional(a) or None,
            unstruct_hook=_as_it_is if a.metadata.get("raw") else None,
        )
        for a in attrs.fields(cls)
    }
    return make_dict_unstructure_fn(cls, converter, **overrides)


def _value(member: Enum) -> Any:
    return member.value


@functools.cache
def converter() -> cattrs.Converter:
    out = cattrs.Converter()
    out.register_unstructure_hook(dt.datetime, iso)
    # StrEnum before str (its values would pass as they are), then every other Enum
    out.register_unstructure_hook(StrEnum, _value)
    out.register_unstructure_hook(Enum, _value)
    out.register_unstructure_hook_factory(attrs.has, functools.partial(_unstructure_hook, out))
    out.register_structure_hook_factory(attrs.has, functools.partial(_structure_hook, out))
    return out


def structure(data: Any, cls: type[T]) -> T:
    """Trusted wire data (what this server wrote and stored) back into ``cls``. Input from
    outside goes through the strict converter of ``web/wire.py`` instead."""
    return converter().structure(data, cls)


def unstructure(value: Any) -> Any:
    """``value`` (an attrs instance, a list of them, …) in its JSON-ready wire form."""
    return converter().unstructure(value)


class Wire:
    """A value with a wire form: ``to_wire()`` is :func:`unstructure` of it."""

    __slots__ = ()

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = unstructure(self)
        return wire


def doc(description: str | None = None, *, examples: list[Any] | None = None) -> dict[str, Any]:
    """Field metadata for the OpenAPI document: what the field means, what it looks like."""
    out: dict[str, Any] = {}
    if description:
        out["description"] = description
    if examples is not None:
        out["examples"] = examples
    return out
