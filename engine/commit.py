"""What a commit of a conversation actor does beyond the conversation itself: whom it gives the
chat to (the capacity claim) and what it does to the visitor's link. The :class:`Commit` value
itself is in :mod:`engine.values`.
"""

from __future__ import annotations

from engine.values import Conversation, Kind, Link, Status


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
