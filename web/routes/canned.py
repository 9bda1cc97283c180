"""Canned replies (issue #17): a workspace's saved answers, managed in Settings › Canned replies
and found in the inbox's composer by typing ``/``. Every query is scoped to the agent's tenant."""

from __future__ import annotations

from quart import Blueprint, Response, request

from storage import queries
from web import auth
from web import examples as ex
from web.apidoc import AGENT, BODY_ERRORS, api, json_body, json_response, query_param
from web.deps import body, require_agent, services
from web.presenters import answer, canned_reply_of, created
from web.shapes import CannedReplies, CannedReply, Deleted
from web.wire import ApiError, CannedReplyBody, CannedReplyPatch, storable

bp = Blueprint("canned", __name__)

PREFIX = "/api/chat/canned-replies"
SEARCH_LIMIT = 20  # what the composer's list shows for what was typed after "/"
EXAMPLE = {
    "id": "cr_5a1f0c2e9b7d4e61",
    "shortcut": "hours",
    "text": "Hi {{visitor.first_name}}! We answer Monday to Friday, 9:00 to 18:00.",
    "createdAt": ex.T0,
    "updatedAt": ex.T0,
}


def _taken(shortcut: str) -> ApiError:
    return ApiError(409, "shortcut_taken", f"/{shortcut} is another canned reply's shortcut")


@bp.get(PREFIX)
@api(
    "listCannedReplies",
    "The workspace's canned replies, or those matching what was typed",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "Without `q`: every canned reply by shortcut. With `q`: the first 20 whose "
            "shortcut starts with it, then those whose text holds it (case-insensitive).",
            CannedReplies,
            {"cannedReplies": [EXAMPLE]},
        )
    },
    parameters=[
        query_param(
            "q",
            "what the agent typed after `/`",
            {"type": "string", "maxLength": 100},
        )
    ],
    error_codes=("invalid_query",),
)
async def list_canned() -> Response:
    agent = await require_agent()
    q = request.args.get("q")
    if q is not None and (len(q) > 100 or not storable(q)):
        raise ApiError(422, "invalid_query", "q is at most 100 characters, none of them NUL")
    limit = SEARCH_LIMIT if q else queries.CANNED_LIMIT
    rows = await services().db.run(
        queries.select_canned_replies, agent["tenant_id"], (q or "").strip() or None, limit
    )
    return answer(CannedReplies([canned_reply_of(r) for r in rows]))


@bp.post(PREFIX)
@api(
    "createCannedReply",
    "Save a canned reply",
    "conversations",
    AGENT,
    {"201": json_response("The canned reply.", CannedReply, EXAMPLE)},
    body=json_body(CannedReplyBody, {"shortcut": "hours", "text": EXAMPLE["text"]}),
    error_codes=(*BODY_ERRORS, "shortcut_taken", "too_many"),
    description="409 `shortcut_taken` when another reply of the workspace has that shortcut "
    f"(whatever its case); 409 `too_many` past {queries.CANNED_LIMIT} replies.",
)
async def create_canned() -> Response:
    agent = await require_agent()
    new = await body(CannedReplyBody)
    s = services()
    if await s.db.run(queries.count_canned_replies, agent["tenant_id"]) >= queries.CANNED_LIMIT:
        raise ApiError(
            409, "too_many", f"a workspace keeps at most {queries.CANNED_LIMIT} canned replies"
        )
    row = await s.db.run(
        queries.insert_canned_reply,
        agent["tenant_id"],
        auth.new_id("cr"),
        new.shortcut,
        new.text,
        s.clock.now(),
    )
    if row is None:
        raise _taken(new.shortcut)
    return created(canned_reply_of(row).to_wire())


@bp.patch(PREFIX + "/<reply_id>")
@api(
    "updateCannedReply",
    "Change a canned reply",
    "conversations",
    AGENT,
    {"200": json_response("The canned reply after the change.", CannedReply, EXAMPLE)},
    body=json_body(CannedReplyPatch, {"text": EXAMPLE["text"]}),
    error_codes=(*BODY_ERRORS, "not_found", "shortcut_taken"),
)
async def update_canned(reply_id: str) -> Response:
    agent = await require_agent()
    patch = await body(CannedReplyPatch)
    s = services()
    row = await s.db.run(
        queries.update_canned_reply,
        agent["tenant_id"],
        reply_id,
        patch.shortcut,
        patch.text,
        s.clock.now(),
    )
    if row is False:
        raise _taken(patch.shortcut or "")
    if row is None:
        raise ApiError(404, "not_found", f"no canned reply {reply_id}")
    assert isinstance(row, dict)
    return answer(canned_reply_of(row))


@bp.delete(PREFIX + "/<reply_id>")
@api(
    "deleteCannedReply",
    "Delete a canned reply",
    "conversations",
    AGENT,
    {"200": json_response("Deleted.", Deleted, {"id": EXAMPLE["id"], "deleted": True})},
    error_codes=("not_found",),
)
async def delete_canned(reply_id: str) -> Response:
    agent = await require_agent()
    if not await services().db.run(queries.delete_canned_reply, agent["tenant_id"], reply_id):
        raise ApiError(404, "not_found", f"no canned reply {reply_id}")
    return answer(Deleted(reply_id))
