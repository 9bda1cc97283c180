"""The database taken away under load, three ways, while visitors keep sending messages:

1. its connections killed (``pg_terminate_backend`` on every connection of the server's
   database), ``terminations`` times;
2. unreachable and refusing: a TCP proxy between the server and PostgreSQL resets every open
   connection and every new one for ``outage`` seconds;
3. unreachable and silent: the proxy stops forwarding for ``outage`` seconds (a cable pulled:
   connections open, nothing answers), then cuts those connections.

Holds when: requests fail only inside a fault's window (a failed request must have been in
flight between the fault and the first success of a request sent after the fault ended), the server recovers by itself within ``recover_within`` seconds
of each fault's end, ``/healthz`` answers 200 at the end, and nothing acknowledged is lost,
doubled or invented.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import trio

from chaos.harness import (
    Ledger,
    ServerProcess,
    Visitor,
    drop_database,
    log_file,
    nonzero,
    open_chat,
    sql,
    stored_messages,
    tally,
)

NAME = "curbe_chaos_database"


class Proxy:
    """A TCP proxy in front of PostgreSQL that can refuse, or go silent, on command."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self.mode = "forward"  # "refuse": reset at once; "silent": accept, forward nothing
        self.pipes: set[trio.CancelScope] = set()
        self.resumed = trio.Event()

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.listen_port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        """Close every connection now open."""
        for scope in list(self.pipes):
            scope.cancel()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "forward":
            self.resumed.set()
            self.resumed = trio.Event()

    async def _handle(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self.pipes.add(scope)
            try:
                if self.mode == "refuse":
                    return
                if self.mode == "silent":
                    await self.resumed.wait()  # a connection made during the silence hangs
                upstream = await trio.open_tcp_stream(self.host, self.port)
                async with upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pipe, upstream, client, nursery.cancel_scope)
            except OSError:
                pass
            finally:
                self.pipes.discard(scope)
        await trio.aclose_forcefully(client)

    async def _pipe(
        self, source: trio.SocketStream, sink: trio.SocketStream, both: trio.CancelScope
    ) -> None:
        try:
            async for chunk in source:
                while self.mode == "silent":  # hold it: a line that answers nothing
                    await self.resumed.wait()
                await sink.send_all(chunk)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        both.cancel()  # one side closed or broke: close both


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{port}"))


async def terminate(url: str, database: str) -> int:
    rows = await sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return len(rows)


def windows_report(
    ledger: Ledger, faults: list[tuple[str, float, float]], recover_within: float
) -> tuple[list[dict[str, Any]], int]:
    """Per fault: how long after its end the first request sent after it succeeded, and the
    failed requests that overlapped its window (from the fault until that success); and the
    failed requests that overlapped no window."""
    report = []
    spans = []
    for name, start, end in faults:
        after = sorted(done for sent, done, ok in ledger.outcomes if ok and sent >= end)
        recovered = after[0] if after else None
        stop = recovered if recovered is not None else float("inf")
        spans.append((start, stop))
        report.append(
            {
                "fault": name,
                "seconds": round(end - start, 2),
                "errors": sum(
                    1
                    for sent, done, ok in ledger.outcomes
                    if not ok and sent <= stop and done >= start
                ),
                "recoveredAfterSeconds": (
                    round(recovered - end, 2) if recovered is not None else None
                ),
                "recovered": recovered is not None and recovered - end <= recover_within,
            }
        )
    outside = sum(
        1
        for sent, done, ok in ledger.outcomes
        if not ok and not any(sent <= stop and done >= start for start, stop in spans)
    )
    return report, outside


async def run(
    database_url: str,
    logs: Path,
    *,
    terminations: int,
    outage: float,
    visitors: int,
    steady: float = 2.0,
    recover_within: float = 15.0,
) -> dict[str, Any]:
    chat = await open_chat(database_url, NAME)
    pg = urlsplit(chat.url)
    proxy = Proxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    ledger = Ledger()
    faults: list[tuple[str, float, float]] = []
    terminated = 0
    with log_file(logs, "database") as log:
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.serve)
            env = dict(chat.env, DATABASE_URL=through(chat.url, proxy.listen_port))
            server = ServerProcess(env, log)
            await server.start(nursery)
            people = [Visitor(server, chat.widget, f"d{i}", ledger) for i in range(visitors)]
            for v in people:
                await v.join()
                await v.start_chat()
            stop = trio.Event()
            async with trio.open_nursery() as load:
                for v in people:
                    load.start_soon(v.keep_talking, stop, 0.02)
                await trio.sleep(steady)
                for _ in range(terminations):
                    start = time.monotonic()
                    terminated += await terminate(chat.url, NAME)
                    faults.append(("pg_terminate_backend", start, time.monotonic()))
                    await trio.sleep(steady)
                for mode in ("refuse", "silent"):
                    start = time.monotonic()
                    proxy.set_mode(mode)
                    if mode == "refuse":
                        proxy.cut()
                    await trio.sleep(outage)
                    if mode == "silent":
                        proxy.cut()  # the connections that hung die when the line comes back
                    proxy.set_mode("forward")
                    faults.append((f"unreachable ({mode})", start, time.monotonic()))
                    await trio.sleep(steady + recover_within / 3)
                stop.set()
            health = await server.health()
            await server.stop()
            nursery.cancel_scope.cancel()
    stored = await stored_messages(chat.url, [v.conversation for v in people if v.conversation])
    await drop_database(database_url, NAME)
    report, outside = windows_report(ledger, faults, recover_within)
    return {
        "visitors": visitors,
        "connectionsTerminated": terminated,
        "faults": report,
        "errorsOutsideFaults": outside,
        "healthAtEnd": health,
        **tally(ledger, stored),
        "refused": dict(ledger.refused),
        "transportErrors": ledger.transport_errors,
        "unexpected": ledger.unexpected[:20],
    }


def holds(figures: dict[str, Any]) -> list[str]:
    broken = nonzero(figures, "lost", "duplicates", "strays")
    if figures["errorsOutsideFaults"]:
        broken.append(f"{figures['errorsOutsideFaults']} errors outside any fault")
    broken += [
        f"{f['fault']}: not recovered (after {f['recoveredAfterSeconds']} s)"
        for f in figures["faults"]
        if not f["recovered"]
    ]
    if figures["healthAtEnd"] not in ("ok", "degraded"):
        broken.append(f"/healthz at the end: {figures['healthAtEnd']}")
    if figures["unexpected"]:
        broken.append(f"unexpected: {figures['unexpected']}")
    return broken
