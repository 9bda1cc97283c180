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
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs

from engine.widget import WidgetStatus, domain_allowed, normalize_domain, widget_status
from engine.wire import Wire, camel, doc, structure
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

# --- the document: attrs classes, the one source of its defaults, its checks and its schema ----

HOST_PATTERN = r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$"
PHONE_PATTERN = r"^\+?[0-9][0-9 ()\-.]{4,31}$"
TELEGRAM_PATTERN = r"^@?[A-Za-z][A-Za-z0-9_]{4,31}$"
MESSENGER_PATTERN = r"^https://[^\s<>\"']+$"
EMAIL_PATTERN = r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$"
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

Fail = Callable[[str, str], None]


def rule(check: Any) -> dict[str, Any]:
    """Field metadata: how a document field is checked (and what its schema says)."""
    return {"rule": check}


@attrs.frozen
class Words:
    """Text: trimmed, storable, at most ``limit`` characters; ``pattern`` when given."""

    limit: int
    required: bool = False
    pattern: str | None = None
    message: str = ""

    def check(self, value: Any, path: str, fail: Fail) -> Any:
        if value is None:
            if self.required:
                fail(path, "is required")
            return None
        if not isinstance(value, str):
            fail(path, f"must be text, not {_json_type(value)}")
            return None
        if not storable(value):
            fail(path, "contains a character that cannot be stored")
            return None
        value = value.strip()
        if self.required and not value:
            fail(path, "must not be empty")
        elif len(value) > self.limit:
            fail(path, f"is longer than {self.limit} characters")
        elif value and self.pattern and not re.match(self.pattern, value):
            fail(path, self.message)
        return value or None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"maxLength": self.limit}
        if self.required:
            out["pattern"] = r"\S"
        elif self.pattern:
            out["pattern"] = f"^({self.pattern.removeprefix('^').removesuffix('$')})?$"
        return out


@attrs.frozen
class Colour:
    def check(self, value: Any, path: str, fail: Fail) -> Any:
        if not isinstance(value, str) or not re.match(COLOUR_PATTERN, value):
            fail(path, "must be a colour like #2563eb")
            return value
        return value.lower()

    def schema(self) -> dict[str, Any]:
        return {"pattern": COLOUR_PATTERN}


@attrs.frozen
class Seconds:
    low: int
    high: int

    def check(self, value: Any, path: str, fail: Fail) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(path, "must be a whole number of seconds")
        elif not self.low <= value <= self.high:
            fail(path, f"must be between {self.low} and {self.high} seconds")
        return value

    def schema(self) -> dict[str, Any]:
        return {"minimum": self.low, "maximum": self.high}


@attrs.frozen
class Domains:
    """Targeting: host names or ``*.`` patterns, normalised, without repeats."""

    most: int

    def check(self, value: Any, path: str, fail: Fail) -> Any:
        if not isinstance(value, list):
            fail(path, f"must be a list of domains, not {_json_type(value)}")
            return []
        if len(value) > self.most:
            fail(path, f"at most {self.most} domains")
            return []
        out: list[str] = []
        for n, entry in enumerate(value):
            host = _check_domain(entry) if isinstance(entry, str) else None
            if host is None:
                fail(f"{path}.{n}", f"{entry!r} is not a domain (use example.com or *.example.com)")
            elif host not in out:
                out.append(host)
        return out

    def schema(self) -> dict[str, Any]:
        item = {"type": "string", "maxLength": 255, "pattern": HOST_PATTERN}
        return {
            "items": {**item, "description": "a host name or a `*.` pattern"},
            "maxItems": self.most,
        }


def _phone() -> Any:
    return attrs.field(
        default=None,
        metadata=rule(
            Words(32, pattern=PHONE_PATTERN, message="is not a phone number (digits, +, spaces)")
        )
        | doc("a phone number, never a visitor id"),
    )


@attrs.frozen
class Branding(Wire):
    enabled: bool = True
    # None: the widget says "Powered by Curbe Chat" in the visitor's language
    text: str | None = attrs.field(default=None, metadata=rule(Words(60)))


@attrs.frozen
class Welcome(Wire):
    title: str = attrs.field(default="Hi there", metadata=rule(Words(80, required=True)))
    text: str | None = attrs.field(
        default="Questions? We are here to help. We usually answer in a few minutes.",
        metadata=rule(Words(300)),
    )


@attrs.frozen
class Appearance(Wire):
    color_theme: str = attrs.field(
        default="#2563eb", metadata=rule(Colour()) | doc(examples=["#2563eb"])
    )
    minimized: Literal["bubble", "bar"] = "bubble"
    position: Literal["right", "left"] = "right"
    show_agent_avatar: bool = True
    branding: Branding = attrs.Factory(Branding)
    welcome: Welcome = attrs.Factory(Welcome)


@attrs.frozen
class Channels(Wire):
    live_chat: bool = True
    sms: str | None = _phone()
    call: str | None = _phone()
    whatsapp: str | None = _phone()
    telegram: str | None = attrs.field(
        default=None,
        metadata=rule(Words(33, pattern=TELEGRAM_PATTERN, message="is not a Telegram username")),
    )
    messenger: str | None = attrs.field(
        default=None,
        metadata=rule(
            Words(
                500, pattern=MESSENGER_PATTERN, message="must be an https:// link (m.me/yourpage)"
            )
        ),
    )
    email: str | None = attrs.field(
        default=None,
        metadata=rule(Words(320, pattern=EMAIL_PATTERN, message="is not an email address")),
    )


@attrs.frozen
class WidgetDocument(Wire):
    """A widget document; anything left out takes its default. `null` (or leaving it out) keeps
    or restores the default."""

    name: str = attrs.field(metadata=rule(Words(100, required=True)))
    domains: list[str] = attrs.field(
        factory=list,
        metadata=rule(Domains(50)) | doc("Targeting: where the widget may run (empty = anywhere)"),
    )
    wait_timeout_seconds: int = attrs.field(default=60, metadata=rule(Seconds(1, 3600)))
    locale: Literal["auto", "en", "es"] = "auto"
    routing: Literal["manual", "round_robin"] = "manual"
    appearance: Appearance = attrs.Factory(Appearance)
    channels: Channels = attrs.Factory(Channels)


DEFAULT_APPEARANCE: dict[str, Any] = Appearance().to_wire()
DEFAULT_CHANNELS: dict[str, Any] = Channels().to_wire()
DEFAULT_DOCUMENT: dict[str, Any] = {
    "name": None,
    **WidgetDocument(name="").to_wire() | {"name": None},
}


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


def check_section(cls: type[Any], data: Any, path: str, fail: Fail) -> dict[str, Any] | None:
    """``data`` checked against attrs class ``cls``, field by field: its cleaned wire form, every
    problem reported through ``fail(path, message)`` (unknown keys included)."""
    if not isinstance(data, dict):
        fail(path, f"must be an object, not {_json_type(data)}")
        return None
    fields = {camel(f.name): f for f in attrs.fields(cls)}
    for key in data:
        if key not in fields:
            fail(f"{path}.{key}" if path else key, "is not a setting of a widget")
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        value = data.get(name)
        hint = hints[field.name]
        if "rule" in field.metadata:
            out[name] = field.metadata["rule"].check(value, where, fail)
        elif attrs.has(hint):
            out[name] = check_section(hint, value, where, fail)
        elif hint is bool:
            if not isinstance(value, bool):
                fail(where, f"must be true or false, not {_json_type(value)}")
            out[name] = value
        elif typing.get_origin(hint) is Literal:
            options = typing.get_args(hint)
            if value not in options:
                fail(where, f"must be one of {', '.join(options)}")
            out[name] = value
        else:  # pragma: no cover - a field of the document without a check is a bug
            raise TypeError(f"{cls.__name__}.{field.name} has no check")
    return out


def validate_document(document: dict[str, Any]) -> dict[str, Any]:
    """Check a whole widget document; the column values to store, or a 422 naming every field."""
    errors: dict[str, str] = {}

    def fail(path: str, message: str) -> None:
        errors.setdefault(path, message)

    clean = check_section(WidgetDocument, document, "", fail)
    if errors or clean is None:
        first = next(iter(errors.items()))
        raise ApiError(
            422,
            "invalid_widget",
            f"{first[0]} {first[1]}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            fields=errors,
        )
    return {
        "name": clean["name"],
        "domains": clean["domains"],
        "wait_timeout_seconds": clean["waitTimeoutSeconds"],
        "settings": {
            "locale": clean["locale"],
            "routing": clean["routing"],
            "appearance": clean["appearance"],
            "channels": clean["channels"],
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


@attrs.frozen
class WidgetView(Wire):
    """A widget as Settings shows it (the component ``Widget``)."""

    id: str
    tenant_id: str
    name: str
    status: WidgetStatus = attrs.field(
        metadata=doc("computed from the installation pings; never Unknown")
    )
    status_reason: str | None = attrs.field(metadata=doc("why INACTIVE or MISCONFIGURED"))
    domain: str | None = attrs.field(
        metadata=doc("detected domain, else the first Targeting entry")
    )
    domains: list[str]
    last_seen_at: dt.datetime | None
    last_seen_domain: str | None
    last_seen_url: str | None
    last_refused_at: dt.datetime | None
    last_refused_domain: str | None
    wait_timeout_seconds: int
    locale: Literal["auto", "en", "es"]
    routing: Literal["manual", "round_robin"]
    appearance: Appearance
    channels: Channels
    embed_code: str = attrs.field(metadata=doc("the `<script async src=…/widget.js …>` snippet"))
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


@attrs.frozen
class WidgetConfig(Wire):
    """What the embedded widget needs to render (public: nothing about Targeting or pings)."""

    id: str
    tenant_id: str
    name: str
    status: WidgetStatus
    appearance: Appearance
    channels: Channels
    locale: Literal["auto", "en", "es"]
    agents_online: bool = attrs.field(metadata=doc("at least one agent of the tenant is online"))
    wait_timeout_seconds: int
    max_upload_bytes: int = attrs.field(
        metadata=doc("the largest file a message may carry (the widget checks before sending)")
    )


def stored_document(row: dict[str, Any]) -> WidgetDocument:
    """A stored widget's document as its class (the row was validated when it was written)."""
    return structure(widget_document(row), WidgetDocument)


def widget_to_wire(row: dict[str, Any], now: dt.datetime, public_url: str) -> dict[str, Any]:
    return widget_view(row, now, public_url).to_wire()


def widget_view(row: dict[str, Any], now: dt.datetime, public_url: str) -> WidgetView:
    status, reason = widget_status(row, now)
    document = stored_document(row)
    return WidgetView(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        status=status,
        status_reason=reason,
        domain=row.get("last_seen_domain") or (document.domains[0] if document.domains else None),
        domains=document.domains,
        last_seen_at=row.get("last_seen_at"),
        last_seen_domain=row.get("last_seen_domain"),
        last_seen_url=row.get("last_seen_url"),
        last_refused_at=row.get("last_refused_at"),
        last_refused_domain=row.get("last_refused_domain"),
        wait_timeout_seconds=document.wait_timeout_seconds,
        locale=document.locale,
        routing=document.routing,
        appearance=document.appearance,
        channels=document.channels,
        embed_code=embed_code(public_url, row["id"], row["tenant_id"]),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )


def widget_config(
    row: dict[str, Any], now: dt.datetime, agents_online: bool, max_upload_bytes: int
) -> dict[str, Any]:
    """What the embedded widget needs (public: nothing about Targeting or pings)."""
    document = stored_document(row)
    return WidgetConfig(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        status=widget_status(row, now)[0],
        appearance=document.appearance,
        channels=document.channels,
        locale=document.locale,
        agents_online=agents_online,
        wait_timeout_seconds=document.wait_timeout_seconds,
        max_upload_bytes=max_upload_bytes,
    ).to_wire()
