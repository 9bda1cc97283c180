"""The serving process's garbage collector (``web.server.tune_gc``): what start-up loaded is frozen
out of every collection, young collections are spaced out, and every collection is timed into
``curbe_gc_pause_seconds``; a library caller of ``serve`` (this test process) is left alone.
"""

from __future__ import annotations

import gc

import httpx
import pytest

from engine import metrics
from tests.web.test_observability import sample
from tests.web.test_restart import serve_process


@pytest.mark.slow
async def test_curbe_chat_serve_freezes_its_start_up_and_spaces_young_collections(
    database_url: str,
) -> None:
    async with serve_process(database_url) as (_, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            text = (await http.get("/metrics")).text
    assert sample(text, "curbe_gc_threshold", generation="0") == 50_000
    assert sample(text, "curbe_gc_threshold", generation="1") == gc.get_threshold()[1]
    # modules, classes and functions: tens of thousands of objects no collection scans again
    assert sample(text, "curbe_gc_frozen_objects") > 20_000
    assert "curbe_gc_pause_seconds" in text


def test_every_collection_is_timed_by_generation() -> None:
    metrics.watch_gc()
    metrics.watch_gc()  # once per process, however often asked
    assert gc.callbacks.count(metrics._on_gc) == 1
    before = [metrics.child(metrics.GC_PAUSE_SECONDS, str(g))._sum.get() for g in range(3)]
    counts = [_count(g) for g in range(3)]
    gc.collect(2)
    gc.collect(0)
    assert _count(2) == counts[2] + 1 and _count(0) == counts[0] + 1
    assert metrics.child(metrics.GC_PAUSE_SECONDS, "2")._sum.get() > before[2]


def _count(generation: int) -> float:
    for family in metrics.REGISTRY.collect():
        if family.name == "curbe_gc_pause_seconds":
            for s in family.samples:
                if s.name.endswith("_count") and s.labels == {"generation": str(generation)}:
                    return s.value
    return 0.0


async def test_a_library_caller_of_serve_keeps_its_own_collector(server: object) -> None:
    assert gc.get_threshold()[0] == 700  # CPython's default, untouched by the in-process server
