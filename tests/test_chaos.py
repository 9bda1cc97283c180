"""``chaos/``: the fault suite's short mode (CI) runs every scenario against real server
processes, a real PostgreSQL and a proxy that cuts it off, and every invariant holds; the pure
parts (the reader's gap and repeat counts, fault windows) on their own.

No figure is asserted as a time: what is asserted is what must hold at any speed (nothing
acknowledged lost, nothing doubled, every timer fired, no gap, errors only inside a fault).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from chaos.database import windows_report
from chaos.drops import Reader
from chaos.fuzz import http_layer_refusal
from chaos.harness import Ledger, Refusals, tally

ROOT = Path(__file__).resolve().parent.parent


def test_the_reader_holds_what_it_received_as_the_widget_does() -> None:
    reader = Reader()
    socket_max = 0
    for seq in (1, 2, 4, 2, 3, 6):  # 4 ahead of 3, then 2 again, then 3 fills the hole
        reader.see(seq, socket_max)
        socket_max = max(socket_max, seq)
    assert (reader.last, reader.ahead, reader.repeats, reader.out_of_order) == (4, {6}, 1, 2)
    assert reader.gaps(6) == 1  # 5
    assert reader.gaps(4) == 0


def test_the_tally_finds_lost_doubled_and_stray_messages() -> None:
    ledger = Ledger(sent={"a": "c", "b": "c", "c": "c"}, acked={"a", "b"})
    stored = collections.Counter({"a": 2, "x": 1})
    assert tally(ledger, stored) == {
        "sent": 3,
        "acknowledged": 2,
        "lost": 1,  # b
        "duplicates": 1,  # a twice
        "strays": 1,  # x, sent by nobody
    }


def test_a_refusal_is_judged_by_what_it_changed() -> None:
    before = {"messages": (3, 100), "widgets": (1, 90), "visitor_sessions": (1, 95)}
    refusals = Refusals()
    assert refusals.judge(before, dict(before), set()) == []  # changed nothing
    wrote = dict(before, messages=(4, 101))
    assert refusals.judge(before, wrote, set()) == ["messages"]  # a finding
    marked = dict(before, widgets=(1, 102))
    assert refusals.judge(before, marked, {"widgets"}) == []  # recorded on purpose
    refusals.beat()  # an accepted heartbeat: its coalesced saves follow
    saved = dict(before, visitor_sessions=(1, 103))
    assert refusals.judge(before, saved, set()) == []
    assert refusals.judge(before, dict(saved, messages=(4, 104)), set()) == [
        "messages",
        "visitor_sessions",
    ]
    assert (refusals.stored, refusals.recorded, refusals.deferred) == (2, 1, 1)


def test_only_the_http_layers_own_refusals_are_counted_apart() -> None:
    def answer(status: int, body: bytes, **headers: str) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = status, body
        response.headers.update(headers)
        return response

    layer = {"Connection": "close", "Content-Length": "0"}
    assert http_layer_refusal(answer(501, b"", **layer))
    assert http_layer_refusal(answer(400, b"", **layer))
    json_400 = answer(400, b'{"error": {}}', **layer, **{"Content-Type": "application/json"})
    assert not http_layer_refusal(json_400)  # the app's: in the document, checked
    assert not http_layer_refusal(answer(500, b"", **layer))  # a 500 is never excused
    assert not http_layer_refusal(answer(501, b"", **{"Content-Length": "0"}))  # kept open


def test_errors_count_only_outside_a_fault_window() -> None:
    # (sent, answered, ok); the fault runs from 2.0 to 3.0
    ledger = Ledger(
        outcomes=[
            (0.5, 1.0, False),  # before: outside
            (1.9, 2.1, False),  # in flight when the fault began: inside
            (3.2, 3.5, False),  # sent after the end, failed before recovery: inside
            (3.4, 3.6, True),  # the first success of a request sent after the end: recovery
            (3.0, 3.9, False),  # in flight at recovery (sent before 3.6): inside
            (3.7, 4.0, False),  # sent after recovery: outside
        ]
    )
    report, outside = windows_report(ledger, [("cut", 2.0, 3.0)], recover_within=5)
    assert report == [
        {"fault": "cut", "seconds": 1.0, "errors": 3, "recoveredAfterSeconds": 0.6,
         "recovered": True}
    ]  # fmt: skip
    assert outside == 2
    never, _ = windows_report(Ledger(outcomes=[(3.0, 3.1, False)]), [("cut", 2.0, 3.0)], 5)
    assert never[0]["recovered"] is False
    slow, _ = windows_report(Ledger(outcomes=[(3.0, 9.5, True)]), [("cut", 2.0, 3.0)], 5)
    assert slow[0]["recovered"] is False  # 6.5 s after the end: not within 5


@pytest.mark.slow
@pytest.mark.deadline(600)
def test_quick_chaos_holds_in_every_scenario(postgres_url: str, tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--quick", "--database-url", postgres_url,
         "--out", str(out), "--logs", str(tmp_path / "logs")],
        cwd=ROOT, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert figures["broken"] == {}
    kills, database, drops = (figures["scenarios"][k] for k in ("kills", "database", "drops"))
    assert kills["kills"] == 3 and kills["acknowledged"] > 0
    assert (kills["lost"], kills["duplicates"], kills["strays"]) == (0, 0, 0)
    assert kills["timersFired"] == kills["timersStored"] == 3
    assert drops["drops"] == 60 and drops["resumeIn"] == "address"
    assert (drops["gaps"], drops["duplicates"], drops["outOfOrder"]) == (0, 0, 0)
    assert drops["dropsInsideReplay"] > 0
    assert drops["lastSeqRead"] == drops["lastSeqStored"] > 60
    assert database["connectionsTerminated"] > 0
    assert [f["fault"] for f in database["faults"]] == [
        "pg_terminate_backend",
        "pg_terminate_backend",
        "unreachable (refuse)",
        "unreachable (silent)",
    ]
    assert all(f["recovered"] for f in database["faults"])
    assert database["errorsOutsideFaults"] == 0 and database["healthAtEnd"] in ("ok", "degraded")
    assert database["lost"] == 0 and database["acknowledged"] > 0
    assert "## kills: HELD" in done.stdout and "every scenario held" in done.stdout
