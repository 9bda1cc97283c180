"""Widget rules computed in one place: Targeting (allowed domains), status, embed code.

Status (documented in ``docs/widgets.md``):

* ``MISCONFIGURED`` — the latest installation ping came from a domain outside Targeting
  (refused with 403); ``reason`` says which domain.
* ``ACTIVE`` — a valid ping within the last 24 hours.
* ``INACTIVE`` — never pinged, or no valid ping for 24 hours.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from urllib.parse import urlsplit

from engine.clock import iso

ACTIVE_WINDOW = dt.timedelta(hours=24)


def normalize_domain(value: str | None) -> str | None:
    """The host of a domain or URL, lower-case, without port or trailing dot."""
    if not value:
        return None
    value = value.strip().lower()
    if "//" in value:
        value = urlsplit(value).hostname or ""  # ValueError on a malformed URL: the caller's 422
    else:
        value = value.split("/")[0].split(":")[0]
    return value.rstrip(".") or None


def domain_allowed(domain: str | None, targeting: list[str]) -> bool:
    """True when ``domain`` matches Targeting; an empty Targeting list allows any domain.

    ``example.com`` matches exactly; ``*.example.com`` matches any subdomain of example.com and
    example.com itself.
    """
    if not targeting:
        return True
    host = normalize_domain(domain)
    if host is None:
        return False
    for pattern in targeting:
        pattern = pattern.strip().lower()
        if pattern.startswith("*."):
            base = pattern[2:]
            if host == base or host.endswith("." + base):
                return True
        elif host == normalize_domain(pattern):
            return True
    return False


def widget_status(row: dict[str, Any], now: dt.datetime) -> tuple[str, str | None]:
    """``(status, reason)`` of a widget row."""
    seen = row.get("last_seen_at")
    refused = row.get("last_refused_at")
    if refused is not None and (seen is None or refused > seen):
        domain = row.get("last_refused_domain")
        allowed = ", ".join(row.get("domains") or []) or "any domain"
        return "MISCONFIGURED", f"the snippet runs on {domain}, outside Targeting ({allowed})"
    if seen is not None and now - seen <= ACTIVE_WINDOW:
        return "ACTIVE", None
    if seen is None:
        return "INACTIVE", "no installation ping yet: paste the embed code into your site"
    return "INACTIVE", "no installation ping in the last 24 hours"


def embed_code(public_url: str, widget_id: str, tenant_id: str) -> str:
    src = html.escape(f"{public_url.rstrip('/')}/widget.js", quote=True)
    return (
        f'<script async src="{src}" data-widget-id="{html.escape(widget_id, quote=True)}" '
        f'data-tenant="{html.escape(tenant_id, quote=True)}"></script>'
    )


def widget_to_wire(row: dict[str, Any], now: dt.datetime, public_url: str) -> dict[str, Any]:
    status, reason = widget_status(row, now)
    domains = list(row.get("domains") or [])
    return {
        "id": row["id"],
        "tenantId": row["tenant_id"],
        "name": row["name"],
        "status": status,
        "statusReason": reason,
        "domain": row.get("last_seen_domain") or (domains[0] if domains else None),
        "domains": domains,
        "lastSeenAt": iso(row.get("last_seen_at")),
        "lastSeenUrl": row.get("last_seen_url"),
        "waitTimeoutSeconds": row["wait_timeout_seconds"],
        "embedCode": embed_code(public_url, row["id"], row["tenant_id"]),
        "createdAt": iso(row.get("created_at")),
    }
