"""``bench/``: the quick mode runs every scenario against every target (real server processes,
real client worker processes) and its JSON holds every figure; the report's pure parts.

No figure is asserted as a time: what is asserted is what must hold at any speed (nothing lost,
doubled or out of order, every widget back after the restart, every probe acknowledged).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from bench.profile import top
from bench.report import percentiles, render, summarise
from bench.run import QUICK, TARGETS, takes_frames
from tests.support import Server

ROOT = Path(__file__).resolve().parent.parent


def test_percentiles_take_the_nearest_rank() -> None:
    values = [float(x) for x in range(1, 1001)]
    p = percentiles(values)
    assert (p["n"], p["p50"], p["p99"], p["p999"], p["max"]) == (1000, 500.0, 990.0, 999.0, 1000.0)
    assert percentiles([]) == {"n": 0, "p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}


def test_summarise_replaces_only_latency_lists() -> None:
    raw = {"delivery": [{"lat": [3.0, 1.0, 2.0], "sent": [1, 2]}], "rehydration": {"ack_lat": []}}
    out = summarise(raw)
    assert out["delivery"][0]["lat"]["p50"] == 2.0
    assert out["delivery"][0]["sent"] == [1, 2]
    assert out["rehydration"]["ack_lat"]["n"] == 0


@pytest.mark.slow
def test_quick_bench_runs_every_scenario_on_every_target(postgres_url: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    database = f"curbe_bench_{secrets.token_hex(4)}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--database",
            database,
            "--out",
            str(out),
            "--profile",
            str(tmp_path / "profile"),
        ],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert set(results["targets"]) == {t.name for t in TARGETS}
    for name, target in results["targets"].items():
        assert target["idle"]["widgets"] == QUICK.widgets, name
        assert target["idle"]["rss_per_widget"] > 0, name
        # a 1.5 s window may hold no heartbeat at all: only that the figure is there
        assert isinstance(target["idle"]["requests_per_widget_minute"], float), name
        [beat] = target["heartbeat"]
        assert beat["ok"] > 0 and beat["failed"] == 0, (name, beat)
        assert beat["lat"]["n"] == beat["ok"], name
        [delivery] = target["delivery"]
        assert delivery["sent"] > 0, name
        assert delivery["client_cpu_ms"] >= 0, name  # the bench's own share of the machine
        assert (delivery["lost"], delivery["duplicates"], delivery["order"]) == (0, 0, 0), name
        assert delivery["unacked"] == 0, name
        # every message reaches every agent's inbox socket, each with its latency
        assert delivery["lat"]["n"] == delivery["sent"] * QUICK.agents, name
        storm = target["storm"]
        assert storm["back"] == storm["widgets"] == QUICK.storm_widgets, (name, storm)
        assert (storm["gaps"], storm["duplicates"], storm["behind"]) == (0, 0, 0), name
    for name in ("curbe", "curbe-w2"):
        ours = results["targets"][name]
        assert ours["rehydration"]["unacked"] == 0, name
        assert ours["rehydration"]["lat"]["n"] == QUICK.history, name
        assert ours["widget_js"]["status"] == 200 and ours["widget_js"]["raw"] > 0, name
    # the workers axis: two workers' events crossed the bus, which was timed from /metrics
    [two] = results["targets"]["curbe-w2"]["delivery"]
    assert two["bus_in"] > 0 and two["bus_out"] > 0, two
    assert two["bus_hop_p99_ms"] > 0 and two["bus_lag_p99_ms"] >= two["bus_hop_p99_ms"], two
    assert isinstance(two["bus_cpu_ms"], float), two  # NATS's CPU (a second may show none)
    [one] = results["targets"]["curbe"]["delivery"]
    assert "bus_in" not in one  # one worker: no bus
    # typing beside the messages: sent, coalesced, heard by every inbox (issue 17)
    for name in ("curbe", "curbe-w2"):
        [typed] = results["targets"][name]["delivery"]
        assert typed["typing_sent"] > 0 and 0 < typed["typing_in"] <= 1, (name, typed)
        assert 0 < typed["reads_in"] <= 1, (name, typed)  # the agents' reads: "Seen"
        # coalesced per tenant: never more frames than the events they bring
        assert 0 < typed["hint_frames_in"] <= typed["typing_in"] + typed["reads_in"], typed
    # the table names every target and the run's command, with the 2 workers / 1 ratio
    assert "| figure | Curbe Chat | Curbe Chat, 2 workers |" in done.stdout
    assert "| 2 workers / 1 |" in done.stdout
    assert "Targets (issue 14):" in done.stdout
    assert "--database " + database in done.stdout
    assert render(results) in done.stdout
    # py-spy sampled the product (only) during each measured step: the one process, and both
    # workers of curbe-w2 (their files prefixed)
    steps = sorted(p.name for p in (tmp_path / "profile").iterdir())
    assert steps == sorted(
        f"{prefix}{step}{suffix}"
        for prefix in ("", "curbe-w2-")
        for step in ("connect", "idle", "connect-storm", "heartbeat-40", "delivery-40", "storm")
        for suffix in (".txt", ".top.txt")
    )
    assert "samples" in (tmp_path / "profile" / "delivery-40.top.txt").read_text()
    workers = (tmp_path / "profile" / "curbe-w2-delivery-40.txt").read_text()
    assert "web.cli" in workers or "curbe" in workers  # the workers' stacks, not the parent's only


def test_profile_top_counts_inclusive_and_self_samples() -> None:
    collapsed = "\n".join(
        [
            "main (a.py:1);serve (b.py:2);commit (c.py:3) 6",
            "main (a.py:1);serve (b.py:9);send (d.py:4) 3",
            "main (a.py:1) 1",
        ]
    )
    out = top(collapsed, n=3)
    assert out.startswith("10 samples")
    inclusive = out.split("inclusive:")[1].split("self:")[0]
    assert "100.0%  main (a.py)" in inclusive  # line numbers folded: one frame per function
    assert " 90.0%  serve (b.py)" in inclusive
    assert " 60.0%  commit (c.py)" in out.split("self:")[1]


async def test_the_frame_probe_asks_the_server_under_test(server: Server) -> None:
    """The harness learns from the server's own OpenAPI document whether widgets send their
    heartbeats on the socket, and typing frames, so a bench of an older checkout drives it as
    its widget.js did."""
    assert await takes_frames(server.base_url) == {
        "socket_heartbeat": True,
        "typing": True,
        "read": True,
    }

    async def older(stream: trio.SocketStream) -> None:  # a server from before heartbeat frames
        await stream.receive_some(65536)
        body = json.dumps({"components": {"schemas": {"PongFrame": {}}}}).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        await stream.send_all(head.encode() + body)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(
            functools.partial(trio.serve_tcp, older, 0, host="127.0.0.1")
        )
        port = listener.socket.getsockname()[1]
        assert await takes_frames(f"http://127.0.0.1:{port}") == {
            "socket_heartbeat": False,
            "typing": False,
            "read": False,
        }
        nursery.cancel_scope.cancel()


@pytest.mark.slow
def test_the_bus_alone_delivers_every_event_once_and_prints_its_figures(tmp_path: Path) -> None:
    """``python -m bench.hop --quick``: two processes and a NATS server of their own, every event
    published reaches the follower, and the table shows each rate's hop and CPU."""
    out = tmp_path / "hop.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.hop", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    [step] = json.loads(out.read_text())["steps"]
    assert step["sent"] > 0 and step["lost"] == 0, step
    assert step["hop_ms"]["n"] == step["sent"], step
    assert set(step["cpu_ms"]) == {"publisher", "follower", "nats"}, step
    assert step["bus_cpu_ms"] >= step["cpu_ms"]["follower"], step
    assert "| offered /s | lost | hop p50 ms |" in done.stdout
    assert "the bus's CPU ms per event |" in done.stdout
