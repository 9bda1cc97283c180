"""Operators: ``/healthz``, ``/metrics``, ``/api/ops/actors`` (the actor introspection endpoint),
the ``/ops`` page that shows it, and the OpenAPI document of every endpoint.

``/ops`` holds no data when served: ``ops.js`` asks for the operator token (``CURBE_OPS_TOKEN``),
keeps it in ``sessionStorage`` (this tab only) and polls ``GET /api/ops/actors?kind=&tenant=`` with
``Authorization: Bearer <token>`` every 2 s, plus ``GET /api/ops/actors/{kind}/{id}`` for the actor
in the detail view. The token never travels in a URL or a cookie, so the page needs no sign-in.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import trio
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, current_app, jsonify, render_template, request

from engine import metrics
from engine.clock import iso
from engine.conversation_actor import KIND as CONVERSATION
from engine.supervisor import ActorReport
from engine.visitor import KIND as VISITOR
from engine.wire import UNSET
from storage import leases, queries
from storage.db import unavailable
from web import examples as ex
from web.apidoc import (
    OPS_AUTH,
    PUBLIC,
    api,
    html_response,
    json_response,
    query_param,
    string,
)
from web.deps import error, has_ops_token, require_ops, services
from web.openapi import document
from web.presenters import answer, html_page
from web.services import ACTOR_KINDS, Services
from web.shapes import ActorList, BrokerReport, ClusterNode, ClusterReport, Health
from web.wire import ApiError

bp = Blueprint("ops", __name__)

# scripts and styles from this origin only (no inline script or style at all), no frames
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

# Every kind the supervisor runs; the page's filter offers these (and any other kind it sees).
KINDS = ("conversation", "visitor_session", "widget", "router", "service")


@bp.get("/healthz")
@api(
    "getHealth",
    "Liveness and database check",
    "operators",
    PUBLIC,
    {
        "200": json_response(
            "The server and its database answer. `degraded`: it serves, but the "
            "supervisor gave up on the actors or services listed in `escalated` "
            "(they crashed past their restart intensity); each leaves the list when "
            "it answers a command again.",
            Health,
            {"status": "degraded", "actors": 12, "escalated": [ex.EX_ESCALATION]},
        ),
    },
    error_codes=("database_unavailable",),
)
async def healthz() -> Response:
    s = services()
    try:
        with trio.fail_after(2):
            await s.db.run(queries.select_tenant, "__healthz__")
    except Exception:
        return error(503, "database_unavailable", "the database does not answer")
    # actors and services given up past their restart intensity: the server still serves (200),
    # but an operator should look (docs/operations.md). Ids and error texts only with the
    # operator token: this endpoint is public.
    detail = has_ops_token()
    escalated = [e.report(detail=detail) for e in s.supervisor.escalations()]
    status: Literal["ok", "degraded"] = "degraded" if escalated else "ok"
    return answer(Health(status, s.supervisor.count(), escalated))


@bp.get("/api/openapi.json")
@api(
    "getOpenApi",
    "This document",
    "operators",
    PUBLIC,
    {
        "200": json_response(
            "The OpenAPI 3.1 document of every HTTP endpoint; any origin may read it "
            "(`Access-Control-Allow-Origin: *`).",
            {"type": "object"},
        )
    },
)
async def openapi_document() -> Response:
    """The OpenAPI 3.1 document of every HTTP endpoint (web/openapi.py)."""
    response = jsonify(document(services().settings.base_url, current_app))
    response.headers["Access-Control-Allow-Origin"] = "*"  # public: any docs viewer may read it
    return response


@bp.get("/metrics")
@api(
    "getMetrics",
    "Prometheus metrics",
    "operators",
    PUBLIC,
    {
        "200": {
            "description": (
                "Prometheus text exposition format: actors by kind, connections by "
                "side, events published and dropped, messages stored, commit and "
                "delivery latency histograms, heartbeats, restarts."
            ),
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics() -> Response:
    """Prometheus text format: counters, latency histograms, live actors and sockets."""
    s = services()
    metrics.refresh(s.supervisor.count, ACTOR_KINDS, len(s.supervisor.escalations()))
    return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@bp.get("/api/ops/actors")
@api(
    "listActors",
    "Every live actor",
    "operators",
    OPS_AUTH,
    {
        "200": json_response(
            "The live actors (without `recentEvents`) and the broker's counters.",
            ActorList,
            {
                "actors": [ex.EX_ACTOR],
                "broker": {
                    "subscribers": 4,
                    "published": 120,
                    "delivered": 310,
                    "droppedSubscribers": 0,
                },
                "escalated": [],
            },
        ),
    },
    parameters=[
        query_param(
            "kind",
            "only this kind (`conversation`, `visitor_session`, `widget`, `router`, "
            "`service`); "
            "send no `kind` for every kind",
            string(examples=["conversation"]),
        ),
        query_param("tenant", "only this tenant's actors (`ten_…`)", string()),
    ],
    error_codes=("unauthenticated",),
)
async def ops_actors() -> Response:
    require_ops()
    s = services()
    kind = request.args.get("kind") or None  # an empty filter is no filter
    tenant = request.args.get("tenant") or None
    reports = [stat.report(_audience(s, stat)) for stat in s.supervisor.statistics(kind)]
    actors = [
        attrs.evolve(r, recent_events=UNSET)  # the list leaves them out; the detail has them
        for r in reports
        if not tenant or r.tenant_id == tenant
    ]
    escalated = [e.report() for e in s.supervisor.escalations()]
    return answer(ActorList(actors, _broker_stats(s), escalated))


@bp.get("/api/ops/actors/<kind>/<actor_id>")
@api(
    "getActor",
    "One live actor with its recent events",
    "operators",
    OPS_AUTH,
    {
        "200": json_response(
            "The actor; a conversation actor includes its last 20 events.",
            ActorReport,
            {
                **ex.EX_ACTOR,
                "recentEvents": [
                    {"type": "conversation_created", "seq": 1, "at": ex.T0},
                    {"type": "message_created", "seq": 2, "at": ex.T0},
                ],
            },
        ),
    },
    error_codes=("unauthenticated", "not_found"),
)
async def ops_actor(kind: str, actor_id: str) -> Response:
    require_ops()
    s = services()
    for stat in s.supervisor.statistics(kind):
        if stat.id == actor_id:
            return answer(stat.report(_audience(s, stat)))
    raise ApiError(404, "not_found", f"no live {kind} actor {actor_id}")


async def cluster_nodes(s: Services, ttl_seconds: float) -> list[ClusterNode]:
    """Every node the database knows, with the live leases each holds."""
    held: dict[str, int] = {}
    for row in await s.db.run(leases.select_leases):
        if row["live"] and row["owner"]:
            held[str(row["owner"])] = held.get(str(row["owner"]), 0) + 1
    return [
        ClusterNode(
            str(n["node_id"]),
            n["address"],  # type: ignore[arg-type]
            n["started_at"],  # type: ignore[arg-type]
            n["seen_at"],  # type: ignore[arg-type]
            bool(n["live"]),
            held.get(str(n["node_id"]), 0),
        )
        for n in await s.db.run(leases.select_nodes, ttl_seconds)
    ]


@bp.get("/api/ops/cluster")
@api(
    "getCluster",
    "This process's place in the cluster",
    "operators",
    OPS_AUTH,
    {
        "200": json_response(
            "Which shards this process owns, what it forwarded and served, and every node "
            "the database knows with its live leases (`docs/operations.md`, "
            '"Several processes"). One process without NATS answers `mode: single`.',
            ClusterReport,
            ex.EX_CLUSTER,
        ),
    },
    error_codes=("unauthenticated",),
)
async def ops_cluster() -> Response:
    require_ops()
    s = services()
    cluster = s.cluster
    if cluster is None:
        return answer(ClusterReport("single", None, [], [], 0.0, 0, 0, 0, 0, False, []))
    placement = cluster.placement
    nodes: list[ClusterNode] | None = None
    # a node cut off from the database is the one an operator most wants to ask: it answers
    # what it knows of itself, and ``nodes: null``, rather than hang or fail with its database
    with trio.move_on_after(2):
        try:
            nodes = await cluster_nodes(s, placement.ttl_seconds)
        except Exception as exc:
            if not unavailable(exc):
                raise
    report = placement.describe()
    return answer(
        ClusterReport(
            "cluster",
            placement.node_id,
            sorted(placement.held),
            sorted(placement.draining),
            float(report["trusted_for_seconds"]),  # type: ignore[arg-type]
            placement.takeovers,
            placement.losses,
            cluster.forwarded,
            cluster.served,
            cluster.bus.connected,
            nodes,
        )
    )


@bp.get("/ops")
@api(
    "opsPage",
    "The operator page: live actors",
    "pages",
    PUBLIC,
    {
        "200": html_response(
            "Asks for the operator token (kept in sessionStorage) and renders "
            "`GET /api/ops/actors` every 2 s, with a detail view per actor."
        )
    },
)
async def ops_page() -> Response:
    html = await render_template(
        "ops.html", kinds=KINDS, server_time=iso(services().clock.now()) or ""
    )
    return html_page(html, CSP)


def _audience(s: Services, stat: Any) -> int:
    """The sockets that hear an actor's events: its own topic, its visitor's, its tenant's."""
    info = stat.detail
    topics: list[tuple[str, str]] = []
    if stat.kind == CONVERSATION:
        topics.append(("conversation", stat.id))
        if info.get("visitor_id"):
            topics.append(("visitor", info["visitor_id"]))
    elif stat.kind == VISITOR:
        topics.append(("visitor", stat.id))
    if info.get("tenant_id"):
        topics.append(("tenant", info["tenant_id"]))
    return s.broker.audience(*topics)


def _broker_stats(s: Services) -> BrokerReport:
    st = s.broker.statistics()
    return BrokerReport(st.subscribers, st.published, st.delivered, st.dropped_subscribers)
