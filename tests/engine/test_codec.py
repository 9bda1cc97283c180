"""The codec that carries commands, answers, errors and events between processes
(``engine/codec.py``): every value of every allowed type comes back equal and of the same type,
and nothing outside the allow-list is built from the bus."""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import codec, errors
from engine.values import Event, EventType, Status

# plain JSON-ish data for the fields typed ``Any`` (event payloads, change sets)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# Rules carry functions (the core's policies); they configure an actor and never cross
NEVER_CROSS = {"widget.Rules"}


def strategy(cls: type) -> st.SearchStrategy[Any]:
    if not attrs.has(cls):
        return st.from_type(cls)
    hints = typing.get_type_hints(cls)
    overrides = {}
    for field in attrs.fields(cls):
        hint = hints.get(field.name)
        if field.init:  # every field by its resolved hint (attrs keeps them as strings)
            if "Any" in repr(hint):
                overrides[field.alias] = JSON
            elif hint in (float, float | None):  # NaN is never equal to itself
                overrides[field.alias] = st.from_type(hint).filter(lambda x: x == x)
            else:
                overrides[field.alias] = st.from_type(hint)
    return st.builds(cls, **overrides)


CROSSING = sorted(set(codec.TYPES) - NEVER_CROSS)
for _cls in codec.TYPES.values():  # nested engine values are drawn the same way
    if attrs.has(_cls):
        st.register_type_strategy(_cls, st.deferred(lambda c=_cls: strategy(c)))


@pytest.mark.parametrize("name", CROSSING)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_every_allowed_type_round_trips(name: str, data: st.DataObject) -> None:
    value = data.draw(strategy(codec.TYPES[name]))
    back = codec.loads(codec.dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_containers_keep_their_types() -> None:
    value = {
        "when": dt.datetime(2026, 12, 6, 7, 30, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 6),
        "pair": (1, "a"),
        "set": frozenset({"x", "y"}),
        "by_shard": {3: "a", 7: "b"},
        "status": Status.OPEN,
        "type": EventType.MESSAGE_CREATED,
        "nested": [{"$$": 1}, None, 2.5],
    }
    back = codec.loads(codec.dumps(value))
    assert back == value
    assert type(back["pair"]) is tuple and type(back["set"]) is frozenset
    assert type(back["status"]) is Status and type(back["type"]) is EventType


def test_a_dict_with_a_dollar_key_is_not_mistaken_for_a_tag() -> None:
    value = {"$": "values.Status", "v": "OPEN"}
    assert codec.loads(codec.dumps(value)) == value


def test_an_events_payload_crosses_as_it_is_and_must_be_json() -> None:
    """An event's ``data`` is wire form already (``RAW``): carried unwalked, so a key that looks
    like a tag stays a key, and a value JSON cannot hold is refused on the way out."""
    at = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
    data = {"$": "values.Status", "v": "OPEN", "message": {"text": "hola", "n": [1, None]}}
    event = Event(type=EventType.MESSAGE_CREATED, at=at, tenant_id="t1", data=data, seq=3)
    payload = codec.dumps(event)
    assert b'"data":{"$":"raw","v":{"$":"values.Status"' in payload
    back = codec.loads(payload)
    assert back == event and back.data == data and type(back.at) is dt.datetime
    with pytest.raises(codec.CodecError):
        codec.dumps(attrs.evolve(event, data={"when": at}))


def test_engine_errors_keep_their_class_and_state() -> None:
    original = errors.AlreadyAssigned("taken", assignee_id="agt_1", assignee_name="Ana")
    back = codec.loads(codec.dumps({"error": original}))["error"]
    assert type(back) is errors.AlreadyAssigned
    assert (back.assignee_id, back.assignee_name, str(back)) == ("agt_1", "Ana", str(original))
    assert back.code == original.code
    moved = codec.loads(codec.dumps(errors.NotOwner()))
    assert isinstance(moved, errors.ActorUnavailable) and moved.code == "actor_moved"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"$": "os.system", "v": "true"}',  # not on the allow-list
        b'{"$": "error", "class": "builtins.SystemExit", "message": "", "state": {}}',
        b'{"$": "tuple", "v": 3}',
        b'{"$": "datetime", "v": "yesterday"}',
        b'{"$": "visitor.Heartbeat", "nope": 1}',
        b"not json",
    ],
)
def test_what_the_encoder_could_not_have_written_is_refused(payload: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.loads(payload)


def test_a_type_off_the_allow_list_is_refused_on_the_way_out() -> None:
    @attrs.frozen
    class Stranger:
        x: int

    with pytest.raises(codec.CodecError):
        codec.dumps(Stranger(1))
    with pytest.raises(codec.CodecError):
        codec.dumps(object())
