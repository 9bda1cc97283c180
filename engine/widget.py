"""The widget actor: one per widget, the single writer of its row, and the judge of its status.

The status rules live here and nowhere else (``docs/widgets.md`` explains them):

* ``MISCONFIGURED`` — the latest installation ping came from a domain outside Targeting (it was
  refused with 403); the reason names the domain.
* ``ACTIVE`` — a valid ping within the last 24 hours.
* ``INACTIVE`` — never pinged, or no valid ping for 24 hours.

:class:`WidgetActor` keeps the widget's row in memory (so the visitor side reads a widget without
a database round trip), applies pings, refusals, edits and deletion, persists them, and publishes
``widget_status_changed`` on the tenant's stream whenever the status or its reason changes —
including the quiet transition ACTIVE -> INACTIVE 24 hours after the last ping, for which it owns
a timer (a cancel scope whose deadline each valid ping moves).

Pings are frequent (every visitor, every 15 s), so the actor writes a ping at most once per
``persist_seconds`` per widget unless the status or the domain changes; the row's ``lastSeenAt``
is therefore exact to within that interval, and the in-memory copy is exact.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock, trio_deadline
from engine.errors import EngineError, NotFound
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Mailbox
from engine.values import Event, EventType, WidgetDeleted

if TYPE_CHECKING:
    from engine.store import WidgetStore

KIND = "widget"
ACTIVE_WINDOW = dt.timedelta(hours=24)


class WidgetStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    MISCONFIGURED = "MISCONFIGURED"


ACTIVE, INACTIVE, MISCONFIGURED = WidgetStatus

Row = dict[str, Any]


# --- pure rules -------------------------------------------------------------------------------


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def normalize_domain(value: str | None) -> str | None:
    """The host of a domain or URL: lower-case, without port or trailing dot, an IP address or
    a host name in ASCII (an international name as IDNA ``xn--``).

    Raises ``ValueError`` for a malformed URL, or a host that is no host name (spaces, words
    of someone's choosing: it would be stored and shown as a refused domain); the caller
    answers 422.
    """
    if not value:
        return None
    value = value.strip().lower()
    if "//" in value:
        value = urlsplit(value).hostname or ""
    else:
        value = value.split("/")[0].split(":")[0]
    host = value.rstrip(".")
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{value!r} is not a host name") from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{value!r} is not a host name")
    return host


def _pattern_host(pattern: str) -> str | None:
    """A Targeting entry's host, as :func:`normalize_domain` makes it; None when it is none."""
    try:
        return normalize_domain(pattern)
    except ValueError:
        return None


def domain_allowed(domain: str | None, targeting: list[str] | tuple[str, ...]) -> bool:
    """True when ``domain`` matches Targeting; an empty Targeting list allows any domain.

    ``example.com`` matches exactly; ``*.example.com`` matches any subdomain of example.com and
    example.com itself.
    """
    if not targeting:
        return True
    host = normalize_domain(domain)
    if host is None:
        return False
    for pattern in targeting:
        pattern = pattern.strip().lower()
        if pattern.startswith("*."):
            base = _pattern_host(pattern[2:])
            if base is not None and (host == base or host.endswith("." + base)):
                return True
        elif host == _pattern_host(pattern):
            return True
    return False


def widget_status(row: Mapping[str, Any], now: dt.datetime) -> tuple[WidgetStatus, str | None]:
    """``(status, reason)`` of a widget row at ``now``: the one place the rules live."""
    seen = row.get("last_seen_at")
    refused = row.get("last_refused_at")
    if refused is not None and (seen is None or refused > seen):
        domain = row.get("last_refused_domain")
        allowed = ", ".join(row.get("domains") or []) or "any domain"
        return (
            MISCONFIGURED,
            f"the snippet runs on {domain}, which is outside Targeting ({allowed}); "
            "the widget is not shown there",
        )
    if seen is not None and now - seen < ACTIVE_WINDOW:
        return ACTIVE, None
    if seen is None:
        return INACTIVE, "no installation ping yet: paste the embed code into your site"
    return INACTIVE, "no installation ping in the last 24 hours"


def active_until(row: Mapping[str, Any], now: dt.datetime) -> dt.datetime | None:
    """When an ACTIVE widget turns INACTIVE if no other ping comes; None unless ACTIVE."""
    if widget_status(row, now)[0] != ACTIVE:
        return None
    seen: dt.datetime = row["last_seen_at"]
    return seen + ACTIVE_WINDOW


# --- commands ---------------------------------------------------------------------------------


@attrs.frozen
class Describe:
    """The widget's row. ``tenant_id`` set = an agent asks: another tenant's widget is NotFound."""

    tenant_id: str | None = None


@attrs.frozen
class Ping:
    """A valid installation ping (the route checked Targeting against the same row)."""

    domain: str | None
    url: str | None


@attrs.frozen
class Refuse:
    """A ping from ``domain``, outside Targeting."""

    domain: str


@attrs.frozen
class Update:
    """An agent's edit: ``changes`` are column values (name, domains, wait_timeout_seconds,
    settings), already validated at the edge."""

    tenant_id: str
    changes: Mapping[str, Any]


@attrs.frozen
class Delete:
    tenant_id: str


# --- the pure core ---------------------------------------------------------------------------


@attrs.frozen
class Tick:
    """Time passed: a coalesced ping may be due for writing, or the 24-hour window may end."""


@attrs.frozen
class Rules:
    """How a widget actor behaves: ``to_wire`` renders a row for events (pure)."""

    to_wire: Callable[[Row, dt.datetime], dict[str, Any]]
    persist_seconds: float = 5.0

    @property
    def persist(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.persist_seconds)


@attrs.frozen
class WidgetState:
    row: Row | None  # None: unknown or deleted
    announced: tuple[WidgetStatus, str | None] | None = None  # status and reason last published
    persisted_at: dt.datetime | None = None  # ``last_seen_at`` of the last ping written
    dirty: bool = False  # a ping is in ``row`` and not yet written


def loaded(row: Row | None, now: dt.datetime, *, after_crash: bool = False) -> WidgetState:
    """The state an actor starts from. After a crash the status may have changed unannounced
    (the 24-hour window ended as it crashed): nothing counts as announced, so the first
    :class:`Tick` announces the current status (a repeat is harmless to clients)."""
    if row is None or after_crash:
        return WidgetState(row)
    return WidgetState(row, widget_status(row, now))


# What a transition asks storage to write, in order, before it is adopted.
@attrs.frozen
class SavePing:
    row: Row


@attrs.frozen
class SaveRefusal:
    row: Row


@attrs.frozen
class SaveChanges:
    changes: Mapping[str, Any]
    at: dt.datetime


@attrs.frozen
class SaveDeletion:
    at: dt.datetime


Write = SavePing | SaveRefusal | SaveChanges | SaveDeletion
Command = Describe | Ping | Refuse | Update | Delete | Tick


@attrs.frozen
class Transition:
    state: WidgetState
    reply: Row | None = None
    writes: tuple[Write, ...] = ()
    events: tuple[Event, ...] = ()


def apply(state: WidgetState, command: Command, now: dt.datetime, rules: Rules) -> Transition:
    """Apply one command to a widget (pure).

    Raises :class:`NotFound` for a widget that does not exist or was deleted, and for another
    tenant's (an agent asking: ``tenant_id`` set), exactly as for an unknown id.
    """
    row = state.row
    if isinstance(command, Tick):
        return _tick(state, now, rules)
    if row is None:
        raise NotFound("no such widget")
    tenant = getattr(command, "tenant_id", None)
    if tenant is not None and tenant != row["tenant_id"]:
        raise NotFound(f"no widget {row['id']}")
    if isinstance(command, Describe):
        return Transition(state, reply=dict(row))
    if isinstance(command, Ping):
        before = widget_status(row, now)
        new = {
            **row,
            "last_seen_at": now,
            "last_seen_domain": command.domain,
            "last_seen_url": command.url,
        }
        due = state.persisted_at is None or now - state.persisted_at >= rules.persist
        write = before != widget_status(new, now) or due
        write = write or command.domain != row.get("last_seen_domain")
        pinged = attrs.evolve(
            state,
            row=new,
            dirty=not write,
            persisted_at=now if write else state.persisted_at,
        )
        return _announced(pinged, now, rules, reply=new, writes=(SavePing(new),) if write else ())
    if isinstance(command, Refuse):
        refused_at = row.get("last_refused_at")
        if (
            widget_status(row, now)[0] == MISCONFIGURED
            and row.get("last_refused_domain") == command.domain
            and refused_at is not None
            and now - refused_at < rules.persist
        ):
            # the same refusal again, stored and announced moments ago: a flood of refused
            # pings costs no write (its status and reason would not change)
            return Transition(state, reply=dict(row))
        new = {**row, "last_refused_at": now, "last_refused_domain": command.domain}
        return _announced(
            attrs.evolve(state, row=new), now, rules, reply=new, writes=(SaveRefusal(new),)
        )
    if isinstance(command, Update):
        changes = {k: v for k, v in command.changes.items() if v is not None}
        new = {**row, **changes, "updated_at": now}
        writes: tuple[Write, ...] = (SaveChanges(dict(command.changes), now),)
        if state.dirty:  # the coalesced ping goes first
            writes = (SavePing(row), *writes)
        updated = attrs.evolve(state, row=new, dirty=False, persisted_at=_seen(state, row))
        event = _event(EventType.WIDGET_UPDATED, new, now, rules.to_wire(new, now))
        done = _announced(updated, now, rules, reply=new, writes=writes)
        return attrs.evolve(done, events=(event, *done.events))
    if isinstance(command, Delete):
        event = _event(EventType.WIDGET_DELETED, row, now, WidgetDeleted(row["id"]).to_wire())
        return Transition(
            WidgetState(None), reply=dict(row), writes=(SaveDeletion(now),), events=(event,)
        )
    raise TypeError(f"a widget cannot handle {type(command).__name__}")


def _tick(state: WidgetState, now: dt.datetime, rules: Rules) -> Transition:
    if state.row is None:
        return Transition(state)
    writes: tuple[Write, ...] = ()
    if state.dirty and state.persisted_at is not None and now >= state.persisted_at + rules.persist:
        writes = (SavePing(state.row),)
        state = attrs.evolve(state, dirty=False, persisted_at=state.row["last_seen_at"])
    return _announced(state, now, rules, writes=writes)


def _seen(state: WidgetState, row: Row) -> dt.datetime | None:
    return row.get("last_seen_at") if state.dirty else state.persisted_at


def _announced(
    state: WidgetState,
    now: dt.datetime,
    rules: Rules,
    *,
    reply: Row | None = None,
    writes: tuple[Write, ...] = (),
) -> Transition:
    """``widget_status_changed`` if the status or its reason changed since the last one."""
    assert state.row is not None
    current = widget_status(state.row, now)
    if current == state.announced:
        return Transition(state, reply=dict(reply) if reply else None, writes=writes)
    event = _event(EventType.WIDGET_STATUS_CHANGED, state.row, now, rules.to_wire(state.row, now))
    return Transition(
        attrs.evolve(state, announced=current),
        reply=dict(reply) if reply else None,
        writes=writes,
        events=(event,),
    )


def _event(type_: EventType, row: Row, now: dt.datetime, data: dict[str, Any]) -> Event:
    return Event(type=type_, at=now, tenant_id=row["tenant_id"], data=data)


def next_due(state: WidgetState, now: dt.datetime, rules: Rules) -> dt.datetime | None:
    """When the actor must wake to :class:`Tick`: the end of the ACTIVE window, or when a
    coalesced ping is due for writing (None: nothing to watch, it may stop idle)."""
    if state.row is None:
        return None
    if state.announced is None:
        return now  # the status is owed to clients
    due = [t for t in (active_until(state.row, now),) if t is not None]
    if state.dirty and state.persisted_at is not None:
        due.append(state.persisted_at + rules.persist)
    return min(due) if due else None


# --- the actor ---------------------------------------------------------------------------------


class WidgetActor:
    """Owns one widget: its row, its status, its 24-hour activity timer; a thin shell around
    :func:`apply` that writes what a transition asks before adopting it, then publishes."""

    kind = KIND

    def __init__(
        self,
        widget_id: str,
        *,
        store: WidgetStore,
        broker: Broker,
        clock: Clock,
        to_wire: Callable[[Row, dt.datetime], dict[str, Any]],
        idle_seconds: float = 300.0,
        persist_seconds: float = 5.0,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.id = widget_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.rules = Rules(to_wire, persist_seconds)
        self.idle_seconds = idle_seconds
        self.faults = faults
        self.state = WidgetState(None)

    @property
    def row(self) -> Row | None:
        return self.state.row

    def describe(self) -> dict[str, Any]:
        row = self.state.row
        if row is None:
            return {"tenant_id": None, "state": "NEW"}
        now = self.clock.now()
        status, _ = widget_status(row, now)
        return {
            "tenant_id": row["tenant_id"],
            "state": status.value,
            "last_seen_at": row.get("last_seen_at"),
            "active_until": active_until(row, now),
            "unsaved_ping": self.state.dirty,
        }

    async def run(self, mailbox: Mailbox) -> None:
        self.faults.check(KIND, "load", self.id)
        row = await self.store.load_widget(self.id)
        self.state = loaded(row, self.clock.now(), after_crash=mailbox.after_crash)
        if self.state.row is None:  # unknown or deleted: answer what is queued, then stop
            self._refuse_all(mailbox)
            return
        try:
            await self._serve(mailbox)
        finally:
            if self.state.dirty and self.state.row is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.store.save_widget_ping(self.state.row)

    async def _serve(self, mailbox: Mailbox) -> None:
        while True:
            due = next_due(self.state, self.clock.now(), self.rules)
            if due is not None:
                deadline = trio_deadline(self.clock, due)
            else:
                deadline = trio.current_time() + self.idle_seconds
            try:
                envelope = await mailbox.receive_until(deadline)
            except trio.EndOfChannel:
                return
            if envelope is None:
                if due is None:
                    return  # idle, nothing to watch
                transition = apply(self.state, Tick(), self.clock.now(), self.rules)
                if transition.events:  # the 24-hour window ended: ACTIVE -> INACTIVE
                    self.faults.check(KIND, "timer", self.id)
                await self._enact(transition)
                continue
            self.faults.check(KIND, "handle", self.id)
            try:
                transition = apply(self.state, envelope.command, self.clock.now(), self.rules)
                await self._enact(transition)
            except EngineError as exc:
                if envelope.reply:
                    envelope.reply.fail(exc)
                continue
            if envelope.reply:
                envelope.reply.set(transition.reply)
            if self.state.row is None:  # deleted
                self._refuse_all(mailbox)
                return

    async def _enact(self, transition: Transition) -> None:
        """Write what the transition asks (a failure crashes us: nothing adopted), adopt it,
        publish its events."""
        for write in transition.writes:
            if isinstance(write, SavePing):
                self.faults.check(KIND, "save", self.id)
                await self.store.save_widget_ping(write.row)
            elif isinstance(write, SaveRefusal):
                await self.store.save_widget_refusal(write.row)
            elif isinstance(write, SaveChanges):
                if await self.store.update_widget(self.id, dict(write.changes), write.at) is None:
                    raise NotFound(f"no widget {self.id}")
            else:
                await self.store.delete_widget(self.id, write.at)
        self.state = transition.state
        for event in transition.events:
            self.broker.publish(event)

    def _refuse_all(self, mailbox: Mailbox) -> None:
        while True:
            try:
                envelope = mailbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if envelope.reply:
                envelope.reply.fail(NotFound(f"no widget {self.id}"))
