"""Wiring: database, actors, app and Hypercorn in one Trio program.

Order matters (see ``docs/architecture.md``): the asyncio loop of trio-asyncio is opened
outermost, then the pool, then the supervisor, then Hypercorn. Shutdown runs the other way:
Hypercorn stops accepting and drains, the supervisor lets actors finish their queued commands
(bounded by ``shutdown_grace_seconds``), then the pool closes, shielded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio
import trio_asyncio

from engine.broker import Broker
from engine.clock import Clock, SystemClock
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import ConversationActor
from engine.presence import AgentPresence
from engine.routing import KIND as ROUTER
from engine.routing import RouterActor, run_nudger
from engine.supervisor import Actor, Supervisor, open_supervisor
from engine.visitor import KIND as VISITOR
from engine.visitor import VisitorSessionActor
from engine.widget import ACTIVE_WINDOW, WidgetActor
from engine.widget import KIND as WIDGET
from storage import queries
from storage.db import Database
from storage.stores import PostgresStore
from web.app import create_app
from web.auth import VisitorSigner
from web.services import Services, Settings
from web.widgets import widget_to_wire

log = logging.getLogger("curbe.server")


@asynccontextmanager
async def open_services(
    settings: Settings, database_url: str, *, clock: Clock | None = None
) -> AsyncIterator[Services]:
    """Connect, migrate, start the supervisor and re-arm stored wait timers (Trio flavour).

    Must run inside ``trio_asyncio.open_loop()``.
    """
    clock = clock or SystemClock()
    db = await Database.connect(database_url)
    try:
        await db.migrate()
        key = await db.run(queries.select_or_create_secret, "visitor_token_key")
        broker = Broker()
        store = PostgresStore(db)
        presence = AgentPresence(broker, clock)
        pending_nudges: set[str] = set()
        running: list[Supervisor] = []  # the router reaches other actors through it

        async def dispatch(kind: str, actor_id: str, command: Any) -> Any:
            return await running[0].call(kind, actor_id, command)

        factories: dict[str, Callable[[str], Actor]] = {
            ROUTER: lambda tid: RouterActor(
                tid,
                store=store,
                broker=broker,
                clock=clock,
                presence=presence,
                dispatch=dispatch,
                reoffer_after=settings.reoffer_after_seconds,
                idle_seconds=settings.actor_idle_seconds,
                pending=pending_nudges,
            ),
            CONVERSATION: lambda cid: ConversationActor(
                cid,
                store=store,
                broker=broker,
                clock=clock,
                idle_seconds=settings.actor_idle_seconds,
            ),
            VISITOR: lambda vid: VisitorSessionActor(
                vid,
                store=store,
                broker=broker,
                clock=clock,
                expiry_seconds=settings.visitor_expiry_seconds,
                publish_interval=settings.presence_interval_seconds,
            ),
            WIDGET: lambda wid: WidgetActor(
                wid,
                store=store,
                broker=broker,
                clock=clock,
                to_wire=lambda row, now: widget_to_wire(row, now, settings.base_url),
                idle_seconds=settings.actor_idle_seconds,
            ),
        }
        async with (
            open_supervisor(
                factories, clock=clock, grace_seconds=settings.shutdown_grace_seconds
            ) as supervisor,
            trio.open_nursery() as background,
        ):
            running.append(supervisor)
            await background.start(run_nudger, broker, supervisor.cast, pending_nudges)
            # queues resume: routers of tenants with waiting chats look again
            for tenant_id in await db.run(queries.select_tenants_with_waiting_chats):
                supervisor.ensure(ROUTER, tenant_id)
            for conversation_id in await db.run(queries.select_pending_wait_timers):
                supervisor.ensure(CONVERSATION, conversation_id)
            # active widgets re-arm their 24-hour timer, so ACTIVE -> INACTIVE is still announced
            since = clock.now() - ACTIVE_WINDOW
            for widget_id in await db.run(queries.select_recently_active_widgets, since):
                supervisor.ensure(WIDGET, widget_id)
            yield Services(
                settings=settings,
                db=db,
                supervisor=supervisor,
                broker=broker,
                clock=clock,
                signer=VisitorSigner(key),
                presence=presence,
                started_at=clock.now(),
            )
            background.cancel_scope.cancel()
    finally:
        await db.close()


def hypercorn_config(settings: Settings) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.websocket_max_message_size = settings.max_body_bytes
    config.graceful_timeout = settings.shutdown_grace_seconds
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(
    settings: Settings,
    database_url: str,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    *,
    task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the whole server until ``shutdown_trigger`` returns (Trio flavour).

    Reports ``{"listening": [...], "baseUrl", "demo"?}`` through ``task_status`` once the socket
    is bound (and, with ``settings.demo``, the demo data is seeded).
    """
    async with trio_asyncio.open_loop(), open_services(settings, database_url) as services:
        app = create_app(services)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(
                    hypercorn.trio.serve,
                    app,
                    hypercorn_config(settings),
                    shutdown_trigger=shutdown_trigger,
                )
            )
            if settings.port == 0:
                settings.port = int(binds[0].rsplit(":", 1)[1])
            info: dict[str, Any] = {"listening": binds, "baseUrl": settings.base_url}
            if settings.demo:
                from web.cli import seed_demo

                info["demo"] = await seed_demo(services.db, settings)
            task_status.started(info)
