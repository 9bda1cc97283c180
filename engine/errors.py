"""Errors the engine raises, mapped to HTTP status codes and WebSocket close codes at the edge.

Hierarchy::

    EngineError                      base; ``code`` is the snake_case wire code, ``status`` the HTTP status
     ├── NotFound                    404  unknown conversation, widget, visitor ...
     ├── Forbidden                   403  caller may not touch this object
     ├── Conflict                    409
     │    ├── IllegalTransition      409  the state machine refuses the command in this state
     │    └── AlreadyAssigned        409  another agent accepted first
     └── ActorUnavailable            503  the actor crashed past its restart intensity or is shutting down
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine reports to a caller."""

    code = "engine_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(EngineError):
    code = "not_found"
    status = 404


class Forbidden(EngineError):
    code = "forbidden"
    status = 403


class Conflict(EngineError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    """The conversation state machine refuses a command in the current state."""

    code = "illegal_transition"


class AlreadyAssigned(Conflict):
    """Accept lost the race: another agent owns the conversation."""

    code = "already_assigned"

    def __init__(self, message: str, *, assignee_id: str, assignee_name: str) -> None:
        super().__init__(message)
        self.assignee_id = assignee_id
        self.assignee_name = assignee_name


class ActorUnavailable(EngineError):
    code = "actor_unavailable"
    status = 503
