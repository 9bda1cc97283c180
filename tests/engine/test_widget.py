"""The widget actor and the status rules, on Trio's autojump clock (24 hours pass in no time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from engine.broker import Broker, Subscription
from engine.clock import TrioClock, iso
from engine.errors import NotFound
from engine.supervisor import Supervisor, open_supervisor
from engine.values import Event
from engine.widget import (
    ACTIVE_WINDOW,
    KIND,
    Delete,
    Describe,
    Ping,
    Refuse,
    Rules,
    Update,
    WidgetActor,
    apply,
    domain_allowed,
    loaded,
    normalize_domain,
    widget_status,
)
from tests.engine.memory_store import MemoryStore

NOW = dt.datetime(2026, 11, 29, 13, 20, tzinfo=dt.UTC)


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "w1",
        "tenant_id": "t1",
        "name": "InsureMax",
        "domains": ["insuremax.com"],
        "wait_timeout_seconds": 60,
        "settings": {},
        "last_seen_at": None,
        "last_seen_domain": None,
        "last_seen_url": None,
        "last_refused_at": None,
        "last_refused_domain": None,
        "deleted_at": None,
    }
    return base | overrides


def wire(r: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    status, reason = widget_status(r, now)
    return {
        "id": r["id"],
        "status": status,
        "statusReason": reason,
        "lastSeenAt": iso(r["last_seen_at"]),
        "domain": r["last_seen_domain"],
    }


@asynccontextmanager
async def widgets(
    store: MemoryStore, *, persist: float = 5.0
) -> AsyncIterator[tuple[Supervisor, Broker, TrioClock]]:
    broker = Broker(buffer=64)
    clock = TrioClock(NOW)
    factories = {
        KIND: lambda wid: WidgetActor(
            wid, store=store, broker=broker, clock=clock, to_wire=wire, persist_seconds=persist
        )
    }
    async with open_supervisor(factories, clock=clock) as sup:
        yield sup, broker, clock


def drain(sub: Subscription) -> list[Event]:
    out = []
    while True:
        try:
            out.append(sub.receive.receive_nowait())
        except trio.WouldBlock:
            return out


# --- the rules, pure -------------------------------------------------------------------------


def test_a_widget_never_pinged_is_inactive_with_a_reason() -> None:
    status, reason = widget_status(row(), NOW)
    assert status == "INACTIVE"
    assert reason and "paste the embed code" in reason


def test_a_ping_within_24_hours_is_active_and_exactly_24_hours_is_not() -> None:
    assert widget_status(row(last_seen_at=NOW - dt.timedelta(hours=23, minutes=59)), NOW) == (
        "ACTIVE",
        None,
    )
    status, reason = widget_status(row(last_seen_at=NOW - ACTIVE_WINDOW), NOW)
    assert status == "INACTIVE" and reason and "24 hours" in reason


def test_a_refusal_after_the_last_valid_ping_is_misconfigured_and_says_where() -> None:
    r = row(
        last_seen_at=NOW - dt.timedelta(minutes=5),
        last_refused_at=NOW - dt.timedelta(minutes=1),
        last_refused_domain="evil.example",
    )
    status, reason = widget_status(r, NOW)
    assert status == "MISCONFIGURED"
    assert reason and "evil.example" in reason and "insuremax.com" in reason
    # a valid ping after the refusal makes it ACTIVE again
    later = r | {"last_seen_at": NOW}
    assert widget_status(later, NOW)[0] == "ACTIVE"


@pytest.mark.parametrize(
    ("host", "targeting", "allowed"),
    [
        ("shop.example.com", [], True),
        ("shop.example.com", ["shop.example.com"], True),
        ("SHOP.Example.com.", ["shop.example.com"], True),
        ("other.example.com", ["shop.example.com"], False),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], True),
        ("badexample.com", ["*.example.com"], False),
        ("example.com.evil.net", ["*.example.com"], False),
        (None, ["example.com"], False),
    ],
)
def test_targeting(host: str | None, targeting: list[str], allowed: bool) -> None:
    assert domain_allowed(host, targeting) is allowed


def test_normalize_domain_takes_hosts_from_urls_and_origins() -> None:
    assert normalize_domain("https://Shop.Example.com:8443/a?b") == "shop.example.com"
    assert normalize_domain("shop.example.com:80") == "shop.example.com"
    assert normalize_domain("") is None


# --- the actor -------------------------------------------------------------------------------


async def test_first_ping_turns_active_and_24_quiet_hours_turn_inactive(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            await sup.call(KIND, "w1", Ping("insuremax.com", "https://insuremax.com/quote"))
            [event] = drain(sub)
            assert event.type == "widget_status_changed"
            assert event.data["status"] == "ACTIVE"
            assert store.widgets["w1"]["last_seen_url"] == "https://insuremax.com/quote"
            started = trio.current_time()
            event = await sub.receive.receive()
            assert trio.current_time() - started == pytest.approx(24 * 3600, abs=1)
            assert event.type == "widget_status_changed"
            assert event.data["status"] == "INACTIVE"
            assert "24 hours" in event.data["statusReason"]


async def test_each_ping_pushes_the_inactive_deadline(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            await sup.call(KIND, "w1", Ping("insuremax.com", "https://insuremax.com/"))
            assert [e.data["status"] for e in drain(sub)] == ["ACTIVE"]
            await trio.sleep(20 * 3600)
            await sup.call(KIND, "w1", Ping("insuremax.com", "https://insuremax.com/b"))
            assert drain(sub) == []  # still ACTIVE: no event
            await trio.sleep(23 * 3600)
            assert drain(sub) == []  # 43 h after the first ping, 23 h after the second
            event = await sub.receive.receive()
            assert event.data["status"] == "INACTIVE"
            assert clock.now() - NOW == pytest.approx(
                dt.timedelta(hours=44), abs=dt.timedelta(seconds=1)
            )


async def test_refusal_is_misconfigured_with_reason_and_stored(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            await sup.call(KIND, "w1", Refuse("evil.example"))
            [event] = drain(sub)
            assert event.data["status"] == "MISCONFIGURED"
            assert "evil.example" in event.data["statusReason"]
            assert store.widgets["w1"]["last_refused_domain"] == "evil.example"
            # a second refusal from the same place changes nothing visible
            await sup.call(KIND, "w1", Refuse("evil.example"))
            assert drain(sub) == []
            # a refusal from another place changes the reason: announced
            await sup.call(KIND, "w1", Refuse("other.example"))
            [event] = drain(sub)
            assert "other.example" in event.data["statusReason"]


async def test_pings_are_written_at_most_once_per_interval_and_flushed(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store, persist=5.0) as (sup, broker, clock):
        for n in range(50):  # 50 pings in 1 second
            await sup.call(KIND, "w1", Ping("insuremax.com", f"https://insuremax.com/{n}"))
            await trio.sleep(0.02)
        assert store.widget_writes == 1  # the first (status change) only
        assert store.widgets["w1"]["last_seen_url"] == "https://insuremax.com/0"
        # the actor answers from memory with the latest ping
        latest = await sup.call(KIND, "w1", Describe())
        assert latest["last_seen_url"] == "https://insuremax.com/49"
        await trio.sleep(5)  # the coalesced ping is written when due, without another ping
        assert store.widget_writes == 2
        assert store.widgets["w1"]["last_seen_url"] == "https://insuremax.com/49"


async def test_a_new_domain_is_written_at_once(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore(widgets={"w1": row(domains=[])})
    async with widgets(store) as (sup, broker, clock):
        await sup.call(KIND, "w1", Ping("a.example", "https://a.example/"))
        await sup.call(KIND, "w1", Ping("b.example", "https://b.example/"))
        assert store.widgets["w1"]["last_seen_domain"] == "b.example"
        assert store.widget_writes == 2


async def test_unsaved_ping_is_flushed_when_the_supervisor_shuts_down(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        await sup.call(KIND, "w1", Ping("insuremax.com", "https://insuremax.com/1"))
        await sup.call(KIND, "w1", Ping("insuremax.com", "https://insuremax.com/2"))
        assert store.widgets["w1"]["last_seen_url"] == "https://insuremax.com/1"
    assert store.widgets["w1"]["last_seen_url"] == "https://insuremax.com/2"


async def test_other_tenants_and_unknown_widgets_are_not_found(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        with pytest.raises(NotFound):
            await sup.call(KIND, "w1", Describe("t2"))
        with pytest.raises(NotFound):
            await sup.call(KIND, "w1", Update("t2", {"name": "stolen"}))
        with pytest.raises(NotFound):
            await sup.call(KIND, "w1", Delete("t2"))
        with pytest.raises(NotFound):
            await sup.call(KIND, "nope", Describe())
        assert store.widgets["w1"]["name"] == "InsureMax"
        assert store.widget_writes == 0


async def test_update_and_delete_are_announced(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore(widgets={"w1": row()})
    async with widgets(store) as (sup, broker, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            updated = await sup.call(KIND, "w1", Update("t1", {"name": "InsureMax MX"}))
            assert updated["name"] == "InsureMax MX"
            [event] = drain(sub)
            assert event.type == "widget_updated"
            await sup.call(KIND, "w1", Delete("t1"))
            [event] = drain(sub)
            assert (event.type, event.data) == ("widget_deleted", {"id": "w1"})
        with pytest.raises(NotFound):  # deleted: the visitor side stops serving it
            await sup.call(KIND, "w1", Describe())
        assert store.widgets["w1"]["deleted_at"] is not None


async def test_a_restarted_actor_rearms_the_timer_from_storage(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen = NOW - dt.timedelta(hours=23)
    store = MemoryStore(widgets={"w1": row(last_seen_at=seen, last_seen_domain="insuremax.com")})
    async with widgets(store) as (sup, broker, clock):
        with broker.subscribe(("tenant", "t1")) as sub:
            sup.ensure(KIND, "w1")
            event = await sub.receive.receive()
            assert event.data["status"] == "INACTIVE"
            assert clock.now() == pytest.approx(seen + ACTIVE_WINDOW, abs=dt.timedelta(seconds=1))


def _rules() -> Rules:
    return Rules(to_wire=lambda r, now: dict(r))


def test_the_same_refusal_again_within_seconds_writes_nothing() -> None:
    # a flood of refused pings was a database write each (issue #16)
    state = loaded(row(), NOW)
    first = apply(state, Refuse("evil.example"), NOW, _rules())
    assert len(first.writes) == 1
    again = apply(first.state, Refuse("evil.example"), NOW + dt.timedelta(seconds=1), _rules())
    assert again.writes == () and again.events == ()
    other = apply(first.state, Refuse("other.example"), NOW + dt.timedelta(seconds=1), _rules())
    assert len(other.writes) == 1  # another host: its own reason
    later = apply(first.state, Refuse("evil.example"), NOW + dt.timedelta(seconds=6), _rules())
    assert len(later.writes) == 1


@pytest.mark.parametrize(
    "text", ["Call 555 for refunds!", "a..b", "-bad.com", "x" * 300, "evil.example<script>"]
)
def test_a_host_is_a_host_name_or_an_address_never_free_text(text: str) -> None:
    # it is stored and shown to agents as the refused domain
    with pytest.raises(ValueError):
        normalize_domain(text)


def test_international_names_become_idna_and_addresses_stay_addresses() -> None:
    assert normalize_domain("https://München.de:8443/x") == "xn--mnchen-3ya.de"
    assert domain_allowed("www.münchen.de", ["*.münchen.de"])
    assert normalize_domain("http://[::1]:80/") == "::1"
    assert domain_allowed("a.example", ["not a host!", "a.example"])  # a bad entry matches nothing
