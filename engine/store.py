"""What actors need from storage, as a protocol, and an in-memory implementation.

The PostgreSQL implementation lives in :mod:`storage.stores`. :class:`MemoryStore` is the test
seam for engine tests that run on Trio's ``autojump_clock`` (asyncpg cannot run on a fake clock);
it is a plain-Python model of the same contract, not a mock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs
import trio

from engine.conversation import Conversation, Kind, Message, Status
from engine.events import Event
from engine.routing import OpenChat, RoutingAgent, RoutingSnapshot, WaitingChat
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

    async def save_visitor(self, session: VisitorSession) -> None: ...


class WidgetStore(Protocol):
    async def load_widget(self, widget_id: str) -> dict[str, Any] | None:
        """The widget's row, or None when it does not exist or was deleted (Trio)."""
        ...

    async def save_widget_ping(self, row: dict[str, Any]) -> None:
        """Write ``last_seen_at``, ``last_seen_domain``, ``last_seen_url`` (Trio)."""
        ...

    async def save_widget_refusal(self, row: dict[str, Any]) -> None:
        """Write ``last_refused_at``, ``last_refused_domain`` (Trio)."""
        ...

    async def update_widget(
        self, widget_id: str, changes: dict[str, Any], now: Any
    ) -> dict[str, Any] | None:
        """Apply column changes; the new row, or None when it is gone (Trio)."""
        ...

    async def delete_widget(self, widget_id: str, now: Any) -> None: ...


@attrs.define
class MemoryStore:
    """In-memory :class:`ConversationStore`, :class:`VisitorStore` and :class:`WidgetStore`.

    ``fail_commits`` makes the next N commits raise, to test crash and restart.
    """

    conversations: dict[str, Conversation] = attrs.field(factory=dict)
    messages: dict[str, list[Message]] = attrs.field(factory=dict)
    events: dict[str, list[Event]] = attrs.field(factory=dict)
    visitors: dict[str, VisitorSession] = attrs.field(factory=dict)
    widgets: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    agents: dict[str, RoutingAgent] = attrs.field(factory=dict)
    routing_loads: int = 0
    routing_latency: float = 0.0  # seconds a routing load takes (a database would take some)
    widget_writes: int = 0
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

    async def save_visitor(self, session: VisitorSession) -> None:
        self.visitors[session.visitor_id] = session

    async def load_widget(self, widget_id: str) -> dict[str, Any] | None:
        row = self.widgets.get(widget_id)
        if row is None or row.get("deleted_at") is not None:
            return None
        return dict(row)

    async def save_widget_ping(self, row: dict[str, Any]) -> None:
        self.widget_writes += 1
        stored = self.widgets[row["id"]]
        for key in ("last_seen_at", "last_seen_domain", "last_seen_url"):
            stored[key] = row[key]

    async def save_widget_refusal(self, row: dict[str, Any]) -> None:
        self.widget_writes += 1
        stored = self.widgets[row["id"]]
        for key in ("last_refused_at", "last_refused_domain"):
            stored[key] = row[key]

    async def update_widget(
        self, widget_id: str, changes: dict[str, Any], now: Any
    ) -> dict[str, Any] | None:
        row = await self.load_widget(widget_id)
        if row is None:
            return None
        self.widget_writes += 1
        self.widgets[widget_id].update(changes, updated_at=now)
        return dict(self.widgets[widget_id])

    async def delete_widget(self, widget_id: str, now: Any) -> None:
        self.widget_writes += 1
        self.widgets[widget_id]["deleted_at"] = now

    async def load_routing(self, tenant_id: str) -> RoutingSnapshot:
        self.routing_loads += 1
        if self.routing_latency:
            await trio.sleep(self.routing_latency)

        def routing(widget_id: str) -> str:
            settings = self.widgets.get(widget_id, {}).get("settings") or {}
            return str(settings.get("routing", "manual"))

        mine = sorted(
            (c for c in self.conversations.values() if c.tenant_id == tenant_id),
            key=lambda c: (c.created_at, c.id),
        )
        return RoutingSnapshot(
            waiting=tuple(
                WaitingChat(c.id, c.visitor_id, c.created_at, routing(c.widget_id))
                for c in mine
                if c.status is Status.WAITING and c.kind is Kind.LIVE_CHAT
            ),
            open=tuple(
                OpenChat(c.id, c.assignee.id, routing(c.widget_id))
                for c in mine
                if c.status is Status.OPEN and c.assignee is not None
            ),
            agents=tuple(self.agents.values()),
        )
