"""Widgets at the edge: the editable model, its validation, its wire form and the embed code.

The status rules live in :mod:`engine.widget` (one place); this module turns rows into JSON and
JSON into validated column values.

Editing is a JSON merge patch (RFC 7396) on the widget's document::

    {"name", "domains", "waitTimeoutSeconds", "locale",
     "appearance": {"colorTheme", "minimized", "position", "showAgentAvatar",
                    "branding": {"enabled", "text"}, "welcome": {"title", "text"}},
     "channels": {"liveChat", "sms", "call", "whatsapp", "telegram", "messenger", "email"}}

Nested objects merge; ``null`` resets a setting to its default. The merged document is validated
as a whole; every problem is reported against its field (``{"fields": {"appearance.colorTheme":
"must be a colour like #2563eb"}}``) so the editor can show it beside the input.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import attrs

from engine.clock import iso
from engine.widget import domain_allowed, normalize_domain, widget_status
from web.wire import ApiError, storable

__all__ = [
    "DEFAULT_DOCUMENT",
    "domain_allowed",
    "embed_code",
    "normalize_domain",
    "validate_document",
    "widget_document",
    "widget_status",
    "widget_to_wire",
]

LOCALES = ("auto", "en", "es")
ROUTINGS = ("manual", "round_robin")
MAX_DOMAINS = 50
MIN_WAIT, MAX_WAIT = 1, 3600

DEFAULT_APPEARANCE: dict[str, Any] = {
    "colorTheme": "#2563eb",
    "minimized": "bubble",
    "position": "right",
    "showAgentAvatar": True,
    # text None: the widget says "Powered by Curbe Chat" in the visitor's language
    "branding": {"enabled": True, "text": None},
    "welcome": {
        "title": "Hi there",
        "text": "Questions? We are here to help. We usually answer in a few minutes.",
    },
}
DEFAULT_CHANNELS: dict[str, Any] = {
    "liveChat": True,
    "sms": None,
    "call": None,
    "whatsapp": None,
    "telegram": None,
    "messenger": None,
    "email": None,
}
DEFAULT_DOCUMENT: dict[str, Any] = {
    "name": None,
    "domains": [],
    "waitTimeoutSeconds": 60,
    "locale": "auto",
    "routing": "manual",
    "appearance": DEFAULT_APPEARANCE,
    "channels": DEFAULT_CHANNELS,
}

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-.]{4,31}$")
_TELEGRAM = re.compile(r"^@?[A-Za-z][A-Za-z0-9_]{4,31}$")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --- merge patch -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _with_defaults(doc: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in doc.items():
        if isinstance(defaults.get(key), dict) and isinstance(value, dict):
            out[key] = _with_defaults(value, defaults[key])
        else:
            out[key] = value
    return out


def widget_document(row: dict[str, Any]) -> dict[str, Any]:
    """The editable document of a stored widget, defaults filled in."""
    settings = row.get("settings") or {}
    return _with_defaults(
        {
            "name": row["name"],
            "domains": list(row.get("domains") or []),
            "waitTimeoutSeconds": row["wait_timeout_seconds"],
            "locale": settings.get("locale", "auto"),
            "routing": settings.get("routing", "manual"),
            "appearance": settings.get("appearance", {}),
            "channels": settings.get("channels", {}),
        },
        DEFAULT_DOCUMENT,
    )


# --- validation --------------------------------------------------------------------------------


@attrs.define
class _Checker:
    errors: dict[str, str] = attrs.field(factory=dict)

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def text(
        self, doc: dict[str, Any], key: str, path: str, *, limit: int, required: bool = False
    ) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if not isinstance(value, str):
            self.fail(path, f"must be text, not {_json_type(value)}")
            return None
        if not storable(value):
            self.fail(path, "contains a character that cannot be stored")
            return None
        value = value.strip()
        if required and not value:
            self.fail(path, "must not be empty")
        elif len(value) > limit:
            self.fail(path, f"is longer than {limit} characters")
        return value

    def flag(self, doc: dict[str, Any], key: str, path: str) -> bool | None:
        value = doc.get(key)
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {_json_type(value)}")
            return None
        return value

    def choice(self, doc: dict[str, Any], key: str, path: str, options: tuple[str, ...]) -> None:
        value = doc.get(key)
        if value not in options:
            self.fail(path, f"must be one of {', '.join(options)}")

    def section(self, doc: Any, allowed: dict[str, Any], path: str) -> dict[str, Any] | None:
        """``doc`` when it is an object with only ``allowed`` keys (unknown keys are reported)."""
        if not isinstance(doc, dict):
            self.fail(path, f"must be an object, not {_json_type(doc)}")
            return None
        for key in doc:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.fail(where, "is not a setting of a widget")
        return doc


def _json_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_domain(pattern: str) -> str | None:
    """The normalised Targeting entry, or None when it is not a host name or ``*.`` pattern."""
    value = pattern.strip().lower().rstrip(".")
    wildcard = value.startswith("*.")
    host = value[2:] if wildcard else value
    if not host or len(host) > 253 or "*" in host:
        return None
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        return None
    if wildcard and len(labels) < 2:
        return None
    return value


def validate_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Check a whole widget document; the column values to store, or a 422 naming every field."""
    check = _Checker()
    check.section(doc, DEFAULT_DOCUMENT, "")
    name = check.text(doc, "name", "name", limit=100, required=True)

    domains: list[str] = []
    raw_domains = doc.get("domains")
    if not isinstance(raw_domains, list):
        check.fail("domains", f"must be a list of domains, not {_json_type(raw_domains)}")
    elif len(raw_domains) > MAX_DOMAINS:
        check.fail("domains", f"at most {MAX_DOMAINS} domains")
    else:
        for n, entry in enumerate(raw_domains):
            value = _check_domain(entry) if isinstance(entry, str) else None
            if value is None:
                check.fail(
                    f"domains.{n}",
                    f"{entry!r} is not a domain (use example.com or *.example.com)",
                )
            elif value not in domains:
                domains.append(value)

    wait = doc.get("waitTimeoutSeconds")
    if isinstance(wait, bool) or not isinstance(wait, int):
        check.fail("waitTimeoutSeconds", "must be a whole number of seconds")
    elif not MIN_WAIT <= wait <= MAX_WAIT:
        check.fail("waitTimeoutSeconds", f"must be between {MIN_WAIT} and {MAX_WAIT} seconds")
    check.choice(doc, "locale", "locale", LOCALES)
    check.choice(doc, "routing", "routing", ROUTINGS)

    appearance = check.section(doc.get("appearance"), DEFAULT_APPEARANCE, "appearance")
    if appearance is not None:
        color = appearance.get("colorTheme")
        if not isinstance(color, str) or not _COLOR.match(color):
            check.fail("appearance.colorTheme", "must be a colour like #2563eb")
        check.choice(appearance, "minimized", "appearance.minimized", ("bubble", "bar"))
        check.choice(appearance, "position", "appearance.position", ("right", "left"))
        check.flag(appearance, "showAgentAvatar", "appearance.showAgentAvatar")
        branding = check.section(
            appearance.get("branding"), DEFAULT_APPEARANCE["branding"], "appearance.branding"
        )
        if branding is not None:
            check.flag(branding, "enabled", "appearance.branding.enabled")
            check.text(branding, "text", "appearance.branding.text", limit=60)
        welcome = check.section(
            appearance.get("welcome"), DEFAULT_APPEARANCE["welcome"], "appearance.welcome"
        )
        if welcome is not None:
            check.text(welcome, "title", "appearance.welcome.title", limit=80, required=True)
            check.text(welcome, "text", "appearance.welcome.text", limit=300)

    channels = check.section(doc.get("channels"), DEFAULT_CHANNELS, "channels")
    if channels is not None:
        check.flag(channels, "liveChat", "channels.liveChat")
        for key in ("sms", "call", "whatsapp"):
            value = check.text(channels, key, f"channels.{key}", limit=32)
            if value and not _PHONE.match(value):
                check.fail(f"channels.{key}", "is not a phone number (digits, +, spaces)")
        telegram = check.text(channels, "telegram", "channels.telegram", limit=33)
        if telegram and not _TELEGRAM.match(telegram):
            check.fail("channels.telegram", "is not a Telegram username")
        messenger = check.text(channels, "messenger", "channels.messenger", limit=500)
        if messenger and not re.match(r"^https://[^\s<>\"']+$", messenger):
            check.fail("channels.messenger", "must be an https:// link (m.me/yourpage)")
        email = check.text(channels, "email", "channels.email", limit=320)
        if email and not _EMAIL.match(email):
            check.fail("channels.email", "is not an email address")

    if check.errors:
        first = next(iter(check.errors.items()))
        raise ApiError(
            422,
            "invalid_widget",
            f"{first[0]} {first[1]}"
            + (f" (and {len(check.errors) - 1} more)" if len(check.errors) > 1 else ""),
            fields=check.errors,
        )
    assert name is not None and isinstance(wait, int)
    assert appearance is not None and channels is not None

    def clean(section: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (
                clean(v)
                if isinstance(v, dict)
                else (v.strip() or None)
                if isinstance(v, str)
                else v
            )
            for k, v in section.items()
        }

    appearance_out = clean(appearance)
    appearance_out["colorTheme"] = appearance_out["colorTheme"].lower()
    return {
        "name": name,
        "domains": domains,
        "wait_timeout_seconds": wait,
        "settings": {
            "locale": doc["locale"],
            "routing": doc["routing"],
            "appearance": appearance_out,
            "channels": clean(channels),
        },
    }


def apply_patch(row: dict[str, Any] | None, patch: Any) -> dict[str, Any]:
    """Merge ``patch`` into the stored widget (or the defaults for a new one) and validate."""
    if not isinstance(patch, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    current = widget_document(row) if row is not None else dict(DEFAULT_DOCUMENT)
    merged = _with_defaults(merge_patch(current, patch), DEFAULT_DOCUMENT)
    return validate_document(merged)


# --- wire --------------------------------------------------------------------------------------


def embed_code(
    public_url: str,
    widget_id: str,
    tenant_id: str,
    *,
    theme: str | None = None,
    locale: str | None = None,
) -> str:
    """The snippet a business pastes into its site: one async script tag, nothing else."""

    def attr(value: str) -> str:
        return html.escape(value, quote=True)

    extra = ""
    if theme:
        extra += f' data-theme="{attr(theme)}"'
    if locale and locale != "auto":
        extra += f' data-locale="{attr(locale)}"'
    src = f"{public_url.rstrip('/')}/widget.js"
    return (
        f'<script async src="{attr(src)}" data-widget-id="{attr(widget_id)}" '
        f'data-tenant="{attr(tenant_id)}"{extra}></script>'
    )


def widget_to_wire(row: dict[str, Any], now: dt.datetime, public_url: str) -> dict[str, Any]:
    status, reason = widget_status(row, now)
    doc = widget_document(row)
    domains = doc["domains"]
    return {
        "id": row["id"],
        "tenantId": row["tenant_id"],
        "name": row["name"],
        "status": status,
        "statusReason": reason,
        "domain": row.get("last_seen_domain") or (domains[0] if domains else None),
        "domains": domains,
        "lastSeenAt": iso(row.get("last_seen_at")),
        "lastSeenDomain": row.get("last_seen_domain"),
        "lastSeenUrl": row.get("last_seen_url"),
        "lastRefusedAt": iso(row.get("last_refused_at")),
        "lastRefusedDomain": row.get("last_refused_domain"),
        "waitTimeoutSeconds": doc["waitTimeoutSeconds"],
        "locale": doc["locale"],
        "routing": doc["routing"],
        "appearance": doc["appearance"],
        "channels": doc["channels"],
        "embedCode": embed_code(public_url, row["id"], row["tenant_id"]),
        "createdAt": iso(row.get("created_at")),
        "updatedAt": iso(row.get("updated_at")),
    }


def widget_config(row: dict[str, Any], now: dt.datetime, agents_online: bool) -> dict[str, Any]:
    """What the embedded widget needs (public: nothing about Targeting or pings)."""
    doc = widget_document(row)
    return {
        "id": row["id"],
        "tenantId": row["tenant_id"],
        "name": row["name"],
        "status": widget_status(row, now)[0],
        "appearance": doc["appearance"],
        "channels": doc["channels"],
        "locale": doc["locale"],
        "agentsOnline": agents_online,
        "waitTimeoutSeconds": doc["waitTimeoutSeconds"],
    }
