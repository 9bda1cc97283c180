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
from typing import Any
from urllib.parse import quote

from quart import Quart, Response, redirect, render_template, request

from engine.clock import iso
from web import auth
from web.deps import current_agent, load_widget, services, tenant_widget_rows, valid_id
from web.presenters import agent_wire
from web.widgets import DEFAULT_DOCUMENT, widget_to_wire
from web.wire import ApiError

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


def _page(html: str, status: int = 200, *, private: bool = True) -> Response:
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


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


def register_pages(app: Quart) -> None:
    """Add the server-rendered pages (and their 404 page) to ``app``."""

    def now_iso() -> str:

        return iso(services().clock.now()) or ""

    async def not_found(agent: dict[str, Any] | None, what: str) -> Response:
        html = await render_template(
            "not_found.html", agent=agent, what=what, server_time=now_iso(), section="widgets"
        )
        return _page(html, 404)

    @app.get("/login")
    async def login_page() -> Response:
        target = safe_next(request.args.get("next"))
        if await signed_in_agent() is not None:
            return redirect(target)  # type: ignore[return-value]
        html = await render_template(
            "login.html", agent=None, next=target, server_time=now_iso(), section=None
        )
        return _page(html)

    @app.get("/inbox")
    async def inbox_page() -> Response:

        agent = await signed_in_agent()
        if agent is None:
            return to_login()
        s = services()
        html = await render_template(
            "inbox.html",
            agent=agent,
            me=agent_wire(agent),
            presence=s.presence.status(agent["tenant_id"], agent["id"]),
            visitor_expiry_seconds=int(s.settings.visitor_expiry_seconds),
            server_time=now_iso(),
            section="inbox",
        )
        return _page(html)

    @app.get("/settings")
    async def settings_page() -> Response:
        return redirect("/settings/widgets")  # type: ignore[return-value]

    @app.get("/settings/widgets")
    async def widgets_page() -> Response:

        agent = await signed_in_agent()
        if agent is None:
            return to_login()
        s = services()

        rows = await tenant_widget_rows(agent["tenant_id"])
        now = s.clock.now()
        widgets = [widget_to_wire(r, now, s.settings.base_url) for r in rows]
        html = await render_template(
            "widgets.html",
            agent=agent,
            widgets=widgets,
            rows=[row_view(w) for w in widgets],
            server_time=iso(now),
            section="widgets",
        )
        return _page(html)

    @app.get("/settings/widgets/new")
    async def new_widget_page() -> Response:
        agent = await signed_in_agent()
        if agent is None:
            return to_login()
        return await _editor(agent, None)

    # ``widget_ref``, not ``widget_id``: the app's id check would answer a JSON 404, and a page
    # wants an HTML one.
    @app.get("/settings/widgets/<widget_ref>")
    async def edit_widget_page(widget_ref: str) -> Response:

        agent = await signed_in_agent()
        if agent is None:
            return to_login()
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
        html = await render_template(
            "widget_editor.html",
            agent=agent,
            widget=form,
            is_new=widget is None,
            row=row_view(form),
            created=request.args.get("created") == "1",
            server_time=now_iso(),
            section="widgets",
        )
        return _page(html)
