"""The file janitor (issue #17): a supervised service that removes from the file store the
attachments the database says are due (``file_deletions``, migration 016): those of deleted
messages (a conversation or workspace deleted) at once, and uploads whose message was
never stored an hour after they came. Several processes may sweep at once: removing a file
twice is not an error, and a row goes only after its file."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from engine.clock import Clock
from storage import queries
from storage.db import Database
from storage.files import FileStore

BATCH = 200  # rows a sweep takes at a time


@attrs.define
class FileJanitor:
    db: Database
    files: FileStore
    clock: Clock
    interval: float
    removed: int = 0  # files removed by this process (for /api/ops and tests)
    sweeps: int = 0

    async def sweep(self) -> int:
        """Remove every file due now; how many."""
        total = 0
        while True:
            due = await self.db.run(queries.select_due_files, self.clock.now(), BATCH)
            for tenant_id, attachment_id in due:
                await self.files.delete(tenant_id, attachment_id)
            if due:
                await self.db.run(queries.forget_files, [a for _, a in due])
            total += len(due)
            if len(due) < BATCH:
                break
        self.removed += total
        self.sweeps += 1
        return total

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.sweep()
            await trio.sleep(self.interval)

    def describe(self) -> dict[str, Any]:
        return {"files_removed": self.removed, "sweeps": self.sweeps}
