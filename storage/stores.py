"""The PostgreSQL implementation of the engine's store protocols (Trio flavour)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.values import Commit, Conversation, Message, RoutingSnapshot, VisitorSession
from storage import queries
from storage.db import Database


class PostgresStore:
    """:class:`engine.store.ConversationStore`, ``VisitorStore`` and ``WidgetStore`` on PostgreSQL.

    Every method is one crossing into asyncio and one transaction.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        return await self.db.run(queries.select_conversation_for_actor, conversation_id)

    async def commit_conversation(self, commit: Commit) -> None:
        await self.db.run(queries.commit_conversation, commit)

    async def load_visitor(self, visitor_id: str) -> VisitorSession | None:
        return await self.db.run(queries.select_visitor_session, visitor_id)

    async def save_visitor(self, session: VisitorSession) -> None:
        await self.db.run(queries.save_visitor_session, session)

    async def load_widget(self, widget_id: str) -> dict[str, Any] | None:
        return await self.db.run(queries.select_widget, widget_id)

    async def save_widget_ping(self, row: dict[str, Any]) -> None:
        await self.db.run(queries.save_widget_ping, row)

    async def save_widget_refusal(self, row: dict[str, Any]) -> None:
        await self.db.run(queries.save_widget_refusal, row)

    async def update_widget(
        self, widget_id: str, changes: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any] | None:
        return await self.db.run(queries.update_widget, widget_id, changes, now)

    async def delete_widget(self, widget_id: str, now: dt.datetime) -> None:
        await self.db.run(queries.delete_widget, widget_id, now)

    async def load_routing(self, tenant_id: str) -> RoutingSnapshot:
        return await self.db.run(queries.select_routing, tenant_id)
