"""What actors need from storage: the ports, as protocols.

The PostgreSQL implementation lives in :mod:`storage.stores`; engine tests that run on Trio's
``autojump_clock`` (asyncpg cannot run on a fake clock) use the in-memory model of the same
contract in ``tests/engine/memory_store.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.values import Commit, Conversation, Message, RoutingSnapshot, VisitorSession


class ConversationStore(Protocol):
    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        """The conversation and its messages that carry a ``clientMessageId`` (Trio)."""
        ...

    async def commit_conversation(self, commit: Commit) -> None:
        """Persist a batch of transitions atomically (Trio). Raises a
        :class:`~engine.errors.Conflict` (and stores nothing) when a check inside the
        transaction refuses it."""
        ...


class VisitorStore(Protocol):
    async def load_visitor(self, visitor_id: str) -> VisitorSession | None: ...

    async def save_visitor(self, session: VisitorSession) -> None: ...

    def save_visitor_soon(self, session: VisitorSession) -> bool:
        """Queue a write of a session whose row exists, without waiting for it (presence is
        soft state); False when it cannot be queued (the caller then awaits
        :meth:`save_visitor`)."""
        ...


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


class RoutingStore(Protocol):
    async def load_routing(self, tenant_id: str) -> RoutingSnapshot:
        """The tenant's waiting and open chats and its agents (Trio)."""
        ...
