"""Token buckets per key: how the public side of the server says "slow down" (issue #16).

A :class:`Throttle` holds one bucket per key (a client address, a widget) for one kind of request:
``rate.burst`` requests at once, refilled at ``rate.per_second``. :meth:`Throttle.take` answers
None (go) or the seconds until the next token (the caller answers 429 with ``Retry-After``).
At most ``max_keys`` buckets are kept, the least recently used dropped first (a dropped key comes
back with a full bucket): memory is bounded whatever the number of addresses. Buckets live in the
process: with N processes a client that spreads over all of them gets up to N times the rate.
No I/O and no clock of its own: ``now`` is passed in (``trio.current_time`` in the server).
"""

from __future__ import annotations

from collections import OrderedDict

import attrs


@attrs.frozen
class Rate:
    per_second: float
    burst: int

    def scaled(self, factor: float) -> Rate:
        return Rate(self.per_second * factor, max(1, round(self.burst * factor)))


@attrs.define
class Throttle:
    rate: Rate
    max_keys: int = 50_000
    _buckets: OrderedDict[str, tuple[float, float]] = attrs.field(factory=OrderedDict, init=False)

    def take(self, key: str, now: float) -> float | None:
        """One request for ``key`` at ``now`` (seconds): None when it may go, else the seconds
        until it may."""
        tokens, stamp = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - stamp) * self.rate.per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            self._trim()
            return None
        self._buckets[key] = (tokens, now)
        self._trim()
        return (1.0 - tokens) / self.rate.per_second

    def _trim(self) -> None:
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
