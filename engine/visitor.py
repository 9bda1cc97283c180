"""The visitor session: presence of one browser on a site with the widget.

``VisitorSession`` is the state; :class:`VisitorSessionActor` owns it. Each heartbeat moves the
session's expiry deadline (``expiry_seconds`` after the last heartbeat, 60 s by default); when the
deadline passes the actor publishes a last ``visitor_presence_update`` (``online: false``) and stops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock, iso, trio_deadline
from engine.errors import Forbidden
from engine.events import Event, EventType
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Mailbox

if TYPE_CHECKING:
    from engine.store import VisitorStore

KIND = "visitor_session"

ADJECTIVES = (
    "Pink", "Blue", "Green", "Amber", "Coral", "Silver", "Golden", "Indigo", "Olive", "Ruby",
    "Teal", "Violet", "Crimson", "Ivory", "Jade", "Scarlet", "Azure", "Copper", "Plum", "Sage",
)  # fmt: skip
ANIMALS = (
    "Lion", "Otter", "Falcon", "Panda", "Koala", "Fox", "Heron", "Lynx", "Dolphin", "Owl",
    "Badger", "Tiger", "Robin", "Seal", "Zebra", "Wolf", "Crane", "Gecko", "Bison", "Puffin",
)  # fmt: skip


def visitor_alias(visitor_id: str) -> str:
    """A stable, friendly name for an anonymous visitor ("Pink Lion")."""
    digest = hashlib.sha256(visitor_id.encode()).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {ANIMALS[digest[1] % len(ANIMALS)]}"


@attrs.frozen
class VisitorSession:
    visitor_id: str
    tenant_id: str
    widget_id: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    current_url: str | None = None
    current_domain: str | None = None
    page_title: str | None = None
    referrer: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    location: str | None = None
    conversation_id: str | None = None
    name: str | None = None  # what the visitor gave when starting a chat (the contact's name)

    def to_wire(self, now: dt.datetime, *, in_chat: bool | None = None) -> dict[str, Any]:
        return {
            "visitorId": self.visitor_id,
            "displayName": self.name or visitor_alias(self.visitor_id),
            "name": self.name,
            "widgetId": self.widget_id,
            "currentUrl": self.current_url,
            "pageTitle": self.page_title,
            "referrer": self.referrer,
            "firstSeenAt": iso(self.first_seen_at),
            "lastSeenAt": iso(self.last_seen_at),
            "timeOnSiteSeconds": max(0, int((now - self.first_seen_at).total_seconds())),
            "inChat": self.conversation_id is not None if in_chat is None else in_chat,
            "conversationId": self.conversation_id,
            "location": self.location,
        }


@attrs.frozen
class Heartbeat:
    tenant_id: str
    widget_id: str
    current_url: str | None
    current_domain: str | None
    page_title: str | None = None
    referrer: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    location: str | None = None


@attrs.frozen
class JoinedChat:
    conversation_id: str
    name: str | None = None


@attrs.frozen
class LeftChat:
    conversation_id: str


class VisitorSessionActor:
    """Owns one visitor's presence; persists before it publishes.

    A busy page may send many heartbeats; the actor coalesces them. It publishes at most one
    ``visitor_presence_update`` per ``publish_interval`` (the latest state, sent when the
    interval has passed), and writes a heartbeat that changes nothing but the time at most once
    per interval too. A new session, a new page (URL or title) and joining or leaving a chat are
    written at once; the expiry update (``online: false``) is published at once.
    """

    kind = KIND

    def __init__(
        self,
        visitor_id: str,
        *,
        store: VisitorStore,
        broker: Broker,
        clock: Clock,
        expiry_seconds: float = 60.0,
        publish_interval: float = 1.0,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.id = visitor_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.expiry_seconds = expiry_seconds
        self.publish_interval = publish_interval
        self.faults = faults
        self.session: VisitorSession | None = None
        self._published_at = -math.inf  # Trio time of the last presence update
        self._saved_at = -math.inf  # Trio time of the last write
        self._unpublished = False
        self._unsaved = False
        self.coalesced = 0  # commands whose presence update was folded into a later one

    def describe(self) -> dict[str, Any]:
        s = self.session
        return {
            "tenantId": s.tenant_id if s else None,
            "state": "LIVE" if s else "NEW",
            "currentUrl": s.current_url if s else None,
            "conversationId": s.conversation_id if s else None,
            "expiresAt": iso(self._expires_at()) if s else None,
            "coalescedHeartbeats": self.coalesced,
        }

    def _expires_at(self) -> dt.datetime | None:
        if self.session is None:
            return None
        return self.session.last_seen_at + dt.timedelta(seconds=self.expiry_seconds)

    def _flush_due(self) -> float:
        """Trio time when the coalesced write or update is due (inf when nothing waits)."""
        due = math.inf
        if self._unsaved:
            due = min(due, self._saved_at + self.publish_interval)
        if self._unpublished:
            due = min(due, self._published_at + self.publish_interval)
        return due

    async def run(self, mailbox: Mailbox) -> None:
        self.faults.check(KIND, "load", self.id)
        self.session = await self.store.load_visitor(self.id)
        # after a crash the expiry may be due and not yet announced: announce it (clients take
        # a second "offline" calmly; a visitor stuck "online" would be a lie)
        live = self.session is not None and (
            mailbox.after_crash or not self._expired(self.session, self.clock.now())
        )
        try:
            while True:
                expires = self._expires_at()
                if live and expires is not None:
                    deadline = trio_deadline(self.clock, expires)
                else:  # nothing live to expire: stop if no command comes
                    deadline = trio.current_time() + self.expiry_seconds
                flush = self._flush_due()
                with trio.move_on_at(min(deadline, flush)) as waited:
                    try:
                        envelope = await mailbox.receive()
                    except trio.EndOfChannel:
                        return
                if waited.cancelled_caught:
                    if trio.current_time() >= flush:
                        await self._flush()
                        continue
                    if live:
                        self.faults.check(KIND, "expiry", self.id)
                        await self._flush()
                        self._publish(online=False)
                    return
                self.faults.check(KIND, "handle", self.id)
                try:
                    result = await self._handle(envelope.command)
                except Forbidden as exc:
                    if envelope.reply:
                        envelope.reply.fail(exc)
                    continue
                live = True
                if envelope.reply:
                    envelope.reply.set(result)
        finally:
            if self._unsaved and self.session is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.store.save_visitor(self.session)

    async def _flush(self) -> None:
        now = trio.current_time()
        if self._unsaved and now >= self._saved_at + self.publish_interval:
            await self._save()
        if self._unpublished and now >= self._published_at + self.publish_interval:
            self._publish(online=True)

    async def _save(self) -> None:
        assert self.session is not None
        self.faults.check(KIND, "save", self.id)
        await self.store.save_visitor(self.session)
        self._saved_at = trio.current_time()
        self._unsaved = False

    async def _handle(self, command: Any) -> VisitorSession:
        now = self.clock.now()
        current = self.session
        if isinstance(command, Heartbeat):
            if current is not None and current.tenant_id != command.tenant_id:
                raise Forbidden("this visitor belongs to another tenant")
            if current is None or self._expired(current, now):
                first_seen = now
            else:
                first_seen = current.first_seen_at
            new = VisitorSession(
                visitor_id=self.id,
                tenant_id=command.tenant_id,
                widget_id=command.widget_id,
                first_seen_at=first_seen,
                last_seen_at=now,
                current_url=command.current_url,
                current_domain=command.current_domain,
                page_title=command.page_title,
                referrer=command.referrer,
                ip=command.ip or (current.ip if current else None),
                user_agent=command.user_agent or (current.user_agent if current else None),
                location=command.location or (current.location if current else None),
                conversation_id=current.conversation_id if current else None,
                name=current.name if current else None,
            )
            moved = (
                current is None
                or first_seen != current.first_seen_at
                or (new.current_url, new.page_title, new.widget_id)
                != (current.current_url, current.page_title, current.widget_id)
            )
        elif isinstance(command, JoinedChat | LeftChat):
            if current is None:
                raise Forbidden("no visitor session: send a heartbeat first")
            conversation_id = (
                command.conversation_id
                if isinstance(command, JoinedChat)
                else (
                    None
                    if current.conversation_id == command.conversation_id
                    else current.conversation_id
                )
            )
            name = (
                command.name if isinstance(command, JoinedChat) and command.name else current.name
            )
            new = attrs.evolve(
                current, conversation_id=conversation_id, last_seen_at=now, name=name
            )
            moved = True
        else:
            raise TypeError(f"visitor session cannot handle {type(command).__name__}")
        self.session = new
        clock_now = trio.current_time()
        if moved or clock_now >= self._saved_at + self.publish_interval:
            self._unsaved = True
            await self._save()
        else:
            self._unsaved = True
        if clock_now >= self._published_at + self.publish_interval:
            self._publish(online=True)
        else:
            self.coalesced += 1
            self._unpublished = True
        return new

    def _expired(self, session: VisitorSession, now: dt.datetime) -> bool:
        return now - session.last_seen_at > dt.timedelta(seconds=self.expiry_seconds)

    def _publish(self, *, online: bool) -> None:
        if self.session is None:
            return
        self._published_at = trio.current_time()
        self._unpublished = False
        now = self.clock.now()
        data = self.session.to_wire(now)
        data["online"] = online
        self.broker.publish(
            Event(
                type=EventType.VISITOR_PRESENCE_UPDATE.value,
                at=now,
                tenant_id=self.session.tenant_id,
                data=data,
            )
        )
