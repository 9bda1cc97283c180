"""Server-rendered pages for agents: sign-in, the Inbox and Settings › Chat widgets.

The pages are plain HTML rendered with Jinja2 (autoescaped) from ``web/templates/`` plus small
dependency-free scripts in ``web/static/``; the scripts talk to the JSON API (``/api/auth/*``,
``/api/chat/widgets``) and to the inbox WebSocket for live widget updates.

* ``GET /login`` — sign-in form; already signed in: 302 to ``next``.
* ``GET /inbox`` — the agent's inbox: a shell that ``inbox.js`` fills from the JSON API and keeps
  live over the inbox WebSocket (views with counts, the conversation, details, live visitors).
* ``GET /settings/widgets`` — the tenant's widgets, rendered server-side and kept live by
  ``settings.js`` (``widget_status_changed`` / ``widget_updated`` / ``widget_deleted`` frames).
* ``GET /settings/widgets/new`` and ``GET /settings/widgets/<id>`` — the editor with a live
  preview of ``/widget.js``; another tenant's widget, or an unknown id, is a 404 page.

Pages authenticate with the session cookie only (browsers navigate; no bearer tokens here). No
signed-in agent: 302 to ``/login?next=<this page>``. Every page answers with a strict Content
Security Policy (scripts from this origin only, no inline script) and ``Cache-Control: no-store``
for pages that show tenant data.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response, redirect, render_template, request

from engine.clock import iso
from storage import queries
from web import auth
from web.apidoc import (
    PUBLIC,
    REDIRECT,
    api,
    html_response,
    page,
    query_param,
    redirect_response,
    string,
)
from web.demo import DEMO_EMAIL, DEMO_PAGE
from web.deps import current_agent, load_widget, services, tenant_widget_rows, valid_id
from web.presenters import html_page, profile_of
from web.widgets import DEFAULT_DOCUMENT, embed_code, widget_to_wire
from web.wire import ApiError

bp = Blueprint("pages", __name__)

DEFAULT_NEXT = "/inbox"

STATUS_LABELS = {"ACTIVE": "Active", "INACTIVE": "Inactive", "MISCONFIGURED": "Misconfigured"}

# What the editor shows for a widget that has not been saved yet: the server's defaults (the
# server applies the same ones on create).
_BLANK_WIDGET: dict[str, Any] = {
    "id": None,
    "status": "INACTIVE",
    "statusReason": None,
    "domain": None,
    "lastSeenAt": None,
    "embedCode": "",
}


def blank_widget() -> dict[str, Any]:

    return merged({**_BLANK_WIDGET, "name": ""}, DEFAULT_DOCUMENT) | {"name": ""}


CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # the widget preview styles its Shadow DOM with <style> elements and style attributes
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """A local path to go to after signing in; anything else (another origin) is ``default``.

    Accepts ``/path?query`` only: not ``//host`` or ``/\\host`` (both leave the origin), no control
    characters, and not the sign-in page itself.
    """
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    if value == "/login" or value.startswith(("/login?", "/login/", "/login#")):
        return default
    return value


def merged(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` overlaid with ``given`` (nested dicts merge; ``None`` keeps a default dict)."""
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merged(out[key], value)
        elif isinstance(out.get(key), dict) and value is None:
            continue
        else:
            out[key] = value
    return out


def exact_utc(value: str | None) -> str:
    """The no-JavaScript text of a timestamp: ``2026-11-29 13:20 UTC`` (JS replaces it)."""
    if not value:
        return "Never"
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def row_view(widget: dict[str, Any]) -> dict[str, Any]:
    status = widget.get("status") or "INACTIVE"
    return {
        "w": widget,
        "status": status,
        "status_label": STATUS_LABELS.get(status, status.title()),
        "last_seen_text": exact_utc(widget.get("lastSeenAt")),
    }


def _page(html: str, status: int = 200) -> Response:
    return html_page(html, CSP, status)


async def signed_in_agent() -> dict[str, Any] | None:
    """The agent of the request's session cookie, or ``None`` (Trio flavour)."""

    token = request.cookies.get(auth.SESSION_COOKIE)
    if not token:
        return None
    try:
        return await current_agent(token)
    except ApiError as exc:
        if exc.status == 401:
            return None
        raise


def to_login() -> Response:
    path = request.full_path if request.query_string else request.path
    target = safe_next(path.rstrip("?"), default="/settings/widgets")
    return redirect("/login?next=" + quote(target, safe="/"))  # type: ignore[return-value]


Page = Callable[..., Awaitable[Response]]


def signed_in(page: Page) -> Page:
    """The page gets the signed-in agent as its first argument; nobody signed in: to /login."""

    @functools.wraps(page)
    async def guarded(*args: Any, **kwargs: Any) -> Response:
        agent = await signed_in_agent()
        if agent is None:
            return to_login()
        return await page(agent, *args, **kwargs)

    return guarded


def now_iso() -> str:
    return iso(services().clock.now()) or ""


async def render(
    template: str,
    agent: dict[str, Any] | None,
    section: str | None,
    status: int = 200,
    **context: Any,
) -> Response:
    """``template`` as a page of ``section`` (the top bar's current item), with the server's time."""
    context.setdefault("server_time", now_iso())
    html = await render_template(template, agent=agent, section=section, **context)
    return _page(html, status)


async def not_found(agent: dict[str, Any] | None, what: str) -> Response:
    return await render("not_found.html", agent, "widgets", 404, what=what)


@bp.get("/login")
@api(
    "loginPage",
    "Sign-in page",
    "pages",
    PUBLIC,
    {
        "200": html_response("The sign-in form."),
        "302": redirect_response("Already signed in: to `next` (a local path) or `/inbox`."),
    },
    parameters=[query_param("next", "a local path to go to after signing in", string(2000))],
)
async def login_page() -> Response:
    target = safe_next(request.args.get("next"))
    if await signed_in_agent() is not None:
        return redirect(target)  # type: ignore[return-value]
    return await render("login.html", None, None, next=target)


@bp.get("/inbox")
@signed_in
@page("inboxPage", "The Inbox", "The inbox shell, filled by inbox.js.")
async def inbox_page(agent: dict[str, Any]) -> Response:
    s = services()
    return await render(
        "inbox.html",
        agent,
        "inbox",
        me=profile_of(agent).to_wire(),
        presence=s.presence.status(agent["tenant_id"], agent["id"]),
        visitor_expiry_seconds=int(s.settings.visitor_expiry_seconds),
    )


@bp.get("/settings")
@api(
    "settingsPage",
    "Settings (redirect)",
    "pages",
    PUBLIC,
    {"302": redirect_response("To `/settings/widgets`.")},
)
async def settings_page() -> Response:
    return redirect("/settings/widgets")  # type: ignore[return-value]


@bp.get("/settings/widgets")
@signed_in
@page("widgetsPage", "Settings › Chat widgets", "The widget list, kept live.")
async def widgets_page(agent: dict[str, Any]) -> Response:
    s = services()
    rows = await tenant_widget_rows(agent["tenant_id"])
    now = s.clock.now()
    widgets = [widget_to_wire(r, now, s.settings.base_url) for r in rows]
    return await render(
        "widgets.html",
        agent,
        "widgets",
        widgets=widgets,
        rows=[row_view(w) for w in widgets],
        server_time=iso(now),
    )


@bp.get("/reports")
@signed_in
@page("reportsPage", "Reports", "Chats, response times and ratings per agent and week.")
async def reports_page(agent: dict[str, Any]) -> Response:
    return await render("reports.html", agent, "reports")


@bp.get("/settings/canned-replies")
@signed_in
@page(
    "cannedRepliesPage",
    "Settings › Canned replies",
    "The workspace's canned replies: add, edit, delete.",
)
async def canned_replies_page(agent: dict[str, Any]) -> Response:
    return await render("canned_replies.html", agent, "canned")


#: The search languages as Settings › Workspace offers them.
SEARCH_LANGUAGE_LABELS = (
    ("simple", "Any language (whole words)"),
    ("english", "English"),
    ("spanish", "Spanish"),
)


@bp.get("/settings/workspace")
@signed_in
@page("workspacePage", "Settings › Workspace", "The workspace's search language.")
async def workspace_page(agent: dict[str, Any]) -> Response:
    workspace = await services().db.run(queries.select_tenant, agent["tenant_id"])
    return await render(
        "workspace.html",
        agent,
        "workspace",
        workspace=workspace,
        languages=SEARCH_LANGUAGE_LABELS,
    )


@bp.get("/settings/widgets/new")
@signed_in
@page("newWidgetPage", "The widget editor for a new widget", "The editor with its live preview.")
async def new_widget_page(agent: dict[str, Any]) -> Response:
    return await _editor(agent, None)


# ``widget_ref``, not ``widget_id``: the app's id check would answer a JSON 404, and a page
# wants an HTML one.
@bp.get("/settings/widgets/<widget_ref>")
@signed_in
@api(
    "editWidgetPage",
    "The widget editor",
    "pages",
    [{"agentCookie": []}],
    {
        "200": html_response("The editor with its live preview."),
        "302": REDIRECT,
        "404": html_response("Unknown id or another tenant's widget (an HTML page)."),
    },
)
async def edit_widget_page(agent: dict[str, Any], widget_ref: str) -> Response:
    if not valid_id(widget_ref):
        return await not_found(agent, "widget")
    try:  # another tenant's widget is a 404 like an unknown one
        row = await load_widget(widget_ref, agent["tenant_id"])
    except ApiError as exc:
        if exc.status == 404:
            return await not_found(agent, "widget")
        raise
    s = services()
    return await _editor(agent, widget_to_wire(row, s.clock.now(), s.settings.base_url))


async def _editor(agent: dict[str, Any], widget: dict[str, Any] | None) -> Response:
    form = merged(blank_widget(), widget)
    return await render(
        "widget_editor.html",
        agent,
        "widgets",
        widget=form,
        is_new=widget is None,
        row=row_view(form),
        created=request.args.get("created") == "1",
    )


@bp.get("/demo")
@api(
    "demoPage",
    "A customer's page holding the demo widget",
    "pages",
    PUBLIC,
    {
        "200": html_response("The demo site (only with `curbe-chat serve --demo`)."),
    },
    error_codes=("not_found",),
)
async def demo_site() -> Response:
    """A customer's page with the demo widget's snippet (only with ``serve --demo``)."""
    s = services()
    agent = await s.db.run(queries.select_agent_by_email, DEMO_EMAIL) if s.settings.demo else None
    widgets = await s.db.run(queries.select_widgets, agent["tenant_id"]) if agent else []
    if not widgets:
        raise ApiError(404, "not_found", "the demo site exists with `curbe-chat serve --demo`")
    w = widgets[0]
    snippet = embed_code(s.settings.base_url, w["id"], w["tenant_id"])
    page = DEMO_PAGE.replace("{{snippet}}", snippet).replace("{{snippet_text}}", escape(snippet))
    return Response(page, content_type="text/html; charset=utf-8")
