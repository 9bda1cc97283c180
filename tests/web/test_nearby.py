"""web/nearby.py: what one process keeps so that a heartbeat does not cross to another process
for nothing (pure units: times are given)."""

from __future__ import annotations

import datetime as dt

from web.nearby import PingGate, RowCache

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_one_ping_per_widget_and_domain_every_five_seconds() -> None:
    gate = PingGate()
    assert gate.due("wgt_a", "shop.example.com", at(0))
    assert not gate.due("wgt_a", "shop.example.com", at(1))
    assert not gate.due("wgt_a", "shop.example.com", at(4.9))
    assert gate.due("wgt_a", "blog.example.com", at(1))  # another domain: its own
    assert gate.due("wgt_b", "shop.example.com", at(1))  # another widget: its own
    assert gate.due("wgt_a", "shop.example.com", at(5))
    assert not gate.due("wgt_a", "shop.example.com", at(6))


def test_a_refusal_reopens_the_gate_and_a_clock_that_went_back_does_not_shut_it() -> None:
    gate = PingGate()
    assert gate.due("wgt_a", "shop.example.com", at(0))
    gate.reopen("wgt_a")  # a refusal: the next good ping clears MISCONFIGURED at once
    assert gate.due("wgt_a", "shop.example.com", at(1))
    assert gate.due("wgt_a", "shop.example.com", at(-10))  # the clock stepped back


def test_the_gate_is_bounded() -> None:
    gate = PingGate(limit=3)
    for i in range(3):
        assert gate.due(f"wgt_{i}", None, at(0))
    assert gate.due("wgt_3", None, at(0))  # full: started again
    assert gate.due("wgt_0", None, at(0))  # so wgt_0 is due again (one more crossing)


def test_a_widget_row_read_elsewhere_is_reused_for_a_second() -> None:
    cache = RowCache()
    assert cache.get("wgt_a", at(0)) is None
    cache.put("wgt_a", {"id": "wgt_a", "status": "ACTIVE"}, at(0))
    got = cache.get("wgt_a", at(0.9))
    assert got == {"id": "wgt_a", "status": "ACTIVE"}
    got["status"] = "changed by a caller"  # a caller's copy: the cache keeps its own
    assert cache.get("wgt_a", at(0.9)) == {"id": "wgt_a", "status": "ACTIVE"}
    assert cache.get("wgt_a", at(1)) is None  # a second old: asked again
    cache.put("wgt_a", {"id": "wgt_a"}, at(2))
    cache.forget("wgt_a")  # edited or deleted through this process
    assert cache.get("wgt_a", at(2)) is None
