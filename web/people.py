"""What the inbox shows about people: browser and OS from a user agent, and a friendly alias for
an anonymous visitor (sign-in and its limits: web/signin.py).

* User agents are parsed by ``ua-parser`` (the maintained uap-core rules), cached per string.
* A visitor who has not given a name is shown as a stable alias made from its id ("Pink Lion"),
  never as the raw id in a name, phone or SMS field.
"""

from __future__ import annotations

import functools
from typing import Any

from ua_parser import parse

from engine.values import visitor_alias

__all__ = ["describe_user_agent", "visitor_alias"]


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
