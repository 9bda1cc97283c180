"""Wall clocks for the engine.

The engine stamps every event with server time in UTC. Trio's own clock is monotonic and
cannot be turned into a date, so actors take a :class:`Clock` that gives the wall time, and
convert wall-clock deadlines (stored in PostgreSQL so that they survive a restart) into Trio
deadlines with :func:`trio_deadline`.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import trio

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current wall time, timezone-aware, UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class TrioClock:
    """A wall clock that follows Trio's clock: ``origin`` plus Trio's elapsed time.

    Under ``autojump_clock`` the wall time jumps with Trio's virtual time, so timeouts of the
    engine can be tested without sleeping.
    """

    def __init__(self, origin: dt.datetime | None = None) -> None:
        self._origin = origin or dt.datetime(2026, 11, 29, 13, 20, tzinfo=UTC)
        self._trio_origin = trio.current_time()

    def now(self) -> dt.datetime:
        return self._origin + dt.timedelta(seconds=trio.current_time() - self._trio_origin)


def trio_deadline(clock: Clock, wall_deadline: dt.datetime) -> float:
    """Translate a wall-clock deadline into a deadline on Trio's clock (Trio flavour)."""
    return trio.current_time() + (wall_deadline - clock.now()).total_seconds()


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a ``Z``: the only timestamp format on the wire."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
