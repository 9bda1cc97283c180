"""``curbe-chat serve --workers 2``: two worker processes behind one port on an embedded NATS,
both answering, a killed worker restarted as a new node, and SIGTERM stopping everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import trio

from engine.metrics import parse_samples
from storage.db import Database
from tests.cluster.support import TICK_SECONDS, TTL_SECONDS, until
from tests.support import CLI, OPS_TOKEN, read_banner

pytestmark = pytest.mark.slow


async def cluster_report(base_url: str) -> dict[str, Any]:
    """``/api/ops/cluster`` on a connection of its own: the kernel hands each new connection to
    one worker, so the answer tells which."""
    headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=15) as http:
        r = await http.get("/api/ops/cluster")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def shards_on_every_scrape(base_url: str, scrapes: int = 6) -> bool:
    """Whether ``/metrics``, scraped on ``scrapes`` new connections (each handed to whichever
    worker the kernel picks), counts the 64 shards every time: the workers' sum, not one
    worker's part."""
    for _ in range(scrapes):
        async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
            r = await http.get("/metrics")
        assert r.status_code == 200, r.text
        held = [v for (name, _), v in parse_samples(r.text).items() if name == "curbe_shards_held"]
        if held != [64.0]:
            return False
    return True


@pytest.mark.parametrize("balance", ["shared", "reuseport"])
async def test_workers_share_one_port_and_the_parent_supervises_them(
    database_url: str, db: Database, tmp_path: Path, balance: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "CURBE_NODE_ID")}
    env.update(
        DATABASE_URL=database_url,
        CURBE_OPS_TOKEN=OPS_TOKEN,
        CURBE_LEASE_TTL_SECONDS=str(TTL_SECONDS),
        CURBE_LEASE_TICK_SECONDS=str(TICK_SECONDS),
    )
    command = [CLI, "serve", "--workers", "2", "--balance", balance, "--port", "0", "--demo"]
    log_path = tmp_path / "serve.log"  # the parent's and every worker's log records
    parent = await trio.lowlevel.open_process(
        [*command, "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log_path.open("wb"),
    )
    try:
        with trio.fail_after(90):
            info = await read_banner(parent)
        assert (info["workers"], info["balance"]) == (2, balance)
        assert info["natsUrl"].startswith("nats://127.0.0.1:")  # the embedded one: no NATS_URL
        assert "opsToken" not in info  # given, so not printed
        base = info["baseUrl"]
        workers = [psutil.Process(pid) for pid in info["pids"]]
        assert {w.ppid() for w in workers} == {parent.pid}
        nats = [p for p in psutil.Process(parent.pid).children() if "nats-server" in p.name()]
        assert len(nats) == 1

        # both workers are nodes of one cluster, and both take connections on the one port
        answered: set[str] = set()

        async def both_answer() -> bool:
            report = await cluster_report(base)
            assert report["mode"] == "cluster"
            answered.add(report["nodeId"])
            live = {n["nodeId"] for n in report["nodes"] if n["live"]}
            return len(answered) == 2 and answered <= live

        await until(both_answer, within=60, what="both workers answering on the port")
        # /metrics on any worker answers for both (their shards add up to the 64)
        await until(
            lambda: shards_on_every_scrape(base), within=30, what="metrics summed over workers"
        )
        # the demo was seeded once (by worker 0): any worker signs its agent in and serves /demo
        for _ in range(4):
            async with httpx.AsyncClient(base_url=base, timeout=15) as http:
                login = await http.post("/api/auth/login", json=info["demo"]["login"])
                assert login.status_code == 200, login.text
                token = login.json()["token"]
                widgets = await http.get(
                    "/api/chat/widgets", headers={"Authorization": f"Bearer {token}"}
                )
                assert [w["id"] for w in widgets.json()["widgets"]] == [info["demo"]["widgetId"]]
                assert (await http.get("/demo")).status_code == 200

        # kill -9 of a worker: the parent starts another, a new node, which takes shards again
        workers[1].kill()
        before = {w.pid for w in workers}
        replaced: list[psutil.Process] = []

        async def restarted() -> bool:
            children = [
                p for p in psutil.Process(parent.pid).children() if "nats-server" not in p.name()
            ]
            fresh = [p for p in children if p.pid not in before and p.is_running()]
            replaced[:] = fresh
            return len(children) == 2 and len(fresh) == 1

        await until(restarted, within=30, what="the parent restarting the killed worker")

        async def new_node_serving() -> bool:
            report = await cluster_report(base)
            live = {n["nodeId"]: n["shards"] for n in report["nodes"] if n["live"]}
            return any(name.endswith("-w1.1") and shards > 0 for name, shards in live.items())

        await until(new_node_serving, within=60, what="the restarted worker holding shards")
        # the dead worker's gauges left the sums (its shards are counted once, by their holder)
        await until(
            lambda: shards_on_every_scrape(base), within=30, what="the dead worker's gauges gone"
        )

        # SIGTERM: every worker and the embedded NATS stop, and the parent exits cleanly
        parent.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            code = await parent.wait()
        assert code == 0
        for child in [workers[0], *replaced, *nats]:
            alive = child.is_running() and child.status() != psutil.STATUS_ZOMBIE
            assert not alive, (child.pid, child.cmdline())
        # each worker stopped on its own, none held to the deadline (a worker once waited for
        # its parent's end, which waits for the worker)
        records = [json.loads(line) for line in log_path.read_text().splitlines()]
        assert not [r for r in records if r.get("status") == "cut_short"], records[-5:]
    finally:
        if parent.returncode is None:
            parent.kill()
            with trio.CancelScope(shield=True):
                await parent.wait()
