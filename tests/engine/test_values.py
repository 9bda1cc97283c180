"""Pure units of :mod:`engine.values` that no actor test pins on its own."""

import datetime as dt

import attrs

from engine.values import VisitorSession

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def stored_session() -> VisitorSession:
    return VisitorSession(
        visitor_id="vis_1",
        tenant_id="ten_1",
        widget_id="wid_1",
        first_seen_at=T0,
        last_seen_at=T0,
        current_url="https://shop.example/a",
        current_domain="shop.example",
        page_title="A",
        referrer=None,
        ip="203.0.113.7",
        user_agent="UA",
        location="Madrid, ES",
        conversation_id="cnv_1",
        name="Ana",
    )


def test_a_newer_live_session_lends_its_presence_and_nothing_else() -> None:
    stored = stored_session()
    live = attrs.evolve(
        stored,
        last_seen_at=T0 + dt.timedelta(seconds=15),
        current_url="https://shop.example/b",
        page_title="B",
        referrer="https://search.example/",
        ip="198.51.100.1",
        conversation_id=None,
        name=None,
    )
    seen = stored.with_presence_of(live)
    assert (seen.last_seen_at, seen.current_url, seen.page_title, seen.referrer) == (
        live.last_seen_at,
        "https://shop.example/b",
        "B",
        "https://search.example/",
    )
    # what the actor does not own stays as stored: the chat link, the name, the address
    assert (seen.conversation_id, seen.name, seen.ip) == ("cnv_1", "Ana", "203.0.113.7")


def test_an_older_or_foreign_live_session_changes_nothing() -> None:
    stored = stored_session()
    older = attrs.evolve(
        stored, last_seen_at=T0 - dt.timedelta(seconds=1), current_url="https://old.example/"
    )
    foreign = attrs.evolve(
        stored, tenant_id="ten_2", last_seen_at=T0 + dt.timedelta(seconds=1), current_url="x"
    )
    assert stored.with_presence_of(older) is stored
    assert stored.with_presence_of(foreign) is stored
