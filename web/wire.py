"""The wire: request bodies and WebSocket frames, converted by one strict cattrs converter.

Validation belongs here, at the edge. The converter forbids unknown keys, takes camelCase names
and refuses to coerce types (``"5"`` is not an int, ``5`` is not a string). Errors become
:class:`ApiError` with a readable message built by ``cattrs.transform_error``.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

T = TypeVar("T")

MAX_NAME = 200
MAX_EMAIL = 320
MAX_URL = 2048
MAX_ID = 128
MAX_TEXT = 5000

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{5,32}$")


class ApiError(Exception):
    """A 4xx answer: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_wire(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _max_len(limit: int) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and len(value) > limit:
            raise ValueError(f"{_camel(attribute.name)} is longer than {limit} characters")

    return check


def _required_text(limit: int) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if not value.strip():
            raise ValueError(f"{_camel(attribute.name)} must not be empty")
        if len(value) > limit:
            raise ValueError(f"{_camel(attribute.name)} is longer than {limit} characters")

    return check


def _email(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or value == "":
        return
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        raise ValueError(f"{_camel(attribute.name)} is not an email address")


def _phone(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or value == "":
        return
    if not _PHONE.match(value):
        raise ValueError(f"{_camel(attribute.name)} is not a phone number")


def _non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ValueError(f"{_camel(attribute.name)} must be 0 or more")


# --- visitor side -----------------------------------------------------------------------------


@attrs.frozen
class HeartbeatBody:
    current_domain: str = attrs.field(validator=_required_text(255))
    current_url: str = attrs.field(validator=_required_text(MAX_URL))
    tenant_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    visitor_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    timestamp: str | int | float | None = None
    page_title: str | None = attrs.field(default=None, validator=_max_len(500))
    referrer: str | None = attrs.field(default=None, validator=_max_len(MAX_URL))
    time_zone: str | None = attrs.field(default=None, validator=_max_len(64))
    language: str | None = attrs.field(default=None, validator=_max_len(35))
    # a beacon (``navigator.sendBeacon`` on pagehide) cannot set Authorization: it sends the token
    visitor_token: str | None = attrs.field(default=None, validator=_max_len(512))


@attrs.frozen
class StartChatBody:
    name: str = attrs.field(validator=_required_text(MAX_NAME))
    email: str = attrs.field(validator=[_required_text(MAX_EMAIL), _email])
    message: str = attrs.field(validator=_required_text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    phone: str | None = attrs.field(default=None, validator=_phone)


@attrs.frozen
class OfflineMessageBody:
    name: str = attrs.field(validator=_required_text(MAX_NAME))
    email: str = attrs.field(validator=[_required_text(MAX_EMAIL), _email])
    message: str = attrs.field(validator=_required_text(MAX_TEXT))
    phone: str | None = attrs.field(default=None, validator=_phone)
    conversation_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))


@attrs.frozen
class MessageBody:
    text: str = attrs.field(validator=_required_text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    client_timestamp: str | None = attrs.field(default=None, validator=_max_len(64))


@attrs.frozen
class LoginBody:
    email: str = attrs.field(validator=_required_text(MAX_EMAIL))
    password: str = attrs.field(validator=_required_text(1024))


def _non_blank(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise ValueError(f"{_camel(attribute.name)} must not be empty")


def _avatar(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or value == "":
        return
    if len(value) > MAX_URL or not re.match(r"^https?://[^\s<>\"']+$", value):
        raise ValueError(f"{_camel(attribute.name)} must be an http(s) URL of an image")


@attrs.frozen
class ProfileBody:
    """``PATCH /api/auth/me``: ``avatarUrl: ""`` removes the avatar."""

    name: str | None = attrs.field(default=None, validator=[_non_blank, _max_len(MAX_NAME)])
    avatar_url: str | None = attrs.field(default=None, validator=_avatar)


@attrs.frozen
class ReadBody:
    seq: int | None = attrs.field(default=None)

    @seq.validator
    def _check(self, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError("seq must be 0 or more")


@attrs.frozen
class ProactiveChatBody:
    message: str = attrs.field(validator=_required_text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))


# --- WebSocket frames (tagged by "type") -------------------------------------------------------


@attrs.frozen
class MessageFrame:
    text: str = attrs.field(validator=_required_text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    conversation_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))
    client_timestamp: str | None = attrs.field(default=None, validator=_max_len(64))


@attrs.frozen
class ResumeFrame:
    after_seq: int = attrs.field(validator=_non_negative)
    conversation_id: str | None = attrs.field(default=None, validator=_max_len(MAX_ID))


@attrs.frozen
class PingFrame:
    pass


@attrs.frozen
class PresenceFrame:
    status: str = attrs.field(validator=attrs.validators.in_(("online", "away")))


FRAMES: dict[str, type[Any]] = {
    "message": MessageFrame,
    "resume": ResumeFrame,
    "ping": PingFrame,
    "presence": PresenceFrame,
}


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if not storable(value):
        raise ValueError("contains a NUL character or an unpaired surrogate")
    return value


def storable(value: str) -> bool:
    """False for strings PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _strict_str_or_number(value: Any, _: Any) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a string or a number, got {type(value).__name__}")
    return value


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(
        str | int | float | None, lambda v, t: None if v is None else _strict_str_or_number(v, t)
    )
    for cls in (
        HeartbeatBody,
        StartChatBody,
        OfflineMessageBody,
        MessageBody,
        LoginBody,
        ProfileBody,
        ReadBody,
        ProactiveChatBody,
        *FRAMES.values(),
    ):
        overrides: dict[str, Any] = {
            a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)
        }
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **overrides)
        )
    return converter


CONVERTER = make_converter()


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)
    return format_exception(exc, type_)


def structure(data: Any, cls: type[T]) -> T:
    """Turn a decoded JSON value into ``cls`` or raise a 422 :class:`ApiError`."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    try:
        return CONVERTER.structure(data, cls)
    except Exception as exc:  # cattrs wraps every field error; say all of them
        if isinstance(exc, cattrs.BaseValidationError):
            messages = [
                re.sub(r"(?<=\.)([a-z]+(?:_[a-z]+)+)", lambda m: _camel(m.group(1)), line)
                for line in cattrs.transform_error(exc, path="body", format_exception=_format)
            ]
        else:
            messages = [str(exc)]
        raise ApiError(422, "invalid_body", "; ".join(messages)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def structure_frame(raw: str | bytes) -> Any:
    data = decode_json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ApiError(422, "invalid_frame", 'a frame is a JSON object with a string "type"')
    frame_type = data.pop("type")
    cls = FRAMES.get(frame_type)
    if cls is None:
        raise ApiError(
            422,
            "unknown_frame_type",
            f"unknown frame type {frame_type!r}; expected one of {sorted(FRAMES)}",
        )
    return structure(data, cls)
