"""What actors need from storage, as a protocol, and an in-memory implementation.

The PostgreSQL implementation lives in :mod:`storage.stores`. :class:`MemoryStore` is the test
seam for engine tests that run on Trio's ``autojump_clock`` (asyncpg cannot run on a fake clock);
it is a plain-Python model of the same contract, not a mock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from engine.conversation import Conversation, Message
from engine.events import Event
from engine.visitor import VisitorSession


class ConversationStore(Protocol):
    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        """The conversation and its messages that carry a ``clientMessageId`` (Trio)."""
        ...

    async def commit_conversation(
        self, state: Conversation, events: Sequence[Event], messages: Sequence[Message]
    ) -> None:
        """Persist a batch of transitions atomically (Trio)."""
        ...


class VisitorStore(Protocol):
    async def load_visitor(self, visitor_id: str) -> VisitorSession | None: ...

    async def save_visitor(self, session: VisitorSession, *, widget_ping: bool) -> None: ...


@attrs.define
class MemoryStore:
    """In-memory :class:`ConversationStore` and :class:`VisitorStore`.

    ``fail_commits`` makes the next N commits raise, to test crash and restart.
    """

    conversations: dict[str, Conversation] = attrs.field(factory=dict)
    messages: dict[str, list[Message]] = attrs.field(factory=dict)
    events: dict[str, list[Event]] = attrs.field(factory=dict)
    visitors: dict[str, VisitorSession] = attrs.field(factory=dict)
    widget_pings: list[tuple[str, Any]] = attrs.field(factory=list)
    fail_commits: dict[str, int] = attrs.field(factory=dict)
    commits: int = 0

    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        state = self.conversations.get(conversation_id)
        if state is None:
            return None
        with_ids = [m for m in self.messages.get(conversation_id, []) if m.client_message_id]
        return state, with_ids

    async def commit_conversation(
        self, state: Conversation, events: Sequence[Event], messages: Sequence[Message]
    ) -> None:
        if self.fail_commits.get(state.id, 0) > 0:
            self.fail_commits[state.id] -= 1
            raise RuntimeError(f"injected commit failure for {state.id}")
        stored = self.events.setdefault(state.id, [])
        for event in events:
            expected = stored[-1].seq + 1 if stored else 1  # type: ignore[operator]
            if event.seq != expected:
                raise RuntimeError(f"seq {event.seq} where {expected} was due")
            stored.append(event)
        self.messages.setdefault(state.id, []).extend(messages)
        self.conversations[state.id] = state
        self.commits += 1

    async def load_visitor(self, visitor_id: str) -> VisitorSession | None:
        return self.visitors.get(visitor_id)

    async def save_visitor(self, session: VisitorSession, *, widget_ping: bool) -> None:
        self.visitors[session.visitor_id] = session
        if widget_ping:
            self.widget_pings.append((session.widget_id, session.last_seen_at))
