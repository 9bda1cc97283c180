"""The visitor session: one browser on a site with the widget, and the owner of its live chat.

A pure core and a thin actor, like the conversation's:

* :func:`apply` ``(state, command, now, rules) -> Transition`` decides presence with no Trio and
  no database: each heartbeat moves the session's expiry (``expiry_seconds`` after the last one);
  writes and ``visitor_presence_update`` events are coalesced to at most one per
  ``publish_interval`` (a new session, a new page and the expiry are never held back); when the
  expiry passes, a last update says ``online: false`` and the actor stops. :func:`next_due` says
  when the actor must wake to :class:`Tick`.
* :class:`VisitorSessionActor` writes a new session's row before it publishes or answers (a
  chat's commit links that row); later presence writes are soft state, queued to the store's
  group writer with no wait (see :meth:`VisitorSessionActor._enact`). It owns the rule **one
  live chat per visitor**: :class:`StartChat` (the visitor's, or an agent's with a live visitor) is its command.
  It refuses a start while the chat it knows of is still active (asking that conversation's actor,
  the single writer of its status), otherwise it sends ``Create`` to the new conversation's actor,
  whose one commit stores the contact, the conversation, the first message and the visitor's link
  to it. A partial unique index in PostgreSQL refuses whatever slips past (a reopen racing a
  start); the actor then learns the active chat from the refusal.

What each column is written by: the visitor actor writes ``visitor_sessions`` except
``conversation_id``, which the conversation commits write (set on start or reopen, cleared when
solved); ``contacts`` is written by the commit that starts a chat.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock, trio_deadline
from engine.conversation import Create
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard, Outcome, Peek, sent_key
from engine.errors import ConversationActive, EngineError, Forbidden, NotFound, VisitorGone
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Mailbox
from engine.values import (
    Agent,
    Contact,
    Event,
    EventType,
    Kind,
    Status,
    VisitorPresenceUpdate,
    VisitorSession,
)
from engine.widget import KIND as WIDGET
from engine.widget import Describe

if TYPE_CHECKING:
    from engine.store import VisitorStore

KIND = "visitor_session"


# --- the pure core ------------------------------------------------------------------------------


class Presence(StrEnum):
    NEW = "NEW"  # no session stored
    LIVE = "LIVE"  # heartbeats come; it expires ``expiry_seconds`` after the last one
    GONE = "GONE"  # expired (announced) or found expired when loaded


@attrs.frozen
class Rules:
    expiry_seconds: float = 60.0
    publish_interval: float = 1.0

    @property
    def expiry(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.expiry_seconds)

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.publish_interval)

    @property
    def keep_alive(self) -> dt.timedelta:
        """How often a heartbeat that changes nothing but ``last_seen_at`` is written: a third of
        the expiry. Whoever reads ``last_seen_at`` (Live visitors, a takeover's rehydration)
        allows the expiry, so a stored value this old, plus a heartbeat's interval, still says
        live."""
        return max(self.interval, self.expiry / 3)


@attrs.frozen
class VisitorState:
    visitor_id: str
    session: VisitorSession | None = None
    presence: Presence = Presence.NEW
    saved_at: dt.datetime | None = None  # the last write
    published_at: dt.datetime | None = None  # the last presence update
    unsaved: bool = False  # a coalesced change not yet written
    unpublished: bool = False  # a coalesced change not yet published
    coalesced: int = 0  # commands whose update was folded into a later one

    def expires_at(self, rules: Rules) -> dt.datetime | None:
        if self.session is None or self.presence is not Presence.LIVE:
            return None
        return self.session.last_seen_at + rules.expiry


def loaded(
    visitor_id: str,
    session: VisitorSession | None,
    now: dt.datetime,
    rules: Rules,
    *,
    after_crash: bool,
) -> VisitorState:
    """The state an actor starts from. After a crash an expiry that is due may not have been
    announced yet: the session counts as LIVE so that the next :class:`Tick` announces it."""
    if session is None:
        return VisitorState(visitor_id)
    live = after_crash or now - session.last_seen_at <= rules.expiry
    return VisitorState(visitor_id, session, Presence.LIVE if live else Presence.GONE)


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
    """The visitor's live chat became active (a start, a reopen): for presence (``inChat``)."""

    conversation_id: str
    name: str | None = None


@attrs.frozen
class LeftChat:
    """That chat was solved: for presence (``inChat``)."""

    conversation_id: str


@attrs.frozen
class Tick:
    """Time passed: a coalesced write or update may be due, or the expiry."""


PresenceCommand = Heartbeat | JoinedChat | LeftChat | Tick


@attrs.frozen
class Transition:
    state: VisitorState
    save: bool = False  # write ``state.session`` before publishing
    events: tuple[Event, ...] = ()
    stop: bool = False  # expired: the actor stops after this


def apply(
    state: VisitorState, command: PresenceCommand, now: dt.datetime, rules: Rules
) -> Transition:
    """Apply one presence command (pure). Raises :class:`Forbidden` for another tenant's
    heartbeat; :class:`TypeError` for a command it does not know (a bug: the actor crashes)."""
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"a visitor session cannot handle {type(command).__name__}")
    return handler(state, command, now, rules)


def _heartbeat(state: VisitorState, cmd: Any, now: dt.datetime, rules: Rules) -> Transition:
    assert isinstance(cmd, Heartbeat)
    current = state.session
    if current is not None and current.tenant_id != cmd.tenant_id:
        raise Forbidden("this visitor belongs to another tenant")
    fresh = current is None or state.presence is not Presence.LIVE
    fresh = fresh or (current is not None and now - current.last_seen_at > rules.expiry)
    session = VisitorSession(
        visitor_id=state.visitor_id,
        tenant_id=cmd.tenant_id,
        widget_id=cmd.widget_id,
        first_seen_at=now if fresh or current is None else current.first_seen_at,
        last_seen_at=now,
        current_url=cmd.current_url,
        current_domain=cmd.current_domain,
        page_title=cmd.page_title,
        referrer=cmd.referrer,
        ip=cmd.ip or (current.ip if current else None),
        user_agent=cmd.user_agent or (current.user_agent if current else None),
        location=cmd.location or (current.location if current else None),
        conversation_id=current.conversation_id if current else None,
        name=current.name if current else None,
    )
    moved = (
        current is None
        or fresh
        or (session.current_url, session.page_title, session.widget_id)
        != (current.current_url, current.page_title, current.widget_id)
    )
    # the inbox hears of a heartbeat only when what it shows changed (the page, its title, the
    # widget, an arrival or a return): an unchanged heartbeat keeps the visitor LIVE quietly,
    # as the inbox keeps a visitor until it hears ``online: false`` (2,000 open widgets
    # otherwise sent every inbox an event per visitor per heartbeat)
    # an unchanged heartbeat moves only last_seen_at: written every keep_alive, not every time
    # (with 15 s heartbeats, every other one: half the writes of a crowd of idle visitors)
    keep = (
        moved or state.unsaved or state.saved_at is None or now >= state.saved_at + rules.keep_alive
    )
    return _changed(state, session, now, rules, save_now=moved, may_save=keep, announce=moved)


def _joined(state: VisitorState, cmd: Any, now: dt.datetime, rules: Rules) -> Transition:
    assert isinstance(cmd, JoinedChat | LeftChat)
    current = state.session
    if current is None:
        return Transition(state)  # no session to show in Live visitors: nothing to tell
    if isinstance(cmd, JoinedChat):
        session = attrs.evolve(
            current, conversation_id=cmd.conversation_id, name=cmd.name or current.name
        )
    elif current.conversation_id == cmd.conversation_id:
        session = attrs.evolve(current, conversation_id=None)
    else:
        return Transition(state)  # another chat ended: this one is unchanged
    if state.presence is not Presence.LIVE:  # not on the site: remembered, not announced
        return Transition(attrs.evolve(state, session=session))
    # the link is the conversation commit's to write: nothing of this row changed, so nothing
    # is written (a write already pending stays pending)
    return _changed(state, session, now, rules, save_now=False, may_save=False)


def _changed(
    state: VisitorState,
    session: VisitorSession,
    now: dt.datetime,
    rules: Rules,
    *,
    save_now: bool,
    may_save: bool = True,
    announce: bool = True,
) -> Transition:
    due = state.saved_at is None or now >= state.saved_at + rules.interval
    save = may_save and (save_now or due)
    wanted = announce or state.unpublished  # a change still waiting is announced all the same
    publish = wanted and (state.published_at is None or now >= state.published_at + rules.interval)
    new = attrs.evolve(
        state,
        session=session,
        presence=Presence.LIVE,
        saved_at=now if save else state.saved_at,
        unsaved=state.unsaved if not may_save else not save,
        published_at=now if publish else state.published_at,
        unpublished=wanted and not publish,
        coalesced=state.coalesced + (1 if wanted and not publish else 0),
    )
    events = (_presence(session, now, online=True),) if publish else ()
    return Transition(new, save=save, events=events)


def _tick(state: VisitorState, cmd: Any, now: dt.datetime, rules: Rules) -> Transition:
    session = state.session
    if session is None:
        return Transition(state)
    expires = state.expires_at(rules)
    if expires is not None and now >= expires:
        gone = attrs.evolve(state, presence=Presence.GONE, unsaved=False, unpublished=False)
        offline = _presence(session, now, online=False)
        return Transition(gone, save=state.unsaved, events=(offline,), stop=True)
    save = state.unsaved and state.saved_at is not None and now >= state.saved_at + rules.interval
    publish = (
        state.unpublished
        and state.published_at is not None
        and now >= state.published_at + rules.interval
    )
    new = attrs.evolve(
        state,
        saved_at=now if save else state.saved_at,
        unsaved=state.unsaved and not save,
        published_at=now if publish else state.published_at,
        unpublished=state.unpublished and not publish,
    )
    events = (_presence(session, now, online=True),) if publish else ()
    return Transition(new, save=save, events=events)


_HANDLERS: dict[type, Callable[[VisitorState, Any, dt.datetime, Rules], Transition]] = {
    Heartbeat: _heartbeat,
    JoinedChat: _joined,
    LeftChat: _joined,
    Tick: _tick,
}


def next_due(state: VisitorState, rules: Rules) -> dt.datetime | None:
    """When the actor must wake to :class:`Tick` (None: nothing is due, it may stop idle)."""
    due = [t for t in (state.expires_at(rules),) if t is not None]
    if state.unsaved and state.saved_at is not None:
        due.append(state.saved_at + rules.interval)
    if state.unpublished and state.published_at is not None:
        due.append(state.published_at + rules.interval)
    return min(due) if due else None


def _presence(session: VisitorSession, now: dt.datetime, *, online: bool) -> Event:
    live = session.live(now)
    data = VisitorPresenceUpdate(**attrs.asdict(live, recurse=False), online=online).to_wire()
    return Event(
        type=EventType.VISITOR_PRESENCE_UPDATE, at=now, tenant_id=session.tenant_id, data=data
    )


# --- starting a chat ---------------------------------------------------------------------------


@attrs.frozen
class StartChat:
    """Start the visitor's live chat: the visitor from the widget, or an agent (``opened_by``).

    ``conversation_id`` and ``message_id`` are minted by the caller; ``ip`` and ``user_agent``
    are those of the visitor's request (None when an agent starts it: the session's are used).
    """

    tenant_id: str
    conversation_id: str
    message_id: str
    message: str
    client_message_id: str | None = None
    widget_id: str | None = None  # None: the widget of the visitor's session
    wait_timeout_seconds: int = 60
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    opened_by: Agent | None = None


@attrs.frozen
class Started:
    """What a :class:`StartChat` gave: the new conversation, or (``replay``) the same request
    again, answered with the conversation it started the first time."""

    outcome: Outcome
    replay: bool = False


Dispatch = Callable[[str, str, Any], Awaitable[Any]]


# --- the actor ---------------------------------------------------------------------------------


class VisitorSessionActor:
    """Owns one visitor's presence and its live chat; a thin shell around :func:`apply`."""

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
        dispatch: Dispatch | None = None,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.id = visitor_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.rules = Rules(expiry_seconds, publish_interval)
        self.dispatch = dispatch
        self.faults = faults
        self.state = VisitorState(visitor_id)
        self.stored = False  # the session's row exists (loaded, or written once by us)

    @property
    def session(self) -> VisitorSession | None:
        return self.state.session

    @property
    def coalesced(self) -> int:
        return self.state.coalesced

    def describe(self) -> dict[str, Any]:
        s = self.state.session
        return {
            "tenant_id": s.tenant_id if s else None,
            "state": self.state.presence.value,
            "current_url": s.current_url if s else None,
            "conversation_id": s.conversation_id if s else None,
            "expires_at": self.state.expires_at(self.rules),
            "coalesced_heartbeats": self.state.coalesced,
        }

    async def run(self, mailbox: Mailbox) -> None:
        self.faults.check(KIND, "load", self.id)
        session = await self.store.load_visitor(self.id)
        self.stored = session is not None
        self.state = loaded(
            self.id, session, self.clock.now(), self.rules, after_crash=mailbox.after_crash
        )
        try:
            await self._serve(mailbox)
        finally:
            if self.state.unsaved and self.state.session is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.store.save_visitor(self.state.session)

    async def _serve(self, mailbox: Mailbox) -> None:
        while True:
            due = next_due(self.state, self.rules)
            if due is not None:
                deadline = trio_deadline(self.clock, due)
            else:  # nothing live, nothing pending: stop if no command comes
                deadline = trio.current_time() + self.rules.expiry_seconds
            try:
                envelope = await mailbox.receive_until(deadline)
            except trio.EndOfChannel:
                return
            if envelope is None:
                if due is None:
                    return
                transition = apply(self.state, Tick(), self.clock.now(), self.rules)
                if transition.stop:
                    self.faults.check(KIND, "expiry", self.id)
                await self._enact(transition)
                if transition.stop:
                    return
                continue
            self.faults.check(KIND, "handle", self.id)
            try:
                if isinstance(envelope.command, StartChat):
                    result: Any = await self._start_chat(envelope.command)
                else:
                    await self._apply(envelope.command)
                    result = self.state.session
            except EngineError as exc:
                if envelope.reply:
                    envelope.reply.fail(exc)
                continue
            if envelope.reply:
                envelope.reply.set(result)

    async def _apply(self, command: PresenceCommand) -> None:
        await self._enact(apply(self.state, command, self.clock.now(), self.rules))

    async def _enact(self, transition: Transition) -> None:
        """Write (if asked), then adopt the state, then publish.

        A session's first write is awaited before anything is published or answered: a chat's
        commit links the visitor's row, which must exist by then. Later writes of presence (a
        page change, ``last_seen_at``) are soft state: queued to the store's group writer with
        no wait, so a heartbeat's answer waits for no database. A crash loses at most the
        writes of one round; the next heartbeat (15 s) writes again.
        """
        state = transition.state
        if transition.save and state.session is not None:
            self.faults.check(KIND, "save", self.id)
            if not (self.stored and self.store.save_visitor_soon(state.session)):
                await self.store.save_visitor(state.session)
                self.stored = True
        self.state = state
        for event in transition.events:
            self.broker.publish(event)

    async def _start_chat(self, cmd: StartChat) -> Started:
        session = self.state.session
        if cmd.opened_by is not None:  # an agent starts it: the visitor must be here now
            if session is None or session.tenant_id != cmd.tenant_id:
                raise NotFound(f"no visitor {self.id}")
            if self.state.presence is not Presence.LIVE or (
                self.clock.now() - session.last_seen_at > self.rules.expiry
            ):
                raise VisitorGone("this visitor left the site")
            # the widget it came through must still exist (its actor answers from memory)
            await self._dispatch(WIDGET, session.widget_id, Describe(cmd.tenant_id))
        elif session is not None and session.tenant_id != cmd.tenant_id:
            raise Forbidden("this visitor belongs to another tenant")
        # who sent the first message, to recognise the same start again
        kind, who = ("agent", cmd.opened_by.id) if cmd.opened_by else ("visitor", self.id)
        sender = sent_key(kind, who, cmd.client_message_id)
        if session is not None and session.conversation_id is not None:
            replay = await self._still_active(cmd, session.conversation_id, sender)
            if replay is not None:
                return replay
        widget_id = cmd.widget_id or (session.widget_id if session else None)
        if widget_id is None:
            raise NotFound(f"no visitor {self.id}")
        name = cmd.name.strip() if cmd.name and cmd.name.strip() else None
        create = Create(
            conversation_id=cmd.conversation_id,
            tenant_id=cmd.tenant_id,
            widget_id=widget_id,
            visitor_id=self.id,
            kind=Kind.LIVE_CHAT,
            wait_timeout_seconds=cmd.wait_timeout_seconds,
            first_message_id=cmd.message_id,
            first_message=cmd.message,
            visitor_name=name,
            client_message_id=cmd.client_message_id,
            opened_by=cmd.opened_by,
            contact=Contact(
                name=name,
                email=cmd.email.strip() if cmd.email else None,
                phone=cmd.phone or None,
                ip=cmd.ip or (session.ip if session else None),
                user_agent=cmd.user_agent or (session.user_agent if session else None),
                location=session.location if session else None,
            ),
        )
        try:
            outcome: Outcome = await self._conversation(cmd.conversation_id, create)
        except ConversationActive as exc:  # the database knew of an active chat we did not
            replay = await self._still_active(cmd, exc.conversation_id, sender)
            if replay is not None:
                return replay
            raise
        await self._apply(JoinedChat(cmd.conversation_id, name))
        return Started(outcome)

    async def _still_active(
        self, cmd: StartChat, conversation_id: str, sender: str | None
    ) -> Started | None:
        """None when ``conversation_id`` is no longer active (a new chat may start); the same
        start again answers with it; any other start is refused with ``conversation_active``."""
        try:
            known: Outcome = await self._conversation(
                conversation_id, Guard(cmd.tenant_id, Peek(sender), visitor_id=self.id)
            )
        except NotFound:
            return None
        if known.conversation.status is Status.SOLVED:
            await self._apply(LeftChat(conversation_id))
            return None
        session = self.state.session
        if session is not None and session.conversation_id != conversation_id:
            # active, and news to us (a start whose answer timed out, a reopen): remember it
            await self._apply(JoinedChat(conversation_id))
        if known.message is not None:
            return Started(known, replay=True)
        raise ConversationActive(
            f"this visitor already has an active conversation ({conversation_id}); resume it",
            conversation_id=conversation_id,
        )

    async def _conversation(self, conversation_id: str, command: Any) -> Any:
        return await self._dispatch(CONVERSATION, conversation_id, command)

    async def _dispatch(self, kind: str, actor_id: str, command: Any) -> Any:
        if self.dispatch is None:
            raise EngineError("this visitor actor cannot reach other actors", code="unwired")
        return await self.dispatch(kind, actor_id, command)
