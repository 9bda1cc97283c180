"""Process metrics in Prometheus form (``prometheus_client``), read at ``GET /metrics``.

Counters and histograms are updated where things happen (broker, conversation actor,
supervisor, sockets, heartbeat); gauges of live things (actors by kind, sockets by side) are set
when the endpoint is scraped. One registry per process; tests compare values before and after.

Under ``serve --workers N`` a scrape reaches whichever worker the kernel hands the connection
to, so one worker's figures would be a random Nth of the truth. The parent then gives its
workers ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, as under gunicorn):
every worker writes its values to memory-mapped files in that folder, and :func:`exposition`
answers the sum over the workers (counters and histograms of workers that died included, so a
counter never goes back; gauges of live workers only), whichever worker is asked. Gauges set at
scrape time are then refreshed by each worker every second (:func:`refresh`), and increments
are held in memory and written every second (:class:`_Buffered`): a scrape sees a sibling
worker's counters as of its last second.

Delivery latency is measured from an event's ``at`` (stamped when the state machine made it,
just before its commit) to the moment its frame is written to a socket, so it is commit time plus
fan-out plus the socket write.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

M = TypeVar("M", bound=MetricWrapperBase)

MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process is a worker of ``serve --workers`` writing its metrics to a folder
    shared with its siblings (read by prometheus_client when it is imported)."""
    return bool(os.environ.get(MULTIPROCESS_FOLDER))


class _Buffered:
    """A metric value of multiprocess mode whose increments are added up in memory and written
    to its memory-mapped file by :func:`flush` (every second, and before this worker answers a
    scrape), rather than on every increment: a write there takes a lock and packs the value into
    the file, and the delivery path increments a dozen values per message (5.8% of a worker's
    samples at 750 msg/s, against 1.7% for the single process). A ``set`` (gauges) writes at
    once. A worker that dies loses at most its last second of increments."""

    _multiprocess = True
    _inner_class: ClassVar[Any] = None
    _dirty: ClassVar[list[_Buffered]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._inner = self._inner_class(*args, **kwargs)
        self._pending = 0.0
        self._queued = False

    def inc(self, amount: float) -> None:
        self._pending += amount
        if not self._queued:
            self._queued = True
            _Buffered._dirty.append(self)

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._write()
        self._inner.set(value, timestamp)

    def set_exemplar(self, exemplar: Any) -> None:
        self._inner.set_exemplar(exemplar)

    def get(self) -> float:
        self._write()
        return float(self._inner.get())

    def get_exemplar(self) -> Any:
        return self._inner.get_exemplar()

    def _write(self) -> None:
        if self._pending:
            self._inner.inc(self._pending)
            self._pending = 0.0


def flush() -> None:
    """Write the increments held in memory to this worker's metric files (multiprocess mode)."""
    dirty, _Buffered._dirty = _Buffered._dirty, []
    for value in dirty:
        value._queued = False
        value._write()


if multiprocess():
    from prometheus_client import values as _values

    _Buffered._inner_class = _values.ValueClass
    _values.ValueClass = _Buffered

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

EVENTS_PUBLISHED = Counter(
    "curbe_events_published", "Realtime events published, by type", ["type"], registry=REGISTRY
)
EVENTS_DELIVERED = Counter(
    "curbe_events_delivered", "Event deliveries queued to subscribers", registry=REGISTRY
)
SUBSCRIBERS_DROPPED = Counter(
    "curbe_subscribers_dropped", "Subscribers dropped for falling behind", registry=REGISTRY
)
MESSAGES_STORED = Counter(
    "curbe_messages_stored", "Chat messages committed, by sender", ["sender"], registry=REGISTRY
)
COMMITS = Counter("curbe_commits", "Conversation commits (batches)", registry=REGISTRY)
COMMIT_SECONDS = Histogram(
    "curbe_commit_seconds",
    "Time to commit one batch of conversation transitions to PostgreSQL",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "curbe_delivery_seconds",
    "From an event's creation (before its commit) to its write on a socket",
    ["side"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HEARTBEATS = Counter(
    "curbe_heartbeats", "Widget heartbeats, by result", ["result"], registry=REGISTRY
)
ACTOR_RESTARTS = Counter(
    "curbe_actor_restarts", "Actor crashes restarted (or given up), by kind", ["kind"],
    registry=REGISTRY,
)  # fmt: skip
ACTOR_ESCALATIONS = Counter(
    "curbe_actor_escalations",
    "Actors and services given up after crashing past their restart intensity, by kind",
    ["kind"],
    registry=REGISTRY,
)
ACTORS_ESCALATED = Gauge(
    "curbe_actors_escalated", "Actors and services given up and not yet recovered",
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
CALL_TIMEOUTS = Counter(
    "curbe_actor_call_timeouts", "Calls to an actor that got no answer in time, by kind",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
STORAGE_CALLS = Counter(
    "curbe_storage_calls",
    "Crossings into asyncio for a storage use case (one transaction each), by verb",
    ["verb"],
    registry=REGISTRY,
)
ACTORS = Gauge(
    "curbe_actors", "Live actors, by kind", ["kind"], registry=REGISTRY,
    multiprocess_mode="livesum",
)  # fmt: skip
CONNECTIONS = Gauge(
    "curbe_connections", "Open WebSockets, by side", ["side"], registry=REGISTRY,
    multiprocess_mode="livesum",
)  # fmt: skip
GROUP_ROUND_SIZE = Histogram(
    "curbe_group_round_size",
    "Writes stored by one group-commit round (one transaction), or keys read by one group-read round, by writer (or reader)",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)


@functools.cache
def _child(metric: Any, values: tuple[str, ...]) -> Any:
    return metric.labels(*values)


def child(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, looked up once: ``labels`` takes the metric's lock on every
    call, and the hot paths (every event, every heartbeat) need only the child."""
    result: M = _child(metric, values)
    return result


# --- several processes (engine/placement.py, engine/cluster.py) ----------------------------------
LEASE_TICKS = Counter(
    "curbe_lease_ticks", "Lease renewals, by outcome (ok, failed)", ["outcome"], registry=REGISTRY
)
LEASE_TAKEOVERS = Counter(
    "curbe_lease_takeovers",
    "Shards this process took (at start, from a node that died or gave them back)",
    registry=REGISTRY,
)
SHARDS_HELD = Gauge(
    "curbe_shards_held", "Shard leases this process holds (the workers' sum, under --workers)",
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
FORWARDED = Counter(
    "curbe_forwarded_commands",
    "Commands sent to the process owning their actor, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
FORWARD_SECONDS = Histogram(
    "curbe_forward_seconds",
    "Time from forwarding a command to its answer",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BUS_EVENTS = Counter(
    "curbe_bus_events",
    "Events through the bus, by direction (out: published; in: delivered here; dropped)",
    ["direction"],
    registry=REGISTRY,
)
BUS_LAG_SECONDS = Histogram(
    "curbe_bus_lag_seconds",
    "From an event's commit on its owner to its delivery to this process's broker",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BUS_HOP_SECONDS = Histogram(
    "curbe_bus_hop_seconds",
    "From an event's publication on its owner (after its commit) to its delivery to this "
    "process's broker: the bus's own share of the lag",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

GC_PAUSE_SECONDS = Histogram(
    "curbe_gc_pause_seconds",
    "Time the whole process stood still in Python's cyclic garbage collector, by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
GC_THRESHOLD = Gauge(
    "curbe_gc_threshold",
    "Python's collection thresholds (gc.get_threshold), by generation",
    ["generation"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
GC_FROZEN = Gauge(
    "curbe_gc_frozen_objects",
    "Objects moved out of every collection at start-up (gc.freeze)",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
_gc_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started.append(time.perf_counter())
    elif _gc_started:
        pause = time.perf_counter() - _gc_started.pop()
        child(GC_PAUSE_SECONDS, str(info["generation"])).observe(pause)


def watch_gc() -> None:
    """Time every collection of Python's cyclic garbage collector (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


_frozen: list[int] = []  # gc.get_freeze_count() walks every frozen object: counted once


def note_frozen() -> None:
    """Count what ``gc.freeze()`` just froze (call after it)."""
    _frozen[:] = [gc.get_freeze_count()]


def set_gc_gauges() -> None:
    """At scrape time: the thresholds in force and what was frozen (at start-up, once)."""
    for generation, threshold in enumerate(gc.get_threshold()):
        GC_THRESHOLD.labels(str(generation)).set(threshold)
    if not _frozen:
        _frozen.append(gc.get_freeze_count())
    GC_FROZEN.set(_frozen[0])


def refresh(count: Callable[[str], int], kinds: tuple[str, ...], escalated: int) -> None:
    """Set the gauges of live things from the process's own state."""
    for kind in kinds:
        ACTORS.labels(kind).set(count(kind))
    ACTORS_ESCALATED.set(escalated)
    set_gc_gauges()
    flush()


def exposition() -> bytes:
    """The text a scrape gets: this process's registry, or under ``--workers`` every worker's
    values added up."""
    if not multiprocess():
        return bytes(generate_latest(REGISTRY))
    flush()  # this worker's own figures up to now; its siblings' up to their last second
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))


# A scrape read back: (sample name, sorted labels) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of a ``/metrics`` text (the bench and the tests read scrapes with this)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
