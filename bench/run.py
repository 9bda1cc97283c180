"""``make bench``: Curbe Chat against the floors of its own stack, in one run, as ratios.

Every target is a server process driven only through the public HTTP and WebSocket API by the
same client worker processes (:mod:`bench.worker`), one target after the other:

- ``curbe``: ``curbe-chat serve --workers 1`` on a fresh PostgreSQL database;
- ``curbe-w2``: ``curbe-chat serve --workers 2`` (two workers behind one port, an embedded NATS,
  shard leases, forwarding and the bus: the workers axis); its CPU and memory are the whole
  process tree's (parent, workers, NATS), NATS's CPU also shown apart;
- ``quart``: a quart-trio relay on Hypercorn's trio worker, in memory (the card's framework);
- ``quart+pg``: the same with one asyncpg statement per message and per heartbeat, through
  trio-asyncio (the card's stack with persistence at its simplest);
- ``trio``: bare Trio with trio-websocket (Trio's floor);
- ``websockets``: ``websockets`` on uvloop (Python's floor).

Scenarios, in this order on each target: idle widgets (connect rate, memory and CPU per idle
widget, a widget's network cost), offered heartbeats, persisted delivery visitor -> agents at
fixed offered rates (latency, losses, duplicates, order), conversations filled for the
rehydration probe, a restart with every widget reconnecting (time until all are back, resume by
seq), and the first command to each filled conversation after the restart.

Figures are printed and written as JSON; nothing here asserts a timing. ``--quick`` runs every
path with tiny numbers (CI); the full run is what ``docs/benchmarks.md`` reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gzip
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import psutil
import trio
import trio_asyncio

from bench.profile import profiled as profile_step
from bench.report import render, summarise
from bench.wire import Endpoint, Http
from engine import metrics
from web.workers import read_banner

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLI = str(Path(PYTHON).parent / "curbe-chat")
PASSWORD = "bench password 1"
LOOPBACK_SOURCES = [f"127.0.{i // 250 + 1}.{i % 250 + 1}" for i in range(64)]


@attrs.frozen
class Plan:
    widgets: int
    idle_seconds: float
    heartbeat_rates: tuple[int, ...]
    heartbeat_seconds: float
    conversations: int
    rates: tuple[int, ...]
    rate_seconds: float
    history: int  # conversations filled for the rehydration probe
    history_messages: int
    storm_widgets: int
    storm_timeout: float
    visitor_workers: int = 2
    agents: int = 2
    warm_seconds: float = 2.0  # delivery at the lowest rate before the measured steps
    profile: str | None = None  # a folder: py-spy samples the product during each step


FULL = Plan(
    widgets=2000,
    idle_seconds=20,
    heartbeat_rates=(500, 5000),
    heartbeat_seconds=8,
    conversations=200,
    # 750: issue 14's target is 1.5x one worker's highest held rate, which has been 500
    rates=(250, 500, 750, 1000, 1500, 2000, 3000),
    rate_seconds=8,
    history=100,
    history_messages=50,
    # 20,000 sockets do not fit under this machine's per-process descriptor ceiling (hard
    # RLIMIT_NOFILE 20,000, not raisable in its container): the full storm is 19,000
    storm_widgets=19000,
    storm_timeout=120,
)
QUICK = Plan(
    widgets=30,
    idle_seconds=1.5,
    heartbeat_rates=(40,),
    heartbeat_seconds=1,
    conversations=6,
    rates=(40,),
    rate_seconds=1,
    history=4,
    history_messages=12,
    storm_widgets=40,
    storm_timeout=60,
    warm_seconds=0.5,
)


@attrs.frozen
class Target:
    name: str
    label: str
    module: str | None  # a baseline's module; None: curbe-chat serve
    persist: bool = False
    workers: int = 1  # curbe-chat serve --workers

    @property
    def ours(self) -> bool:
        return self.module is None


TARGETS = [
    Target("curbe", "Curbe Chat", None, persist=True),
    Target("curbe-w2", "Curbe Chat, 2 workers", None, persist=True, workers=2),
    Target("quart", "quart-trio relay (memory)", "bench.baselines.quart_relay"),
    Target("quart+pg", "quart-trio relay + asyncpg", "bench.baselines.quart_relay", persist=True),
    Target("trio", "bare Trio + trio-websocket", "bench.baselines.trio_relay"),
    Target("websockets", "websockets + uvloop", "bench.baselines.websockets_relay"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raise_fd_limit() -> None:
    """Run in each child: 20,000 widgets need more descriptors than the default."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (262144, 262144))
    except (ValueError, OSError):  # not root: the hard limit is the ceiling
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tree(pid: int) -> list[psutil.Process]:
    """A server process and every process under it (``--workers``: the workers and NATS)."""
    top = psutil.Process(pid)
    return [top, *top.children(recursive=True)]


def is_bus(process: psutil.Process) -> bool:
    try:
        return "nats-server" in process.name()
    except psutil.Error:
        return False


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a server: its process tree's, the bus (NATS) included."""
    return _cpu(tree(pid))


def bus_cpu(pid: int) -> float:
    """CPU seconds of the NATS server under a server's process tree (0 without one)."""
    return _cpu([p for p in tree(pid) if is_bus(p)])


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on the machine (the bench is alone on it)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def clients_cpu(workers: list[WorkerProcess]) -> float:
    """CPU seconds of the bench's own client worker processes (they share the machine)."""
    return _cpu([psutil.Process(w.process.pid) for w in workers])


def rss(pid: int) -> int:
    """Resident memory of a server's process tree (workers and NATS included)."""
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


Samples = metrics.Samples


async def scrape(base: str) -> Samples:
    """Every sample of the server's ``/metrics`` (under ``--workers``, the workers' sum)."""
    http = await Http.open(Endpoint.parse(base))
    try:
        status, body, _ = await http.request("GET", "/metrics", headers={"Accept": "text/plain"})
    finally:
        await http.aclose()
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    text = body.decode() if isinstance(body, bytes) else str(body)
    return metrics.parse_samples(text)


def metric_delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much the sum of ``name``'s samples matching ``labels`` grew between two scrapes."""

    def total(samples: Samples) -> float:
        return sum(
            v
            for (n, ls), v in samples.items()
            if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
        )

    return total(after) - total(before)


def histogram_quantile(before: Samples, after: Samples, name: str, q: float) -> float | None:
    """The upper bound (seconds) of the bucket holding quantile ``q`` of what ``name`` observed
    between two scrapes (a histogram tells no finer); None when it observed nothing."""
    bounds = sorted({dict(ls)["le"] for (n, ls) in after if n == f"{name}_bucket"}, key=float)
    count = metric_delta(before, after, f"{name}_count")
    if count <= 0:
        return None
    for le in bounds:
        if metric_delta(before, after, f"{name}_bucket", le=le) >= q * count:
            return float(le)
    return None


class WorkerProcess:
    """A :mod:`bench.worker` child: one JSON command in, one JSON answer out."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.buffer = b""

    @classmethod
    async def start(cls, name: str, nursery: trio.Nursery) -> WorkerProcess:
        process = await nursery.start(
            functools.partial(
                trio.run_process,
                [PYTHON, "-m", "bench.worker", name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                check=False,
                cwd=ROOT,
                preexec_fn=raise_fd_limit,
            )
        )
        return cls(name, process)

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        await self.process.stdin.send_all(json.dumps({"cmd": cmd} | args).encode() + b"\n")
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"worker {self.name} exited during {cmd}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok", False):
            raise RuntimeError(f"worker {self.name}: {cmd}: {answer.get('error')}")
        return answer

    async def exit(self) -> None:
        with trio.move_on_after(10):
            await self.call("exit")
        with trio.move_on_after(5):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()


class Server:
    """One target's server process: started, restarted and stopped by the bench."""

    def __init__(
        self, target: Target, env: dict[str, str], port: int, *, stderr: Any = None
    ) -> None:
        self.target = target
        self.env = env
        self.port = port
        self.stderr = stderr  # where its log goes (a file; None: this process's stderr)
        self.process: trio.Process | None = None
        self.http = ""
        self.ws = ""

    def command(self) -> list[str]:
        if self.target.module is None:
            return [CLI, "serve", "--workers", str(self.target.workers), "--port", str(self.port)]
        command = [PYTHON, "-m", self.target.module, "--port", str(self.port)]
        return command + (["--persist"] if self.target.persist else [])

    async def start(self, nursery: trio.Nursery) -> float:
        """Start and wait for the banner; answers when it was ready (``time.monotonic``)."""
        process: trio.Process = await nursery.start(
            functools.partial(
                trio.run_process,
                self.command(),
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env=self.env,
                check=False,
                cwd=ROOT,
                preexec_fn=raise_fd_limit,
            )
        )
        self.process = process
        assert process.stdout is not None
        with trio.fail_after(120):
            try:
                banner = await read_banner(process.stdout)
            except RuntimeError:
                raise RuntimeError(f"{self.target.name} exited before it listened") from None
        ready = time.monotonic()
        if self.target.ours:
            self.http = banner["baseUrl"]
            self.ws = self.http.replace("http://", "ws://")
        else:
            self.http, self.ws = banner["http"], banner["ws"]
        nursery.start_soon(self._drain, process)
        return ready

    async def _drain(self, process: trio.Process) -> None:
        assert process.stdout is not None
        async for _ in process.stdout:
            pass

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(60):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def run_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = await trio.run_process([CLI, *args], env=env, capture_stdout=True, cwd=ROOT)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def fresh_database(url: str, name: str, *, create: bool = True) -> str:
    """``name`` dropped and (unless not ``create``) created again on ``url``'s server; answers
    its URL."""
    async with trio_asyncio.open_loop():

        async def recreate() -> None:
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                if create:
                    await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        await trio_asyncio.aio_as_trio(recreate)()
    base, _, _ = url.rpartition("/")
    query = ""
    if "?" in url:
        query = "?" + url.split("?", 1)[1]
    return f"{base}/{name}{query}"


def merge(answers: list[dict[str, Any]], key: str) -> list[float]:
    return [x for a in answers for x in a[key]]


async def each(workers: list[WorkerProcess], cmd: str, **args: Any) -> list[dict[str, Any]]:
    """The same command on every worker at once."""
    answers: list[dict[str, Any]] = [{} for _ in workers]

    async def one(i: int) -> None:
        answers[i] = await workers[i].call(cmd, **args)

    async with trio.open_nursery() as nursery:
        for i in range(len(workers)):
            nursery.start_soon(one, i)
    return answers


async def bench_target(
    target: Target, plan: Plan, database_url: str, db_name: str, log: Any
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(CURBE_LOG_LEVEL="WARNING", CURBE_OPS_TOKEN="bench-ops", PYTHONUNBUFFERED="1")
    # every simulated visitor comes from this one address: the public throttles, sized for
    # real sites, would refuse most of them (web/throttles.py)
    env.update(CURBE_THROTTLE_SCALE="1000")
    seed: dict[str, str] = {"widget": "wgt_bench", "email": "agent@bench", "password": PASSWORD}
    if target.persist:
        env["DATABASE_URL"] = await fresh_database(database_url, db_name)
    if target.ours:
        tenant = await run_cli(env, "tenant", "create", "--name", "Bench")
        await run_cli(env, "agent", "create", "--tenant", tenant["id"], "--email",
                      "agent@bench.example", "--name", "Bench Agent", "--password", PASSWORD,
                      "--max-chats", "1000")  # fmt: skip
        widget = await run_cli(env, "widget", "create", "--tenant", tenant["id"], "--name",
                               "Bench", "--wait-timeout", "3600")  # fmt: skip
        seed |= {"widget": widget["id"], "email": "agent@bench.example"}
    out: dict[str, Any] = {"target": target.name, "label": target.label}
    server = Server(target, env, free_port())
    async with trio.open_nursery() as nursery:
        await server.start(nursery)
        if target.ours and target.workers > 1:
            await settled(server.http, target.workers, env["CURBE_OPS_TOKEN"])
        visitors = [
            await WorkerProcess.start(f"v{i}", nursery) for i in range(plan.visitor_workers)
        ]
        agents = await WorkerProcess.start("a", nursery)
        everyone = [*visitors, agents]
        try:
            await run_scenarios(target, plan, server, visitors, agents, seed, out, log, nursery)
        finally:
            for w in everyone:
                await w.exit()
            await server.stop()
    if target.persist:
        await fresh_database(database_url, db_name, create=False)
    return out


async def run_scenarios(
    target: Target,
    plan: Plan,
    server: Server,
    visitors: list[WorkerProcess],
    agents: WorkerProcess,
    seed: dict[str, str],
    out: dict[str, Any],
    log: Any,
    nursery: trio.Nursery,
) -> None:
    v = len(visitors)
    setup = {
        "http": server.http,
        "ws": server.ws,
        "widget": seed["widget"],
        # what the server under test takes, asked of its own OpenAPI document
        **(await takes_frames(server.http) if target.ours else {}),
    }
    for i, w in enumerate([*visitors, agents]):
        await w.call("setup", sources=LOOPBACK_SOURCES[i::3], **setup)
    await agents.call("inbox", n=plan.agents, email=seed["email"], password=seed["password"])
    if target.ours:
        out["widget_js"] = await widget_js_size(server.http)

    # ---- idle -------------------------------------------------------------------------------
    log(f"{target.name}: opening {plan.widgets} widgets")
    rss0 = rss(server.pid)
    # py-spy samples the product: one process's steps are named by step, the workers' (all
    # sampled, each stack under its process) are prefixed with the target's name
    profile = plan.profile if target.ours else None
    prefix = "" if target.workers == 1 else f"{target.name}-"

    def profiled(folder: str | None, pid: int, step: str) -> Any:
        return profile_step(folder, pid, prefix + step, subprocesses=target.workers > 1)

    t0 = time.monotonic()
    async with profiled(profile, server.pid, "connect"):
        opened = await each(visitors, "open", n=plan.widgets // v, concurrency=64)
    connect_s = time.monotonic() - t0
    n_open = sum(a["opened"] for a in opened)
    out["connect"] = {
        "widgets": n_open,
        "failed": sum(a["failed"] for a in opened),
        "per_second": n_open / connect_s,
        "lat": merge(opened, "lat"),
    }
    log(f"{target.name}: idle {plan.idle_seconds} s")
    await each(visitors, "background", on=True)
    c0 = await each(visitors, "counters")
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    async with profiled(profile, server.pid, "idle"):
        await trio.sleep(plan.idle_seconds)  # a measurement window, not a wait for a condition
    cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    c1 = await each(visitors, "counters")
    await each(visitors, "background", on=False)
    minutes = (t1 - t0) / 60
    out["idle"] = {
        "widgets": n_open,
        "rss_per_widget": (rss(server.pid) - rss0) / max(n_open, 1),
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "requests_per_widget_minute": sum(
            b["requests"] - a["requests"] for a, b in zip(c0, c1, strict=True)
        )
        / max(n_open, 1)
        / minutes,
        "bytes_per_widget_minute": sum(
            b["sent"] + b["received"] - a["sent"] - a["received"]
            for a, b in zip(c0, c1, strict=True)
        )
        / max(n_open, 1)
        / minutes,
    }

    # ---- heartbeats -------------------------------------------------------------------------
    out["heartbeat"] = []
    for rate in plan.heartbeat_rates:
        log(f"{target.name}: heartbeats at {rate}/s")
        cpu0, pg0 = cpu_seconds(server.pid), postgres_cpu()
        async with profiled(profile, server.pid, f"heartbeat-{rate}"):
            answers = await each(
                visitors, "heartbeats", rate=rate / v, seconds=plan.heartbeat_seconds
            )
        cpu1, pg1 = cpu_seconds(server.pid), postgres_cpu()
        ok = sum(a["done"] for a in answers)
        out["heartbeat"].append(
            {
                "offered": rate,
                "achieved": ok / max(max(a["ms"] for a in answers) / 1000, 1e-9),
                "ok": ok,
                "failed": sum(a["failed"] for a in answers),
                "cpu_ms": 1000 * (cpu1 - cpu0) / max(ok, 1),
                "pg_cpu_ms": 1000 * (pg1 - pg0) / max(ok, 1),
                "lat": merge(answers, "lat"),
            }
        )

    # ---- delivery ---------------------------------------------------------------------------
    started = await each(visitors, "converse", n=plan.conversations // v)
    log(f"{target.name}: {sum(len(a['conversations']) for a in started)} conversations")
    out["delivery"] = []
    # a warm-up at the lowest rate, not measured: the conversations' first messages take paths
    # that belong to no rate (each pooled connection preparing its statements, every actor's
    # first commit); in runs 7-9 they were the first step's p99, on both targets
    warm = await each(visitors, "deliver", rate=plan.rates[0] / v, seconds=plan.warm_seconds)
    await agents.call(
        "inbox_report",
        expect={cid: n for a in warm for cid, n in a["sent"].items()},
        since={cid: n for a in warm for cid, n in a["since"].items()},
        drain=15,
    )
    for rate in plan.rates:
        log(f"{target.name}: delivery at {rate} msg/s")
        m0 = await scrape(server.http) if target.ours else {}
        cpu0, pg0, bus0 = cpu_seconds(server.pid), postgres_cpu(), bus_cpu(server.pid)
        client0 = clients_cpu([*visitors, agents])
        async with profiled(profile, server.pid, f"delivery-{rate}"):
            sent = await each(visitors, "deliver", rate=rate / v, seconds=plan.rate_seconds)
        expect = {cid: n for a in sent for cid, n in a["sent"].items()}
        since = {cid: n for a in sent for cid, n in a["since"].items()}
        report = await agents.call("inbox_report", expect=expect, since=since, drain=15)
        cpu1, pg1, bus1 = cpu_seconds(server.pid), postgres_cpu(), bus_cpu(server.pid)
        client1 = clients_cpu([*visitors, agents])
        m1 = await scrape(server.http) if target.ours else {}
        total = sum(expect[c] - since.get(c, 0) for c in expect)
        delivered = total - report["lost"] // plan.agents
        bus: dict[str, Any] = {}
        if target.ours and target.workers > 1:
            lag = histogram_quantile(m0, m1, "curbe_bus_lag_seconds", 0.99)
            hop = histogram_quantile(m0, m1, "curbe_bus_hop_seconds", 0.99)
            forward = histogram_quantile(m0, m1, "curbe_forward_seconds", 0.99)
            bus = {
                "bus_cpu_ms": 1000 * (bus1 - bus0) / max(delivered, 1),
                "bus_in": metric_delta(m0, m1, "curbe_bus_events_total", direction="in"),
                "bus_out": metric_delta(m0, m1, "curbe_bus_events_total", direction="out"),
                "bus_lag_p99_ms": None if lag is None else 1000 * lag,
                "bus_hop_p99_ms": None if hop is None else 1000 * hop,
                "forwarded": metric_delta(m0, m1, "curbe_forwarded_commands_total"),
                "forward_p99_ms": None if forward is None else 1000 * forward,
            }
        out["delivery"].append(
            bus
            | {
                "offered": rate,
                "sent": total,
                "achieved": delivered / (max(a["ms"] for a in sent) / 1000),
                "lost": report["lost"],
                "duplicates": report["duplicates"],
                "order": report["order"],
                "unacked": sum(a["unacked"] for a in sent),
                "cpu_ms": 1000 * (cpu1 - cpu0) / max(delivered, 1),
                "pg_cpu_ms": 1000 * (pg1 - pg0) / max(delivered, 1),
                "client_cpu_ms": 1000 * (client1 - client0) / max(delivered, 1),
                "lat": report["lat"],
                "ack_lat": merge(sent, "lat"),
                # typing hints beside the messages (sent before a message, at most one a
                # second per widget, as a typing visitor's widget.js would): the typing events
                # that reached each inbox, per message delivered
                "typing_sent": sum(a.get("typing", 0) for a in sent),
                "typing_per_message": sum(a.get("typing", 0) for a in sent) / max(delivered, 1),
                "typing_in": report.get("typing", 0) / max(delivered * plan.agents, 1),
                # and the visitor's read mark with each typing hint: seen events to the inboxes
                # (only a mark that passes an agent's message or join is told: the bench's
                # conversations hold the visitors' messages, so most reads are stored, not told)
                "reads_in": report.get("reads", 0) / max(delivered * plan.agents, 1),
                # the frames that brought those events (coalesced per tenant: activity_batch)
                "hint_frames_in": report.get("hint_frames", 0) / max(delivered * plan.agents, 1),
            }
        )

    # ---- rehydration: conversations holding history_messages, probed after the restart -----
    await each(visitors, "converse", n=plan.history // v)
    await each(visitors, "fill", k=plan.history // v, m=plan.history_messages)

    # ---- reconnect storm --------------------------------------------------------------------
    more = max(0, plan.storm_widgets - n_open) // v
    if more:
        log(f"{target.name}: opening {more * v} more widgets for the storm")
        async with profiled(profile, server.pid, "connect-storm"):
            await each(visitors, "open", n=more, concurrency=64)
    await each(visitors, "mark")
    log(f"{target.name}: restart")
    await server.stop()
    ready = await server.start(nursery)
    for w in [*visitors, agents]:
        await w.call("retarget", http=server.http, ws=server.ws)
    async with profiled(profile, server.pid, "storm"):
        back = await each(visitors, "await_back", timeout=plan.storm_timeout)
    out["storm"] = {
        "widgets": sum(a["total"] for a in back),
        "back": sum(a["back"] for a in back),
        "seconds": max(a["last_back_at"] for a in back) / 1000 - ready,
        "resumed": sum(a["resumed"] for a in back),
        "duplicates": sum(a["duplicates"] for a in back),
        "gaps": sum(a["gaps"] for a in back),
        "behind": sum(a["behind"] for a in back),
    }
    if target.ours:  # a relay keeps no conversation across a restart: nothing to rehydrate
        log(f"{target.name}: rehydration probe")
        probe = await each(visitors, "probe", rate=20)
        out["rehydration"] = {
            "lat": merge(probe, "lat"),
            "unacked": sum(a["unacked"] for a in probe),
        }
    counters = await each([*visitors, agents], "counters")
    out["client_errors"] = {k: n for a in counters for k, n in a["errors"].items()}


async def settled(base: str, workers: int, ops_token: str) -> None:
    """Wait until ``workers`` live nodes share the 64 shards, none draining: the measured steady
    state of ``--workers`` (right after start, worker 0 holds every shard and hands half over)."""
    with trio.fail_after(120):
        while True:
            http = await Http.open(Endpoint.parse(base))
            try:
                status, body, _ = await http.request("GET", "/api/ops/cluster", token=ops_token)
            finally:
                await http.aclose()
            if status != 200 or not isinstance(body, dict):
                raise RuntimeError(f"GET /api/ops/cluster answered {status}")
            live = [n for n in body["nodes"] if n["live"]]
            shards = [n["shards"] for n in live]
            if len(live) == workers and sum(shards) == 64 and min(shards) > 0:
                if not body.get("draining"):
                    return
            await trio.sleep(0.2)


async def takes_frames(base: str) -> dict[str, bool]:
    """Which client frames the server under test takes, asked of the server itself (its OpenAPI
    document lists each frame from the commit that added it): heartbeat frames on the visitor
    socket (widget.js then sends its heartbeats there), typing and read frames (sent beside the
    delivery scenario's messages). A bench of an older server (``PYTHONPATH`` pointing at an
    older checkout) then drives its widgets as that commit's widget.js did, whatever this
    harness's own code knows."""
    http = await Http.open(Endpoint.parse(base))
    try:
        status, body, _ = await http.request("GET", "/api/openapi.json")
    finally:
        await http.aclose()
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"GET /api/openapi.json answered {status}")
    schemas = body.get("components", {}).get("schemas", {})
    return {
        "socket_heartbeat": "BeatFrame" in schemas,
        "typing": "TypingFrame" in schemas,
        "read": "ReadFrame" in schemas,
    }


async def widget_js_size(base: str) -> dict[str, int]:
    http = await Http.open(Endpoint.parse(base))
    try:
        status, body, headers = await http.request(
            "GET", "/widget.js", headers={"Accept-Encoding": "gzip"}
        )
    finally:
        await http.aclose()
    raw = body if isinstance(body, bytes) else b""
    wire = len(raw)
    if headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    return {"status": status, "wire": wire, "raw": len(raw), "gzip9": len(gzip.compress(raw, 9))}


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    if args.storm is not None:
        plan = attrs.evolve(plan, storm_widgets=args.storm)
    if args.profile is not None:
        plan = attrs.evolve(plan, profile=args.profile)
    if args.rates:
        plan = attrs.evolve(plan, rates=tuple(args.rates))
    if args.heartbeat_rates is not None:
        plan = attrs.evolve(plan, heartbeat_rates=tuple(args.heartbeat_rates))
    chosen = [t for t in TARGETS if not args.only or t.name in args.only]
    url = os.environ.get("DATABASE_URL", "")
    results: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "plan": attrs.asdict(plan),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "targets": {},
    }

    def log(text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    with embedded_database(url, log) as url:
        for target in chosen:
            results["targets"][target.name] = summarise(
                await bench_target(target, plan, url, args.database, log)
            )
    return results


class embedded_database:
    """``DATABASE_URL`` when set; otherwise the project's embedded PostgreSQL for the run."""

    def __init__(self, url: str, log: Any) -> None:
        self.url, self.log = url, log
        self.pg: Any = None

    def __enter__(self) -> str:
        if self.url:
            return self.url
        from storage.embedded import start_embedded_postgres

        self.log("DATABASE_URL is unset: starting an embedded PostgreSQL in .curbe-bench/")
        self.pg = start_embedded_postgres(str(ROOT / ".curbe-bench"))
        return str(self.pg.url)

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self.pg.stop()


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny numbers: every path, quickly")
    parser.add_argument("--only", nargs="*", help="target names (default: all)")
    parser.add_argument("--storm", type=int, help="widgets in the reconnect storm")
    parser.add_argument(
        "--rates", nargs="+", type=int, help="delivery rates, msg/s (default: the plan's)"
    )
    parser.add_argument(
        "--heartbeat-rates",
        nargs="*",
        type=int,
        help="offered heartbeat rates, /s (default: the plan's; none: skip that scenario)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy samples of the product per step, into DIR"
    )
    parser.add_argument(
        "--database",
        default="curbe_bench",
        help="database the run drops and creates on DATABASE_URL's server (default curbe_bench)",
    )
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench" / "latest.json"))
    args = parser.parse_args(argv)
    results = trio.run(main, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(render(results))
    print(f"\nJSON: {args.out}")
    return 0
