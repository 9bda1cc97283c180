"""Errors the engine raises, mapped to HTTP status codes and WebSocket close codes at the edge.

Hierarchy::

    EngineError                      base; ``code`` is the snake_case wire code, ``status`` the HTTP status,
     │                               ``extra`` more fields for the wire (camelCase)
     ├── NotFound                    404  unknown conversation, widget, visitor ...
     ├── Forbidden                   403  caller may not touch this object
     ├── Conflict                    409
     │    ├── IllegalTransition      409  the state machine refuses the command in this state
     │    ├── AlreadyAssigned        409  another agent accepted first
     │    ├── AtCapacity             409  the agent has as many OPEN chats as their limit
     │    ├── ConversationActive     409  the visitor already has a live chat that is not SOLVED
     │    └── VisitorGone            409  an agent starts a chat with a visitor who left
     └── ActorUnavailable            503  the actor stopped before answering (crash, given up,
          │                               shutdown) or did not answer in time; ``Retry-After``
          └── NotOwner                503  (between processes) this process does not own the actor
                                          (any more): the caller finds its owner and sends again
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from engine.wire import OPTIONAL, Wire, camel, doc, structure


@attrs.frozen
class Assignee(Wire):
    id: str
    name: str


def _more(description: str) -> Any:
    return attrs.field(default=None, metadata=OPTIONAL | doc(description))


@attrs.frozen
class ErrorBody(Wire):
    """Every error: ``{"error": {"code", "message", …}}`` — the object inside ``error``. The
    fields after ``message`` come with the codes that need them."""

    code: str = attrs.field(metadata={"schema": {"pattern": "^[a-z][a-z0-9]*(_[a-z0-9]+)*$"}})
    message: str = attrs.field(metadata=doc("a human sentence") | {"schema": {"pattern": r"\S"}})
    fields: dict[str, str] | None = attrs.field(
        default=None, metadata=OPTIONAL | doc("`invalid_widget`: every bad field, by path")
    )
    widget_status: Literal["MISCONFIGURED"] | None = _more("`domain_not_allowed`")
    assignee: Assignee | None = attrs.field(
        default=None, metadata=OPTIONAL | doc("`already_assigned`: who has it")
    )
    open_chats: int | None = _more("`at_capacity`")
    capacity: int | None = _more("`at_capacity`")
    conversation_id: str | None = _more("`conversation_active`: the active one")
    retry_after_seconds: int | None = _more("429 and 503: when to try again")
    presence: Literal["away", "offline"] | None = _more(
        "`agent_unavailable`: why that agent cannot take the chat"
    )

    @classmethod
    def of(cls, code: str, message: str, extra: dict[str, Any]) -> ErrorBody:
        """The body of an error with ``extra`` fields (camelCase); an unknown one is a bug."""
        unknown = set(extra) - {camel(f.name) for f in attrs.fields(cls)}
        if unknown:
            raise TypeError(f"no error field {sorted(unknown)}: add it to ErrorBody")
        return structure({"code": code, "message": message, **extra}, cls)


@attrs.frozen
class ErrorAnswer(Wire):
    """Every error answer: ``{"error": {"code", "message", …}}`` with a 4xx status (503 for an
    outage)."""

    error: ErrorBody


class EngineError(Exception):
    """Base of every error the engine reports to a caller."""

    code = "engine_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra

    def to_wire(self) -> dict[str, Any]:
        """``{"code", "message", ...extra}``: the body of an error answer or frame."""
        return ErrorBody.of(self.code, self.message, self.extra).to_wire()


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
        super().__init__(message, assignee={"id": assignee_id, "name": assignee_name})
        self.assignee_id = assignee_id
        self.assignee_name = assignee_name


class AtCapacity(Conflict):
    """Taking the chat would give the agent more OPEN chats than their limit."""

    code = "at_capacity"

    def __init__(self, message: str, *, open_chats: int, capacity: int) -> None:
        super().__init__(message, openChats=open_chats, capacity=capacity)
        self.open_chats = open_chats
        self.capacity = capacity


class ConversationActive(Conflict):
    """One live chat per visitor: this visitor's is still WAITING or OPEN."""

    code = "conversation_active"

    def __init__(self, message: str, *, conversation_id: str) -> None:
        super().__init__(message, conversationId=conversation_id)
        self.conversation_id = conversation_id


class VisitorGone(Conflict):
    code = "visitor_gone"


class ActorUnavailable(EngineError):
    """The actor could not answer. ``cause`` (for logs, never the wire) says why;
    ``retry_after`` is the ``Retry-After`` a client is told."""

    code = "actor_unavailable"
    status = 503

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        cause: str | None = None,
        retry_after: int = 1,
    ) -> None:
        super().__init__(message, code=code, retryAfterSeconds=retry_after)
        self.cause = cause
        self.retry_after = retry_after


class NotOwner(ActorUnavailable):
    """The actor belongs to a shard this process does not own (never its own, or moved away
    while the command was queued). :meth:`engine.supervisor.Supervisor.call` sends the command
    again to the owner; a client sees it only when no owner answered before its deadline."""

    def __init__(self, message: str = "the actor is moving to another process; retry") -> None:
        super().__init__(message, code="actor_moved")
