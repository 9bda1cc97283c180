"""The listening socket's accept queue, read from the kernel (``ss``): after a restart every open
widget reconnects at once, and connections past a full queue are reset (each reset costs a widget
up to 15 s of backoff). Hypercorn's default queue is 100."""

from __future__ import annotations

import subprocess
from pathlib import Path

import trio

from tests.support import Server, open_server


def kernel_backlog(port: int) -> int:
    """The accept queue of the socket listening on ``port``: ``ss`` shows it as Send-Q."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert len(rows) == 1, out
    return int(rows[0][2])  # State Recv-Q Send-Q Local Peer


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def test_the_server_queues_thousands_of_connections_for_accept(server: Server) -> None:
    backlog = await trio.to_thread.run_sync(kernel_backlog, port_of(server))
    assert backlog == min(4096, somaxconn())
    assert backlog > 100  # more than Hypercorn's default (somaxconn is 4,096 on Linux 5.4+)


async def test_the_accept_queue_is_a_setting(database_url: str) -> None:
    async with open_server(database_url, listen_backlog=300) as srv:
        assert await trio.to_thread.run_sync(kernel_backlog, port_of(srv)) == min(300, somaxconn())
