"""What one process keeps so that a heartbeat does not cross to another process for nothing.

Under several processes (``serve --workers``, several nodes) a widget's actor lives on one of
them, and every heartbeat of every visitor of the site used to reach it twice: to read the widget's
row (Targeting, status) and to record the installation ping. Both are per-site facts that change
seldom, and a site has many visitors, so each process keeps:

- :class:`PingGate`: one ping per widget and domain every few seconds goes to the widget's actor;
  the others are dropped here. The widget's "last seen" moves in steps of at most that long, and
  its status (which only a first ping, a 24-hour silence or a refusal changes) is unaffected; a
  refusal seen here opens the gate again, so the next good ping goes at once.
- :class:`RowCache`: a widget's row read from an actor on *another* process is reused for a
  second. A Targeting change or a deletion reaches that process's heartbeats within that second
  (the actor's own process, and a single process, always read the actor's live row).

Both are bounded: past ``limit`` keys they start again empty (one more crossing per key).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

PING_EVERY = dt.timedelta(seconds=5)
ROW_FOR = dt.timedelta(seconds=1)
LIMIT = 50_000


@attrs.define
class PingGate:
    every: dt.timedelta = PING_EVERY
    limit: int = LIMIT
    _sent: dict[tuple[str, str | None], dt.datetime] = attrs.field(factory=dict, init=False)

    def due(self, widget_id: str, domain: str | None, now: dt.datetime) -> bool:
        """Whether a ping of ``widget_id`` from ``domain`` goes to the actor now (noted if so)."""
        key = (widget_id, domain)
        sent = self._sent.get(key)
        if sent is not None and dt.timedelta(0) <= now - sent < self.every:
            return False
        if len(self._sent) >= self.limit:
            self._sent.clear()
        self._sent[key] = now
        return True

    def reopen(self, widget_id: str) -> None:
        """A refusal for ``widget_id``: its next good ping goes at once (to clear the status)."""
        for key in [k for k in self._sent if k[0] == widget_id]:
            del self._sent[key]


@attrs.define
class RowCache:
    keep_for: dt.timedelta = ROW_FOR
    limit: int = LIMIT
    _rows: dict[str, tuple[dt.datetime, dict[str, Any]]] = attrs.field(factory=dict, alias="_rows")

    def get(self, widget_id: str, now: dt.datetime) -> dict[str, Any] | None:
        held = self._rows.get(widget_id)
        if held is None:
            return None
        at, row = held
        if not dt.timedelta(0) <= now - at < self.keep_for:
            del self._rows[widget_id]
            return None
        return dict(row)

    def put(self, widget_id: str, row: dict[str, Any], now: dt.datetime) -> None:
        if len(self._rows) >= self.limit:
            self._rows.clear()
        self._rows[widget_id] = (now, dict(row))

    def forget(self, widget_id: str) -> None:
        self._rows.pop(widget_id, None)
