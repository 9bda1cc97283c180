"""The visitor session: presence of one browser on a site with the widget.

``VisitorSession`` is the state; :class:`VisitorSessionActor` owns it. Each heartbeat moves the
session's expiry deadline (``expiry_seconds`` after the last heartbeat, 60 s by default); when the
deadline passes the actor publishes a last ``visitor_presence_update`` (``online: false``) and stops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock, iso, trio_deadline
from engine.errors import ActorUnavailable, Forbidden
from engine.events import Event, EventType
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

    def to_wire(self, now: dt.datetime, *, in_chat: bool | None = None) -> dict[str, Any]:
        return {
            "visitorId": self.visitor_id,
            "displayName": visitor_alias(self.visitor_id),
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


@attrs.frozen
class LeftChat:
    conversation_id: str


class VisitorSessionActor:
    """Owns one visitor's presence; persists before it publishes."""

    kind = KIND

    def __init__(
        self,
        visitor_id: str,
        *,
        store: VisitorStore,
        broker: Broker,
        clock: Clock,
        expiry_seconds: float = 60.0,
    ) -> None:
        self.id = visitor_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.expiry_seconds = expiry_seconds
        self.session: VisitorSession | None = None

    def describe(self) -> dict[str, Any]:
        s = self.session
        return {
            "tenantId": s.tenant_id if s else None,
            "state": "LIVE" if s else "NEW",
            "currentUrl": s.current_url if s else None,
            "conversationId": s.conversation_id if s else None,
            "expiresAt": iso(self._expires_at()) if s else None,
        }

    def _expires_at(self) -> dt.datetime | None:
        if self.session is None:
            return None
        return self.session.last_seen_at + dt.timedelta(seconds=self.expiry_seconds)

    async def run(self, mailbox: Mailbox) -> None:
        self.session = await self.store.load_visitor(self.id)
        live = self.session is not None and not self._expired(self.session, self.clock.now())
        while True:
            expires = self._expires_at()
            if live and expires is not None:
                deadline = trio_deadline(self.clock, expires)
            else:  # nothing live to expire: stop if no command comes
                deadline = trio.current_time() + self.expiry_seconds
            with trio.move_on_at(deadline) as expiry:
                try:
                    envelope = await mailbox.receive()
                except trio.EndOfChannel:
                    return
            if expiry.cancelled_caught:
                if live:
                    self._publish(online=False)
                return
            try:
                result = await self._handle(envelope.command)
            except Forbidden as exc:
                if envelope.reply:
                    envelope.reply.fail(exc)
                continue
            except BaseException:
                if envelope.reply:
                    envelope.reply.fail(ActorUnavailable("visitor session failed; retry"))
                raise
            live = True
            if envelope.reply:
                envelope.reply.set(result)

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
            )
            await self.store.save_visitor(new)
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
            new = attrs.evolve(current, conversation_id=conversation_id, last_seen_at=now)
            await self.store.save_visitor(new)
        else:
            raise TypeError(f"visitor session cannot handle {type(command).__name__}")
        self.session = new
        self._publish(online=True)
        return new

    def _expired(self, session: VisitorSession, now: dt.datetime) -> bool:
        return now - session.last_seen_at > dt.timedelta(seconds=self.expiry_seconds)

    def _publish(self, *, online: bool) -> None:
        if self.session is None:
            return
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
