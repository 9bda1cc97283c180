"""Internal notes and mentions (issue #17): what agents write in a conversation for each other.

A note is never a message: it takes no seq, is not in the conversation's event log, and no
visitor route reads its table; its event (``note_created``) goes to the tenant's inboxes only.
``@Ana Ruiz`` (or ``@Ana`` when no other agent of the workspace is called Ana) mentions a
colleague, who finds the note under Mentions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from quart import Blueprint, Response

from engine.values import Event, EventType, Note, NoteCreated, Status
from storage import queries
from web import auth
from web import examples as ex
from web.apidoc import AGENT, BODY_ERRORS, api, json_body, json_response
from web.deps import body, require_agent, services
from web.presenters import answer, note_of
from web.shapes import Mentioned, Mentions, Notes
from web.wire import ApiError, NoteBody

bp = Blueprint("notes", __name__)

EXAMPLE = {
    "id": "note_3b9e1d0c7a2f4e58",
    "conversationId": ex.CONVERSATION,
    "authorId": ex.AGENT,
    "authorName": "Javier Lazo",
    "text": "@Ana Ruiz she asked for the yearly price: can you check it?",
    "mentions": [{"id": "agt_5c0d1e2f3a4b5c6d", "name": "Ana Ruiz"}],
    "clientNoteId": "n-1",
    "createdAt": ex.T1,
}


def mentioned(text: str, team: Sequence[tuple[str, str]]) -> list[str]:
    """The ids of the agents ``text`` names: ``@`` and their full name, or their first name when
    no other agent of ``team`` ((id, name) pairs) has it; case-insensitive, whole words."""
    folded = text.casefold()
    firsts: dict[str, list[str]] = {}
    for agent_id, name in team:
        first = name.split()[0].casefold() if name.split() else ""
        firsts.setdefault(first, []).append(agent_id)
    out = []
    for agent_id, name in team:
        names = [name.casefold()]
        first = name.split()[0].casefold() if name.split() else ""
        if first and firsts.get(first) == [agent_id]:
            names.append(first)
        # "@" not inside a word (an email address names nobody), the name a whole word
        if any(re.search(r"(?<![\w@.])@" + re.escape(n) + r"(?!\w)", folded) for n in names if n):
            out.append(agent_id)
    return out


@bp.post("/api/chat/conversations/<conversation_id>/notes")
@api(
    "postNote",
    "Write an internal note in a conversation",
    "conversations",
    AGENT,
    {
        "201": json_response(
            "The note (the same one again for a repeated `clientNoteId`). Emits `note_created` "
            "to the workspace's inboxes only: never to the visitor.",
            Note,
            EXAMPLE,
        )
    },
    body=json_body(NoteBody, {"text": EXAMPLE["text"], "clientNoteId": "n-1"}),
    error_codes=(*BODY_ERRORS, "not_found"),
    description="Any agent of the workspace, in a conversation of any status. `@Full Name` "
    "(or `@First` when no other agent is called that) mentions a colleague.",
)
async def post_note(conversation_id: str) -> Response:
    agent = await require_agent()
    new = await body(NoteBody)
    s = services()
    tenant_id = agent["tenant_id"]
    team = await s.db.run(queries.select_team, tenant_id)
    names = [(r["id"], r["name"]) for r in team]
    now = s.clock.now()
    stored = await s.db.run(
        queries.insert_note,
        tenant_id,
        conversation_id,
        auth.new_id("note"),
        agent,
        new.text,
        new.client_note_id,
        mentioned(new.text, names),
        now,
    )
    if stored is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    row, fresh = stored
    note = note_of(row)
    if fresh:
        s.broker.publish(
            Event(
                EventType.NOTE_CREATED.value,
                now,
                tenant_id,
                data=NoteCreated(note).to_wire(),
                conversation_id=conversation_id,
            )
        )
    return answer(note, 201)


@bp.get("/api/chat/conversations/<conversation_id>/notes")
@api(
    "listNotes",
    "A conversation's internal notes",
    "conversations",
    AGENT,
    {
        "200": json_response(
            f"Oldest first (the latest {queries.NOTES_LIMIT}).", Notes, {"notes": [EXAMPLE]}
        )
    },
    error_codes=("not_found",),
)
async def list_notes(conversation_id: str) -> Response:
    agent = await require_agent()
    rows = await services().db.run(queries.select_notes, agent["tenant_id"], conversation_id)
    if rows is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    return answer(Notes([note_of(r) for r in rows]))


@bp.get("/api/chat/mentions")
@api(
    "listMentions",
    "The notes that mention the caller",
    "conversations",
    AGENT,
    {
        "200": json_response(
            f"Newest first (the latest {queries.MENTIONS_LIMIT}), each with its conversation's "
            "contact name and status.",
            Mentions,
            {
                "mentions": [
                    {
                        "note": EXAMPLE,
                        "contactName": "María López",
                        "conversationStatus": "OPEN",
                    }
                ]
            },
        )
    },
)
async def list_mentions() -> Response:
    agent = await require_agent()
    rows = await services().db.run(queries.select_mentions, agent["tenant_id"], agent["id"])
    return answer(
        Mentions(
            [
                Mentioned(
                    note=note_of(row),
                    contact_name=row["contact_name"],
                    conversation_status=Status(row["conversation_status"]),
                )
                for row in rows
            ]
        )
    )
