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


def too_many(what: str, wait: float, code: str = "too_many_requests") -> ApiError:
    """429 ``code``, with the whole seconds to wait (``Retry-After``)."""
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        code,
        f"too many {what}; retry in {seconds} seconds",
        retryAfterSeconds=seconds,
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
            raise too_many("requests", wait)

    def tracked(self) -> int:
        """Keys held across every throttle (each at most ``Throttle.max_keys``)."""
        return sum(len(t) for t in self._throttles.values())


# --- sockets ----------------------------------------------------------------------------------

# frames a socket may send, per type (each socket its own buckets); past one, the frame is
# answered with a ``too_many_requests`` error frame and dropped, the socket stays open
FRAME_RATES: dict[str, Rate] = {
    "message": Rate(5.0, 20),
    "resume": Rate(5.0, 30),
    "ping": Rate(1.0, 10),
    "presence": Rate(2.0, 10),
    "heartbeat": Rate(1.0, 5),
    # a sender repeats ``on`` every 4 s while typing; a change (on, off) at most every key
    "typing": Rate(1.0, 5),
    # the widget sends its read mark at most once a second while the visitor looks at the chat
    "read": Rate(2.0, 10),
}
# bad frames (refused as invalid) count too: a socket that sends garbage is slowed like any other
BAD_FRAME_RATE = Rate(5.0, 20)
# open sockets per visitor (its tabs) and per agent (its inbox tabs and devices), per process
SOCKETS_PER_VISITOR = 10
SOCKETS_PER_AGENT = 20


class FrameLimits:
    """One socket's frame buckets (``FRAME_RATES`` times ``scale``), on Trio's clock."""

    def __init__(self, scale: float = 1.0) -> None:
        self._scale = scale
        # a bucket is made on the kind's first frame: most sockets only ever ping
        self._throttles: dict[str, Throttle] = {}

    def check(self, kind: str | None) -> None:
        """429 ``too_many_requests`` when this socket sent too many ``kind`` frames (None, or a
        kind with no rate of its own: a frame that could not be read)."""
        key = kind if kind in FRAME_RATES else ""
        throttle = self._throttles.get(key)
        if throttle is None:
            rate = FRAME_RATES[key] if key else BAD_FRAME_RATE
            throttle = self._throttles[key] = Throttle(rate.scaled(self._scale), max_keys=1)
        wait = throttle.take("", trio.current_time())
        if wait is not None:
            raise too_many(f"{kind or 'bad'} frames", wait)
