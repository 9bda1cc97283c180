"""An in-memory model of the engine's storage ports (engine/store.py), for engine tests.

Engine tests run on Trio's ``autojump_clock``, where asyncpg cannot run. This is a plain-Python
model of the same contract as :mod:`storage.stores` — including the checks PostgreSQL makes inside
a conversation commit (agent capacity, one active live chat per visitor) — not a mock.
``fail_commits`` makes the next N commits of a conversation raise, to test crash and restart.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from engine.errors import AtCapacity, ConversationActive
from engine.values import (
    Commit,
    Contact,
    Conversation,
    Event,
    Kind,
    Link,
    Message,
    OpenChat,
    RoutingAgent,
    RoutingSnapshot,
    Status,
    VisitorSession,
    WaitingChat,
)


@attrs.define
class MemoryStore:
    """In-memory ``ConversationStore``, ``VisitorStore``, ``WidgetStore`` and ``RoutingStore``."""

    conversations: dict[str, Conversation] = attrs.field(factory=dict)
    messages: dict[str, list[Message]] = attrs.field(factory=dict)
    events: dict[str, list[Event]] = attrs.field(factory=dict)
    visitors: dict[str, VisitorSession] = attrs.field(factory=dict)
    contacts: dict[tuple[str, str], Contact] = attrs.field(factory=dict)
    widgets: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    agents: dict[str, RoutingAgent] = attrs.field(factory=dict)
    routing_loads: int = 0
    routing_latency: float = 0.0  # seconds a routing load takes (a database would take some)
    widget_writes: int = 0
    fail_commits: dict[str, int] = attrs.field(factory=dict)
    commits: int = 0
    round_trips: int = 0  # every call a database would answer (loads, commits, saves)
    soft_writes: int = 0  # presence writes queued without a wait (save_visitor_soon)

    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        self.round_trips += 1
        state = self.conversations.get(conversation_id)
        if state is None:
            return None
        with_ids = [m for m in self.messages.get(conversation_id, []) if m.client_message_id]
        return state, with_ids

    async def commit_conversation(self, commit: Commit) -> None:
        self.round_trips += 1
        state = commit.state
        if self.fail_commits.get(state.id, 0) > 0:
            self.fail_commits[state.id] -= 1
            raise RuntimeError(f"injected commit failure for {state.id}")
        # the checks PostgreSQL makes inside the transaction (storage/queries.py), in the order
        # it makes them; nothing is stored when one refuses
        agent = self.agents.get(commit.claim) if commit.claim else None
        if agent is not None:
            agent_id = agent.id
            open_chats = sum(
                1
                for c in self.conversations.values()
                if c.id != state.id
                and c.status is Status.OPEN
                and c.assignee is not None
                and c.assignee.id == agent_id
            )
            if open_chats >= agent.capacity:
                raise AtCapacity(
                    f"you have {open_chats} open chats, your limit; solve one first",
                    open_chats=open_chats,
                    capacity=agent.capacity,
                )
        if commit.link is Link.SET:
            for other in self.conversations.values():
                if (
                    other.id != state.id
                    and other.kind is Kind.LIVE_CHAT
                    and other.status is not Status.SOLVED
                    and (other.tenant_id, other.visitor_id) == (state.tenant_id, state.visitor_id)
                ):
                    raise ConversationActive(
                        f"this visitor already has an active conversation ({other.id}); resume it",
                        conversation_id=other.id,
                    )
        stored = self.events.setdefault(state.id, [])
        for event in commit.events:
            expected = stored[-1].seq + 1 if stored else 1  # type: ignore[operator]
            if event.seq != expected:
                raise RuntimeError(f"seq {event.seq} where {expected} was due")
            stored.append(event)
        self.messages.setdefault(state.id, []).extend(commit.messages)
        self.conversations[state.id] = state
        if commit.contact is not None:
            key = (state.tenant_id, state.visitor_id)
            known = self.contacts.get(key, Contact())
            self.contacts[key] = Contact(
                **{
                    field: getattr(commit.contact, field) or getattr(known, field)
                    for field in attrs.fields_dict(Contact)
                }
            )
        session = self.visitors.get(state.visitor_id)
        if session is not None and commit.link is Link.SET:
            self.visitors[state.visitor_id] = attrs.evolve(session, conversation_id=state.id)
        elif session is not None and commit.link is Link.CLEAR:
            if session.conversation_id == state.id:
                self.visitors[state.visitor_id] = attrs.evolve(session, conversation_id=None)
        self.commits += 1

    async def load_visitor(self, visitor_id: str) -> VisitorSession | None:
        self.round_trips += 1
        return self.visitors.get(visitor_id)

    async def save_visitor(self, session: VisitorSession) -> None:
        self.round_trips += 1
        self._store_visitor(session)

    def save_visitor_soon(self, session: VisitorSession) -> bool:
        # queued with others in PostgreSQL (a group-commit round): no round trip of its own
        self.soft_writes += 1
        self._store_visitor(session)
        return True

    def _store_visitor(self, session: VisitorSession) -> None:
        # conversation_id is the conversation commits' to write (as in PostgreSQL)
        stored = self.visitors.get(session.visitor_id)
        link = stored.conversation_id if stored is not None else None
        self.visitors[session.visitor_id] = attrs.evolve(session, conversation_id=link)

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
        held: dict[str, int] = {}
        for c in mine:
            if c.status is Status.OPEN and c.assignee is not None:
                held[c.assignee.id] = held.get(c.assignee.id, 0) + 1
        return RoutingSnapshot(
            held=held,
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
