"""``web.streams.event_text``: an event is serialised once however many sockets send it."""

from __future__ import annotations

import datetime as dt
import json

from engine.values import Event, EventType
from web import streams

T0 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


def event(n: int) -> Event:
    return Event(EventType.MESSAGE_CREATED, T0, "t1", {"message": {"text": f"m{n}"}}, "c1", n)


def test_one_event_is_serialised_once_for_every_socket() -> None:
    calls: list[int] = []
    real = Event.to_wire

    def counted(self: Event) -> dict[str, object]:
        calls.append(self.seq or 0)
        return real(self)

    setattr(Event, "to_wire", counted)  # noqa: B010 - a frozen attrs class: patch the class
    try:
        e = event(1)
        texts = {streams.event_text(e) for _ in range(50)}
    finally:
        setattr(Event, "to_wire", real)  # noqa: B010
    assert calls == [1]
    [text] = texts
    assert json.loads(text) == e.to_wire()


def test_an_equal_but_distinct_event_is_not_taken_for_another() -> None:
    a, b = event(2), event(3)
    assert json.loads(streams.event_text(a))["seq"] == 2
    assert json.loads(streams.event_text(b))["seq"] == 3


def test_the_kept_texts_are_bounded() -> None:
    events = [event(n) for n in range(streams._TEXTS_KEPT + 100)]
    for e in events:
        streams.event_text(e)
    assert len(streams._TEXTS) == streams._TEXTS_KEPT
    # the oldest were let go; the newest is still served from the cache
    assert id(events[0]) not in streams._TEXTS or streams._TEXTS[id(events[0])][0] is not events[0]
    assert streams._TEXTS[id(events[-1])][0] is events[-1]
