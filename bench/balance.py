"""How ``serve --workers N`` shares its port: ``--balance shared`` (one socket the parent listens
on, inherited by every worker) against ``--balance reuseport`` (one socket per worker, the kernel
hashing connections among them), in the same run.

For each mode it starts ``curbe-chat serve --workers N`` on a fresh database and opens
``--connections`` new connections, ``--concurrency`` at a time, each asking
``GET /api/ops/cluster`` (which names the worker that answered) and closing. It prints, per mode,
connections per second, how they spread over the workers (the busiest worker's share; 1/N is
perfect), and the p50/p99 of a connection's whole request. Run::

    .venv/bin/python -m bench.balance [--workers 2] [--connections 2000] [--concurrency 64]

PostgreSQL: ``DATABASE_URL`` (a database ``curbe_balance_<random>`` is made on that server and
dropped after), NATS: the workers' embedded one.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import trio
import trio_asyncio

from web.workers import read_banner

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "curbe-chat")
TOKEN = "bench-balance"


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def admin(url: str, sql: str) -> None:
    async with trio_asyncio.open_loop():
        await trio_asyncio.aio_as_trio(_admin)(url, sql)


async def read_body(stream: trio.SocketStream) -> bytes:
    """One HTTP/1.1 answer's body, by its Content-Length (the server may keep the connection)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = await stream.receive_some()
        if not chunk:
            raise ValueError("connection closed before the headers")
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = await stream.receive_some()
        if not chunk:
            raise ValueError("connection closed before the body")
        body += chunk
    return body


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def measure(args: argparse.Namespace, balance: str, base_url: str) -> dict[str, Any]:
    served: Counter[str] = Counter()
    latencies: list[float] = []
    failed = 0
    limit = trio.Semaphore(args.concurrency)
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET /api/ops/cluster HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def one() -> None:
        # a raw HTTP/1.1 request on a new connection: the client must cost less than the server
        nonlocal failed
        async with limit:
            t0 = time.perf_counter()
            try:
                stream = await trio.open_tcp_stream(host, int(port))
                async with stream:
                    await stream.send_all(request)
                    body = await read_body(stream)
                served[json.loads(body)["nodeId"]] += 1
                latencies.append(time.perf_counter() - t0)
            except (OSError, trio.BrokenResourceError, ValueError, KeyError):
                failed += 1

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            nursery.start_soon(one)
    elapsed = time.perf_counter() - t0
    total = sum(served.values())
    return {
        "balance": balance,
        "connections": total,
        "failed": failed,
        "per_second": total / elapsed,
        "busiest_share": max(served.values()) / total if total else 0.0,
        "per_worker": sorted(served.values(), reverse=True),
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


async def run_mode(args: argparse.Namespace, balance: str, server_url: str) -> dict[str, Any]:
    name = f"curbe_balance_{secrets.token_hex(4)}"
    await admin(server_url, f"CREATE DATABASE {name}")
    database = server_url.rsplit("/", 1)[0] + "/" + name
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "CURBE_NODE_ID")}
    env["CURBE_THROTTLE_SCALE"] = "1000"  # the load comes from one address (web/throttles.py)
    env.update(DATABASE_URL=database, CURBE_OPS_TOKEN=TOKEN, CURBE_LOG_LEVEL="WARNING")
    command = [CLI, "serve", "--workers", str(args.workers), "--balance", balance, "--port", "0"]
    try:
        with tempfile.TemporaryDirectory() as data:
            process = await trio.lowlevel.open_process(
                [*command, "--data-dir", data], env=env, stdout=subprocess.PIPE, cwd=ROOT
            )
            try:
                assert process.stdout is not None
                with trio.fail_after(120):
                    banner = await read_banner(process.stdout)
                await measure(args, balance, banner["baseUrl"])  # warm-up: imports, pools
                return await measure(args, balance, banner["baseUrl"])
            finally:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(60):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    finally:
        await admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main(args: argparse.Namespace) -> None:
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    rows = [await run_mode(args, balance, server_url) for balance in ("shared", "reuseport")]
    print(
        f"\n{args.workers} workers, {args.connections} connections, "
        f"{args.concurrency} at a time (`python -m bench.balance`)\n"
    )
    print("| balance | conn/s | busiest worker's share | per worker | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['balance']} | {r['per_second']:.0f} | {r['busiest_share']:.0%} "
            f"| {'/'.join(map(str, r['per_worker']))} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['failed']} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    trio.run(main, parser.parse_args())
