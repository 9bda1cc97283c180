"""Fault injection: the test seam through which tests crash actors at a named stage.

Every actor calls ``faults.check(kind, stage, actor_id)`` at the points where a real failure can
happen (loading, handling a command, before and after a commit, in a timer, in a listener). In
production that is :data:`NO_FAULTS`, which does nothing. A test passes a :class:`FaultPlan` and
arms the stage it wants to break, the way httpx tests pass a ``MockTransport``: no monkeypatching,
and the code under test is the code that runs in production.

Stages, by actor kind (``docs/architecture.md`` lists them with what each failure means):

=================  ===========================================================================
conversation       load, handle, before_commit, after_commit, timer
visitor_session    load, handle, save, expiry
widget             load, handle, save, timer
router             pass, offer
service            listen (the routing listener, after each event it reads)
=================  ===========================================================================
"""

from __future__ import annotations

from typing import Protocol

import attrs


class InjectedFault(RuntimeError):
    """Raised by an armed :class:`FaultPlan`; never raised in production."""


class Faults(Protocol):
    def check(self, kind: str, stage: str, actor_id: str) -> None:
        """Raise :class:`InjectedFault` if this stage of this actor is armed."""
        ...


class NoFaults:
    """Production: nothing is ever armed."""

    def check(self, kind: str, stage: str, actor_id: str) -> None:
        return None


NO_FAULTS = NoFaults()


@attrs.define
class FaultPlan:
    """Armed stages: ``(kind, stage, actor id or "*")`` -> how many more times to raise."""

    armed: dict[tuple[str, str, str], int] = attrs.field(factory=dict)
    raised: list[tuple[str, str, str]] = attrs.field(factory=list)

    def arm(self, kind: str, stage: str, actor_id: str = "*", *, times: int = 1) -> None:
        self.armed[(kind, stage, actor_id)] = times

    def disarm(self) -> None:
        self.armed.clear()

    def check(self, kind: str, stage: str, actor_id: str) -> None:
        for key in ((kind, stage, actor_id), (kind, stage, "*")):
            left = self.armed.get(key, 0)
            if left > 0:
                self.armed[key] = left - 1
                self.raised.append((kind, stage, actor_id))
                raise InjectedFault(f"injected fault: {kind} {actor_id} at {stage}")
