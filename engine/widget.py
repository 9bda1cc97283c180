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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock, iso, trio_deadline
from engine.errors import EngineError, NotFound
from engine.events import Event, EventType
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Mailbox

if TYPE_CHECKING:
    from engine.store import WidgetStore

KIND = "widget"
ACTIVE_WINDOW = dt.timedelta(hours=24)
ACTIVE, INACTIVE, MISCONFIGURED = "ACTIVE", "INACTIVE", "MISCONFIGURED"

Row = dict[str, Any]


# --- pure rules -------------------------------------------------------------------------------


def normalize_domain(value: str | None) -> str | None:
    """The host of a domain or URL, lower-case, without port or trailing dot.

    Raises ``ValueError`` for a malformed URL (the caller answers 422).
    """
    if not value:
        return None
    value = value.strip().lower()
    if "//" in value:
        value = urlsplit(value).hostname or ""
    else:
        value = value.split("/")[0].split(":")[0]
    return value.rstrip(".") or None


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
            base = pattern[2:]
            if host == base or host.endswith("." + base):
                return True
        elif host == normalize_domain(pattern):
            return True
    return False


def widget_status(row: Mapping[str, Any], now: dt.datetime) -> tuple[str, str | None]:
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


# --- the actor --------------------------------------------------------------------------------


class WidgetActor:
    """Owns one widget: its row, its status, its 24-hour activity timer."""

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
        self.to_wire = to_wire
        self.idle_seconds = idle_seconds
        self.persist_seconds = persist_seconds
        self.faults = faults
        self.row: Row | None = None
        self._persisted_at: dt.datetime | None = None  # of the last ping written
        self._dirty = False  # a coalesced ping not yet written
        self._announced: tuple[str, str | None] | None = None

    def describe(self) -> dict[str, Any]:
        if self.row is None:
            return {"tenantId": None, "state": "NEW"}
        now = self.clock.now()
        status, _ = widget_status(self.row, now)
        return {
            "tenantId": self.row["tenant_id"],
            "state": status,
            "lastSeenAt": iso(self.row.get("last_seen_at")),
            "activeUntil": iso(active_until(self.row, now)),
            "unsavedPing": self._dirty,
        }

    async def run(self, mailbox: Mailbox) -> None:
        self.faults.check(KIND, "load", self.id)
        self.row = await self.store.load_widget(self.id)
        if self.row is None:  # unknown or deleted: answer what is queued, then stop
            self._refuse_all(mailbox)
            return
        self._announced = widget_status(self.row, self.clock.now())
        try:
            await self._serve(mailbox)
        finally:
            if self._dirty and self.row is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.store.save_widget_ping(self.row)

    async def _serve(self, mailbox: Mailbox) -> None:
        assert self.row is not None
        while True:
            now = self.clock.now()
            until = active_until(self.row, now)
            timer = until is not None
            if timer:
                assert until is not None
                deadline = trio_deadline(self.clock, until)
                if self._dirty:  # write the coalesced ping when it is due
                    assert self._persisted_at is not None
                    due = self._persisted_at + dt.timedelta(seconds=self.persist_seconds)
                    deadline = min(deadline, trio_deadline(self.clock, due))
            else:
                deadline = trio.current_time() + self.idle_seconds
            with trio.move_on_at(deadline) as waited:
                try:
                    envelope = await mailbox.receive()
                except trio.EndOfChannel:
                    return
            if waited.cancelled_caught:
                if self._dirty:
                    await self._write_ping()
                    continue
                if timer:  # 24 hours without a valid ping: ACTIVE -> INACTIVE
                    self.faults.check(KIND, "timer", self.id)
                    self._announce()
                    continue
                return  # idle, nothing to watch
            self.faults.check(KIND, "handle", self.id)
            try:
                result = await self._handle(envelope.command)
            except EngineError as exc:
                if envelope.reply:
                    envelope.reply.fail(exc)
                continue
            if envelope.reply:
                envelope.reply.set(result)
            if self.row is None:  # deleted
                self._refuse_all(mailbox)
                return

    def _refuse_all(self, mailbox: Mailbox) -> None:
        while True:
            try:
                envelope = mailbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if envelope.reply:
                envelope.reply.fail(NotFound(f"no widget {self.id}"))

    async def _handle(self, command: Any) -> Row:
        assert self.row is not None
        now = self.clock.now()
        if isinstance(command, Describe):
            self._check_tenant(command.tenant_id)
            return dict(self.row)
        if isinstance(command, Ping):
            before = widget_status(self.row, now)
            domain_changed = command.domain != self.row.get("last_seen_domain")
            self.row = {
                **self.row,
                "last_seen_at": now,
                "last_seen_domain": command.domain,
                "last_seen_url": command.url,
            }
            due = self._persisted_at is None or now - self._persisted_at >= dt.timedelta(
                seconds=self.persist_seconds
            )
            if before != widget_status(self.row, now) or domain_changed or due:
                await self._write_ping()
            else:
                self._dirty = True
            self._announce()
            return dict(self.row)
        if isinstance(command, Refuse):
            previous = self.row
            self.row = {**self.row, "last_refused_at": now, "last_refused_domain": command.domain}
            try:
                await self.store.save_widget_refusal(self.row)
            except BaseException:
                self.row = previous
                raise
            self._announce()
            return dict(self.row)
        if isinstance(command, Update):
            self._check_tenant(command.tenant_id)
            if self._dirty:
                await self._write_ping()
            row = await self.store.update_widget(self.id, dict(command.changes), now)
            if row is None:
                raise NotFound(f"no widget {self.id}")
            self.row = row
            self._publish(EventType.WIDGET_UPDATED, self.to_wire(row, now))
            self._announce()
            return dict(row)
        if isinstance(command, Delete):
            self._check_tenant(command.tenant_id)
            await self.store.delete_widget(self.id, now)
            deleted = self.row
            self.row = None
            self._dirty = False
            self._publish(EventType.WIDGET_DELETED, {"id": self.id}, tenant_id=deleted["tenant_id"])
            return deleted
        raise TypeError(f"a widget cannot handle {type(command).__name__}")

    def _check_tenant(self, tenant_id: str | None) -> None:
        assert self.row is not None
        if tenant_id is not None and tenant_id != self.row["tenant_id"]:
            raise NotFound(f"no widget {self.id}")

    async def _write_ping(self) -> None:
        assert self.row is not None
        self.faults.check(KIND, "save", self.id)
        await self.store.save_widget_ping(self.row)
        self._persisted_at = self.row["last_seen_at"]
        self._dirty = False

    def _announce(self) -> None:
        """Publish ``widget_status_changed`` if the status or its reason changed."""
        assert self.row is not None
        now = self.clock.now()
        current = widget_status(self.row, now)
        if current == self._announced:
            return
        self._announced = current
        self._publish(EventType.WIDGET_STATUS_CHANGED, self.to_wire(self.row, now))

    def _publish(
        self, type_: EventType, data: dict[str, Any], *, tenant_id: str | None = None
    ) -> None:
        tenant = tenant_id or (self.row["tenant_id"] if self.row else None)
        assert tenant is not None
        self.broker.publish(
            Event(type=type_.value, at=self.clock.now(), tenant_id=tenant, data=data)
        )
