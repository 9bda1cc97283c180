"""Token buckets (engine/throttle.py): a burst, then the rate; keys apart; memory bounded."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from engine.throttle import Rate, Throttle


def test_a_burst_goes_then_the_rate_and_the_wait_is_said() -> None:
    throttle = Throttle(Rate(per_second=2.0, burst=3))
    assert [throttle.take("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = throttle.take("a", 0.0)
    assert wait is not None and math.isclose(wait, 0.5)
    assert throttle.take("a", 0.25) is not None  # half a token: not yet
    assert throttle.take("a", 0.5) is None
    assert throttle.take("b", 0.5) is None  # another key has its own bucket


def test_an_idle_key_refills_to_its_burst_and_no_more() -> None:
    throttle = Throttle(Rate(per_second=1.0, burst=2))
    throttle.take("a", 0.0)
    throttle.take("a", 0.0)
    took = [throttle.take("a", 1000.0) for _ in range(3)]
    assert took[:2] == [None, None] and took[2] is not None


def test_memory_is_bounded_by_dropping_the_least_recently_used_key() -> None:
    throttle = Throttle(Rate(per_second=1.0, burst=1), max_keys=100)
    for n in range(1000):
        throttle.take(f"address-{n}", 0.0)
    assert len(throttle) == 100
    assert throttle.take("address-999", 0.0) is not None  # still tracked: empty
    assert throttle.take("address-0", 0.0) is None  # dropped: starts full again


@given(
    st.floats(min_value=0.1, max_value=100.0),
    st.integers(min_value=1, max_value=50),
    st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=200),
)
def test_no_more_go_than_the_burst_plus_the_rate_allows(
    per_second: float, burst: int, gaps: list[float]
) -> None:
    throttle = Throttle(Rate(per_second, burst))
    now, went = 0.0, 0
    for gap in gaps:
        now += gap
        if throttle.take("k", now) is None:
            went += 1
    assert went <= burst + per_second * now + 1e-6


def test_a_scaled_rate_keeps_at_least_one_token() -> None:
    assert Rate(10.0, 20).scaled(0.01) == Rate(0.1, 1)
