"""Use cases over the engine, called alike by HTTP routes and WebSocket frames.

Each takes the services and plain values, sends the command to its actor and returns what the
caller answers with; nothing here knows whether a request or a frame asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from quart import Response, request

from engine.conversation import Create, PostMessage, Typing
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import Guard, Outcome
from engine.values import (
    Agent,
    Attachment,
    Contact,
    Conversation,
    ConversationRead,
    Event,
    EventType,
    Kind,
    Rating,
    SenderType,
)
from engine.visitor import KIND as VISITOR
from engine.visitor import JoinedChat, LeftChat, StartChat, Started
from storage import queries
from web import auth
from web.deps import agent_of, client_ip, services
from web.paging import Paging
from web.presenters import answer, extend, rating_of
from web.reads import visitor_read_event
from web.services import Services
from web.shapes import MessagePage, NewConversation
from web.wire import ApiError


async def start_chat(
    s: Services,
    visitor_id: str,
    tenant_id: str,
    message: str,
    client_message_id: str | None,
    **more: Any,
) -> Response:
    """Start a live chat with the visitor: a command of the visitor's actor, which keeps one live
    chat per visitor (409 ``conversation_active``; the same request again answers the same
    conversation). ``more``: the visitor's own start (widget, contact, where from) or the
    agent's (``opened_by``)."""
    started = await s.supervisor.call(
        VISITOR,
        visitor_id,
        StartChat(
            tenant_id=tenant_id,
            conversation_id=auth.new_id("conv"),
            message_id=auth.new_id("msg"),
            message=message,
            client_message_id=client_message_id,
            **more,
        ),
    )
    return await started_response(s, started)


async def started_response(s: Services, started: Started) -> Response:
    """201 with the conversation a start created (or, for the same request again, started)."""
    conversation = started.outcome.conversation
    if started.replay:
        messages = await s.db.run(queries.select_messages, conversation.id)
    else:
        messages = [started.outcome.message] if started.outcome.message else []
    agents_online = s.presence.agents_online(conversation.tenant_id)
    return answer(
        extend(conversation, NewConversation, messages=messages, agents_online=agents_online), 201
    )


async def leave_offline_message(
    s: Services, widget: dict[str, Any], visitor_id: str, offline: Any
) -> Response:
    """An offline message (a ticket): created by its conversation's actor with the contact, in
    one commit. It is not a live chat, so the visitor's actor has no say in it."""
    conversation_id = auth.new_id("conv")
    name = offline.name.strip() if offline.name and offline.name.strip() else None
    outcome: Outcome = await s.supervisor.call(
        CONVERSATION,
        conversation_id,
        Create(
            conversation_id=conversation_id,
            tenant_id=widget["tenant_id"],
            widget_id=widget["id"],
            visitor_id=visitor_id,
            kind=Kind.OFFLINE_MESSAGE,
            wait_timeout_seconds=widget["wait_timeout_seconds"],
            first_message_id=auth.new_id("msg"),
            first_message=offline.message,
            visitor_name=name,
            contact=Contact(
                name=name,
                email=offline.email.strip() if offline.email else None,
                phone=offline.phone or None,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent"),
            ),
        ),
    )
    return await started_response(s, Started(outcome))


async def conversation_command(
    s: Services,
    agent: dict[str, Any],
    conversation_id: str,
    make: Callable[[Agent], Any],
    tell: JoinedChat | LeftChat | None = None,
) -> Outcome:
    """An agent's command on a conversation (accept, solve, reopen…), guarded by the agent's
    tenant; ``tell``: a hint for the visitor's actor that it joined or left a chat."""
    command = Guard(agent["tenant_id"], make(agent_of(agent)))
    outcome: Outcome = await s.supervisor.call(CONVERSATION, conversation_id, command)
    if tell is not None:
        tell_visitor(s, outcome.conversation, tell)
    return outcome


def tell_visitor(s: Services, conversation: Conversation, command: JoinedChat | LeftChat) -> None:
    """Tell a running visitor actor that its live chat became active or ended, for ``inChat`` on
    Live visitors. A hint, not a write (the commit already set or cleared the link): an actor not
    running reads the link from storage when it starts, so none is started for it."""
    if conversation.kind is Kind.LIVE_CHAT and s.supervisor.is_running(
        VISITOR, conversation.visitor_id
    ):
        s.supervisor.try_cast(VISITOR, conversation.visitor_id, command)


async def send_visitor_message(
    s: Services,
    tenant_id: str,
    visitor_id: str,
    conversation_id: str,
    text: str,
    client_message_id: str | None,
    client_timestamp: str | None,
    *,
    name: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> Outcome:
    command = PostMessage(
        message_id=auth.new_id("msg"),
        sender_type=SenderType.VISITOR,
        sender_id=visitor_id,
        sender_name=name,
        text=text,
        client_message_id=client_message_id,
        client_timestamp=client_timestamp,
        attachments=attachments,
    )
    return await s.supervisor.call(  # type: ignore[no-any-return]
        CONVERSATION, conversation_id, Guard(tenant_id, command, visitor_id=visitor_id)
    )


class TypingSockets:
    """One socket's typing hints, guarded like its messages (an unknown conversation, or one not
    the sender's, is refused ``not_found``). Remembers where it said ``on``: when it closes
    without an ``off``, the receivers hear the ``off`` at once instead of waiting for the
    indicator to expire."""

    def __init__(self, s: Services, tenant_id: str, sender: Typing, visitor_id: str | None = None):
        self._s = s
        self._tenant_id = tenant_id
        self._sender = sender
        self._visitor_id = visitor_id
        self._on: set[str] = set()

    def command(self, on: bool) -> Guard:
        hint = attrs.evolve(self._sender, on=on)
        return Guard(self._tenant_id, hint, visitor_id=self._visitor_id)

    async def send(self, conversation_id: str, on: bool) -> None:
        await self._s.supervisor.call(CONVERSATION, conversation_id, self.command(on))
        if on:
            self._on.add(conversation_id)
        else:
            self._on.discard(conversation_id)

    def sent_message(self, conversation_id: str) -> None:
        self._on.discard(conversation_id)  # a message ends the typing (the actor knows it too)

    def close(self) -> None:
        """``off`` where this socket was typing (a hint: dropped when the mailbox is full)."""
        for conversation_id in self._on:
            self._s.supervisor.try_cast(CONVERSATION, conversation_id, self.command(False))
        self._on.clear()


async def send_agent_message(
    s: Services,
    agent: dict[str, Any],
    conversation_id: str,
    msg: Any,
    attachments: tuple[Attachment, ...] = (),
) -> Outcome:
    command = PostMessage(
        message_id=auth.new_id("msg"),
        sender_type=SenderType.AGENT,
        sender_id=agent["id"],
        sender_name=agent["name"],
        text=msg.text,
        client_message_id=msg.client_message_id,
        client_timestamp=msg.client_timestamp,
        attachments=attachments,
    )
    outcome: Outcome = await s.supervisor.call(
        CONVERSATION, conversation_id, Guard(agent["tenant_id"], command)
    )
    if outcome.message is not None and not outcome.duplicate:  # answering = having read it
        await s.db.run(
            queries.mark_read,
            agent["tenant_id"],
            agent["id"],
            conversation_id,
            outcome.message.seq,
            s.clock.now(),
        )
    return outcome


async def agent_read(
    s: Services, agent: dict[str, Any], conversation_id: str, seq: int | None
) -> int:
    """Move the agent's read mark (never back) and, when it moved past a visitor's message, tell
    the inbox and the conversation's visitor (``conversation_read``: the visitor's "Seen"); the
    new mark."""
    now = s.clock.now()
    marked = await s.db.run(
        queries.mark_read, agent["tenant_id"], agent["id"], conversation_id, seq, now
    )
    if marked is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    if marked.news:  # past a visitor's message: its "Seen", this agent's unread counts
        read = ConversationRead(agent["id"], conversation_id, marked.seq, reader="agent")
        s.broker.publish(
            Event(
                EventType.CONVERSATION_READ.value,
                now,
                agent["tenant_id"],
                data=read.to_wire(),
                conversation_id=conversation_id,
                visitor_id=marked.visitor_id,
            )
        )
    return marked.seq


async def visitor_read(
    s: Services, tenant_id: str, visitor_id: str, conversation_id: str, seq: int | None
) -> int:
    """Move the visitor's read mark (never back) and, when it moved past anything but the
    visitor's own messages, tell the inbox (``conversation_read`` with ``reader: "visitor"``:
    which agent messages the visitor has seen) and the visitor's other sockets; the new mark."""
    now = s.clock.now()
    marked = await s.db.run(
        queries.mark_visitor_read, tenant_id, visitor_id, conversation_id, seq, now
    )
    if marked is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    if marked.news:  # past what an agent said or did: the agents' "Seen", the widget's badge
        s.broker.publish(
            visitor_read_event(now, tenant_id, visitor_id, conversation_id, marked.seq)
        )
    return marked.seq


async def rate_conversation(
    s: Services,
    tenant_id: str,
    visitor_id: str,
    conversation_id: str,
    score: int,
    comment: str | None,
) -> Rating:
    """Store the visitor's rating of its solved chat (replacing an earlier one) and tell the
    inbox (``conversation_rated``); the rating."""
    now = s.clock.now()
    stored = await s.db.run(
        queries.rate_conversation, tenant_id, visitor_id, conversation_id, score, comment, now
    )
    if stored is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    if stored == "not_solved":
        raise ApiError(
            409, "conversation_not_solved", "a chat is rated once it is solved; it is still open"
        )
    assert isinstance(stored, dict)
    rating = rating_of(stored)
    assert rating is not None
    s.broker.publish(
        Event(
            EventType.CONVERSATION_RATED.value,
            now,
            tenant_id,
            data=rating.to_wire(),
            conversation_id=conversation_id,
        )
    )
    return rating


# a conversation's messages: its latest come with it, the earlier ones read back a page at a time
MESSAGES = Paging("messages", default=200, most=500, param="before")


async def message_page(
    tenant_id: str, conversation_id: str, visitor_id: str | None = None
) -> Response:
    """A page of a conversation's messages read back from ``before`` (agent and visitor)."""
    last, before = MESSAGES.limit(), MESSAGES.seq_key()
    found = await services().db.run(
        queries.select_message_page,
        tenant_id,
        conversation_id,
        last=last + 1,
        before=before,
        visitor_id=visitor_id,
    )
    if found is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    messages, earlier = MESSAGES.earlier(found, last)
    return answer(MessagePage(messages, earlier))
