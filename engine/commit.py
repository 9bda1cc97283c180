"""What a conversation actor hands to storage: one batch of transitions, as one commit.

Kept apart from :mod:`engine.store` so that the actor and storage share it without a cycle.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

from engine.conversation import Contact, Conversation, Kind, Message, Status
from engine.events import Event


class Link(StrEnum):
    """What a commit does to ``visitor_sessions.conversation_id`` (the visitor's live chat)."""

    SET = "set"  # a live chat became active (created, started by an agent, reopened)
    CLEAR = "clear"  # it was solved


@attrs.frozen
class Commit:
    """One batch of a conversation actor's transitions, persisted in one transaction.

    ``claim``: the agent who takes the chat OPEN through it (see :func:`claim_of`); the commit
    locks that agent's row and refuses (:class:`~engine.errors.AtCapacity`) past their limit.
    ``contact``: the
    visitor's contact, upserted in the same transaction (a chat's start). ``link``: the visitor's
    active live chat is set or cleared; a second active live chat of one visitor is refused
    (:class:`~engine.errors.ConversationActive`) by a partial unique index.
    """

    state: Conversation
    events: tuple[Event, ...]
    messages: tuple[Message, ...]
    claim: str | None = None
    contact: Contact | None = None
    link: Link | None = None


def claim_of(before: Conversation | None, after: Conversation) -> str | None:
    """The agent who takes an OPEN chat through a batch from ``before`` to ``after`` (an accept,
    a hand-over, a reopen, a chat the agent starts), or None when nobody newly holds it."""
    if after.status is not Status.OPEN or after.assignee is None:
        return None
    held = before is not None and before.status is Status.OPEN and before.assignee is not None
    if held and before is not None and before.assignee == after.assignee:
        return None
    return after.assignee.id


def link_change(before: Conversation | None, after: Conversation) -> Link | None:
    """How a batch that moved a conversation from ``before`` to ``after`` changes the link."""
    if after.kind is not Kind.LIVE_CHAT:
        return None
    was = before is not None and before.status is not Status.SOLVED
    active = after.status is not Status.SOLVED
    if active and not was:
        return Link.SET
    if was and not active:
        return Link.CLEAR
    return None
