"""The framework floor: the product's own stack with no product logic on it.

A quart-trio app served in-process by Hypercorn's Trio worker (``hypercorn.trio.serve``, one
worker), HTTP and WebSockets on one port, as the product is served. State in memory.

``--persist`` adds the product's database path and nothing more: an asyncpg pool (2 to 10
connections) opened through trio-asyncio from ``DATABASE_URL``, the two ``bench_`` tables
created at start, then exactly one round trip per message (one INSERT into ``bench_messages``,
awaited before the message is published and acknowledged) and one per heartbeat (one UPSERT
into ``bench_presence``). Without it nothing touches a database.

    python -m bench.baselines.quart_relay [--port 0] [--persist] [--queue-size 256]

prints one JSON line once it listens, ``{"http": "http://127.0.0.1:P", "ws": "ws://127.0.0.1:P",
"pid": N}``, and serves until SIGTERM or SIGINT (exit code 0).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import asyncpg
import hypercorn.config
import hypercorn.trio
import trio
import trio_asyncio
from quart import request, websocket
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from bench.baselines.common import (
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    HEALTH,
    HOST,
    INBOX_READY,
    INVALID_BODY,
    NOT_FOUND,
    UNAUTHENTICATED,
    BadRequest,
    FrameError,
    Relay,
    banner,
    bearer,
    login,
    parse_args,
    parse_frame,
    raise_nofile_limit,
    visitor_ready,
    widget_config,
)
from bench.baselines.trio_relay import TrioOutbox

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_messages (
    conversation_id text,
    seq int,
    text text,
    client_message_id text,
    created_at timestamptz DEFAULT now(),
    PRIMARY KEY (conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS bench_presence (
    visitor_id text PRIMARY KEY,
    url text,
    seen_at timestamptz
);
"""
INSERT_MESSAGE = (
    "INSERT INTO bench_messages (conversation_id, seq, text, client_message_id)"
    " VALUES ($1, $2, $3, $4)"
)
UPSERT_PRESENCE = (
    "INSERT INTO bench_presence (visitor_id, url, seen_at) VALUES ($1, $2, now())"
    " ON CONFLICT (visitor_id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at"
)

POOL_CLOSE_TIMEOUT = 5.0  # seconds for a graceful pool close at shutdown before terminating

# Trio flavour of asyncpg's Pool.execute: acquire a connection, run one statement, release.
Execute = Callable[..., Awaitable[Any]]


def create_app(relay: Relay, execute: Execute | None) -> QuartTrio:
    """The relay's routes; ``execute`` is the database (None: no persistence)."""
    app = QuartTrio(__name__)
    # --persist: a conversation's messages take their seq, are inserted and are published
    # under its lock, so events still go out in seq order while an INSERT is awaited
    locks: dict[str, trio.Lock] = {}

    @app.post("/api/chat/widgets/<widget_id>/heartbeat")
    async def heartbeat(widget_id: str) -> ResponseReturnValue:
        try:
            answer, visitor_id, url = relay.heartbeat(json.loads(await request.get_data()))
        except (ValueError, BadRequest):
            return INVALID_BODY, 400
        if execute is not None:
            await execute(UPSERT_PRESENCE, visitor_id, url)
        return answer

    @app.get("/api/chat/widgets/<widget_id>/config")
    async def config(widget_id: str) -> ResponseReturnValue:
        return widget_config(widget_id)

    @app.post("/api/chat/widgets/<widget_id>/conversations")
    async def start_conversation(widget_id: str) -> ResponseReturnValue:
        visitor_id = bearer(request.headers.get("Authorization"))
        if visitor_id is None:
            return UNAUTHENTICATED, 401
        try:
            answer, message = relay.start(visitor_id, json.loads(await request.get_data()))
        except (ValueError, BadRequest):
            return INVALID_BODY, 400
        if execute is not None:
            lock = locks[message.conversation_id] = trio.Lock()
            async with lock:
                await execute(
                    INSERT_MESSAGE, message.conversation_id, message.seq, message.text, None
                )
                relay.publish(message)
        else:
            relay.publish(message)
        return answer, 201

    @app.post("/api/auth/login")
    async def agent_login() -> ResponseReturnValue:
        try:
            return login(json.loads(await request.get_data()))
        except (ValueError, BadRequest):
            return INVALID_BODY, 400

    @app.get("/healthz")
    async def healthz() -> ResponseReturnValue:
        return HEALTH

    async def not_found(error: Exception) -> ResponseReturnValue:
        return NOT_FOUND, 404

    app.register_error_handler(404, not_found)
    app.register_error_handler(405, not_found)  # a known path with another method

    async def serve_socket(visitor_id: str | None, hello: str) -> None:
        """Until the peer leaves: frames in, and a writer task draining the socket's outbox."""
        await websocket.accept()
        outbox = TrioOutbox(relay.queue_size)
        relay.join(visitor_id, outbox)
        try:
            outbox.offer(hello)
            async with trio.open_nursery() as nursery:

                async def write() -> None:
                    await outbox.drain(websocket.send)
                    await websocket.close(CLOSE_TOO_SLOW, "too slow")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(write)
                receive = websocket.receive
                if execute is None or visitor_id is None:
                    while True:
                        await outbox.wait_room()
                        relay.on_frame(visitor_id, outbox, await receive())
                else:
                    while True:
                        await outbox.wait_room()
                        await on_frame_persisting(visitor_id, outbox, await receive())
        finally:
            relay.leave(visitor_id, outbox)

    async def on_frame_persisting(visitor_id: str, outbox: TrioOutbox, raw: str | bytes) -> None:
        """A visitor's frame with --persist: a message is inserted before it is published."""
        assert execute is not None
        frame = parse_frame(raw)
        if frame is None:
            return
        if frame.get("type") != "message":
            relay.on_frame(visitor_id, outbox, raw)  # ping, resume: nothing to persist
            return
        try:
            conversation_id, text, client_message_id = relay.check_message(frame)
        except FrameError as exc:
            outbox.offer(exc.text)
            return
        async with locks[conversation_id]:
            message = relay.new_message(visitor_id, conversation_id, text, client_message_id)
            await execute(INSERT_MESSAGE, conversation_id, message.seq, text, client_message_id)
            relay.publish(message)
        outbox.offer(message.ack_text())

    @app.websocket("/api/chat/widgets/<widget_id>/ws")
    async def visitor_ws(widget_id: str) -> None:
        visitor_id = websocket.args.get("token")
        if not visitor_id:
            await websocket.accept()
            await websocket.close(CLOSE_UNAUTHENTICATED)
            return
        await serve_socket(visitor_id, visitor_ready(visitor_id))

    @app.websocket("/api/chat/inbox/ws")
    async def inbox_ws() -> None:
        await serve_socket(None, INBOX_READY)

    return app


def hypercorn_config(port: int) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.backlog = 4096  # as the product's server: Hypercorn's 100 resets a reconnect storm
    # quiet: warnings and errors only (to stderr, through logging's last-resort handler)
    errorlog = logging.getLogger("hypercorn.error")
    errorlog.setLevel(logging.WARNING)
    config.errorlog = errorlog
    config.websocket_ping_interval = None
    return config


async def serve(relay: Relay, port: int, execute: Execute | None, stop: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(
                hypercorn.trio.serve,
                create_app(relay, execute),
                hypercorn_config(port),
                shutdown_trigger=stop.wait,
            )
        )
        bound = int(binds[0].rsplit(":", 1)[1])
        print(banner(bound, bound), flush=True)


async def main(port: int, database_url: str | None, queue_size: int) -> None:
    relay = Relay(queue_size)
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def watch_signals() -> None:
            async for _ in signals:
                stop.set()
                return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals)
            if database_url is not None:
                await serve_persisting(relay, port, database_url, stop)
            else:
                await serve(relay, port, None, stop)
            nursery.cancel_scope.cancel()


async def serve_persisting(relay: Relay, port: int, url: str, stop: trio.Event) -> None:
    async with trio_asyncio.open_loop():
        pool = await trio_asyncio.aio_as_trio(asyncpg.create_pool)(
            # as the product's pool: no idle-connection timer per release (see storage/db.py)
            url,
            min_size=2,
            max_size=10,
            reset=keep_session,
            max_inactive_connection_lifetime=0,
        )
        try:
            execute: Execute = trio_asyncio.aio_as_trio(pool.execute)
            await execute(SCHEMA)
            await serve(relay, port, execute, stop)
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(POOL_CLOSE_TIMEOUT) as closing:
                    await trio_asyncio.aio_as_trio(pool.close)()
                if closing.cancelled_caught:
                    pool.terminate()


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release (asyncio flavour): nothing to undo.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: a second round trip per ``pool.execute``. These connections
    never take advisory locks, open cursors, LISTEN or SET anything, so there is nothing to
    reset; asyncpg still rolls back a transaction left open before calling this.
    """


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(
        "python -m bench.baselines.quart_relay",
        "quart-trio on Hypercorn relay (optionally persisting through asyncpg).",
        argv,
        persist=True,
        ws_port=False,
    )
    database_url = None
    if args.persist:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            print("--persist needs DATABASE_URL", file=sys.stderr)
            return 2
    raise_nofile_limit()
    trio.run(main, args.port, database_url, args.queue_size)
    return 0


if __name__ == "__main__":
    sys.exit(run())
