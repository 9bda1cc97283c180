"""Wiring: database, actors, app and Hypercorn in one Trio program.

Order matters (see ``docs/architecture.md``): the asyncio loop of trio-asyncio is opened
outermost, then the pool, then the supervisor, then Hypercorn. Shutdown runs the other way:
Hypercorn stops accepting and drains, the supervisor lets actors finish their queued commands
(bounded by ``shutdown_grace_seconds``), then the pool closes, shielded.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import hypercorn.config
import hypercorn.trio
import trio
import trio_asyncio

from engine import metrics
from engine.broker import ActivityBatcher, Broker, PresenceBatcher
from engine.clock import Clock, SystemClock
from engine.cluster import Cluster, cluster_id, presence_subject
from engine.conversation_actor import KIND as CONVERSATION
from engine.conversation_actor import ConversationActor
from engine.faults import NO_FAULTS, Faults
from engine.placement import Placement, release_all, run_lease_keeper, shard_of
from engine.presence import AgentPresence
from engine.routing import KIND as ROUTER
from engine.routing import ROUTING_LISTENER, Nudge, RouterActor, run_routing_listener
from engine.supervisor import Actor, Supervisor, open_supervisor
from engine.visitor import KIND as VISITOR
from engine.visitor import VisitorSessionActor
from engine.widget import ACTIVE_WINDOW, WidgetActor
from engine.widget import KIND as WIDGET
from storage import queries
from storage.bus import NatsBus, NoResponders
from storage.db import Database
from storage.files import FileStore
from storage.stores import PostgresLeases, PostgresStore
from web.app import create_app
from web.auth import TokenKey, VisitorTokens
from web.demo import check_demo_left, seed_demo
from web.janitor import FileJanitor
from web.reads import VisitorReads
from web.services import ACTOR_KINDS, Services, Settings, file_store
from web.widgets import widget_to_wire
from web.workers import listening_socket

log = logging.getLogger("curbe.server")


@asynccontextmanager
async def open_services(
    settings: Settings,
    database_url: str,
    *,
    clock: Clock | None = None,
    faults: Faults = NO_FAULTS,
) -> AsyncIterator[Services]:
    """Connect, migrate, start the supervisor and re-arm stored wait timers (Trio flavour).

    Must run inside ``trio_asyncio.open_loop()``. ``faults`` is the test seam of
    :mod:`engine.faults` (tests break actors on purpose through it).
    """
    clock = clock or SystemClock()
    db = await Database.connect(database_url)
    try:
        await db.migrate()

        async def token_keys() -> list[TokenKey]:
            return [TokenKey(k.kid, k.secret) for k in await db.run(queries.ensure_token_key)]

        tokens = VisitorTokens(
            await token_keys(),
            clock=clock,
            lifetime=dt.timedelta(days=settings.visitor_token_days),
            load=token_keys,
        )
        broker = Broker()
        broker.batcher = batcher = PresenceBatcher(broker, clock)
        broker.activity = activity = ActivityBatcher(broker, clock)
        store = PostgresStore(db)
        presence = AgentPresence(broker, clock)
        pending_nudges: set[str] = set()
        running: list[Supervisor] = []  # the router reaches other actors through it

        async def dispatch(kind: str, actor_id: str, command: Any) -> Any:
            return await running[0].call(kind, actor_id, command)

        # what every actor stands on: the same store, broker, clock, idle time and fault plan
        base: dict[str, Any] = {
            "store": store,
            "broker": broker,
            "clock": clock,
            "faults": faults,
        }
        idle: dict[str, Any] = {"idle_seconds": settings.actor_idle_seconds}
        factories: dict[str, Callable[[str], Actor]] = {
            ROUTER: lambda tid: RouterActor(
                tid,
                **base,
                **idle,
                presence=presence,
                dispatch=dispatch,
                reoffer_after=settings.reoffer_after_seconds,
                pending=pending_nudges,
            ),
            CONVERSATION: lambda cid: ConversationActor(cid, **base, **idle),
            VISITOR: lambda vid: VisitorSessionActor(
                vid,
                **base,
                expiry_seconds=settings.visitor_expiry_seconds,
                publish_interval=settings.presence_interval_seconds,
                dispatch=dispatch,
            ),
            WIDGET: lambda wid: WidgetActor(
                wid,
                **base,
                **idle,
                to_wire=lambda row, now: widget_to_wire(row, now, settings.base_url),
            ),
        }
        cluster: Cluster | None = None
        bus: NatsBus | None = None
        files: FileStore | None = None
        if settings.nats_url:
            node_id = settings.node_id or default_node_id()
            placement = Placement(
                node_id,
                ttl_seconds=settings.lease_ttl_seconds,
                tick_seconds=settings.lease_tick_seconds,
                margin_seconds=settings.lease_ttl_seconds / 8,
            )
            db.fence = placement
            bus = await NatsBus.connect(settings.nats_url, name=node_id)
            name = cluster_id(await db.run(queries.select_or_create_secret, "cluster_id"))
            cluster = Cluster(
                placement,
                bus,
                broker,
                cluster=name,
                no_responders=NoResponders,
                call_timeout=settings.actor_call_timeout_seconds,
            )
            broker.out = cluster.publish
            presence = AgentPresence(
                broker, clock, node_id=node_id, share=partial(bus.publish, presence_subject(name))
            )
        try:
            # the group writers outlive the supervisor: actors flush their last writes on the way
            # out; with several processes the leases outlive both (released after them)
            async with (
                store.group_writers(),
                open_supervisor(
                    factories,
                    clock=clock,
                    grace_seconds=settings.shutdown_grace_seconds,
                    call_timeout=settings.actor_call_timeout_seconds,
                    max_restarts=settings.actor_max_restarts,
                    within_seconds=settings.actor_restart_window_seconds,
                    remote=cluster,
                ) as supervisor,
            ):
                running.append(supervisor)

                async def tenants_to_route() -> list[str]:
                    waiting = await db.run(queries.select_tenants_with_waiting_chats)
                    return sorted(set(waiting) | set(supervisor.ids(ROUTER)))

                async def rearm(belongs: Callable[[str], bool]) -> None:
                    """Start the actors that owe a timer (the 60 s wait, the 24-hour widget
                    rule) and wake the routers with waiting chats, among those that ``belong``:
                    at start-up every one, with several processes those of the shards taken."""
                    for conversation_id in await db.run(queries.select_pending_wait_timers):
                        if belongs(conversation_id):
                            supervisor.ensure(CONVERSATION, conversation_id)
                    since = clock.now() - ACTIVE_WINDOW
                    for widget_id in await db.run(queries.select_recently_active_widgets, since):
                        if belongs(widget_id):
                            supervisor.ensure(WIDGET, widget_id)
                    if cluster is not None:
                        for tenant_id in await db.run(queries.select_tenants_with_waiting_chats):
                            if belongs(tenant_id):
                                supervisor.try_cast(ROUTER, tenant_id, Nudge())

                if cluster is not None and bus is not None:
                    cluster.here = supervisor
                    await supervisor.start_service(BUS_REQUESTS, bus.run)
                    await cluster.follow_events()
                    await bus.listen(presence_subject(cluster.cluster), presence.receive)
                    await supervisor.start_service(
                        PRESENCE_SHARING, presence.run, describe=presence.describe
                    )
                    on_gained, on_lost, on_drain = shard_handlers(
                        cluster, supervisor, rearm, settings
                    )
                    await supervisor.start_service(
                        LEASE_KEEPER,
                        partial(
                            run_lease_keeper,
                            cluster.placement,
                            PostgresLeases(db),
                            on_gained=on_gained,
                            on_lost=on_lost,
                            on_drain=on_drain,
                            address=settings.base_url,
                        ),
                        describe=cluster.describe,
                    )

                if metrics.multiprocess():  # gauges a sibling worker's scrape reads
                    await supervisor.start_service(
                        METRICS_GAUGES, partial(refresh_gauges_forever, supervisor)
                    )

                await supervisor.start_service(
                    VISITOR_KEYS,
                    partial(tokens.run, settings.visitor_key_reload_seconds),
                    describe=tokens.describe,
                )
                await supervisor.start_service(
                    PRESENCE_BATCHES, batcher.run, describe=batcher.describe
                )
                await supervisor.start_service(
                    ACTIVITY_BATCHES, activity.run, describe=activity.describe
                )
                reads = VisitorReads(db, broker, clock)
                await supervisor.start_service(READ_MARKS, reads.run, describe=reads.describe)
                files = file_store(settings)
                janitor = FileJanitor(db, files, clock, settings.janitor_seconds)
                await supervisor.start_service(FILE_JANITOR, janitor.run, describe=janitor.describe)
                # the routing listener is a supervised service: if the broker drops it, it is
                # restarted and makes a full routing pass (queues resume after a restart too)
                await supervisor.start_service(
                    ROUTING_LISTENER,
                    partial(
                        run_routing_listener,
                        broker,
                        supervisor.cast,
                        pending_nudges,
                        tenants_to_route,
                        faults=faults,
                        here=(lambda _: True) if cluster is None else cluster.owns,
                    ),
                    describe=lambda: {"pending_tenants": len(pending_nudges)},
                )
                if cluster is None:
                    await rearm(lambda _: True)
                yield Services(
                    settings=settings,
                    db=db,
                    supervisor=supervisor,
                    broker=broker,
                    clock=clock,
                    tokens=tokens,
                    presence=presence,
                    started_at=clock.now(),
                    cluster=cluster,
                    files=files,
                    janitor=janitor,
                    reads=reads,
                )
        finally:
            if cluster is not None:
                await release_all(cluster.placement, PostgresLeases(db))
            if bus is not None:
                await bus.close()
            if files is not None:
                await files.aclose()
    finally:
        await db.close()


METRICS_GAUGES = "metrics_gauges"
PRESENCE_SHARING = "presence_sharing"
VISITOR_KEYS = "visitor_keys"  # reloads the visitor-token keys (web/auth.py)
PRESENCE_BATCHES = "presence_batches"  # visitor presence coalesced per tenant (engine/broker.py)
ACTIVITY_BATCHES = "activity_batches"  # typing and read marks to the inboxes, coalesced (same)
READ_MARKS = "read_marks"  # visitors' read marks from sockets, written together (web/reads.py)
FILE_JANITOR = "file_janitor"  # removes the attachments' files that are due (web/janitor.py)
LEASE_KEEPER = "lease_keeper"
BUS_REQUESTS = "bus_requests"


ShardHandler = Callable[[frozenset[int]], Awaitable[None]]


def default_node_id() -> str:
    """``host-pid-random``: unique per process start, readable in logs and ``/ops``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def shard_handlers(
    cluster: Cluster,
    supervisor: Supervisor,
    rearm: Callable[[Callable[[str], bool]], Awaitable[None]],
    settings: Settings,
) -> tuple[ShardHandler, ShardHandler, ShardHandler]:
    """What the lease keeper does when shards come, go, or are given back
    (``engine/placement.py``): ``on_gained``, ``on_lost``, ``on_drain``."""

    def within(shards: frozenset[int]) -> Callable[[str], bool]:
        return lambda actor_id: shard_of(actor_id) in shards

    async def on_gained(shards: frozenset[int]) -> None:
        await cluster.serve_shards(shards)
        await rearm(within(shards))

    async def on_lost(shards: frozenset[int]) -> None:
        # another process owns them already: whatever their actors still do is fenced
        await cluster.stop_serving(shards)
        await supervisor.evict(within(shards), 0)

    async def on_drain(shards: frozenset[int]) -> None:
        # given back to a node that joined: no new commands, the queued ones finish here
        await cluster.stop_serving(shards)
        await supervisor.evict(within(shards), settings.shutdown_grace_seconds)

    return on_gained, on_lost, on_drain


async def refresh_gauges_forever(
    supervisor: Supervisor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Under ``--workers`` a scrape is answered by one worker for all (engine/metrics.py): each
    worker sets its own gauges of live things every second instead of at scrape time, and
    writes the increments it held in memory since the last second."""
    task_status.started()
    try:
        while True:
            metrics.refresh(supervisor.count, ACTOR_KINDS, len(supervisor.escalations()))
            await trio.sleep(1)
    finally:
        metrics.flush()  # the increments of this worker's last second


def tune_gc(young_threshold: int) -> None:
    """The serving process's garbage collector: what was loaded at start-up (modules, classes,
    functions: ~100,000 objects) is frozen out of every later collection, and young collections
    run every ``young_threshold`` net allocations instead of 700, so that objects of a request
    or a message in flight are seldom promoted. Collections are timed into
    ``curbe_gc_pause_seconds``. For the process that owns the server (``curbe-chat serve``), not
    for a library caller of :func:`serve`."""
    metrics.watch_gc()
    gc.collect()
    gc.freeze()
    metrics.note_frozen()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


def hypercorn_config(settings: Settings) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    if settings.listen_fd is not None:  # a worker of ``serve --workers``: its socket, bound
        config.bind = [f"fd://{settings.listen_fd}"]
    else:
        config.bind = [f"{settings.host}:{settings.port}"]
    config.websocket_max_message_size = settings.max_body_bytes
    config.graceful_timeout = settings.shutdown_grace_seconds
    config.keep_alive_timeout = settings.keep_alive_seconds
    config.backlog = settings.listen_backlog
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def shield_response_end(app: Any) -> Any:
    """``app`` with the last send of every HTTP answer shielded from cancellation.

    Hypercorn ends the exchange inside that send: it closes the stream, starts the keep-alive
    connection's next cycle (or closes it) and restarts its idle timer. Quart-Trio cancels the
    request's task as soon as Hypercorn reports the stream closed, which cut that work short:
    the idle timer was never restarted (an idle keep-alive connection was never closed), and a
    connection that had to close was left open with its next request never answered."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_shielded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await app(scope, receive, send_shielded)

    return asgi


def http_app(services: Services) -> Any:
    """What Hypercorn serves: the app over ``services``, its answers' ends shielded."""
    return shield_response_end(create_app(services))


def stop_trigger(
    services: Services, trigger: Callable[[], Awaitable[None]] | None
) -> Callable[[], Awaitable[None]]:
    """Hypercorn's shutdown trigger: returns when ``trigger`` does (never when None), after it
    sets ``services.stopping``, which closes every open socket with 1001 at once."""

    async def wait() -> None:
        if trigger is None:
            await trio.sleep_forever()
        else:
            await trigger()
        services.stopping.set()

    return wait


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
    if settings.reuse_port:  # ``serve --workers --balance reuseport``: a socket of its own
        sock = listening_socket(
            settings.host, settings.port, settings.listen_backlog, reuse_port=True
        )
        # hypercorn takes the descriptor (``fd://``) and closes it when it stops
        settings = attrs.evolve(settings, listen_fd=sock.detach())
    await _serve(settings, database_url, shutdown_trigger, task_status)


async def _serve(
    settings: Settings,
    database_url: str,
    shutdown_trigger: Callable[[], Awaitable[None]] | None,
    task_status: trio.TaskStatus[dict[str, Any]],
) -> None:
    async with trio_asyncio.open_loop(), open_services(settings, database_url) as services:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(
                    hypercorn.trio.serve,
                    http_app(services),
                    hypercorn_config(settings),
                    shutdown_trigger=stop_trigger(services, shutdown_trigger),
                )
            )
            if settings.port == 0:
                settings.port = int(binds[0].rsplit(":", 1)[1])
            info: dict[str, Any] = {"listening": binds, "baseUrl": settings.base_url}
            if unreachable := settings.unreachable_base_url():
                log.warning(
                    "no public URL (CURBE_PUBLIC_URL): the embed code and links say %s, "
                    "which browsers cannot reach",
                    unreachable,
                )
            if settings.demo:
                info["demo"] = await seed_demo(services.db, settings)
            else:
                await check_demo_left(services.db)
            task_status.started(info)
