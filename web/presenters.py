"""What the routes answer with: the shapes of :mod:`web.shapes` filled from engine values and
rows, written as their camelCase wire form."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import attrs
from quart import Response, jsonify

from engine.conversation_actor import Outcome
from engine.values import Attachment, Conversation, Mention, Note, Rating, SenderType
from engine.wire import unstructure
from web.people import describe_user_agent, visitor_alias
from web.shapes import AgentProfile, CannedReply, Contact, MessageSummary, Workspace

S = TypeVar("S", bound=Conversation)


def conversation_of(outcome_or_state: Outcome | Conversation) -> Conversation:
    return (
        outcome_or_state.conversation if isinstance(outcome_or_state, Outcome) else outcome_or_state
    )


def extend(state: Conversation, shape: type[S], **more: Any) -> S:
    """``state`` as ``shape`` (a :class:`Conversation` with more fields), ``more`` filling them."""
    return shape(**attrs.asdict(state, recurse=False), **more)


def answer(value: Any, status: int = 200) -> Response:
    """``value`` (an attrs shape) as its JSON wire form."""
    response = jsonify(unstructure(value))
    response.status_code = status
    return response


def contact_of(row: dict[str, Any] | None, visitor_id: str) -> Contact:
    row = row or {}
    return Contact(
        visitor_id=visitor_id,
        display_name=row.get("name") or visitor_alias(visitor_id),
        name=row.get("name"),
        email=row.get("email"),
        phone=row.get("phone"),  # only ever what a person typed; never the visitor id
        ip=row.get("ip"),
        user_agent=row.get("user_agent"),
        current_url=row.get("current_url"),
        location=row.get("location"),
        **describe_user_agent(row.get("user_agent")),
    )


def summary_of(row: dict[str, Any] | None) -> MessageSummary | None:
    if not row:
        return None
    return MessageSummary(
        id=row["id"],
        seq=row["seq"],
        sender_type=SenderType(row["sender_type"]),
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        text=row["text"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        attachments=Attachment.all_of(row.get("attachments")),
    )


def profile_of(row: dict[str, Any]) -> AgentProfile:
    return AgentProfile(
        id=row["id"],
        tenant_id=row["tenant_id"],
        email=row["email"],
        name=row["name"],
        avatar_url=row.get("avatar_url"),
    )


def created(payload: dict[str, Any]) -> Response:
    response = jsonify(payload)
    response.status_code = 201
    return response


def html_page(html: str, csp: str, status: int = 200, *, private: bool = True) -> Response:
    """A rendered page with the headers every page carries (its Content Security Policy, no
    sniffing, no framing; ``no-store`` when it shows tenant data)."""
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


def rating_of(row: dict[str, Any] | None) -> Rating | None:
    """A stored rating (``queries.select_rating``) as its wire shape; None: not rated."""
    if row is None:
        return None
    return Rating(row["conversation_id"], row["score"], row["comment"], row["rated_at"])


def note_of(row: dict[str, Any]) -> Note:
    return Note(
        id=row["id"],
        conversation_id=row["conversation_id"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        text=row["text"],
        mentions=[Mention(m["id"], m["name"]) for m in row["mentions"]],
        client_note_id=row["client_note_id"],
        created_at=row["created_at"],
    )


def canned_reply_of(row: dict[str, Any]) -> CannedReply:
    return CannedReply(
        id=row["id"],
        shortcut=row["shortcut"],
        text=row["text"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def workspace_of(row: dict[str, Any]) -> Workspace:
    return Workspace(id=row["id"], name=row["name"], search_language=row["search_language"])
