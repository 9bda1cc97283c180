"""The pure cores of the visitor-session, widget and router actors: state × command, no Trio.

Each actor is a thin shell around one of these functions (as the conversation actor is around
``engine.conversation.apply``, tested in ``test_conversation.py``); the tables below walk every
state against every command and say what must come out: the next state, what to write, what to
publish, whether to stop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from engine import routing, visitor, widget
from engine.commit import claim_of, link_change
from engine.errors import Forbidden, NotFound
from engine.values import Agent as ConvAgent
from engine.values import (
    Conversation,
    Kind,
    Link,
    OpenChat,
    RoutingAgent,
    RoutingSnapshot,
    Status,
    WaitingChat,
)

NOW = dt.datetime(2026, 11, 29, 13, 20, tzinfo=dt.UTC)


def later(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


# --- visitor session ----------------------------------------------------------------------------

VR = visitor.Rules(expiry_seconds=60, publish_interval=1)
HB = visitor.Heartbeat("t1", "w1", "https://shop.example.com/a", "shop.example.com")
SESSION = visitor.VisitorSession(
    visitor_id="v1",
    tenant_id="t1",
    widget_id="w1",
    first_seen_at=later(-30),
    last_seen_at=later(-10),
    current_url=HB.current_url,
    current_domain="shop.example.com",
)


def vstate(presence: visitor.Presence, **extra: Any) -> visitor.VisitorState:
    session = None if presence is visitor.Presence.NEW else SESSION
    if presence is visitor.Presence.GONE:
        session = attrs.evolve(SESSION, first_seen_at=later(-600), last_seen_at=later(-500))
    return visitor.VisitorState("v1", session, presence, saved_at=later(-10), **extra)


# (presence, command) -> (presence after, save, events' "online" values, stop)
VISITOR_TABLE = [
    ("NEW", HB, "LIVE", True, [True], False),
    ("NEW", visitor.JoinedChat("c1"), "NEW", False, [], False),
    ("NEW", visitor.LeftChat("c1"), "NEW", False, [], False),
    ("NEW", visitor.Tick(), "NEW", False, [], False),
    # the last write was 10 s ago: the same page is neither written (only last_seen_at moved;
    # that waits a third of the expiry) nor announced again
    ("LIVE", HB, "LIVE", False, [], False),
    (
        "LIVE",
        attrs.evolve(HB, current_url="https://shop.example.com/b"),
        "LIVE",
        True,
        [True],
        False,
    ),
    ("LIVE", visitor.JoinedChat("c1"), "LIVE", False, [True], False),  # the link: not its row
    ("LIVE", visitor.LeftChat("c1"), "LIVE", False, [], False),  # not its chat: unchanged
    ("LIVE", visitor.Tick(), "LIVE", False, [], False),
    ("GONE", HB, "LIVE", True, [True], False),  # back: a new session
    ("GONE", visitor.JoinedChat("c1"), "GONE", False, [], False),  # remembered, not announced
    ("GONE", visitor.Tick(), "GONE", False, [], False),
]


@pytest.mark.parametrize(("before", "command", "after", "save", "online", "stop"), VISITOR_TABLE)
def test_visitor_state_by_command(
    before: str, command: Any, after: str, save: bool, online: list[bool], stop: bool
) -> None:
    t = visitor.apply(vstate(visitor.Presence(before)), command, NOW, VR)
    assert t.state.presence is visitor.Presence(after)
    assert t.save is save
    assert [e.data["online"] for e in t.events] == online
    assert all(e.type == "visitor_presence_update" for e in t.events)
    assert t.stop is stop


def test_an_unchanged_heartbeat_is_written_once_a_third_of_the_expiry_has_passed() -> None:
    quiet = visitor.apply(vstate(visitor.Presence.LIVE), HB, NOW, VR)
    assert not quiet.save and not quiet.state.unsaved  # nothing owed: not written by a Tick
    assert quiet.state.session is not None and quiet.state.session.last_seen_at == NOW
    assert visitor.next_due(quiet.state, VR) == later(60)  # the expiry, not a write
    due = attrs.evolve(vstate(visitor.Presence.LIVE), saved_at=later(-20))
    assert visitor.apply(due, HB, NOW, VR).save
    owed = attrs.evolve(vstate(visitor.Presence.LIVE), unsaved=True)  # a change not yet written
    assert visitor.apply(owed, HB, NOW, VR).save


def test_a_heartbeat_after_an_absence_starts_a_new_session_and_keeps_the_chat() -> None:
    gone = attrs.evolve(vstate(visitor.Presence.GONE), session=attrs.evolve(
        vstate(visitor.Presence.GONE).session, conversation_id="c1", name="Ana"
    ))  # fmt: skip
    t = visitor.apply(gone, HB, NOW, VR)
    assert t.state.session is not None
    assert (t.state.session.first_seen_at, t.state.session.last_seen_at) == (NOW, NOW)
    assert (t.state.session.conversation_id, t.state.session.name) == ("c1", "Ana")


def test_another_tenants_heartbeat_is_forbidden_and_an_unknown_command_is_a_bug() -> None:
    with pytest.raises(Forbidden):
        visitor.apply(vstate(visitor.Presence.LIVE), attrs.evolve(HB, tenant_id="t2"), NOW, VR)
    with pytest.raises(TypeError, match="cannot handle"):
        visitor.apply(vstate(visitor.Presence.LIVE), "hello", NOW, VR)  # type: ignore[arg-type]


def test_heartbeats_within_a_second_are_coalesced_then_flushed_by_a_tick() -> None:
    first = visitor.apply(vstate(visitor.Presence.NEW), HB, NOW, VR)
    moved = attrs.evolve(HB, current_url="https://shop.example.com/b")
    second = visitor.apply(first.state, moved, later(0.4), VR)
    # a new page is written at once, and announced no sooner than a second after the last
    assert (second.save, second.events) == (True, ())
    assert second.state.unpublished and second.state.coalesced == 1
    assert visitor.next_due(second.state, VR) == later(1)
    early = visitor.apply(second.state, visitor.Tick(), later(0.9), VR)
    assert (early.save, early.events) == (False, ())
    due = visitor.apply(second.state, visitor.Tick(), later(1), VR)
    assert [e.data["currentUrl"] for e in due.events] == ["https://shop.example.com/b"]
    assert not due.state.unsaved and not due.state.unpublished
    assert visitor.next_due(due.state, VR) == later(60.4)  # only the expiry is left


def test_an_unchanged_heartbeat_is_neither_announced_nor_written_each_time_a_change_is() -> None:
    """The inbox keeps a visitor until it hears ``online: false``: a heartbeat that changes
    nothing it shows (same page, title, widget) sends it nothing; the next change does."""
    first = visitor.apply(vstate(visitor.Presence.NEW), HB, NOW, VR)
    assert [e.data["online"] for e in first.events] == [True]  # the arrival
    same = visitor.apply(first.state, HB, later(15), VR)
    assert not same.save and same.events == () and not same.state.unpublished
    assert same.state.session is not None and same.state.session.last_seen_at == later(15)
    kept = visitor.apply(same.state, HB, later(30), VR)  # a third of the expiry since the write
    assert kept.save and kept.events == ()
    moved = visitor.apply(kept.state, attrs.evolve(HB, page_title="Pricing"), later(35), VR)
    assert moved.save and [e.data["pageTitle"] for e in moved.events] == ["Pricing"]


def test_the_expiry_writes_what_is_pending_says_offline_and_stops() -> None:
    live = visitor.apply(vstate(visitor.Presence.NEW), HB, NOW, VR).state
    pending = attrs.evolve(live, unsaved=True)  # a write owed
    t = visitor.apply(pending, visitor.Tick(), later(60.5), VR)
    assert t.stop and t.save and t.state.presence is visitor.Presence.GONE
    assert [e.data["online"] for e in t.events] == [False]
    assert visitor.next_due(t.state, VR) is None


def test_loaded_after_a_crash_an_expired_session_is_still_announced() -> None:
    old = attrs.evolve(SESSION, last_seen_at=later(-120))
    calm = visitor.loaded("v1", old, NOW, VR, after_crash=False)
    assert calm.presence is visitor.Presence.GONE and visitor.next_due(calm, VR) is None
    owed = visitor.loaded("v1", old, NOW, VR, after_crash=True)
    t = visitor.apply(owed, visitor.Tick(), NOW, VR)
    assert t.stop and [e.data["online"] for e in t.events] == [False]
    assert visitor.loaded("v1", None, NOW, VR, after_crash=True).presence is visitor.Presence.NEW


# --- widget -------------------------------------------------------------------------------------

WR = widget.Rules(
    to_wire=lambda row, now: {"id": row["id"], "status": widget.widget_status(row, now)[0]}
)


def wrow(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "w1",
        "tenant_id": "t1",
        "name": "Shop",
        "domains": ["shop.example.com"],
        "wait_timeout_seconds": 60,
        "settings": {},
        "last_seen_at": None,
        "last_seen_domain": None,
        "last_seen_url": None,
        "last_refused_at": None,
        "last_refused_domain": None,
    } | overrides


WIDGET_STATES = {
    "GONE": None,
    "INACTIVE": wrow(),
    "ACTIVE": wrow(last_seen_at=later(-60), last_seen_domain="shop.example.com"),
    "MISCONFIGURED": wrow(last_refused_at=later(-60), last_refused_domain="evil.example"),
}
PING = widget.Ping("shop.example.com", "https://shop.example.com/")
WIDGET_COMMANDS = {
    "describe": widget.Describe(),
    "describe-other-tenant": widget.Describe("t2"),
    "ping": PING,
    "refuse": widget.Refuse("evil.example"),
    "update": widget.Update("t1", {"name": "Shop MX", "domains": None}),
    "update-other-tenant": widget.Update("t2", {"name": "stolen"}),
    "delete": widget.Delete("t1"),
    "tick": widget.Tick(),
}
# (state, command) -> (writes, events, status after) or the error it raises
WIDGET_TABLE: dict[tuple[str, str], Any] = {
    **{(s, c): NotFound for s in ("GONE",) for c in WIDGET_COMMANDS if c != "tick"},
    ("GONE", "tick"): ([], [], None),
    **{
        (s, c): NotFound
        for s in WIDGET_STATES
        if s != "GONE"
        for c in WIDGET_COMMANDS
        if "other" in c
    },
    ("INACTIVE", "describe"): ([], [], "INACTIVE"),
    ("INACTIVE", "ping"): (["SavePing"], ["widget_status_changed"], "ACTIVE"),
    ("INACTIVE", "refuse"): (["SaveRefusal"], ["widget_status_changed"], "MISCONFIGURED"),
    ("INACTIVE", "update"): (["SaveChanges"], ["widget_updated"], "INACTIVE"),
    ("INACTIVE", "delete"): (["SaveDeletion"], ["widget_deleted"], None),
    ("INACTIVE", "tick"): ([], [], "INACTIVE"),
    ("ACTIVE", "describe"): ([], [], "ACTIVE"),
    ("ACTIVE", "ping"): (["SavePing"], [], "ACTIVE"),  # the last write is a minute old
    ("ACTIVE", "refuse"): (["SaveRefusal"], ["widget_status_changed"], "MISCONFIGURED"),
    ("ACTIVE", "update"): (["SaveChanges"], ["widget_updated"], "ACTIVE"),
    ("ACTIVE", "delete"): (["SaveDeletion"], ["widget_deleted"], None),
    ("ACTIVE", "tick"): ([], [], "ACTIVE"),
    ("MISCONFIGURED", "describe"): ([], [], "MISCONFIGURED"),
    ("MISCONFIGURED", "ping"): (["SavePing"], ["widget_status_changed"], "ACTIVE"),
    ("MISCONFIGURED", "refuse"): (["SaveRefusal"], [], "MISCONFIGURED"),  # same domain, same reason
    ("MISCONFIGURED", "update"): (["SaveChanges"], ["widget_updated"], "MISCONFIGURED"),
    ("MISCONFIGURED", "delete"): (["SaveDeletion"], ["widget_deleted"], None),
    ("MISCONFIGURED", "tick"): ([], [], "MISCONFIGURED"),
}


def test_the_widget_table_covers_every_state_and_command() -> None:
    assert set(WIDGET_TABLE) == {(s, c) for s in WIDGET_STATES for c in WIDGET_COMMANDS}


@pytest.mark.parametrize(("state", "command"), sorted(WIDGET_TABLE))
def test_widget_state_by_command(state: str, command: str) -> None:
    row = WIDGET_STATES[state]
    before = widget.WidgetState(row, widget.widget_status(row, NOW) if row else None, later(-60))
    expected = WIDGET_TABLE[(state, command)]
    if expected is NotFound:
        with pytest.raises(NotFound):
            widget.apply(before, WIDGET_COMMANDS[command], NOW, WR)
        return
    writes, events, status = expected
    t = widget.apply(before, WIDGET_COMMANDS[command], NOW, WR)
    assert [type(w).__name__ for w in t.writes] == writes
    assert [e.type for e in t.events] == events
    after = t.state.row
    assert (widget.widget_status(after, NOW)[0] if after else None) == status
    if command in ("describe", "ping", "refuse", "update", "delete") and row is not None:
        assert t.reply is not None and t.reply["id"] == "w1"


def test_pings_within_the_persist_interval_are_coalesced_and_written_by_a_tick() -> None:
    active = widget.WidgetState(WIDGET_STATES["ACTIVE"], ("ACTIVE", None))
    first = widget.apply(active, PING, NOW, WR)
    assert [type(w) for w in first.writes] == [widget.SavePing]
    second = widget.apply(
        first.state, attrs.evolve(PING, url="https://shop.example.com/b"), later(2), WR
    )
    assert second.writes == () and second.state.dirty
    assert widget.next_due(second.state, later(2), WR) == later(5)
    tick = widget.apply(second.state, widget.Tick(), later(5), WR)
    assert [w.row["last_seen_url"] for w in tick.writes] == ["https://shop.example.com/b"]  # type: ignore[union-attr]
    assert not tick.state.dirty
    # an edit writes the coalesced ping first
    again = widget.apply(tick.state, PING, later(6), WR)
    edit = widget.apply(again.state, widget.Update("t1", {"name": "New"}), later(7), WR)
    assert [type(w) for w in edit.writes] == [widget.SavePing, widget.SaveChanges]
    # a new domain is written at once
    moved = widget.apply(edit.state, widget.Ping("www.shop.example.com", None), later(8), WR)
    assert [type(w) for w in moved.writes] == [widget.SavePing]


def test_the_24_hour_window_ends_with_a_tick_that_announces_inactive() -> None:
    t = widget.apply(widget.WidgetState(WIDGET_STATES["INACTIVE"]), PING, NOW, WR)
    due = widget.next_due(t.state, NOW, WR)
    assert due == NOW + widget.ACTIVE_WINDOW
    quiet = widget.apply(t.state, widget.Tick(), due - dt.timedelta(seconds=1), WR)
    assert quiet.events == ()
    end = widget.apply(t.state, widget.Tick(), due, WR)
    assert [e.data["status"] for e in end.events] == ["INACTIVE"]
    assert widget.next_due(end.state, due, WR) is None


# --- router -------------------------------------------------------------------------------------

RR = routing.Rules(reoffer_after_seconds=30)
ANA, BEA, CAL = (RoutingAgent(x, x.title(), None, 2) for x in ("ana", "bea", "cal"))


def view(
    waiting: list[tuple[str, str]] = (),  # type: ignore[assignment]
    open_: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    available: set[str] = frozenset(),  # type: ignore[assignment]
    offline: dict[str, dt.datetime] | None = None,
    average: float | None = None,
) -> routing.View:
    return routing.View(
        "t1",
        RoutingSnapshot(
            waiting=tuple(WaitingChat(c, f"v-{c}", NOW, how) for c, how in waiting),
            open=tuple(OpenChat(c, who, how) for c, who, how in open_),
            agents=(ANA, BEA, CAL),
            average_wait_seconds=average,
        ),
        frozenset(available),
        offline or {},
    )


def test_round_robin_offers_in_turn_under_capacity_and_leaves_manual_chats_alone() -> None:
    rr = routing.ROUND_ROBIN
    v = view(
        waiting=[("c1", rr), ("c2", "manual"), ("c3", rr), ("c4", rr), ("c5", rr), ("c6", rr)],
        open_=[("o1", "ana", rr)],
        available={"ana", "bea"},
    )
    p = routing.plan(routing.RouterState(), v, NOW, RR)
    # bea has none, ana one: bea, then (1 each, bea assigned last) ana, then bea; both full
    assert [(o.conversation_id, o.agent.id) for o in p.offers] == [
        ("c1", "bea"),
        ("c3", "ana"),
        ("c4", "bea"),
    ]
    assert not any(o.transfer for o in p.offers) and p.wake_at is None
    everyone = routing.settle(routing.RouterState(), v, p, frozenset({"c1", "c3", "c4"}), NOW, RR)
    # c2 (manual), c5, c6 wait: positions 1..3, each published once
    assert [(e.data["conversationId"], e.data["position"]) for e in everyone.events] == [
        ("c2", 1),
        ("c5", 2),
        ("c6", 3),
    ]
    assert everyone.state.offers == 3 and everyone.state.wake_at is None
    assert everyone.state.phase is routing.RouterPhase.WATCHING


def test_an_offer_not_taken_keeps_the_chat_in_line_and_looks_again_a_second_later() -> None:
    v = view(waiting=[("c1", routing.ROUND_ROBIN)], available={"ana"}, average=40)
    p = routing.plan(routing.RouterState(), v, NOW, RR)
    t = routing.settle(routing.RouterState(), v, p, frozenset(), NOW, RR)
    assert [(e.data["position"], e.data["estimatedWaitSeconds"]) for e in t.events] == [(1, 40)]
    assert t.state.wake_at == later(1) and t.state.offers == 0
    assert "ana" not in t.state.last_assigned
    # missing again and again (a conversation that keeps crashing) backs off, up to a minute
    waits = []
    for _ in range(9):
        t = routing.settle(t.state, v, p, frozenset(), NOW, RR)
        assert t.state.wake_at is not None
        waits.append((t.state.wake_at - NOW).total_seconds())
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60, 60]
    taken = routing.settle(t.state, v, p, frozenset({"c1"}), NOW, RR)
    assert taken.state.misses == 0 and taken.state.wake_at is None


def test_capacity_counts_every_open_conversation_as_the_commit_does() -> None:
    rr = routing.ROUND_ROBIN
    v = view(waiting=[("c1", rr)], open_=[("o1", "bea", rr)], available={"ana", "bea"})
    # ana holds two tickets (OPEN offline messages): at her limit of 2, though no live chat
    held = attrs.evolve(v, snapshot=attrs.evolve(v.snapshot, held={"ana": 2, "bea": 1}))
    p = routing.plan(routing.RouterState(), held, NOW, RR)
    assert [(o.conversation_id, o.agent.id) for o in p.offers] == [("c1", "bea")]


def test_positions_are_published_when_they_change_or_a_socket_asks_again() -> None:
    v = view(waiting=[("c1", "manual"), ("c2", "manual")])
    first = routing.settle(routing.RouterState(), v, routing.Plan((), None), frozenset(), NOW, RR)
    assert len(first.events) == 2
    same = routing.settle(first.state, v, routing.Plan((), None), frozenset(), NOW, RR)
    assert same.events == ()
    resend = routing.settle(
        first.state, v, routing.Plan((), None), frozenset(), NOW, RR, resend=frozenset({"v-c2"})
    )
    assert [e.data["conversationId"] for e in resend.events] == ["c2"]
    moved = routing.settle(
        first.state, view(waiting=[("c2", "manual")]), routing.Plan((), None), frozenset(), NOW, RR
    )
    assert [(e.data["conversationId"], e.data["position"]) for e in moved.events] == [("c2", 1)]
    idle = routing.settle(moved.state, view(), routing.Plan((), None), frozenset(), NOW, RR)
    assert idle.state.phase is routing.RouterPhase.IDLE


def test_an_absent_agents_chats_are_handed_over_after_the_delay_never_to_them() -> None:
    rr = routing.ROUND_ROBIN
    away_since = {"ana": later(-10)}
    v = view(
        open_=[("o1", "ana", rr), ("o2", "ana", "manual")], available={"bea"}, offline=away_since
    )
    early = routing.plan(routing.RouterState(), v, NOW, RR)
    assert early.offers == () and early.wake_at == later(20)
    due = routing.plan(routing.RouterState(), v, later(20), RR)
    assert [(o.conversation_id, o.agent.id, o.transfer) for o in due.offers] == [
        ("o1", "bea", True)
    ]
    nobody = routing.plan(
        routing.RouterState(), view(open_=[("o1", "ana", rr)], offline=away_since), later(20), RR
    )
    assert nobody.offers == ()


def test_router_apply_looks_then_settles_and_knows_no_other_command() -> None:
    v = view(waiting=[("c1", routing.ROUND_ROBIN)], available={"cal"})
    look = routing.apply(routing.RouterState(), routing.Look(v), NOW, RR)
    assert look.state == routing.RouterState() and look.events == ()
    assert [(o.conversation_id, o.agent.id) for o in look.offers] == [("c1", "cal")]
    assert look.planned is not None
    done = routing.apply(look.state, routing.Offered(v, look.planned, frozenset({"c1"})), NOW, RR)
    assert done.events == () and done.state.offers == 1 and done.state.passes == 1
    assert done.state.last_assigned == {"cal": NOW}
    with pytest.raises(TypeError, match="cannot handle"):
        routing.apply(routing.RouterState(), "nudge", NOW, RR)  # type: ignore[arg-type]


def test_a_widget_loaded_after_a_crash_owes_its_status_to_clients() -> None:
    row = WIDGET_STATES["ACTIVE"]
    calm = widget.loaded(row, NOW)
    assert widget.apply(calm, widget.Tick(), NOW, WR).events == ()
    owed = widget.loaded(row, NOW, after_crash=True)
    assert widget.next_due(owed, NOW, WR) == NOW
    t = widget.apply(owed, widget.Tick(), NOW, WR)
    assert [e.data["status"] for e in t.events] == ["ACTIVE"]
    assert widget.next_due(t.state, NOW, WR) == row["last_seen_at"] + widget.ACTIVE_WINDOW


# --- what a conversation commit checks, derived from before and after ---------------------------

_C = Conversation("c1", "t1", "w1", "v1", Kind.LIVE_CHAT, Status.WAITING, NOW, NOW)
_ANA, _BEA = ConvAgent("ana", "Ana"), ConvAgent("bea", "Bea")


@pytest.mark.parametrize(
    ("before", "after", "claim", "link"),
    [
        (None, _C, None, "set"),  # a visitor's start
        (None, attrs.evolve(_C, status=Status.OPEN, assignee=_ANA), "ana", "set"),  # agent start
        (_C, attrs.evolve(_C, status=Status.OPEN, assignee=_ANA), "ana", None),  # accept
        (
            attrs.evolve(_C, status=Status.OPEN, assignee=_ANA),
            attrs.evolve(_C, status=Status.OPEN, assignee=_BEA),
            "bea",
            None,
        ),  # hand-over
        (
            attrs.evolve(_C, status=Status.OPEN, assignee=_ANA),
            attrs.evolve(_C, status=Status.OPEN, assignee=_ANA, last_seq=9),
            None,
            None,
        ),  # a message in an OPEN chat
        (
            attrs.evolve(_C, status=Status.OPEN, assignee=_ANA),
            attrs.evolve(_C, status=Status.SOLVED, assignee=_ANA),
            None,
            "clear",
        ),  # solve
        (
            attrs.evolve(_C, status=Status.SOLVED, assignee=_ANA),
            attrs.evolve(_C, status=Status.OPEN, assignee=_ANA),
            "ana",
            "set",
        ),  # reopen by the same agent
        (None, attrs.evolve(_C, kind=Kind.OFFLINE_MESSAGE), None, None),  # a ticket
    ],
)
def test_the_commit_derives_its_capacity_claim_and_link_from_before_and_after(
    before: Any, after: Any, claim: str | None, link: str | None
) -> None:
    assert claim_of(before, after) == claim
    assert link_change(before, after) == (Link(link) if link else None)
