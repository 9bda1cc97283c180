"""What the inbox shows about people: browser and OS from a user agent, a friendly alias for an
anonymous visitor, and the sign-in rate limit.

* User agents are parsed by ``ua-parser`` (the maintained uap-core rules), cached per string.
* A visitor who has not given a name is shown as a stable alias made from its id ("Pink Lion"),
  never as the raw id in a name, phone or SMS field.
* :class:`LoginLimiter` counts failed sign-ins per (email, IP) and per IP in a sliding window;
  past the limit, sign-in answers 429 with ``Retry-After`` until the oldest failure ages out.
  It lives in the process (a restart forgets it; several processes would each count).
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from typing import Any

from ua_parser import parse

from engine.clock import Clock
from engine.values import visitor_alias

__all__ = ["LoginLimiter", "describe_user_agent", "visitor_alias"]


def _version(family: str | None, major: str | None, minor: str | None = None) -> str | None:
    if not family or family == "Other":
        return None
    if major and minor and family in ("Mac OS X", "iOS", "Android"):
        return f"{family} {major}.{minor}"
    return f"{family} {major}" if major else family


@functools.lru_cache(maxsize=4096)
def describe_user_agent(user_agent: str | None) -> dict[str, Any]:
    """``{"browser", "os", "device"}`` of a user agent string; None where unknown."""
    if not user_agent:
        return {"browser": None, "os": None, "device": None}
    result = parse(user_agent[:1000])
    ua, os_, device = result.user_agent, result.os, result.device
    return {
        "browser": _version(ua.family, ua.major) if ua else None,
        "os": _version(os_.family, os_.major, os_.minor) if os_ else None,
        "device": device.family if device and device.family not in (None, "Other") else None,
    }


class LoginLimiter:
    """Failed sign-ins in a sliding window, per (email, IP) and per IP."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 5,
        max_per_ip: int = 30,
        window: dt.timedelta = dt.timedelta(minutes=15),
    ) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.max_per_ip = max_per_ip
        self.window = window
        self._failures: dict[tuple[str, str], collections.deque[dt.datetime]] = {}

    def _recent(self, key: tuple[str, str]) -> collections.deque[dt.datetime]:
        times = self._failures.get(key)
        if times is None:
            return collections.deque()
        horizon = self.clock.now() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, email: str, ip: str | None) -> float | None:
        """Seconds until this email may try again from this IP; None when it may now."""
        waits = []
        for key, limit in (
            ((email.lower(), ip or ""), self.max_failures),
            (("", ip or ""), self.max_per_ip),
        ):
            times = self._recent(key)
            if len(times) >= limit:
                waits.append((times[0] + self.window - self.clock.now()).total_seconds())
        return max(1.0, max(waits)) if waits else None

    def failed(self, email: str, ip: str | None) -> None:
        now = self.clock.now()
        for key in ((email.lower(), ip or ""), ("", ip or "")):
            self._recent(key)
            self._failures.setdefault(key, collections.deque()).append(now)

    def succeeded(self, email: str, ip: str | None) -> None:
        self._failures.pop((email.lower(), ip or ""), None)
