"""Settings › Chat widgets, the API: list, create, read, edit and delete a tenant's widgets.

Changes reach every open Settings page and inbox of the tenant as ``widget_updated`` /
``widget_deleted`` events; an edit or a delete is a command of the widget's actor (its one writer).
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request

from engine.errors import NotFound as EngineNotFound
from engine.events import Event, EventType
from engine.widget import KIND as WIDGET
from engine.widget import Delete, Update
from storage import queries
from web import auth
from web.deps import load_widget, require_agent, services, tenant_widget_rows
from web.presenters import created
from web.widgets import apply_patch, widget_to_wire
from web.wire import ApiError, decode_json

bp = Blueprint("widgets", __name__)


@bp.get("/api/chat/widgets")
async def list_widgets() -> Response:
    agent = await require_agent()
    s = services()
    rows = await tenant_widget_rows(agent["tenant_id"])
    now = s.clock.now()
    return jsonify({"widgets": [widget_to_wire(r, now, s.settings.base_url) for r in rows]})


@bp.post("/api/chat/widgets")
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
async def get_widget(widget_id: str) -> Response:
    agent = await require_agent()
    s = services()
    row = await load_widget(widget_id, agent["tenant_id"])
    return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))


@bp.patch("/api/chat/widgets/<widget_id>")
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
    return jsonify(widget_to_wire(row, s.clock.now(), s.settings.base_url))


@bp.delete("/api/chat/widgets/<widget_id>")
async def delete_widget(widget_id: str) -> Response:
    agent = await require_agent()
    try:
        await services().supervisor.call(WIDGET, widget_id, Delete(agent["tenant_id"]))
    except EngineNotFound:
        raise ApiError(404, "not_found", f"no widget {widget_id}") from None
    return jsonify({"id": widget_id, "deleted": True})
