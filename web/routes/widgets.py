"""Settings › Chat widgets, the API: list, create, read, edit and delete a tenant's widgets.

Changes reach every open Settings page and inbox of the tenant as ``widget_updated`` /
``widget_deleted`` events; an edit or a delete is a command of the widget's actor (its one writer).
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request

from engine.errors import NotFound as EngineNotFound
from engine.values import Event, EventType
from engine.widget import KIND as WIDGET
from engine.widget import Delete, Update
from storage import queries
from web import auth
from web import examples as ex
from web.apidoc import (
    ACTOR,
    AGENT,
    api,
    json_body,
    json_response,
    ref,
)
from web.deps import load_widget, require_agent, services, tenant_widget_rows
from web.presenters import answer, created
from web.shapes import Deleted, WidgetList
from web.widgets import apply_patch, widget_to_wire, widget_view
from web.wire import ApiError, decode_json

bp = Blueprint("widgets", __name__)


@bp.get("/api/chat/widgets")
@api(
    "listWidgets",
    "The tenant's widgets",
    "widgets",
    AGENT,
    {
        "200": json_response(
            "Every widget with its status, detected domain, last ping and embed code.",
            WidgetList,
            {"widgets": [ex.EX_WIDGET]},
        )
    },
    error_codes=(*ACTOR,),
)
async def list_widgets() -> Response:
    agent = await require_agent()
    s = services()
    rows = await tenant_widget_rows(agent["tenant_id"])
    now = s.clock.now()
    return answer(WidgetList([widget_view(r, now, s.settings.base_url) for r in rows]))


@bp.post("/api/chat/widgets")
@api(
    "createWidget",
    "Create a widget",
    "widgets",
    AGENT,
    {
        "201": json_response(
            "The new widget (INACTIVE until its first ping).",
            ref("Widget"),
            {
                **ex.EX_WIDGET,
                "status": "INACTIVE",
                "statusReason": "no installation ping yet: paste the embed code into your site",
                "domain": "*.insuremax.com",
                "lastSeenAt": None,
                "lastSeenDomain": None,
                "lastSeenUrl": None,
            },
        )
    },
    error_codes=("malformed_json", "body_too_large", "invalid_body", "invalid_widget"),
    body=json_body(
        ref("WidgetCreate"),
        {
            "name": "InsureMax",
            "domains": ["*.insuremax.com"],
            "appearance": {"colorTheme": "#2563eb"},
            "channels": {"whatsapp": "+52 55 1234 5678"},
        },
    ),
)
async def create_widget() -> Response:
    agent = await require_agent()
    s = services()
    columns = apply_patch(None, decode_json(await request.get_data(cache=True)))
    row = await s.db.run(
        queries.insert_widget,
        auth.new_id("wgt"),
        agent["tenant_id"],
        columns["name"],
        columns["domains"],
        columns["wait_timeout_seconds"],
        columns["settings"],
    )
    now = s.clock.now()
    wire = widget_to_wire(row, now, s.settings.base_url)
    s.broker.publish(Event(EventType.WIDGET_UPDATED.value, now, agent["tenant_id"], data=wire))
    return created(wire)


@bp.get("/api/chat/widgets/<widget_id>")
@api(
    "getWidget",
    "One widget",
    "widgets",
    AGENT,
    {"200": json_response("The widget.", ref("Widget"), ex.EX_WIDGET)},
    error_codes=("not_found", *ACTOR),
)
async def get_widget(widget_id: str) -> Response:
    agent = await require_agent()
    s = services()
    row = await load_widget(widget_id, agent["tenant_id"])
    return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))


@bp.patch("/api/chat/widgets/<widget_id>")
@api(
    "updateWidget",
    "Edit a widget (JSON merge patch)",
    "widgets",
    AGENT,
    {"200": json_response("The widget after the patch.", ref("Widget"), ex.EX_WIDGET)},
    error_codes=(
        "malformed_json",
        "body_too_large",
        "invalid_body",
        "invalid_widget",
        *ACTOR,
        "not_found",
    ),
    body=json_body(
        ref("WidgetPatch"),
        {"appearance": {"welcome": {"title": "¡Hola!"}}, "waitTimeoutSeconds": 90},
    ),
)
async def patch_widget(widget_id: str) -> Response:
    agent = await require_agent()
    s = services()
    patch = decode_json(await request.get_data(cache=True))
    row = await load_widget(widget_id, agent["tenant_id"])
    columns = apply_patch(row, patch)
    try:
        row = await s.supervisor.call(WIDGET, widget_id, Update(agent["tenant_id"], columns))
    except EngineNotFound:
        raise ApiError(404, "not_found", f"no widget {widget_id}") from None
    finally:
        s.widget_rows.forget(widget_id)  # this process's visitors see the change at once
    return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))


@bp.delete("/api/chat/widgets/<widget_id>")
@api(
    "deleteWidget",
    "Delete a widget",
    "widgets",
    AGENT,
    {
        "200": json_response(
            "Deleted (soft): the visitor side answers 404 from now on.",
            Deleted,
            {"id": ex.WIDGET, "deleted": True},
        )
    },
    error_codes=("not_found", *ACTOR),
)
async def delete_widget(widget_id: str) -> Response:
    agent = await require_agent()
    s = services()
    try:
        await s.supervisor.call(WIDGET, widget_id, Delete(agent["tenant_id"]))
    except EngineNotFound:
        raise ApiError(404, "not_found", f"no widget {widget_id}") from None
    finally:
        s.widget_rows.forget(widget_id)
    return answer(Deleted(widget_id))
