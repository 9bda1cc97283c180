"""The app factory: one Quart-Trio app, the Blueprints of :mod:`web.routes`, and what every
route shares (errors as ``{"error": {"code", "message"}}`` with a 4xx status, 5xx only for a real
outage: 503; CORS for the widget's routes; ids checked before any route runs).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from quart import Quart, Response, jsonify, request
from quart_trio import QuartTrio
from quart_trio.wrappers.request import TrioRequest
from werkzeug.exceptions import HTTPException

from engine.errors import ActorUnavailable, EngineError
from storage.db import unavailable
from web.deps import error, is_visitor_route, valid_id
from web.openapi import document
from web.routes import BLUEPRINTS
from web.services import Services, Settings
from web.wire import ApiError

log = logging.getLogger("curbe.web")


def build_openapi(base_url: str) -> dict[str, Any]:
    """The OpenAPI document of the app's routes (what ``GET /api/openapi.json`` serves)."""
    return document(base_url, create_app(None))


# an attachment's upload (web/routes/files.py) carries a file as its body; nothing else does
UPLOAD_PATH = re.compile(r"^/api/chat/(?:widgets/[^/]+/)?conversations/[^/]+/attachments$")
UPLOAD_BODY_TIMEOUT = 300  # seconds for a file's bytes to arrive (a JSON body has 30)


def request_class(max_upload_bytes: int) -> type[TrioRequest]:
    class CurbeRequest(TrioRequest):
        """A request whose body limit is its route's: the limit is fixed when the request is
        made (Quart's body object holds it), so it is chosen here, by path: an upload may carry
        a file up to ``max_upload_bytes``, any other request the API's small JSON bodies."""

        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            if method == "POST" and UPLOAD_PATH.match(path):
                kwargs["max_content_length"] = max_upload_bytes
                kwargs["body_timeout"] = UPLOAD_BODY_TIMEOUT
            super().__init__(method, scheme, path, *args, **kwargs)

    return CurbeRequest


def create_app(s: Services | None) -> Quart:
    """The app over ``s`` (``None``: only its route table, as :func:`build_openapi` reads it)."""
    settings = s.settings if s is not None else Settings()
    app = QuartTrio(__name__)
    app.request_class = request_class(settings.max_upload_bytes)
    app.config["SERVICES"] = s
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.config["BODY_TIMEOUT"] = 30

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        response = jsonify(exc.to_wire())
        response.status_code = exc.status
        if "retryAfterSeconds" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retryAfterSeconds"])
        return response

    @app.errorhandler(EngineError)
    async def engine_error(exc: EngineError) -> Response:
        response = jsonify({"error": exc.to_wire()})
        response.status_code = exc.status
        if isinstance(exc, ActorUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
            log.warning(
                "answered 503: actor unavailable",
                extra={"path": request.path, "error": exc.message, "cause": exc.cause},
            )
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            400: "bad_request",
        }.get(exc.code or 400, "http_error")
        message = {
            413: f"the body is larger than {settings.max_body_bytes} bytes",
            404: "no such endpoint",
        }.get(exc.code or 400, exc.description or "bad request")
        response = error(exc.code or 400, code, message)
        if exc.code == 413:
            # the body was not read: the connection cannot carry another request after it
            response.headers["Connection"] = "close"
        return response

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        if unavailable(exc):  # the database is down or out of reach: say so, retryable
            log.warning(
                "answered 503: the database does not answer",
                extra={"path": request.path, "error": repr(exc)},
            )
            response = error(503, "database_unavailable", "the database does not answer; retry")
            response.headers["Retry-After"] = "2"
            return response
        log.exception("unhandled error", exc_info=exc)
        return error(500, "internal_error", "something went wrong on our side; it has been logged")

    @app.after_request
    async def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and is_visitor_route(request.path):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, X-File-Name, X-Client-Message-Id"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.before_request
    async def read_whole_body() -> None:
        # answer only once the whole request is in (up to MAX_CONTENT_LENGTH: past it, 413
        # and Connection: close). An answer sent before the body arrived (a 401 needs no
        # body) left Hypercorn unable to recycle the keep-alive connection: the next request
        # on it was never answered (docs/reliability.md, "What the fault suite found")
        if request.content_length or "Transfer-Encoding" in request.headers:
            await request.get_data(cache=True)

    @app.before_request
    async def preflight() -> Response | None:
        if request.method == "OPTIONS" and is_visitor_route(request.path):
            return Response("", status=204)  # CORS headers come from the after_request hook
        return None

    @app.before_request
    async def check_ids() -> None:
        for key, value in (request.view_args or {}).items():
            if key.endswith("_id") and not valid_id(value):
                raise ApiError(404, "not_found", "no such resource")

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
