"""The PostgreSQL implementation of the engine's store protocols (Trio flavour)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from engine.placement import LeaseRound
from engine.values import Commit, Conversation, Message, RoutingSnapshot, VisitorSession
from storage import leases, queries
from storage.db import Database
from storage.group import DRAIN_SECONDS, GroupReader, GroupWriter


class PostgresStore:
    """:class:`engine.store.ConversationStore`, ``VisitorStore`` and ``WidgetStore`` on PostgreSQL.

    Every method is one crossing into asyncio and one transaction, except the two writes that
    come from every actor all the time: a conversation's plain commit (messages, status) and a
    visitor's presence. Those go through a :class:`~storage.group.GroupWriter` each while
    :meth:`group_writers` runs, and many actors' writes share one transaction. Likewise the read
    every visitor actor makes when it starts goes through a :class:`~storage.group.GroupReader`
    (thousands of them start at once after a restart, or when a crowd arrives).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.commits: GroupWriter[Commit] = GroupWriter(
            db,
            "conversation_commits",
            queries.commit_conversations,
            queries.commit_conversation,
            actor_of=lambda commit: commit.state.id,
        )
        self.visitors: GroupWriter[VisitorSession] = GroupWriter(
            db,
            "visitor_sessions",
            queries.save_visitor_sessions,
            queries.save_visitor_session,
            actor_of=lambda session: session.visitor_id,
        )
        self.visitor_reads: GroupReader[str, VisitorSession] = GroupReader(
            db, "visitor_session_reads", queries.select_visitor_sessions
        )

    @asynccontextmanager
    async def group_writers(self) -> AsyncIterator[None]:
        """Run the group writers for the body's duration; on exit they finish what is pending
        (writes that come later go alone)."""
        async with trio.open_nursery() as nursery:
            for group in (self.commits, self.visitors, self.visitor_reads):
                await nursery.start(group.run)
            try:
                yield
            finally:
                self.commits.close()
                self.visitors.close()
                self.visitor_reads.close()
                # the drain is bounded: past it, what is left goes back to its callers
                nursery.cancel_scope.deadline = trio.current_time() + DRAIN_SECONDS

    def describe(self) -> dict[str, Any]:
        return {
            "conversation_commits": self.commits.describe(),
            "visitor_sessions": self.visitors.describe(),
            "visitor_session_reads": self.visitor_reads.describe(),
        }

    async def load_conversation(
        self, conversation_id: str
    ) -> tuple[Conversation, list[Message]] | None:
        return await self.db.run(queries.select_conversation_for_actor, conversation_id)

    async def commit_conversation(self, commit: Commit) -> None:
        if queries.groupable(commit):
            await self.commits.submit(commit)
        else:
            await self.db.run_fenced([commit.state.id], queries.commit_conversation, commit)

    async def load_visitor(self, visitor_id: str) -> VisitorSession | None:
        return await self.visitor_reads.fetch(visitor_id)

    async def save_visitor(self, session: VisitorSession) -> None:
        await self.visitors.submit(session)

    def save_visitor_soon(self, session: VisitorSession) -> bool:
        return self.visitors.offer(session)

    async def load_widget(self, widget_id: str) -> dict[str, Any] | None:
        return await self.db.run(queries.select_widget, widget_id)

    async def save_widget_ping(self, row: dict[str, Any]) -> None:
        await self.db.run_fenced([row["id"]], queries.save_widget_ping, row)

    async def save_widget_refusal(self, row: dict[str, Any]) -> None:
        await self.db.run_fenced([row["id"]], queries.save_widget_refusal, row)

    async def update_widget(
        self, widget_id: str, changes: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any] | None:
        return await self.db.run_fenced([widget_id], queries.update_widget, widget_id, changes, now)

    async def delete_widget(self, widget_id: str, now: dt.datetime) -> None:
        await self.db.run_fenced([widget_id], queries.delete_widget, widget_id, now)

    async def load_routing(self, tenant_id: str) -> RoutingSnapshot:
        return await self.db.run(queries.select_routing, tenant_id)


class PostgresLeases:
    """:class:`engine.placement.LeaseStore` on PostgreSQL (one crossing per tick)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def keep_leases(
        self,
        node_id: str,
        *,
        ttl_seconds: float,
        release: Sequence[int],
        address: str | None,
        hold: bool,
    ) -> LeaseRound:
        return await self.db.run(
            leases.keep_leases,
            node_id,
            ttl_seconds=ttl_seconds,
            release=release,
            address=address,
            hold=hold,
        )
