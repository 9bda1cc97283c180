"""``make chaos``: run the fault scenarios, print their figures, write them as JSON, and exit 1
if any invariant broke. ``--quick`` (CI, a few minutes) runs every scenario with small numbers;
the full run is what ``docs/reliability.md`` reports.

Loopback only: every server, proxy and client here listens on or connects to 127.0.0.1, and the
databases are fresh ones (``curbe_chaos_*``) on ``DATABASE_URL``'s server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from chaos import database, drops, frames, fuzz, kills

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class Plan:
    kills: int
    kill_visitors: int
    kill_window: tuple[float, float]  # seconds of load between a start and the next kill
    drops: int
    drop_pause: float  # the talker's pause between two messages
    terminations: int  # pg_terminate_backend rounds
    outage_seconds: float  # the database unreachable, each way (refused, then silent)
    db_visitors: int
    requests: int  # generated HTTP requests
    frame_runs: int  # runs of the socket state machine
    frame_steps: int  # frames per run
    resume_frame: bool = False  # drops: resume with a frame after ready (the older way)
    operations: tuple[str, ...] = ()  # requests: only these operationIds (none: all)


FULL = Plan(
    kills=100,
    kill_visitors=8,
    kill_window=(0.3, 1.5),
    drops=1000,
    drop_pause=0.01,
    terminations=5,
    outage_seconds=5.0,
    db_visitors=6,
    requests=100_000,
    frame_runs=1000,
    frame_steps=20,
)
QUICK = Plan(
    kills=3,
    kill_visitors=3,
    kill_window=(0.2, 0.6),
    drops=60,
    drop_pause=0.01,
    terminations=2,
    outage_seconds=2.0,
    db_visitors=3,
    requests=1500,
    frame_runs=60,
    frame_steps=10,
)

Scenario = Callable[[Plan, str, Path], Awaitable[dict[str, Any]]]


async def _kills(plan: Plan, url: str, logs: Path) -> dict[str, Any]:
    return await kills.run(
        url, logs, kills=plan.kills, visitors=plan.kill_visitors, window=plan.kill_window
    )


async def _database(plan: Plan, url: str, logs: Path) -> dict[str, Any]:
    return await database.run(
        url,
        logs,
        terminations=plan.terminations,
        outage=plan.outage_seconds,
        visitors=plan.db_visitors,
    )


async def _drops(plan: Plan, url: str, logs: Path) -> dict[str, Any]:
    return await drops.run(
        url, logs, drops=plan.drops, pause=plan.drop_pause, frame=plan.resume_frame
    )


async def _requests(plan: Plan, url: str, logs: Path) -> dict[str, Any]:
    return await fuzz.run(url, logs, budget=plan.requests, operations=plan.operations)


async def _frames(plan: Plan, url: str, logs: Path) -> dict[str, Any]:
    return await frames.run(url, logs, runs=plan.frame_runs, steps=plan.frame_steps)


SCENARIOS: dict[str, tuple[Scenario, Callable[[dict[str, Any]], list[str]]]] = {
    "kills": (_kills, kills.holds),
    "database": (_database, database.holds),
    "drops": (_drops, drops.holds),
    "requests": (_requests, fuzz.holds),
    "frames": (_frames, frames.holds),
}


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    if args.kills is not None:
        plan = attrs.evolve(plan, kills=args.kills)
    if args.drops is not None:
        plan = attrs.evolve(plan, drops=args.drops)
    if args.resume_frame:
        plan = attrs.evolve(plan, resume_frame=True)
    if args.frame_runs is not None:
        plan = attrs.evolve(plan, frame_runs=args.frame_runs)
    if args.requests is not None:
        plan = attrs.evolve(plan, requests=args.requests)
    if args.operation:
        plan = attrs.evolve(plan, operations=tuple(args.operation))
    names = args.only or list(SCENARIOS)
    out: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "commit": commit(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "plan": attrs.asdict(plan),
        "scenarios": {},
        "broken": {},
    }
    for name in names:
        scenario, holds = SCENARIOS[name]
        print(f"chaos: {name} …", file=sys.stderr, flush=True)
        figures = await scenario(plan, args.database_url, Path(args.logs))
        out["scenarios"][name] = figures
        broken = holds(figures)
        if broken:
            out["broken"][name] = broken
        print(render_one(name, figures, broken), flush=True)
    return out


def render_one(name: str, figures: dict[str, Any], broken: list[str]) -> str:
    lines = [f"\n## {name}: {'HELD' if not broken else 'BROKEN'}"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in figures.items()]
    lines += [f"  ✗ {b}" for b in broken]
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small numbers (CI)")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--kills", type=int, help="override the plan's number of kills")
    parser.add_argument("--drops", type=int, help="override the plan's number of socket drops")
    parser.add_argument(
        "--resume-frame",
        action="store_true",
        help="drops: resume with a frame after ready instead of in the address (to compare)",
    )
    parser.add_argument("--frame-runs", type=int, help="override the runs of the frame machine")
    parser.add_argument("--requests", type=int, help="override the number of generated requests")
    parser.add_argument(
        "--operation",
        action="append",
        metavar="OPERATION_ID",
        help="requests: generate for this operation only (repeatable; a finding's neighbourhood)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server the scenarios may create databases on",
    )
    parser.add_argument("--out", default="artifacts/chaos/chaos.json")
    parser.add_argument("--logs", default="artifacts/chaos/logs", help="the servers' logs")
    args = parser.parse_args(argv)
    out = trio.run(main, args)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {path}")
    if out["broken"]:
        print(f"BROKEN: {', '.join(out['broken'])}")
        return 1
    print("every scenario held")
    return 0
