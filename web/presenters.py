"""Wire shapes the routes answer with (camelCase JSON), built from engine values and rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quart import Response, jsonify

from engine.clock import iso
from engine.conversation_actor import Outcome
from web.people import describe_user_agent, visitor_alias


def conversation_wire(
    outcome_or_state: Any, messages: list[Any] | None = None, contact: dict[str, Any] | None = None
) -> dict[str, Any]:
    state = (
        outcome_or_state.conversation if isinstance(outcome_or_state, Outcome) else outcome_or_state
    )
    wire = state.to_wire()
    if messages is not None:
        wire["messages"] = [m.to_wire() for m in messages]
    if contact is not None:
        wire["contact"] = contact
    return wire


def contact_wire(row: dict[str, Any] | None, visitor_id: str) -> dict[str, Any]:
    row = row or {}
    return {
        "visitorId": visitor_id,
        "displayName": row.get("name") or visitor_alias(visitor_id),
        "name": row.get("name"),
        "email": row.get("email"),
        "phone": row.get("phone"),  # only ever what a person typed; never the visitor id
        "ip": row.get("ip"),
        "userAgent": row.get("user_agent"),
        "currentUrl": row.get("current_url"),
        "location": row.get("location"),
        **describe_user_agent(row.get("user_agent")),
    }


def agent_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "tenantId": row["tenant_id"],
        "email": row["email"],
        "name": row["name"],
        "avatarUrl": row.get("avatar_url"),
    }


def created(payload: dict[str, Any]) -> Response:
    response = jsonify(payload)
    response.status_code = 201
    return response


def last_message_wire(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if not row:
        return None
    created = dt.datetime.fromisoformat(row["created_at"])
    return {
        "id": row["id"],
        "seq": row["seq"],
        "senderType": row["sender_type"],
        "senderId": row["sender_id"],
        "senderName": row["sender_name"],
        "text": row["text"],
        "createdAt": iso(created),
    }


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
