"""Visitors' read marks from their sockets, written together (issue #17): a widget says what its
visitor has read about once a second while the chat is in front of them, and each ``read`` frame
was a statement of its own, a round trip through trio-asyncio and PostgreSQL: the bench's
delivery scenario (a read beside each typing hint) spent more CPU on them than on its messages.

:class:`VisitorReads` is a supervised service doing a group commit: a mark is put in memory
(the latest per conversation), and the service writes whatever is pending in one statement
(``queries.mark_visitor_reads``): the first mark of a quiet spell at once, then at most ten
statements a second, each with every mark that came meanwhile. Only marks that changed what the
other side sees (``news``) are published, as ``conversation_read``, after the write.

What may be lost: the marks of the last write in flight if the process dies (a read mark is
not a message: the widget says it again the next time its visitor reads). A write that fails
(the database away) puts its marks back and ends the service, which the supervisor restarts
after its back-off; the marks wait in this object meanwhile.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import trio

from engine.broker import Broker
from engine.clock import Clock
from engine.values import ConversationRead, Event, EventType
from storage import queries
from storage.db import Database


def visitor_read_event(
    now: dt.datetime, tenant_id: str, visitor_id: str, conversation_id: str, mark: int
) -> Event:
    """``conversation_read`` with ``reader: "visitor"``: to the inbox (which agent messages the
    visitor has seen) and the visitor's other sockets (their unread badge agrees)."""
    read = ConversationRead(None, conversation_id, mark, reader="visitor")
    return Event(
        EventType.CONVERSATION_READ.value,
        now,
        tenant_id,
        data=read.to_wire(),
        conversation_id=conversation_id,
        visitor_id=visitor_id,
    )


# at most this many statements a second: 125 read frames a second (the bench's delivery at 250
# msg/s) were as many statements when each was written as soon as the last one was done, at
# about 1 ms of the server's CPU each; a tenth of a second later, "Seen" shows all the same
WRITE_EVERY = 0.1


class VisitorReads:
    def __init__(self, db: Database, broker: Broker, clock: Clock) -> None:
        self.db = db
        self.broker = broker
        self.clock = clock
        self.pending: dict[str, tuple[str, str, int]] = {}  # conversation -> tenant, visitor, seq
        self._wake = trio.Event()
        self.marks = 0  # marks taken
        self.writes = 0  # statements that wrote them
        self.told = 0  # conversation_read events published

    def mark(self, tenant_id: str, visitor_id: str, conversation_id: str, seq: int) -> None:
        """The visitor read ``conversation_id`` (one of its own: the caller checked) up to
        ``seq``; written with the next statement, never waited for."""
        self.marks += 1
        before = self.pending.get(conversation_id)
        if before is not None:
            seq = max(seq, before[2])
        self.pending[conversation_id] = (tenant_id, visitor_id, seq)
        self._wake.set()

    async def write(self) -> int:
        """Write what is pending now in one statement, publish the news; how many marks."""
        batch, self.pending = self.pending, {}
        if not batch:
            return 0
        now = self.clock.now()
        rows = [(t, v, cid, seq) for cid, (t, v, seq) in batch.items()]
        try:
            marks = await self.db.run(queries.mark_visitor_reads, rows, now)
        except BaseException:
            for cid, (t, v, seq) in batch.items():  # back, under any mark that came since
                later = self.pending.get(cid)
                self.pending[cid] = (t, v, seq if later is None else max(seq, later[2]))
            raise
        self.writes += 1
        for cid, (tenant_id, visitor_id, _) in batch.items():
            marked = marks.get(cid)
            if marked is not None and marked.news:
                self.told += 1
                self.broker.publish(visitor_read_event(now, tenant_id, visitor_id, cid, marked.seq))
        return len(batch)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write pending marks: the first of a quiet spell at once, then at most one statement
        every :data:`WRITE_EVERY` seconds with whatever came meanwhile (a service; Trio)."""
        task_status.started()
        while True:
            if not self.pending:
                await self._wake.wait()
                self._wake = trio.Event()
            await self.write()
            await trio.sleep(WRITE_EVERY)

    def describe(self) -> dict[str, Any]:
        return {
            "marks_pending": len(self.pending),
            "marks_taken": self.marks,
            "mark_writes": self.writes,
        }
