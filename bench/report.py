"""The bench's figures: raw worker answers summarised, then one table with ratios and targets.

:func:`summarise` turns every latency list of a target's raw result into percentiles (the raw
lists are too large to keep); :func:`render` prints the markdown table that
``docs/benchmarks.md`` keeps: one row per figure, one column per target, then ``ours / quart``
and ``ours / trio`` ratios (and ``2 workers / 1`` when the run has both), then the issues'
targets, each met or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

OURS, OURS_W2, QUART, TRIO = "curbe", "curbe-w2", "quart", "trio"
COLUMNS = ["curbe", "curbe-w2", "quart", "quart+pg", "trio", "websockets"]

# What the issue asks (ratios to baselines measured in the same run, or absolute bounds)
CPU_PER_MESSAGE_VS_QUART = 1.5
DELIVERY_RATE = 1000
DELIVERY_P99_MS = 50.0
REQUESTS_PER_WIDGET_MINUTE = 1.0
HEARTBEAT_CPU_VS_QUART = 1.2
HEARTBEAT_RATE = 500
HEARTBEAT_P99_MS = 50.0
MEMORY_VS_QUART = 1.2
CONNECT_VS_QUART = 0.8
STORM_WIDGETS = 20_000
STORM_SECONDS = 30.0
REHYDRATION_P99_MS = 10.0
WIDGET_JS_GZIP = 20_000
# issue 14: the workers axis
SCALING_VS_ONE_WORKER = 1.5  # highest msg/s held with p99 <= DELIVERY_P99_MS, 2 workers / 1
BUS_RATE = 500  # offered msg/s at which the bus's cost is judged (both comfortable there)
BUS_CPU_SHARE = 0.20
BUS_LAG_P99_MS = 5.0


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p99, p99.9 and max of ``values`` (nearest rank); zeros when empty."""
    if not values:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50": rank(0.50),
        "p99": rank(0.99),
        "p999": rank(0.999),
        "max": ordered[-1],
    }


def summarise(raw: Any) -> Any:
    """``raw`` with every ``lat``/``ack_lat`` list replaced by its :func:`percentiles`."""
    if isinstance(raw, dict):
        return {
            k: percentiles(v) if k in ("lat", "ack_lat") and isinstance(v, list) else summarise(v)
            for k, v in raw.items()
        }
    if isinstance(raw, list):
        return [summarise(x) for x in raw]
    return raw


def at(rows: list[dict[str, Any]], offered: int) -> dict[str, Any] | None:
    """The row measured at ``offered`` (per second); None when the plan did not run it."""
    return next((r for r in rows if r.get("offered") == offered), None)


@attrs.frozen
class Row:
    figure: str
    value: Callable[[dict[str, Any]], float | None]
    fmt: str = "{:,.1f}"
    ratio: bool = True  # a ratio column makes sense for this figure


def _get(*path: Any) -> Callable[[dict[str, Any]], float | None]:
    def read(target: dict[str, Any]) -> float | None:
        node: Any = target
        for key in path:
            if isinstance(key, int) and isinstance(node, list):
                node = at(node, key)
            elif isinstance(node, dict):
                node = node.get(key)
            else:
                return None
            if node is None:
                return None
        return float(node) if isinstance(node, int | float) else None

    return read


def rows_for(plan: dict[str, Any]) -> list[Row]:
    rows = [
        Row("widgets open (idle)", _get("idle", "widgets"), "{:,.0f}", False),
        Row("connect rate, widgets/s (heartbeat+config+socket)", _get("connect", "per_second")),
        Row("connect p99, ms", _get("connect", "lat", "p99")),
        Row("server RSS per idle widget, KiB", lambda t: _kib(_get("idle", "rss_per_widget")(t))),
        Row("idle server CPU, %", _get("idle", "cpu_percent")),
        Row(
            "HTTP requests per widget-minute", _get("idle", "requests_per_widget_minute"), "{:.2f}"
        ),
        Row(
            "widget bytes per minute (both ways)",
            _get("idle", "bytes_per_widget_minute"),
            "{:,.0f}",
        ),
    ]
    for rate in plan["heartbeat_rates"]:
        rows += [
            Row(f"heartbeats at {rate}/s: achieved/s", _get("heartbeat", rate, "achieved")),
            Row(f"heartbeats at {rate}/s: p50 ms", _get("heartbeat", rate, "lat", "p50")),
            Row(f"heartbeats at {rate}/s: p99 ms", _get("heartbeat", rate, "lat", "p99")),
            Row(f"heartbeats at {rate}/s: server CPU ms each", _get("heartbeat", rate, "cpu_ms"), "{:.3f}"),
            Row(f"heartbeats at {rate}/s: PostgreSQL CPU ms each", _get("heartbeat", rate, "pg_cpu_ms"), "{:.3f}", False),
        ]  # fmt: skip
    for rate in plan["rates"]:
        rows += [
            Row(f"delivery at {rate}/s: achieved msg/s", _get("delivery", rate, "achieved")),
            Row(f"delivery at {rate}/s: p50 ms send→inbox", _get("delivery", rate, "lat", "p50")),
            Row(f"delivery at {rate}/s: p99 ms", _get("delivery", rate, "lat", "p99")),
            Row(f"delivery at {rate}/s: p99.9 ms", _get("delivery", rate, "lat", "p999")),
            Row(f"delivery at {rate}/s: ack p99 ms", _get("delivery", rate, "ack_lat", "p99")),
            Row(f"delivery at {rate}/s: lost / duplicates / order", _faults(rate), "{:,.0f}", False),
            Row(f"delivery at {rate}/s: server CPU ms per message", _get("delivery", rate, "cpu_ms"), "{:.3f}"),
            Row(f"delivery at {rate}/s: typing events per message per inbox (beside it)", _get("delivery", rate, "typing_in"), "{:.2f}", False),
            Row(f"delivery at {rate}/s: typing frames sent per message (each with a read frame)", _get("delivery", rate, "typing_per_message"), "{:.2f}", False),
            Row(f"delivery at {rate}/s: seen events per message per inbox (beside it)", _get("delivery", rate, "reads_in"), "{:.2f}", False),
            Row(f"delivery at {rate}/s: frames that brought them per message per inbox", _get("delivery", rate, "hint_frames_in"), "{:.2f}", False),
            Row(f"delivery at {rate}/s: PostgreSQL CPU ms per message", _get("delivery", rate, "pg_cpu_ms"), "{:.3f}", False),
            Row(f"delivery at {rate}/s: client workers' CPU ms per message", _get("delivery", rate, "client_cpu_ms"), "{:.3f}", False),
            Row(f"delivery at {rate}/s: NATS CPU ms per message (in the server's)", _get("delivery", rate, "bus_cpu_ms"), "{:.3f}", False),
            Row(f"delivery at {rate}/s: events in over the bus per message", _per_message(rate, "bus_in"), "{:.2f}", False),
            Row(f"delivery at {rate}/s: bus hop p99 ms, publish → other process (bucket bound)", _get("delivery", rate, "bus_hop_p99_ms"), "{:,.1f}", False),
            Row(f"delivery at {rate}/s: bus lag p99 ms, commit → other process (bucket bound)", _get("delivery", rate, "bus_lag_p99_ms"), "{:,.1f}", False),
            Row(f"delivery at {rate}/s: commands forwarded per message", _per_message(rate, "forwarded"), "{:.2f}", False),
        ]  # fmt: skip
    rows.append(Row("highest msg/s held with p99 ≤ 50 ms, nothing lost", sustained, "{:,.0f}"))
    rows += [
        Row("restart: widgets", _get("storm", "widgets"), "{:,.0f}", False),
        Row("restart: widgets back", _get("storm", "back"), "{:,.0f}", False),
        Row("restart: seconds until all back", _get("storm", "seconds")),
        Row("restart: resume gaps + duplicates", _storm_faults, "{:,.0f}", False),
        Row("first command to a cold conversation: p50 ms", _get("rehydration", "lat", "p50")),
        Row("first command to a cold conversation: p99 ms", _get("rehydration", "lat", "p99")),
        Row("widget.js gzip bytes", _widget_js_gzip, "{:,.0f}", False),
    ]
    return rows


def _per_message(rate: int, key: str) -> Callable[[dict[str, Any]], float | None]:
    def read(t: dict[str, Any]) -> float | None:
        row = at(t.get("delivery", []), rate)
        if row is None or key not in row or not row.get("sent"):
            return None
        return float(row[key]) / float(row["sent"])

    return read


def sustained(t: dict[str, Any]) -> float | None:
    """The highest delivered msg/s among the offered rates that were held: achieved at least
    95% of the offered rate with p99 send→inbox ≤ 50 ms and nothing lost, doubled or out of
    order. None when no rate was held."""
    held = [
        float(row["achieved"])
        for row in t.get("delivery", [])
        if row["achieved"] >= 0.95 * row["offered"]
        and row["lat"]["p99"] <= DELIVERY_P99_MS
        and row["lost"] + row["duplicates"] + row["order"] + row["unacked"] == 0
    ]
    return max(held) if held else None


def _kib(value: float | None) -> float | None:
    return None if value is None else value / 1024


def _faults(rate: int) -> Callable[[dict[str, Any]], float | None]:
    def read(t: dict[str, Any]) -> float | None:
        row = at(t.get("delivery", []), rate)
        if row is None:
            return None
        return float(row["lost"] + row["duplicates"] + row["order"] + row["unacked"])

    return read


def _storm_faults(t: dict[str, Any]) -> float | None:
    storm = t.get("storm")
    return None if storm is None else float(storm["gaps"] + storm["duplicates"] + storm["behind"])


def _widget_js_gzip(t: dict[str, Any]) -> float | None:
    js = t.get("widget_js")
    if not js:
        return None
    return float(js["wire"] if js["wire"] < js["raw"] else js["gzip9"])


@attrs.frozen
class Verdict:
    what: str
    met: bool | None  # None: not measured in this run
    detail: str


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    """The issue's targets, each judged on this run's figures."""
    targets = results["targets"]
    ours, quart = targets.get(OURS), targets.get(QUART)
    out: list[Verdict] = []

    def ratio_check(what: str, a: float | None, b: float | None, bound: float, low: bool) -> None:
        if a is None or b is None or b == 0:
            out.append(Verdict(what, None, "not measured"))
            return
        r = a / b
        out.append(
            Verdict(what, r <= bound if low else r >= bound, f"{a:.3f} / {b:.3f} = {r:.2f}×")
        )

    def bound_check(what: str, a: float | None, bound: float, extra: bool = True) -> None:
        if a is None:
            out.append(Verdict(what, None, "not measured"))
            return
        out.append(Verdict(what, a <= bound and extra, f"{a:,.1f}"))

    if ours is None:
        return [Verdict("Curbe Chat measured", None, "not in this run")]
    rate = DELIVERY_RATE
    ratio_check(
        f"CPU per persisted delivered message ≤ {CPU_PER_MESSAGE_VS_QUART}× quart (at {rate}/s)",
        _get("delivery", rate, "cpu_ms")(ours),
        _get("delivery", rate, "cpu_ms")(quart or {}),
        CPU_PER_MESSAGE_VS_QUART,
        True,
    )
    faults = _faults(rate)(ours)
    bound_check(
        f"p99 send→inbox ≤ {DELIVERY_P99_MS:.0f} ms at {rate}/s, nothing lost, order kept",
        _get("delivery", rate, "lat", "p99")(ours),
        DELIVERY_P99_MS,
        faults == 0,
    )
    bound_check(
        f"≤ {REQUESTS_PER_WIDGET_MINUTE:.0f} HTTP request per widget-minute (socket open)",
        _get("idle", "requests_per_widget_minute")(ours),
        REQUESTS_PER_WIDGET_MINUTE,
    )
    hb = HEARTBEAT_RATE
    ratio_check(
        f"heartbeat CPU ≤ {HEARTBEAT_CPU_VS_QUART}× quart (at {hb}/s)",
        _get("heartbeat", hb, "cpu_ms")(ours),
        _get("heartbeat", hb, "cpu_ms")(quart or {}),
        HEARTBEAT_CPU_VS_QUART,
        True,
    )
    bound_check(
        f"heartbeat p99 ≤ {HEARTBEAT_P99_MS:.0f} ms at {hb}/s",
        _get("heartbeat", hb, "lat", "p99")(ours),
        HEARTBEAT_P99_MS,
    )
    ratio_check(
        f"memory per idle widget ≤ {MEMORY_VS_QUART}× quart",
        _kib(_get("idle", "rss_per_widget")(ours)),
        _kib(_get("idle", "rss_per_widget")(quart or {})),
        MEMORY_VS_QUART,
        True,
    )
    ratio_check(
        f"connect rate ≥ {CONNECT_VS_QUART}× quart",
        _get("connect", "per_second")(ours),
        _get("connect", "per_second")(quart or {}),
        CONNECT_VS_QUART,
        False,
    )
    storm = ours.get("storm") or {}
    all_back = storm.get("back") == storm.get("widgets") and (storm.get("widgets") or 0) > 0
    clean = (_storm_faults(ours) or 0) == 0
    widgets = storm.get("widgets") or 0
    what = f"{STORM_WIDGETS:,} widgets back ≤ {STORM_SECONDS:.0f} s after a restart, none missed"
    if widgets < STORM_WIDGETS:
        what += f" (this run: {widgets:,} widgets)"
    bound_check(what, _get("storm", "seconds")(ours), STORM_SECONDS, all_back and clean)
    bound_check(
        f"cold rehydration p99 ≤ {REHYDRATION_P99_MS:.0f} ms",
        _get("rehydration", "lat", "p99")(ours),
        REHYDRATION_P99_MS,
        (ours.get("rehydration") or {}).get("unacked", 1) == 0,
    )
    bound_check(f"widget.js ≤ {WIDGET_JS_GZIP:,} bytes gzip", _widget_js_gzip(ours), WIDGET_JS_GZIP)
    return out


def worker_verdicts(results: dict[str, Any]) -> list[Verdict]:
    """Issue 14's targets: two workers against one, in the same run."""
    targets = results["targets"]
    one, two = targets.get(OURS), targets.get(OURS_W2)
    if one is None or two is None:
        return [Verdict("1 and 2 workers measured", None, "not both in this run")]
    out: list[Verdict] = []
    a, b = sustained(two), sustained(one)
    what = (
        f"highest msg/s held (p99 ≤ {DELIVERY_P99_MS:.0f} ms, nothing lost) with 2 workers "
        f"≥ {SCALING_VS_ONE_WORKER}× 1 worker's"
    )
    if a is None or b is None:

        def shown(x: float | None) -> str:
            return "no rate held" if x is None else f"{x:,.0f}"

        met = None if a is None and b is None else a is not None
        out.append(Verdict(what, met, f"{shown(a)} / {shown(b)}"))
    else:
        out.append(
            Verdict(what, a / b >= SCALING_VS_ONE_WORKER, f"{a:,.0f} / {b:,.0f} = {a / b:.2f}×")
        )
    rate = BUS_RATE
    c2, c1 = _get("delivery", rate, "cpu_ms")(two), _get("delivery", rate, "cpu_ms")(one)
    what = (
        f"the bus's cost ≤ {BUS_CPU_SHARE:.0%} of the server CPU per message at {rate}/s "
        "(2 workers' CPU per message, NATS included, minus 1 worker's, over the former: an upper "
        "bound, as it counts the leases and forwarding too)"
    )
    if c2 is None or c1 is None or c2 == 0:
        out.append(Verdict(what, None, "not measured"))
    else:
        share = (c2 - c1) / c2
        out.append(
            Verdict(what, share <= BUS_CPU_SHARE, f"({c2:.3f} − {c1:.3f}) / {c2:.3f} = {share:.0%}")
        )
    lag = _get("delivery", rate, "bus_hop_p99_ms")(two)
    what = f"bus hop p99 ≤ {BUS_LAG_P99_MS:.0f} ms at {rate}/s (curbe_bus_hop_seconds)"
    if lag is None:
        out.append(Verdict(what, None, "not measured"))
    else:
        out.append(Verdict(what, lag <= BUS_LAG_P99_MS, f"≤ {lag:,.1f} ms"))
    memory = _kib(_get("idle", "rss_per_widget")(two))
    out.append(
        Verdict(
            "memory per idle widget with the bus on (reported)",
            None,
            "not measured"
            if memory is None
            else f"{memory:,.1f} KiB (1 worker: "
            f"{_kib(_get('idle', 'rss_per_widget')(one)) or 0:,.1f} KiB)",
        )
    )
    return out


def _cell(row: Row, target: dict[str, Any] | None) -> str:
    if target is None:
        return ""
    value = row.value(target)
    return "–" if value is None else row.fmt.format(value)


def _ratio(row: Row, ours: dict[str, Any] | None, base: dict[str, Any] | None) -> str:
    if not row.ratio or ours is None or base is None:
        return ""
    a, b = row.value(ours), row.value(base)
    if a is None or b is None or b == 0:
        return ""
    return f"{a / b:.2f}×"


def render(results: dict[str, Any]) -> str:
    """The markdown table of one run: figures, ratios, then the targets met or not."""
    targets = results["targets"]
    shown = [c for c in COLUMNS if c in targets]
    scaling = int(OURS in targets and OURS_W2 in targets)
    labels = [targets[c].get("label", c) for c in shown]
    m = results["machine"]
    lines = [
        f"Commit {m['commit']} · {m['when']} · {m['cpus']} CPUs ({m['cpu']}) · "
        f"{m['memory_gib']} GiB · Python {m['python']}"
        + (" · QUICK (tiny numbers: the figures mean nothing)" if results.get("quick") else ""),
        f"Command: `{results['command']}`",
        "",
        "| figure | "
        + " | ".join(labels)
        + " | ours / quart | ours / trio |"
        + (" 2 workers / 1 |" if scaling else ""),
        "|---|" + "---:|" * (len(shown) + 2 + scaling),
    ]
    ours, quart, trio = targets.get(OURS), targets.get(QUART), targets.get(TRIO)
    for row in rows_for(results["plan"]):
        cells = [_cell(row, targets[c]) for c in shown]
        if all(c in ("", "–") for c in cells):
            continue
        lines.append(
            f"| {row.figure} | "
            + " | ".join(cells)
            + f" | {_ratio(row, ours, quart)} | {_ratio(row, ours, trio)} |"
            + (f" {_ratio(row, targets[OURS_W2], ours)} |" if scaling else "")
        )
    for title, judged in (("13", verdicts(results)), ("14", worker_verdicts(results))):
        lines += ["", f"Targets (issue {title}):", ""]
        for v in judged:
            mark = {True: "✓", False: "✗", None: "·"}[v.met]
            lines.append(f"- {mark} {v.what}: {v.detail}")
    errors = {name: t.get("client_errors") for name, t in targets.items() if t.get("client_errors")}
    if errors:
        lines += ["", "Client-side errors seen (counted, not hidden):", ""]
        for name, counts in errors.items():
            for what, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8]:
                lines.append(f"- {name}: {n} × {what}")
    return "\n".join(lines)
