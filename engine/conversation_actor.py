"""The conversation actor: the single writer of one conversation.

A thin Trio shell around :func:`engine.conversation.apply`. For each batch of commands taken from
its mailbox (one, or as many as are already queued, up to ``batch_size``) it applies them in order,
commits the new state with every event and message in **one transaction**, then publishes the
events, then answers the callers. An event therefore reaches subscribers only after its commit,
and a caller's 201 means the message is stored.

The actor owns the **wait timer**: a cancel scope whose deadline is the conversation's stored
``wait_deadline``. When it passes with nobody accepting, the timer posts ``WaitTimeout`` to the
actor's own mailbox and the state machine emits ``conversation_wait_timeout``. Accepting or solving
cancels the scope. Because the deadline is stored, a restarted server re-arms the timer
(see :func:`rearm_wait_timers`).

An actor with no command for ``idle_seconds`` and no timer running stops; the next command
rehydrates it from storage.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from engine import metrics
from engine.broker import Broker
from engine.clock import Clock, trio_deadline
from engine.commit import claim_of, link_change
from engine.conversation import (
    Create,
    PostMessage,
    Typing,
    TypingGate,
    WaitTimeout,
    apply,
    typing_event,
)
from engine.errors import Conflict, EngineError, NotFound
from engine.faults import NO_FAULTS, Faults
from engine.supervisor import Envelope, Mailbox, RecentEvent
from engine.values import Commit, Contact, Conversation, Event, Message

if TYPE_CHECKING:
    from engine.store import ConversationStore


KIND = "conversation"
log = logging.getLogger("curbe.engine.conversation")
_LOGGED = frozenset(
    {
        "conversation_created",
        "conversation_assigned",
        "conversation_status_changed",
        "conversation_wait_timeout",
    }
)


@attrs.frozen
class Guard:
    """Run ``command`` only if the conversation belongs to this tenant (and visitor, when given).

    A mismatch answers :class:`~engine.errors.NotFound`, exactly as an unknown id does, so a caller
    learns nothing about conversations that are not theirs. Checked by the actor against its own
    state, so it costs no extra database round trip and cannot race.
    """

    tenant_id: str
    command: Any
    visitor_id: str | None = None


def _unguarded(command: Any) -> Any:
    return command.command if isinstance(command, Guard) else command


@attrs.frozen
class Peek:
    """Read the conversation as it is: answered from the actor's memory, nothing committed.

    ``client_key`` (see :func:`client_key`) also asks for the message its sender sent with that
    client id, if any (``Outcome.message``): a repeated request is recognised.
    """

    client_key: str | None = None


@attrs.frozen
class Outcome:
    """What a caller gets back: the conversation after its command, and the message it stored."""

    conversation: Conversation
    message: Message | None = None
    duplicate: bool = False


def client_key(sender_type: str, sender_id: str, client_message_id: str) -> str:
    """Idempotency is per sender: an agent reusing a visitor's clientMessageId is a new message."""
    return f"{sender_type}:{sender_id}:{client_message_id}"


def sent_key(sender_type: str, sender_id: str, client_message_id: str | None) -> str | None:
    """:func:`client_key` of a message sent with a ``clientMessageId``; None for one sent
    without (``""`` is an id like any other: only None is no id)."""
    if client_message_id is None:
        return None
    return client_key(sender_type, sender_id, client_message_id)


def message_key(message: Message) -> str | None:
    """:func:`sent_key` of a stored message."""
    return sent_key(message.sender_type.value, message.sender_id, message.client_message_id)


class ConversationActor:
    kind = KIND

    def __init__(
        self,
        conversation_id: str,
        *,
        store: ConversationStore,
        broker: Broker,
        clock: Clock,
        idle_seconds: float = 300.0,
        batch_size: int = 32,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.id = conversation_id
        self.store = store
        self.broker = broker
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.batch_size = batch_size
        self.faults = faults
        self.state: Conversation | None = None
        self.by_client_id: dict[str, Message] = {}
        self.recent: list[RecentEvent] = []  # last events, for operators
        self._timer: trio.CancelScope | None = None
        self._timer_deadline: dt.datetime | None = None
        self.typing = TypingGate()

    def describe(self) -> dict[str, Any]:
        s = self.state
        return {
            "tenant_id": s.tenant_id if s else None,
            "visitor_id": s.visitor_id if s else None,
            "state": s.status.value if s else "NEW",
            "last_seq": s.last_seq if s else 0,
            "wait_deadline": self._timer_deadline if self._timer is not None else None,
            "recent_events": list(self.recent),
        }

    async def run(self, mailbox: Mailbox) -> None:
        self.faults.check(KIND, "load", self.id)
        try:  # spawned to create the conversation: its id is new, there is nothing to load
            first: Envelope | None = mailbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            first = None
        if first is None or not isinstance(_unguarded(first.command), Create):
            loaded = await self.store.load_conversation(self.id)
            if loaded is not None:
                self.state, with_ids = loaded
                self.by_client_id = {
                    key: m for m in with_ids if (key := message_key(m)) is not None
                }
        async with trio.open_nursery() as nursery:
            self._sync_timer(nursery, mailbox)
            await self._serve(nursery, mailbox, first)
            nursery.cancel_scope.cancel()

    async def _serve(self, nursery: trio.Nursery, mailbox: Mailbox, first: Envelope | None) -> None:
        while True:
            if first is None:
                try:
                    first = await mailbox.receive_until(trio.current_time() + self.idle_seconds)
                except trio.EndOfChannel:
                    return
                if first is None:
                    if self._timer is not None:
                        continue  # a running wait timer keeps the actor alive
                    return
            assert first is not None
            batch = [first]
            first = None
            while len(batch) < self.batch_size:
                try:
                    batch.append(mailbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await self._handle(batch)
            if self.state is None:
                return  # asked about a conversation that does not exist: do not linger
            self._sync_timer(nursery, mailbox)

    async def _handle(self, batch: list[Envelope]) -> None:
        now = self.clock.now()
        before = state = self.state
        events: list[Event] = []
        messages: list[Message] = []
        answered: list[tuple[Envelope, Outcome]] = []
        new_ids: dict[str, Message] = {}
        contact: Contact | None = None
        hints: list[tuple[Typing, Event]] = []  # published after the batch, never stored
        for envelope in batch:
            command = envelope.command
            self.faults.check(KIND, "handle", self.id)
            try:
                if isinstance(command, Guard):
                    if (
                        state is None
                        or state.tenant_id != command.tenant_id
                        or (
                            command.visitor_id is not None
                            and state.visitor_id != command.visitor_id
                        )
                    ):
                        raise NotFound(f"no conversation {self.id}")
                    command = command.command
                if isinstance(command, Peek):
                    if state is None:
                        raise NotFound(f"no conversation {self.id}")
                    key = command.client_key
                    known = (self.by_client_id.get(key) or new_ids.get(key)) if key else None
                    answered.append((envelope, Outcome(state, known)))
                    continue
                if isinstance(command, Typing):
                    if state is None:
                        raise NotFound(f"no conversation {self.id}")
                    hint = typing_event(state, command, now)
                    if hint is not None:
                        hints.append((command, hint))
                    answered.append((envelope, Outcome(state)))
                    continue
                cid = (
                    sent_key(
                        command.sender_type.value, command.sender_id, command.client_message_id
                    )
                    if isinstance(command, PostMessage)
                    else None
                )
                if cid is not None:
                    known = self.by_client_id.get(cid) or new_ids.get(cid)
                    if known is not None and state is not None:
                        answered.append((envelope, Outcome(state, known, duplicate=True)))
                        continue
                transition = apply(state, command, now)
            except EngineError as exc:
                if envelope.reply is not None:
                    envelope.reply.fail(exc)
                continue
            state = transition.state
            if isinstance(command, Create) and command.contact is not None:
                contact = command.contact
            events.extend(transition.events)
            messages.extend(transition.messages)
            for m in transition.messages:
                if (key := message_key(m)) is not None:
                    new_ids[key] = m
                if hints:  # the message ends its sender's typing: an earlier hint is moot
                    hints = [
                        (c, h)
                        for c, h in hints
                        if (c.sender_type, c.sender_id) != (m.sender_type, m.sender_id)
                    ]
            message = transition.messages[-1] if transition.messages else None
            answered.append((envelope, Outcome(state, message)))
        if state is not None and events:
            commit = Commit(
                state,
                tuple(events),
                tuple(messages),
                claim=claim_of(before, state),
                contact=contact,
                link=link_change(before, state),
            )
            self.faults.check(KIND, "before_commit", self.id)
            try:
                # a failed commit lets the actor crash: the supervisor fails the batch's callers
                # (ActorUnavailable) and restarts us from what is stored
                with metrics.COMMIT_SECONDS.time():
                    await self.store.commit_conversation(commit)
            except Conflict as refused:  # a check inside the commit said no; nothing stored
                await self._refused(batch, refused)
                return
            self.faults.check(KIND, "after_commit", self.id)
        if state is not None and events:
            metrics.COMMITS.inc()
            for m in messages:
                metrics.child(metrics.MESSAGES_STORED, m.sender_type.value).inc()
        self.state = state
        self.by_client_id.update(new_ids)
        for m in messages:
            self.typing.sent(m.sender_type, m.sender_id)
        for event in events:
            self.broker.publish(event)
            if event.type in _LOGGED:  # state changes only: never message text, never per frame
                log.info(
                    event.type,
                    extra={
                        "tenant_id": event.tenant_id,
                        "conversation_id": event.conversation_id,
                        "visitor_id": event.visitor_id,
                        "event_type": event.type,
                        "seq": event.seq,
                    },
                )
            self.recent.append(RecentEvent(event.type.value, event.seq, event.at))
        del self.recent[:-20]
        seconds = trio.current_time()
        for command, hint in hints:  # not in ``recent``: a hint changes nothing stored
            if self.typing.passes(command, seconds):
                self.broker.publish(hint)
        for envelope, outcome in answered:
            if envelope.reply is not None:
                envelope.reply.set(outcome)

    async def _refused(self, batch: list[Envelope], refused: Conflict) -> None:
        """The commit refused the batch: an agent at capacity, a visitor's other live chat.

        Alone, the command gets the refusal. In a batch, each command not yet answered is
        handled again on its own, so only the one the check is about is refused.
        """
        pending = [e for e in batch if e.reply is None or not e.reply.done]
        if len(pending) <= 1:
            for envelope in pending:
                if envelope.reply is not None:
                    envelope.reply.fail(refused)
            return
        for envelope in pending:
            await self._handle([envelope])

    def _sync_timer(self, nursery: trio.Nursery, mailbox: Mailbox) -> None:
        """Arm the wait timer when the state needs one; cancel it when it no longer does."""
        pending = self.state is not None and self.state.wait_pending
        if self._timer is not None and not pending:
            self._timer.cancel()
            self._timer = None
        elif self._timer is None and pending:
            assert self.state is not None and self.state.wait_deadline is not None
            scope = trio.CancelScope(deadline=trio_deadline(self.clock, self.state.wait_deadline))
            self._timer = scope
            self._timer_deadline = self.state.wait_deadline
            nursery.start_soon(self._wait_timer, scope, mailbox)

    async def _wait_timer(self, scope: trio.CancelScope, mailbox: Mailbox) -> None:
        with scope:
            await trio.sleep_forever()
        if self._timer is scope:  # the deadline passed; nobody cancelled us
            self._timer = None
            self.faults.check(KIND, "timer", self.id)
            await mailbox.post_self(WaitTimeout())
