"""The conversation state machine: pure, no Trio, no database.

``apply(state, command, now) -> Transition`` returns the next state and the events the command
produced (each with the next ``seq`` of the conversation), or raises an
:class:`~engine.errors.EngineError` subclass with a precise message. The conversation actor is a
thin Trio shell around this function.

States and the commands that move them (``docs/states.md`` draws the same table)::

    (none)   --Create(kind=live_chat)--------> WAITING (wait deadline set)
    (none)   --Create(kind=offline_message)--> WAITING (no wait deadline: a ticket)
    WAITING  --Accept----------------------> OPEN     (assigned to the agent)
    WAITING  --WaitTimeout------------------> WAITING  (conversation_wait_timeout, once)
    WAITING  --Solve------------------------> SOLVED
    OPEN     --Solve------------------------> SOLVED
    SOLVED   --Reopen-----------------------> OPEN     (assigned to the reopening agent)
    WAITING/OPEN --PostMessage(visitor)------> same state
    OPEN     --PostMessage(agent)-----------> same state
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from engine.errors import AlreadyAssigned, IllegalTransition
from engine.values import (
    PAYLOADS,
    Agent,
    Attachment,
    Contact,
    Conversation,
    Event,
    EventType,
    Kind,
    Message,
    SenderType,
    Status,
)

MAX_MESSAGE_LENGTH = 5000


# --- commands -------------------------------------------------------------------------------


@attrs.frozen
class Create:
    conversation_id: str
    tenant_id: str
    widget_id: str
    visitor_id: str
    kind: Kind
    wait_timeout_seconds: int
    first_message_id: str
    first_message: str
    visitor_name: str | None = None
    client_message_id: str | None = None
    # set: an agent starts the chat with a live visitor (proactive): OPEN, assigned to this
    # agent, the first message is the agent's, no wait timer
    opened_by: Agent | None = None
    # stored in the same commit as the conversation (the actor passes it on; no rule reads it)
    contact: Contact | None = None


@attrs.frozen
class Accept:
    agent: Agent


@attrs.frozen
class PostMessage:
    message_id: str
    sender_type: SenderType
    sender_id: str
    sender_name: str | None
    text: str
    client_message_id: str | None = None
    client_timestamp: str | None = None
    attachments: tuple[Attachment, ...] = ()  # files already in the store (issue #17)


@attrs.frozen
class Solve:
    agent: Agent


@attrs.frozen
class Reopen:
    agent: Agent


@attrs.frozen
class Transfer:
    """Hand an OPEN conversation to another agent (routing re-offers the chats of an agent who
    went offline)."""

    agent: Agent


@attrs.frozen
class WaitTimeout:
    """The wait deadline passed. A no-op unless the conversation still waits on it."""


Command = Create | Accept | PostMessage | Solve | Reopen | Transfer | WaitTimeout


# --- typing: a hint, not a transition ----------------------------------------------------------

# A receiver shows an indicator this long after the last ``on`` (senders repeat ``on`` every 4 s
# while keys come: three repeats may be lost before it goes out by itself).
TYPING_EXPIRES_SECONDS = 12
# An unchanged ``on`` of one sender goes out at most this often; a change at once.
TYPING_REPEAT_SECONDS = 3.0


@attrs.frozen
class Typing:
    """A sender started (``on``) or stopped typing. Changes nothing stored: the actor answers
    it from memory and publishes at most a ``typing`` event (:class:`TypingGate`)."""

    sender_type: SenderType
    sender_id: str
    sender_name: str | None
    on: bool


class TypingGate:
    """Which typing hints of one conversation go out: a change of a sender's state at once, an
    unchanged ``on`` at most every :data:`TYPING_REPEAT_SECONDS`, an ``off`` only after an
    ``on``. Remembers the senders typing now (a handful), on the actor's clock (seconds)."""

    def __init__(self) -> None:
        self._on: dict[tuple[SenderType, str], float] = {}  # sender -> when its last on went out

    def passes(self, cmd: Typing, now: float) -> bool:
        key = (cmd.sender_type, cmd.sender_id)
        last = self._on.get(key)
        if not cmd.on:
            return self._on.pop(key, None) is not None
        if last is not None and now - last < TYPING_REPEAT_SECONDS:
            return False
        self._on[key] = now
        return True

    def sent(self, sender_type: SenderType, sender_id: str) -> None:
        """The sender's message went out: receivers clear the indicator on it by themselves,
        and the sender's next ``on`` goes out at once."""
        self._on.pop((sender_type, sender_id), None)

    def __len__(self) -> int:
        return len(self._on)


def typing_event(state: Conversation, cmd: Typing, now: dt.datetime) -> Event | None:
    """The ``typing`` event of ``cmd``, or None when nobody should hear it: an agent's typing
    reaches the visitor and the inbox of an OPEN live chat only, a visitor's the inbox of a live
    chat not SOLVED (a visitor's own sockets never hear it back)."""
    if state.kind is not Kind.LIVE_CHAT or state.status is Status.SOLVED:
        return None
    agent = cmd.sender_type is SenderType.AGENT
    if agent and state.status is not Status.OPEN:
        return None
    data = PAYLOADS[EventType.TYPING](
        sender_type=cmd.sender_type,
        sender_id=cmd.sender_id,
        sender_name=cmd.sender_name if agent else None,
        state="on" if cmd.on else "off",
        expires_in_seconds=TYPING_EXPIRES_SECONDS,
    ).to_wire()
    return Event(
        type=EventType.TYPING.value,
        at=now,
        tenant_id=state.tenant_id,
        conversation_id=state.id,
        visitor_id=state.visitor_id if agent else None,
        data=data,
    )


@attrs.frozen
class Transition:
    state: Conversation
    events: tuple[Event, ...] = ()
    messages: tuple[Message, ...] = ()


class _Builder:
    """Collects the events of one transition, numbering them from the state's ``last_seq``."""

    def __init__(self, state: Conversation, now: dt.datetime) -> None:
        self.state = state
        self.now = now
        self.events: list[Event] = []
        self.messages: list[Message] = []

    def next_seq(self) -> int:
        self.state = attrs.evolve(self.state, last_seq=self.state.last_seq + 1)
        return self.state.last_seq

    def emit(self, type_: EventType, *, seq: int | None = None, **fields: Any) -> None:
        """An event of ``type_`` whose payload (:data:`~engine.values.PAYLOADS`) has ``fields``
        and, where it carries one, the conversation's snapshot including this very event."""
        seq = seq if seq is not None else self.next_seq()
        payload = PAYLOADS[type_]
        if "conversation" in attrs.fields_dict(payload):
            fields["conversation"] = self.state
        data = payload(**fields).to_wire()
        self.events.append(
            Event(
                type=type_.value,
                at=self.now,
                tenant_id=self.state.tenant_id,
                conversation_id=self.state.id,
                seq=seq,
                visitor_id=self.state.visitor_id,
                data=data,
            )
        )

    def add_message(self, cmd: PostMessage) -> None:
        seq = self.next_seq()
        message = Message(
            id=cmd.message_id,
            conversation_id=self.state.id,
            tenant_id=self.state.tenant_id,
            seq=seq,
            sender_type=cmd.sender_type,
            sender_id=cmd.sender_id,
            sender_name=cmd.sender_name,
            text=cmd.text,
            client_message_id=cmd.client_message_id,
            client_timestamp=cmd.client_timestamp,
            created_at=self.now,
            attachments=cmd.attachments,
        )
        self.messages.append(message)
        self.emit(EventType.MESSAGE_CREATED, seq=seq, message=message)

    def status_changed(self, before: Status) -> None:
        self.emit(EventType.CONVERSATION_STATUS_CHANGED, from_=before, to=self.state.status)

    def done(self) -> Transition:
        return Transition(self.state, tuple(self.events), tuple(self.messages))


def _check_text(text: str, files: int = 0) -> None:
    if not text.strip() and not files:
        raise IllegalTransition("a message needs some text", code="empty_message")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise IllegalTransition(
            f"a message holds at most {MAX_MESSAGE_LENGTH} characters", code="message_too_long"
        )


def create(cmd: Create, now: dt.datetime) -> Transition:
    _check_text(cmd.first_message)
    agent = cmd.opened_by
    if agent is not None and cmd.kind is not Kind.LIVE_CHAT:
        raise IllegalTransition("only a live chat can be started by an agent")
    deadline = None
    if cmd.kind is Kind.LIVE_CHAT and agent is None:
        deadline = now + dt.timedelta(seconds=cmd.wait_timeout_seconds)
    state = Conversation(
        id=cmd.conversation_id,
        tenant_id=cmd.tenant_id,
        widget_id=cmd.widget_id,
        visitor_id=cmd.visitor_id,
        kind=cmd.kind,
        status=Status.WAITING if agent is None else Status.OPEN,
        created_at=now,
        updated_at=now,
        wait_deadline=deadline,
        assignee=agent,
    )
    b = _Builder(state, now)
    seq = b.next_seq()
    b.emit(EventType.CONVERSATION_CREATED, seq=seq)
    if agent is None:
        b.add_message(
            PostMessage(
                message_id=cmd.first_message_id,
                sender_type=SenderType.VISITOR,
                sender_id=cmd.visitor_id,
                sender_name=cmd.visitor_name,
                text=cmd.first_message,
                client_message_id=cmd.client_message_id,
            )
        )
    else:
        b.emit(EventType.CONVERSATION_ASSIGNED, agent=agent)
        b.add_message(
            PostMessage(
                message_id=cmd.first_message_id,
                sender_type=SenderType.AGENT,
                sender_id=agent.id,
                sender_name=agent.name,
                text=cmd.first_message,
                client_message_id=cmd.client_message_id,
            )
        )
    return b.done()


def apply(state: Conversation | None, command: Command, now: dt.datetime) -> Transition:
    """Apply one command to a conversation (pure).

    Args:
        state: the conversation, or ``None`` when it does not exist yet (only ``Create`` applies).
        command: what to do.
        now: the server's wall time, UTC; every event and message is stamped with it.

    Raises:
        IllegalTransition: the command is not allowed in this state (the message says why).
        AlreadyAssigned: ``Accept`` on a conversation another agent owns.
    """
    if state is None:
        if isinstance(command, Create):
            return create(command, now)
        raise IllegalTransition(
            f"{type(command).__name__} needs an existing conversation", code="no_conversation"
        )
    if isinstance(command, Create):
        raise IllegalTransition(f"conversation {state.id} already exists", code="already_exists")
    handler = _HANDLERS[type(command)]
    return handler(state, command, now)


def _accept(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    assert isinstance(cmd, Accept)
    if state.status is Status.OPEN and state.assignee is not None:
        if state.assignee.id == cmd.agent.id:
            return Transition(state)  # accepting twice is harmless
        raise AlreadyAssigned(
            f"{state.assignee.name} already accepted this conversation",
            assignee_id=state.assignee.id,
            assignee_name=state.assignee.name,
        )
    if state.status is not Status.WAITING:
        raise IllegalTransition(
            f"cannot accept a {state.status.value} conversation; only WAITING ones can be accepted"
        )
    b = _Builder(
        attrs.evolve(
            state, status=Status.OPEN, assignee=cmd.agent, updated_at=now, wait_deadline=None
        ),
        now,
    )
    b.emit(EventType.CONVERSATION_ASSIGNED, agent=cmd.agent)
    b.status_changed(state.status)
    return b.done()


def _post_message(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    assert isinstance(cmd, PostMessage)
    _check_text(cmd.text, len(cmd.attachments))
    if state.status is Status.SOLVED:
        raise IllegalTransition(
            "this conversation is SOLVED; start a new one or reopen it first",
            code="conversation_solved",
        )
    if cmd.sender_type is SenderType.AGENT and state.status is not Status.OPEN:
        raise IllegalTransition(
            f"agents reply to OPEN conversations; this one is {state.status.value}: accept it first",
            code="conversation_not_open",
        )
    b = _Builder(attrs.evolve(state, updated_at=now), now)
    b.add_message(cmd)
    return b.done()


def _solve(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    assert isinstance(cmd, Solve)
    if state.status is Status.SOLVED:
        raise IllegalTransition("this conversation is already SOLVED", code="already_solved")
    b = _Builder(
        attrs.evolve(
            state, status=Status.SOLVED, solved_at=now, updated_at=now, wait_deadline=None
        ),
        now,
    )
    b.status_changed(state.status)
    return b.done()


def _reopen(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    assert isinstance(cmd, Reopen)
    if state.status is not Status.SOLVED:
        raise IllegalTransition(
            f"only SOLVED conversations can be reopened; this one is {state.status.value}"
        )
    b = _Builder(
        attrs.evolve(state, status=Status.OPEN, assignee=cmd.agent, solved_at=None, updated_at=now),
        now,
    )
    if state.assignee is None or state.assignee.id != cmd.agent.id:
        b.emit(EventType.CONVERSATION_ASSIGNED, agent=cmd.agent)
    b.status_changed(state.status)
    return b.done()


def _transfer(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    assert isinstance(cmd, Transfer)
    if state.status is not Status.OPEN:
        raise IllegalTransition(
            f"only OPEN conversations can be transferred; this one is {state.status.value}"
        )
    if state.assignee is not None and state.assignee.id == cmd.agent.id:
        return Transition(state)
    b = _Builder(attrs.evolve(state, assignee=cmd.agent, updated_at=now), now)
    b.emit(EventType.CONVERSATION_ASSIGNED, agent=cmd.agent, previous_agent=state.assignee)
    return b.done()


def _wait_timeout(state: Conversation, cmd: Command, now: dt.datetime) -> Transition:
    if not state.wait_pending:
        return Transition(state)  # accepted or solved before the timer's command arrived
    assert state.wait_deadline is not None
    b = _Builder(attrs.evolve(state, wait_timed_out=True, updated_at=now), now)
    waited = (now - state.created_at).total_seconds()
    b.emit(EventType.CONVERSATION_WAIT_TIMEOUT, waited_seconds=round(waited, 3))
    return b.done()


_HANDLERS = {
    Accept: _accept,
    PostMessage: _post_message,
    Solve: _solve,
    Reopen: _reopen,
    Transfer: _transfer,
    WaitTimeout: _wait_timeout,
}
