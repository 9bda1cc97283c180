"""``python -m bench.hop``: the bus alone, what issue 14 calls "the bus hop" (NATS publish and
delivery on another process), with nothing else on the machine's cores.

The delivery scenario of :mod:`bench.run` reads ``curbe_bus_hop_seconds`` from a server under
load, where the hop's latency is mostly the wait for a core (two cores shared by two workers,
PostgreSQL and the client workers). This measures the same path on its own, through the product's
own code: a publishing process and a following process, each with a :class:`~engine.cluster.
Cluster` on a real :class:`~storage.bus.NatsBus` (trio-asyncio, JetStream with its publish
acknowledgement, the ordered consumer, :mod:`engine.codec` both ways), the follower's
:class:`~engine.broker.Broker` fanning each event out to a Trio task, as it would to a socket.
For each offered rate: the hop from ``Cluster.publish`` to that task (p50, p99, p99.9), events
lost (must be 0), and the CPU per event of the publisher, the follower and the NATS server; the
publisher's loop is also run alone at that rate (making the events, publishing none), and the
bus's cost per event is the publisher's CPU less its loop's, plus the follower's and NATS's:
what a message's trip over the bus costs, against the server's whole CPU per message in
:mod:`bench.run`'s delivery scenario.

A NATS server of its own (the embedded one ``serve --workers`` starts), so that its CPU is the
bus's alone. Prints a table and writes JSON (``--out``); asserts no timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import trio
import trio_asyncio

from bench.report import percentiles
from engine.broker import Broker
from engine.cluster import Cluster
from engine.placement import Placement
from engine.values import Event, EventType

ROOT = Path(__file__).resolve().parent.parent
RATES = (250, 500, 1000, 2000, 4000)
SECONDS = 5.0
QUICK_RATES = (100,)
QUICK_SECONDS = 1.0
CONVERSATIONS = 200
TENANT = "ten_hop"
DRAIN_SECONDS = 15.0


def event(i: int) -> Event:
    """A message_created event of the delivery scenario's size (a short visitor message)."""
    return Event(
        type=EventType.MESSAGE_CREATED,
        at=dt.datetime.now(dt.UTC),
        tenant_id=TENANT,
        conversation_id=f"cnv_{i % CONVERSATIONS:026d}",
        seq=i,
        data={
            "t0": time.time(),
            "message": {
                "id": f"msg_{i:026d}",
                "sender": "visitor",
                "text": "¿Tienen seguro de viaje para Europa? " + str(i),
                "clientMessageId": f"c-{i}",
            },
        },
    )


async def open_cluster(url: str, node: str) -> tuple[Cluster, Broker, Any]:
    from storage.bus import NatsBus, NoResponders

    broker = Broker()
    bus = await NatsBus.connect(url, name=node)
    cluster = Cluster(Placement(node), bus, broker, cluster="benchhop", no_responders=NoResponders)
    return cluster, broker, bus


async def publisher(url: str) -> None:
    """Publish ``rate`` events a second for ``seconds`` on each ``go`` line of stdin."""
    async with trio_asyncio.open_loop():
        cluster, _, bus = await open_cluster(url, "pub")
        print(json.dumps({"ready": True}), flush=True)
        stdin = trio.wrap_file(sys.stdin)
        n = 0
        async for line in stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "exit":
                break
            rate, seconds, dry = cmd["rate"], cmd["seconds"], cmd.get("dry", False)
            start = trio.current_time()
            count = int(rate * seconds)
            for k in range(count):
                await trio.sleep_until(start + k / rate)
                made = event(n)
                if not dry:  # dry: the publisher's own loop, to take away from its figure
                    cluster.publish(made)
                n += 1
            print(json.dumps({"sent": count}), flush=True)
        await bus.close()


async def follower(url: str) -> None:
    """Follow the events; on each ``report`` line, the hops of the ``n`` events since the last."""
    async with trio_asyncio.open_loop():
        cluster, broker, bus = await open_cluster(url, "sub")
        hops: list[float] = []
        arrived = trio.Event()
        want = {"n": -1}

        async def consume() -> None:
            with broker.subscribe(("tenant", TENANT), buffer=100_000) as sub:
                async for ev in sub:
                    hops.append(1000 * (time.time() - ev.data["t0"]))
                    if len(hops) >= want["n"] >= 0:
                        arrived.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await cluster.follow_events()
            print(json.dumps({"ready": True}), flush=True)
            stdin = trio.wrap_file(sys.stdin)
            async for line in stdin:
                cmd = json.loads(line)
                if cmd["cmd"] == "exit":
                    break
                want["n"] = cmd["n"]
                if len(hops) < cmd["n"]:
                    with trio.move_on_after(DRAIN_SECONDS):
                        await arrived.wait()
                got, hops[:] = list(hops), []
                arrived = trio.Event()
                want["n"] = -1
                print(json.dumps({"hops": got}), flush=True)
            nursery.cancel_scope.cancel()
        await bus.close()


class Child:
    def __init__(self, role: str, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hop", "--role", role, "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        self.ps = psutil.Process(self.process.pid)
        self.read()  # ready

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(cmd) + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a bench.hop process exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def close(self) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def nats_process() -> psutil.Process:
    return next(p for p in psutil.Process().children() if "nats-server" in p.name())


def measure(rates: tuple[int, ...], seconds: float) -> dict[str, Any]:
    from web.workers import embedded_nats

    steps = []
    with tempfile.TemporaryDirectory(prefix="curbe-hop-") as data, embedded_nats(data) as url:
        nats = nats_process()
        sub = Child("sub", url)
        pub = Child("pub", url)
        try:
            pub.call(cmd="go", rate=50, seconds=0.5)  # warm-up: stream, consumer, imports
            sub.call(cmd="report", n=25)
            for rate in rates:
                d0 = pub.cpu()
                dry = pub.call(cmd="go", rate=rate, seconds=seconds, dry=True)["sent"]
                loop_ms = 1000 * (pub.cpu() - d0) / max(dry, 1)
                c0 = (pub.cpu(), sub.cpu(), sum(nats.cpu_times()[:2]))
                sent = pub.call(cmd="go", rate=rate, seconds=seconds)["sent"]
                hops = sub.call(cmd="report", n=sent)["hops"]
                c1 = (pub.cpu(), sub.cpu(), sum(nats.cpu_times()[:2]))
                per = [1000 * (b - a) / max(len(hops), 1) for a, b in zip(c0, c1, strict=True)]
                steps.append(
                    {
                        "offered": rate,
                        "sent": sent,
                        "lost": sent - len(hops),
                        "hop_ms": percentiles(hops),
                        "cpu_ms": {"publisher": per[0], "follower": per[1], "nats": per[2]},
                        # the publisher's loop alone (making events at that rate, no publish)
                        "publisher_loop_ms": loop_ms,
                        # what the bus costs per event: publishing, delivering, NATS
                        "bus_cpu_ms": max(per[0] - loop_ms, 0.0) + per[1] + per[2],
                    }
                )
        finally:
            pub.close()
            sub.close()
    return {"steps": steps}


def render(result: dict[str, Any]) -> str:
    lines = [
        "the bus alone (bench/hop.py): Cluster.publish -> NATS JetStream -> another process's "
        "broker",
        "",
        "| offered /s | lost | hop p50 ms | p99 ms | p99.9 ms | CPU ms per event: publisher "
        "(its loop alone), follower, NATS | the bus's CPU ms per event |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["steps"]:
        h, c = s["hop_ms"], s["cpu_ms"]
        lines.append(
            f"| {s['offered']} | {s['lost']} | {h['p50']:.2f} | {h['p99']:.2f} | "
            f"{h['p999']:.2f} | {c['publisher']:.3f} ({s['publisher_loop_ms']:.3f}), "
            f"{c['follower']:.3f}, {c['nats']:.3f} | {s['bus_cpu_ms']:.3f} |"
        )
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hop", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one small rate (CI)")
    parser.add_argument("--rates", nargs="+", type=int, help="offered events/s")
    parser.add_argument("--seconds", type=float, help="seconds per rate")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench" / "hop.json"))
    parser.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "pub":
        trio.run(publisher, args.url)
        return 0
    if args.role == "sub":
        trio.run(follower, args.url)
        return 0
    rates = tuple(args.rates or (QUICK_RATES if args.quick else RATES))
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    result = measure(rates, seconds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(render(result))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
