"""Files and images (issue #17): a visitor or an agent sends a file as a message of its own, and
whoever may read the conversation fetches it back; nobody else, and no address works without
the visitor's token or the agent's session.

An upload is the file as the request's body (its name in ``X-File-Name``, UTF-8
percent-encoded; ``X-Client-Message-Id`` makes a retry safe), up to ``max_upload_bytes``
(``CURBE_MAX_UPLOAD_BYTES``, 10 MB by default: web/app.py gives these routes that limit). What
the file is comes from its bytes (:mod:`web.uploads`). Its bytes are written to the file store
before its message is committed, recorded in ``file_deletions`` first so that a message never
stored (refused, or a crash between the two) leaves nothing behind for long (web/janitor.py).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import trio
from quart import Blueprint, Response, request

from engine.conversation_actor import Outcome
from engine.values import Attachment
from storage import queries
from storage.files import ORIGINAL, THUMBNAIL
from web import auth
from web import examples as ex
from web.apidoc import ACTOR, AGENT_AUTH, VISITOR_AUTH, api
from web.deps import VISITOR_PREFIX, require_agent, services, widget_visitor
from web.presenters import created
from web.schema import ref
from web.services import Services
from web.uploads import ALLOWED_TYPES, IMAGE_TYPES, Refused, examine, file_name
from web.usecases import send_agent_message, send_visitor_message
from web.wire import MAX_ID, ApiError

bp = Blueprint("files", __name__)
_F = TypeVar("_F", bound=Callable[..., Any])

#: How long an uploaded file may wait for its message before the janitor takes it.
PENDING = dt.timedelta(hours=1)

EX_ATTACHMENT = {
    "id": "att_7c1e9a04d2b35f68",
    "name": "poliza.pdf",
    "contentType": "application/pdf",
    "size": 182_344,
    "width": None,
    "height": None,
    "thumbnail": False,
}
EX_FILE_MESSAGE = {**ex.EX_MESSAGE, "text": "", "attachments": [EX_ATTACHMENT]}


@attrs.frozen
class _FileMessage:
    """What send_agent_message reads of a message: a file's message has no text."""

    client_message_id: str | None
    text: str = ""
    client_timestamp: str | None = None


def _upload_doc(
    operation_id: str, summary: str, security: Any, extra: tuple[str, ...]
) -> Callable[[_F], _F]:
    return api(
        operation_id,
        summary,
        "files",
        security,
        {"201": {"description": "The message that carries the file.", **_json(EX_FILE_MESSAGE)}},
        description=(
            "The body is the file itself. Allowed, by content (the declared type and the name "
            "are not trusted): PNG, JPEG, GIF and WebP images, PDF documents; anything else "
            "answers 415 `unsupported_file`, an empty body 422 `empty_file`, a header longer "
            "than documented 422 `invalid_body`, more than the limit (10 MB by default) 413. "
            "The file is sent as a message of its own (no text) "
            "and reaches the conversation's sockets as `message_created`."
        ),
        parameters=[
            {
                "name": "X-File-Name",
                "in": "header",
                "required": False,
                "description": "the file's name, UTF-8 percent-encoded (default `file.<type>`)",
                "schema": {"type": "string", "maxLength": MAX_NAME_HEADER},
            },
            {
                "name": "X-Client-Message-Id",
                "in": "header",
                "required": False,
                "description": "the client's id of the message: the same upload sent again "
                "answers the message stored the first time",
                "schema": {"type": "string", "maxLength": MAX_ID},
            },
        ],
        body={
            "required": True,
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}} for kind in ALLOWED_TYPES
            },
        },
        error_codes=(
            "empty_file",
            "unsupported_file",
            "body_too_large",
            "invalid_body",
            "not_found",
            *extra,
        ),
    )


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ref("Message"), "example": example}}}


MAX_NAME_HEADER = 1000  # X-File-Name, percent-encoded (the name kept is at most 200 characters)


def _header(name: str, limit: int) -> str | None:
    """A header of the upload, refused (422 ``invalid_body``) past its documented length."""
    value = request.headers.get(name) or None
    if value is not None and len(value) > limit:
        raise ApiError(422, "invalid_body", f"{name} is longer than {limit} characters")
    return value


async def _receive(
    s: Services, tenant_id: str, send: Callable[[Attachment], Awaitable[Outcome]]
) -> Response:
    """Examine the request's file, store it, send it as a message; the message."""
    data = await request.get_data(cache=True, as_text=False)
    assert isinstance(data, bytes)
    header_name = _header("X-File-Name", MAX_NAME_HEADER)
    if not data:
        raise ApiError(422, "empty_file", "the body holds no file")
    try:
        async with s.file_checks:
            found = await trio.to_thread.run_sync(examine, data)
    except Refused as exc:
        raise ApiError(
            415,
            "unsupported_file",
            f"{exc}: send a PNG, JPEG, GIF or WebP image, or a PDF document",
        ) from exc
    attachment = Attachment(
        id=auth.new_id("att"),
        name=file_name(header_name, found.content_type),
        content_type=found.content_type,
        size=len(data),
        width=found.width,
        height=found.height,
        thumbnail=found.thumbnail is not None,
    )
    await s.db.run(queries.expect_file, tenant_id, attachment.id, s.clock.now() + PENDING)
    await s.files.put(tenant_id, attachment.id, ORIGINAL, data)
    if found.thumbnail is not None:
        await s.files.put(tenant_id, attachment.id, THUMBNAIL, found.thumbnail)
    try:
        outcome = await send(attachment)
    except BaseException:
        await _drop(s, tenant_id, attachment.id)  # refused: the file goes with the next sweep
        raise
    assert outcome.message is not None  # a PostMessage outcome always carries its message
    if outcome.duplicate:  # sent before: the message holds that upload's file, not this one
        await _drop(s, tenant_id, attachment.id)
    return created(outcome.message.to_wire())


async def _drop(s: Services, tenant_id: str, attachment_id: str) -> None:
    with trio.CancelScope(shield=True):
        try:
            await s.db.run(queries.expect_file, tenant_id, attachment_id, s.clock.now())
        except Exception:  # the database is away: the hour's deadline stands
            pass


@bp.post(VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/attachments")
@_upload_doc(
    "uploadVisitorFile",
    "The visitor sends a file",
    VISITOR_AUTH,
    ("unauthenticated", "forbidden", "conversation_solved", *ACTOR),
)
async def visitor_upload(widget_id: str, conversation_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    s, tenant_id, message_id = (
        services(),
        widget["tenant_id"],
        _header("X-Client-Message-Id", MAX_ID),
    )

    async def send(attachment: Attachment) -> Outcome:
        return await send_visitor_message(
            s,
            tenant_id,
            visitor.visitor_id,
            conversation_id,
            "",
            message_id,
            None,
            name=None,
            attachments=(attachment,),
        )

    return await _receive(s, tenant_id, send)


@bp.post("/api/chat/conversations/<conversation_id>/attachments")
@_upload_doc(
    "uploadAgentFile",
    "The agent sends a file",
    AGENT_AUTH,
    ("unauthenticated", "csrf_required", "conversation_not_open", "conversation_solved", *ACTOR),
)
async def agent_upload(conversation_id: str) -> Response:
    agent = await require_agent()
    s, message = services(), _FileMessage(_header("X-Client-Message-Id", MAX_ID))

    async def send(attachment: Attachment) -> Outcome:
        return await send_agent_message(s, agent, conversation_id, message, (attachment,))

    return await _receive(s, agent["tenant_id"], send)


# --- downloads --------------------------------------------------------------------------------


def _download_doc(
    operation_id: str, summary: str, security: Any, thumbnail: bool
) -> Callable[[_F], _F]:
    media = {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}
    if not thumbnail:
        media = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in ALLOWED_TYPES}
    return api(
        operation_id,
        summary,
        "files",
        security,
        {
            "200": {
                "description": (
                    "A JPEG of at most 320 × 320 pixels, upright, without the original's metadata."
                    if thumbnail
                    else "The file as it was sent: an image inline, a PDF as a download "
                    "(`Content-Disposition: attachment`); `X-Content-Type-Options: nosniff` "
                    "and a sandboxing Content Security Policy on both."
                ),
                "content": media,
            }
        },
        description="404 for a file that is not of this conversation, or a conversation that "
        "is not the caller's"
        + (" (and for a file without a thumbnail: a PDF)" if thumbnail else ""),
        error_codes=("unauthenticated", "not_found"),
    )


async def _send_file(
    tenant_id: str,
    conversation_id: str,
    attachment_id: str,
    variant: str,
    visitor_id: str | None = None,
) -> Response:
    s = services()
    found = await s.db.run(
        queries.select_attachment, tenant_id, conversation_id, attachment_id, visitor_id
    )
    if found is None or (variant == THUMBNAIL and not found.get("thumbnail")):
        raise ApiError(404, "not_found", f"no file {attachment_id} in this conversation")
    data = await s.files.get(tenant_id, attachment_id, variant)
    if data is None:  # its message is going (a deletion under way)
        raise ApiError(404, "not_found", f"no file {attachment_id} in this conversation")
    kind = "image/jpeg" if variant == THUMBNAIL else str(found["contentType"])
    inline = kind in IMAGE_TYPES.values()
    name = urllib.parse.quote(str(found["name"]), safe="")
    response = Response(data, status=200, content_type=kind)
    response.headers["Content-Disposition"] = (
        f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{name}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # an attachment never changes under its id; only its readers may keep it
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


VISITOR_FILE = VISITOR_PREFIX + "<widget_id>/conversations/<conversation_id>/attachments/"
AGENT_FILE = "/api/chat/conversations/<conversation_id>/attachments/"


@bp.get(VISITOR_FILE + "<attachment_id>")
@_download_doc("getVisitorFile", "A file of the visitor's conversation", VISITOR_AUTH, False)
async def visitor_file(widget_id: str, conversation_id: str, attachment_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    return await _send_file(
        widget["tenant_id"], conversation_id, attachment_id, ORIGINAL, visitor.visitor_id
    )


@bp.get(VISITOR_FILE + "<attachment_id>/thumbnail")
@_download_doc("getVisitorThumbnail", "An image's thumbnail (visitor)", VISITOR_AUTH, True)
async def visitor_thumbnail(widget_id: str, conversation_id: str, attachment_id: str) -> Response:
    widget, visitor = await widget_visitor(widget_id)
    return await _send_file(
        widget["tenant_id"], conversation_id, attachment_id, THUMBNAIL, visitor.visitor_id
    )


@bp.get(AGENT_FILE + "<attachment_id>")
@_download_doc("getAgentFile", "A file of a conversation", AGENT_AUTH, False)
async def agent_file(conversation_id: str, attachment_id: str) -> Response:
    agent = await require_agent()
    return await _send_file(agent["tenant_id"], conversation_id, attachment_id, ORIGINAL)


@bp.get(AGENT_FILE + "<attachment_id>/thumbnail")
@_download_doc("getAgentThumbnail", "An image's thumbnail", AGENT_AUTH, True)
async def agent_thumbnail(conversation_id: str, attachment_id: str) -> Response:
    agent = await require_agent()
    return await _send_file(agent["tenant_id"], conversation_id, attachment_id, THUMBNAIL)
