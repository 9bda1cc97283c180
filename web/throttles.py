"""The public side's throttles (issue #16): every anonymous endpoint, per client address and per
widget, answers 429 ``too_many_requests`` with ``Retry-After`` past its rate. Widget ids are public
(they are in every customer's page), so these endpoints are open to anyone on the internet.

The rates (per process; ``CURBE_THROTTLE_SCALE`` multiplies them all) leave room for a busy office
behind one NAT address, whose every open widget heartbeats about every 20 s:

=====================  ===========================  =======================================
what                   per client address           why
=====================  ===========================  =======================================
heartbeat              10/s, burst 60               ~200 open widgets behind one address
new visitor (minted)   1 every 2 s, burst 20        each is an actor, a row, a presence event
widget config          5/s, burst 30
start chat             1 every 10 s, burst 5
offline message        1 a minute, burst 3
visitor socket         2/s, burst 30                reconnections after a restart
=====================  ===========================  =======================================

Per widget, heartbeats at 1,000/s (burst 2,000) per process. (A flood of refused pings is
coalesced by the widget's actor itself: the same refusal again within 5 s writes nothing.)
"""

from __future__ import annotations

import math

import attrs
import trio

from engine.throttle import Rate, Throttle
from web.wire import ApiError

# the defaults (per process), as in the table above
HEARTBEAT_ADDRESS = Rate(10.0, 60)
NEW_VISITOR_ADDRESS = Rate(0.5, 20)
HEARTBEAT_WIDGET = Rate(1000.0, 2000)
CONFIG_ADDRESS = Rate(5.0, 30)
START_CHAT_ADDRESS = Rate(0.1, 5)
OFFLINE_ADDRESS = Rate(1 / 60, 3)
SOCKET_ADDRESS = Rate(2.0, 30)


@attrs.frozen
class PublicLimits:
    heartbeat_address: Rate = HEARTBEAT_ADDRESS
    new_visitor_address: Rate = NEW_VISITOR_ADDRESS
    heartbeat_widget: Rate = HEARTBEAT_WIDGET
    config_address: Rate = CONFIG_ADDRESS
    start_chat_address: Rate = START_CHAT_ADDRESS
    offline_address: Rate = OFFLINE_ADDRESS
    socket_address: Rate = SOCKET_ADDRESS

    def scaled(self, factor: float) -> PublicLimits:
        return PublicLimits(
            **{f.name: getattr(self, f.name).scaled(factor) for f in attrs.fields(PublicLimits)}
        )


@attrs.define
class Throttles:
    """One :class:`Throttle` per kind of request (the fields of :class:`PublicLimits`)."""

    limits: PublicLimits
    _throttles: dict[str, Throttle] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._throttles = {
            f.name: Throttle(getattr(self.limits, f.name)) for f in attrs.fields(PublicLimits)
        }

    def wait(self, kind: str, key: str | None) -> float | None:
        """Take one token of ``kind`` for ``key``: None (go) or the seconds to wait."""
        return self._throttles[kind].take(key or "-", trio.current_time())

    def check(self, kind: str, key: str | None) -> None:
        """:meth:`wait`, as 429 ``too_many_requests`` (with ``Retry-After``) when it must."""
        wait = self.wait(kind, key)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "too_many_requests",
                f"too many requests; retry in {seconds} seconds",
                retryAfterSeconds=seconds,
            )

    def tracked(self) -> int:
        """Keys held across every throttle (each at most ``Throttle.max_keys``)."""
        return sum(len(t) for t in self._throttles.values())
