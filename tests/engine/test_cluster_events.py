"""``engine/cluster.py``'s event path with the bus stood in for by a list (the NATS side is tested
with real processes in ``tests/cluster``): what one process publishes reaches the other's broker
once, and a process drops its own events, which the bus also hands back to it, before decoding
them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from engine import codec
from engine.broker import Broker
from engine.cluster import Cluster
from engine.placement import Placement
from engine.values import Event, EventType


class ListBus:
    def __init__(self) -> None:
        self.events: list[bytes] = []

    def publish_event(self, subject: str, payload: bytes) -> None:
        self.events.append(payload)


def node(name: str, bus: ListBus) -> tuple[Cluster, Broker]:
    broker = Broker()
    cluster = Cluster(
        Placement(name),
        bus,
        broker,
        cluster="c1",
        no_responders=LookupError,  # type: ignore[arg-type]
    )
    return cluster, broker


def event(seq: int) -> Event:
    return Event(
        type=EventType.MESSAGE_CREATED,
        at=dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC),
        tenant_id="ten_1",
        conversation_id="con_1",
        seq=seq,
        data={"message": {"text": "hola"}},
    )


def test_an_event_reaches_the_other_process_and_not_back_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = ListBus()
    a, broker_a = node("node-a", bus)
    b, broker_b = node("node-b", bus)
    a.publish(event(1))
    b.publish(event(2))
    decoded: list[Any] = []
    loads = codec.loads
    monkeypatch.setattr(codec, "loads", lambda payload: decoded.append(payload) or loads(payload))
    with (
        broker_a.subscribe(("tenant", "ten_1")) as in_a,
        broker_b.subscribe(("tenant", "ten_1")) as in_b,
    ):
        for payload in bus.events:  # the bus hands every event to every process
            a._deliver(payload)
            b._deliver(payload)
        got_a = [in_a.__aiter__().receive_nowait().seq for _ in range(len(in_a.__aiter__()))]
        got_b = [in_b.__aiter__().receive_nowait().seq for _ in range(len(in_b.__aiter__()))]
    assert got_a == [2] and got_b == [1]
    assert decoded == bus.events  # b decoded a's event, a decoded b's: neither its own


def test_a_node_whose_name_starts_like_another_is_not_mistaken_for_it() -> None:
    bus = ListBus()
    a, _ = node("node-a", bus)
    longer, broker = node("node-ab", bus)
    a.publish(event(1))
    with broker.subscribe(("tenant", "ten_1")) as sub:
        longer._deliver(bus.events[0])
        assert len(sub.__aiter__()) == 1
