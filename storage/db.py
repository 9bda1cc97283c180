"""PostgreSQL access for Curbe Chat: asyncpg under trio-asyncio, confined to this package.

Everything here is an **asyncio** coroutine except :class:`Database`'s public methods, which are
**Trio** flavour. A use case crosses from Trio into asyncio exactly once: :meth:`Database.run`
acquires a connection, opens a transaction and runs one verb-named function of
:mod:`storage.queries` (which takes the connection first) inside it.
"""

from __future__ import annotations

import errno
import importlib.resources
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg
import trio
import trio_asyncio

from engine import metrics
from storage.leases import begin_fenced, check_fence, stale_lease

log = logging.getLogger("curbe.storage")

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

MIGRATION_LOCK = 74_201_126  # pg_advisory_lock key: one migrator at a time


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


UNAVAILABLE = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    asyncpg.PostgresConnectionError,  # the connection went away under a query
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (a request answers 503 and may be
    retried), as opposed to a fault in the request or in the code."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE


def single_statement(fn: F) -> F:
    """Mark a storage verb that runs exactly one SQL statement: :meth:`Database.run` then sends
    it without BEGIN/COMMIT (PostgreSQL runs a lone statement atomically)."""
    fn.single_statement = True  # type: ignore[attr-defined]
    return fn


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, instead of asyncpg's ``RESET ALL; UNLISTEN *; …`` query.

    That query was one more round trip for every use case. Nothing here leaves session state on
    a pooled connection (no ``SET``, no ``LISTEN``; the migration lock is released explicitly),
    and asyncpg still rolls back a transaction left open before calling this.
    """


async def _rollback(connection: asyncpg.Connection) -> None:
    """End a failed transaction; a connection that broke is the pool's to drop."""
    if connection.is_closed():
        return
    try:
        await connection.execute("ROLLBACK")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        pass


class Fence(Protocol):
    """Who this process is and which shard epochs it holds (:class:`engine.placement.Placement`)."""

    node_id: str

    def epochs(self, actor_ids: Iterable[str]) -> dict[int, int]: ...


class Database:
    """A pool and the one-crossing ``run`` helper. Create with :meth:`connect` inside a trio-asyncio loop.

    ``fence`` (several processes on one database): :meth:`run_fenced` checks, inside the write's
    own transaction, that this process still holds the leases of the actors it writes for.
    """

    def __init__(self, pool: asyncpg.Pool, url: str | None = None) -> None:
        self.pool = pool
        self.url = url
        self.fence: Fence | None = None

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        """Open a pool (Trio flavour; needs ``trio_asyncio.open_loop()`` around the caller)."""
        pool = await trio_asyncio.aio_as_trio(asyncpg.create_pool)(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            # asyncpg's default (300 s) arms an asyncio timer on every release and cancels it on
            # the next acquire; trio-asyncio keeps a cancelled timer in its heap until it falls
            # due, and while that heap is not empty it opens a Trio deadline for every asyncio
            # callback it runs: under load that was ~23% of the process in Trio's deadline heap.
            # Idle pooled connections are cheap to keep; none is closed for idleness.
            max_inactive_connection_lifetime=0,
        )
        return cls(pool, url)

    async def close(self) -> None:
        """Close the pool, shielded from cancellation (Trio flavour)."""
        with trio.CancelScope(shield=True):
            await trio_asyncio.aio_as_trio(self.pool.close)()

    async def run(
        self,
        fn: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run one storage function in one transaction (Trio flavour, one crossing)."""
        metrics.child(metrics.STORAGE_CALLS, fn.__name__).inc()
        result: T = await trio_asyncio.aio_as_trio(self._run)(fn, *args, **kwargs)
        return result

    async def run_fenced(
        self,
        actor_ids: Iterable[str],
        fn: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`run` for an actor's write: with a fence, the transaction first locks the
        leases of ``actor_ids``' shards and raises :class:`~engine.placement.StaleLease` (and
        writes nothing) unless this process still holds them (Trio flavour, one crossing)."""
        if self.fence is None:
            return await self.run(fn, *args, **kwargs)
        epochs = self.fence.epochs(actor_ids)
        metrics.child(metrics.STORAGE_CALLS, fn.__name__).inc()
        result: T = await trio_asyncio.aio_as_trio(self._run_fenced)(
            self.fence.node_id, epochs, fn, *args, **kwargs
        )
        return result

    async def _run_fenced(
        self,
        node_id: str,
        epochs: Mapping[int, int],
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        async with self.pool.acquire() as connection:
            if getattr(fn, "single_statement", False):
                # the hot path (group commits, presence, pings): BEGIN and the fence in one trip,
                # the statement, COMMIT; three round trips where there were four
                return await self._fenced_statement(connection, node_id, epochs, fn, args, kwargs)
            async with connection.transaction():
                await check_fence(connection, node_id, epochs)
                return await fn(connection, *args, **kwargs)

    @staticmethod
    async def _fenced_statement(
        connection: asyncpg.Connection,
        node_id: str,
        epochs: Mapping[int, int],
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        try:
            await connection.execute(begin_fenced(node_id, epochs))
            result = await fn(connection, *args, **kwargs)
        except Exception as exc:
            # (a cancellation leaves the transaction to the pool, which rolls it back on release)
            await _rollback(connection)
            stale = stale_lease(exc)
            if stale is not None:
                raise stale from None
            raise
        await connection.execute("COMMIT")
        return result

    async def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async with self.pool.acquire() as connection:
            if getattr(fn, "single_statement", False):
                # one statement is its own transaction: BEGIN and COMMIT would be two more trips
                return await fn(connection, *args, **kwargs)
            async with connection.transaction():
                return await fn(connection, *args, **kwargs)

    async def migrate(self) -> list[str]:
        """Apply the numbered migrations that have not run yet (Trio flavour). Returns their names."""
        names: list[str] = await trio_asyncio.aio_as_trio(self._migrate)()
        return names

    async def _migrate(self) -> list[str]:
        # a connection of its own, closed after: the migration lock is a session lock, and a
        # pooled connection is not reset on release (a cancelled unlock would keep it held)
        if self.url is None:
            async with self.pool.acquire() as pooled:
                return await apply_migrations(pooled)
        connection = await asyncpg.connect(self.url)
        try:
            return await apply_migrations(connection)
        finally:
            await connection.close()


def migration_files() -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` of every ``storage/migrations/NNN_name.sql``, in order."""
    folder = importlib.resources.files("storage") / "migrations"
    out = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


async def apply_migrations(connection: asyncpg.Connection) -> list[str]:
    """Apply pending migrations under an advisory lock, each in its own transaction (asyncio)."""
    applied: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   number integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["number"] for r in await connection.fetch("SELECT number FROM schema_migrations")}
        for number, name, sql in migration_files():
            if number in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name
                )
            log.info("migration applied", extra={"migration": name})
            applied.append(name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied
