"""``engine/metrics.py`` under ``--workers`` (prometheus_client's multiprocess mode, chosen by
the environment when it is imported, hence a process of its own here): increments are held in
memory and written to the worker's metric file by ``flush`` (every second, and before a scrape),
gauges' ``set`` at once; a scrape of this worker counts everything it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from engine import metrics

def on_file(name, **labels):
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry.get_sample_value(name, labels) or 0.0

for _ in range(1000):
    metrics.COMMITS.inc()
    metrics.COMMIT_SECONDS.observe(0.003)
metrics.ACTORS.labels("conversation").set(7)
before = [on_file("curbe_commits_total"), on_file("curbe_commit_seconds_count"),
          on_file("curbe_actors", kind="conversation")]
metrics.flush()
after = [on_file("curbe_commits_total"), on_file("curbe_commit_seconds_count")]
metrics.COMMITS.inc(5)
scraped = b"curbe_commits_total 1005.0" in metrics.exposition()
print(json.dumps({"before": before, "after": after, "scraped": scraped,
                  "value": metrics.COMMITS._value.get()}))
"""


def test_increments_reach_the_shared_files_on_flush_and_a_scrape_counts_them(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["before"] == [0.0, 0.0, 7.0]  # held in memory; a gauge's set is written at once
    assert out["after"] == [1000.0, 1000.0]
    assert out["scraped"] and out["value"] == 1005.0
