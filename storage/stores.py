"""The PostgreSQL implementation of the engine's store protocols (Trio flavour)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.conversation import Conversation, Message
from engine.events import Event
from engine.visitor import VisitorSession
from storage import queries
from storage.db import Database


class PostgresStore:
    """:class:`engine.store.ConversationStore` and :class:`engine.store.VisitorStore` on PostgreSQL.

    Every method is one crossing into asyncio and one transaction.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        return await self.db.run(queries.select_conversation_for_actor, conversation_id)

    async def commit_conversation(
        self, state: Conversation, events: Sequence[Event], messages: Sequence[Message]
    ) -> None:
        await self.db.run(queries.commit_conversation, state, events, messages)

    async def load_visitor(self, visitor_id: str) -> VisitorSession | None:
        return await self.db.run(queries.select_visitor_session, visitor_id)

    async def save_visitor(self, session: VisitorSession, *, widget_ping: bool) -> None:
        await self.db.run(queries.save_visitor_session, session, widget_ping=widget_ping)
