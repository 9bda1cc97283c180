"""Routes as Blueprints, one module per audience: ``visitor`` (the embedded widget), ``agent`` (the
inbox's API and socket), ``canned`` (canned replies), ``notes`` (internal notes), ``reports``, ``search`` (search and the workspace), ``files`` (attachments), ``widgets`` (Settings › Chat widgets API), ``pages`` (server-rendered HTML),
``ops`` (health, metrics, actors, the OpenAPI document). A route authenticates (:mod:`web.deps`),
converts at the edge (:mod:`web.wire`), calls one use case or actor, answers a presenter's shape.
"""

from __future__ import annotations

from quart import Blueprint

from web.routes import (
    agent,
    canned,
    files,
    notes,
    ops,
    pages,
    reports,
    search,
    visitor,
    widgets,
)

BLUEPRINTS: tuple[Blueprint, ...] = (
    visitor.bp,
    agent.bp,
    canned.bp,
    notes.bp,
    reports.bp,
    search.bp,
    files.bp,
    widgets.bp,
    pages.bp,
    ops.bp,
)
