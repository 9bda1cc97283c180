"""The operator page: ``GET /ops`` renders the live actors of ``GET /api/ops/actors``.

The page holds no data when served: ``ops.js`` asks for the operator token (``CURBE_OPS_TOKEN``),
keeps it in ``sessionStorage`` (this tab only, gone when it closes), and fetches
``GET /api/ops/actors?kind=&tenant=`` with ``Authorization: Bearer <token>`` every 2 s, plus
``GET /api/ops/actors/{kind}/{id}`` for the actor shown in the detail view. The token never
travels in a URL or a cookie, so the page itself needs no authentication.

Headers are the other pages' (:func:`web.pages._page`), with a stricter Content Security Policy:
scripts and styles from this origin only (no inline script or style at all), no frames.
"""

from __future__ import annotations

from quart import Quart, Response, render_template

from engine.clock import iso
from web.deps import services

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# Every kind the supervisor runs; the filter offers these (and any other kind it sees).
KINDS = ("conversation", "visitor_session", "widget", "router", "service")


def _page(html: str, status: int = 200) -> Response:
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def register_ops_page(app: Quart) -> None:
    """Add ``GET /ops`` to ``app``."""

    @app.get("/ops")
    async def ops_page() -> Response:

        html = await render_template(
            "ops.html", kinds=KINDS, server_time=iso(services().clock.now()) or ""
        )
        return _page(html)
