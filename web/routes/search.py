"""Search (issue #17): an agent searches the workspace's conversations by message text
(PostgreSQL full-text search in the workspace's language: ``storage/migrations/015_search.sql``)
and by contact (name, email, phone). Results are plain-text pieces with the matches marked, so
nothing a visitor typed is ever read as markup; the inbox opens a result's thread at its message.

The workspace's search language is read and changed at ``/api/chat/workspace``."""

from __future__ import annotations

import re
from typing import Any, Literal

from quart import Blueprint, Response, request

from engine.values import Kind, Status
from storage import queries
from web import examples as ex
from web.apidoc import AGENT, BODY_ERRORS, api, json_body, json_response, query_param
from web.deps import body, require_agent, services
from web.paging import Paging
from web.presenters import answer, contact_of, summary_of, workspace_of
from web.shapes import ContactHit, MessageHit, SearchResults, Segment, Workspace
from web.wire import ApiError, WorkspacePatch, storable

bp = Blueprint("search", __name__)

MAX_QUERY = 200
CONTACTS = 10  # contacts the first page lists
RESULTS = Paging("search", default=20, most=50)
# a query that is a phone number: digits with the signs people type between them
_PHONE = re.compile(r"^[0-9+()\-. ]+$")
MIN_PHONE_DIGITS = 3


def headline(text: str) -> list[Segment]:
    """A headline from PostgreSQL (matches between the control characters) as pieces."""
    pieces = re.split(f"({queries.MATCH_START}[^{queries.MATCH_END}]*{queries.MATCH_END})", text)
    return [
        Segment(piece[1:-1], True)
        if piece.startswith(queries.MATCH_START)
        else Segment(piece, False)
        for piece in pieces
        if piece
    ]


def marked(value: str, pattern: str) -> list[Segment] | None:
    """``value`` with the first match of ``pattern`` marked, or None when it does not match."""
    found = re.search(pattern, value, re.IGNORECASE)
    if found is None or found.start() == found.end():
        return None
    before, match, after = value[: found.start()], found.group(), value[found.end() :]
    return [
        s for s in (Segment(before, False), Segment(match, True), Segment(after, False)) if s.text
    ]


def phone_digits(words: str) -> str | None:
    """The digits of a query that looks like (part of) a phone number, else None."""
    digits = re.sub(r"[^0-9]", "", words)
    return digits if _PHONE.match(words) and len(digits) >= MIN_PHONE_DIGITS else None


def contact_hit(row: dict[str, Any], words: str, digits: str | None) -> ContactHit | None:
    """What matched in a contact the database found, first name, then email, then phone."""
    contact = row["contact"]
    fields: list[tuple[Literal["name", "email", "phone"], str]] = [
        ("name", re.escape(words)),
        ("email", re.escape(words)),
    ]
    if digits:
        fields.append(("phone", "[^0-9]*".join(digits)))
    for field, pattern in fields:
        pieces = marked(contact.get(field) or "", pattern)
        if pieces:
            return ContactHit(
                conversation_id=row["conversation_id"],
                status=Status(row["status"]),
                kind=Kind(row["kind"]),
                contact=contact_of(contact, row["visitor_id"]),
                field=field,
                headline=pieces,
            )
    return None  # matched by PostgreSQL's case rules, not Python's: leave it out


EX_SEGMENTS = [
    {"text": "Hola, quería saber el precio de la ", "match": False},
    {"text": "canción", "match": True},
    {"text": " que suena en la tienda", "match": False},
]


@bp.get("/api/chat/search")
@api(
    "search",
    "Search the workspace's conversations by message text and by contact",
    "conversations",
    AGENT,
    {
        "200": json_response(
            'Messages whose text matches `q` (web search syntax: words, "a phrase", -word, '
            "or), the newest first, a page at a time; on the first page also the contacts "
            "whose name or email holds `q` or whose phone holds its digits. Only this "
            "workspace's conversations, internal notes never.",
            SearchResults,
            {
                "query": "cancion",
                "contacts": [
                    {
                        "conversationId": ex.EX_CONVERSATION["id"],
                        "status": "SOLVED",
                        "kind": "live_chat",
                        "contact": ex.EX_CONTACT,
                        "field": "name",
                        "headline": [
                            {"text": "María ", "match": False},
                            {"text": "López", "match": True},
                        ],
                    }
                ],
                "messages": [
                    {
                        "conversationId": ex.EX_CONVERSATION["id"],
                        "status": "SOLVED",
                        "kind": "live_chat",
                        "contact": ex.EX_CONTACT,
                        "message": ex.EX_MESSAGE_SUMMARY,
                        "headline": EX_SEGMENTS,
                    }
                ],
                "nextCursor": None,
            },
        )
    },
    parameters=[
        query_param(
            "q",
            f"what to look for, 1 to {MAX_QUERY} characters",
            {"type": "string", "minLength": 1, "maxLength": MAX_QUERY},
            required=True,
        ),
        *RESULTS.parameters("the newest message first"),
    ],
    error_codes=("invalid_query", "invalid_limit", "invalid_cursor"),
)
async def search() -> Response:
    agent = await require_agent()
    words = (request.args.get("q") or "").strip()
    if not words or len(words) > MAX_QUERY or not storable(words):
        raise ApiError(422, "invalid_query", f"q is 1 to {MAX_QUERY} characters, none of them NUL")
    limit, after = RESULTS.limit(), RESULTS.after_key()
    s = services()
    rows = await s.db.run(
        queries.search_messages, agent["tenant_id"], words, limit=limit + 1, after=after
    )
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]["message"]
        cursor = RESULTS.cursor([last["created_at"], last["id"]])
    contacts: list[ContactHit] = []
    if after is None:
        digits = phone_digits(words)
        found = await s.db.run(queries.search_contacts, agent["tenant_id"], words, digits, CONTACTS)
        contacts = [hit for row in found if (hit := contact_hit(row, words, digits))]
    messages = []
    for row in rows:
        summary = summary_of(row["message"])
        assert summary is not None
        messages.append(
            MessageHit(
                conversation_id=row["message"]["conversation_id"],
                status=Status(row["status"]),
                kind=Kind(row["kind"]),
                contact=contact_of(row["contact"], row["visitor_id"]),
                message=summary,
                headline=headline(row["headline"]),
            )
        )
    return answer(SearchResults(words, contacts, messages, next_cursor=cursor))


EX_WORKSPACE = {"id": ex.TENANT, "name": "Curbe Seguros", "searchLanguage": "spanish"}


@bp.get("/api/chat/workspace")
@api(
    "getWorkspace",
    "The agent's workspace",
    "conversations",
    AGENT,
    {"200": json_response("The workspace.", Workspace, EX_WORKSPACE)},
)
async def getworkspace_of() -> Response:
    agent = await require_agent()
    row = await services().db.run(queries.select_tenant, agent["tenant_id"])
    assert row is not None  # an agent's tenant is deleted with its agents
    return answer(workspace_of(row))


@bp.patch("/api/chat/workspace")
@api(
    "updateWorkspace",
    "Change the workspace's search language",
    "conversations",
    AGENT,
    {"200": json_response("The workspace after the change.", Workspace, EX_WORKSPACE)},
    body=json_body(WorkspacePatch, {"searchLanguage": "spanish"}),
    error_codes=BODY_ERRORS,
    description="Messages stored from now on are indexed in the new language; those stored "
    "before keep theirs, and a search still finds them (each language is asked in turn).",
)
async def updateworkspace_of() -> Response:
    agent = await require_agent()
    change = await body(WorkspacePatch)
    row = await services().db.run(
        queries.set_search_language, agent["tenant_id"], change.search_language
    )
    assert row is not None
    return answer(workspace_of(row))
