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

from engine.errors import ErrorAnswer, ErrorBody
from engine.wire import camel
from storage.queries import SEARCH_LANGUAGES

T = TypeVar("T")

MAX_NAME = 200
MAX_EMAIL = 320
MAX_URL = 2048
MAX_ID = 128
MAX_TEXT = 5000


class ApiError(Exception):
    """A 4xx answer: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        # a refused socket frame's clientMessageId, echoed in its error frame (structure_frame)
        self.client_message_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """``{"error": {"code", "message", …}}`` (:class:`~engine.errors.ErrorAnswer`)."""
        return ErrorAnswer(ErrorBody.of(self.code, self.message, self.extra)).to_wire()


NOT_BLANK = r"\S"  # at least one character that is not white space
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9 ()\-.]{5,32}$"
AVATAR_PATTERN = r"^https?://[^\s<>\"']+$"


def _or_empty(pattern: str) -> str:
    """``pattern`` that also admits the empty string (\"\" means \"none given\")."""
    return f"^({pattern.removeprefix('^').removesuffix('$')})?$"


# Validators that say what they check: each is an attrs validator with a ``schema()`` that
# web/schema.py puts in the OpenAPI document, so a limit is written once.


@attrs.frozen
class MaxLength:
    limit: int

    def __call__(self, _inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and len(value) > self.limit:
            raise ValueError(f"{camel(attribute.name)} is longer than {self.limit} characters")

    def schema(self) -> dict[str, Any]:
        return {"maxLength": self.limit}


@attrs.frozen
class Text:
    """Required text: not blank, at most ``limit`` characters."""

    limit: int

    def __call__(self, _inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if not value.strip():
            raise ValueError(f"{camel(attribute.name)} must not be empty")
        if len(value) > self.limit:
            raise ValueError(f"{camel(attribute.name)} is longer than {self.limit} characters")

    def schema(self) -> dict[str, Any]:
        return {"minLength": 1, "pattern": NOT_BLANK, "maxLength": self.limit}


@attrs.frozen
class NotBlank:
    """Optional text that, when given, is not blank."""

    def __call__(self, _inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not value.strip():
            raise ValueError(f"{camel(attribute.name)} must not be empty")

    def schema(self) -> dict[str, Any]:
        return {"pattern": NOT_BLANK}


@attrs.frozen
class Matches:
    """Empty or ``None`` (nothing given), or a match of ``pattern`` within ``limit``."""

    pattern: str
    what: str  # "is not an email address"
    limit: int | None = None

    def __call__(self, _inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None or value == "":
            return
        if (self.limit is not None and len(value) > self.limit) or not re.match(
            self.pattern, value
        ):
            raise ValueError(f"{camel(attribute.name)} {self.what}")

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pattern": _or_empty(self.pattern)}
        if self.limit is not None:
            out["maxLength"] = self.limit
        return out


@attrs.frozen
class AtLeast:
    minimum: int

    def __call__(self, _inst: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and value < self.minimum:
            raise ValueError(f"{camel(attribute.name)} must be {self.minimum} or more")

    def schema(self) -> dict[str, Any]:
        return {"minimum": self.minimum, "maximum": INT_MAX}


EMAIL = Matches(EMAIL_PATTERN, "is not an email address", MAX_EMAIL)
PHONE = Matches(PHONE_PATTERN, "is not a phone number")
AVATAR = Matches(AVATAR_PATTERN, "must be an http(s) URL of an image", MAX_URL)


# --- visitor side -----------------------------------------------------------------------------


@attrs.frozen
class HeartbeatBody:
    current_domain: str = attrs.field(validator=Text(255))
    current_url: str = attrs.field(validator=Text(MAX_URL))
    tenant_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    visitor_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    timestamp: str | int | float | None = None
    page_title: str | None = attrs.field(default=None, validator=MaxLength(500))
    referrer: str | None = attrs.field(default=None, validator=MaxLength(MAX_URL))
    time_zone: str | None = attrs.field(default=None, validator=MaxLength(64))
    language: str | None = attrs.field(default=None, validator=MaxLength(35))
    # a beacon (``navigator.sendBeacon`` on pagehide) cannot set Authorization: it sends the token
    visitor_token: str | None = attrs.field(default=None, validator=MaxLength(512))


@attrs.frozen
class StartChatBody:
    name: str = attrs.field(validator=Text(MAX_NAME))
    email: str = attrs.field(validator=attrs.validators.and_(Text(MAX_EMAIL), EMAIL))
    message: str = attrs.field(validator=Text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    phone: str | None = attrs.field(default=None, validator=PHONE)


@attrs.frozen
class OfflineMessageBody:
    name: str = attrs.field(validator=Text(MAX_NAME))
    email: str = attrs.field(validator=attrs.validators.and_(Text(MAX_EMAIL), EMAIL))
    message: str = attrs.field(validator=Text(MAX_TEXT))
    phone: str | None = attrs.field(default=None, validator=PHONE)
    conversation_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


@attrs.frozen
class MessageBody:
    text: str = attrs.field(validator=Text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    client_timestamp: str | None = attrs.field(default=None, validator=MaxLength(64))


@attrs.frozen
class LoginBody:
    email: str = attrs.field(validator=Text(MAX_EMAIL))
    password: str = attrs.field(validator=Text(1024))


@attrs.frozen
class ProfileBody:
    """``PATCH /api/auth/me``: ``avatarUrl: ""`` removes the avatar."""

    name: str | None = attrs.field(
        default=None, validator=attrs.validators.and_(NotBlank(), MaxLength(MAX_NAME))
    )
    avatar_url: str | None = attrs.field(default=None, validator=AVATAR)


@attrs.frozen
class ReadBody:
    seq: int | None = attrs.field(default=None, validator=AtLeast(0))


SHORTCUT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
SHORTCUT = Matches(
    SHORTCUT_PATTERN, "is 1 to 32 letters, digits, - or _ (starting with a letter or digit)"
)


@attrs.frozen
class CannedReplyBody:
    """A new canned reply: ``/shortcut`` finds it in the composer."""

    shortcut: str = attrs.field(validator=attrs.validators.and_(Text(32), SHORTCUT))
    text: str = attrs.field(validator=Text(MAX_TEXT))


@attrs.frozen
class CannedReplyPatch:
    shortcut: str | None = attrs.field(
        default=None, validator=attrs.validators.and_(NotBlank(), MaxLength(32), SHORTCUT)
    )
    text: str | None = attrs.field(
        default=None, validator=attrs.validators.and_(NotBlank(), MaxLength(MAX_TEXT))
    )


@attrs.frozen
class WorkspacePatch:
    search_language: str = attrs.field(validator=attrs.validators.in_(SEARCH_LANGUAGES))


@attrs.frozen
class RatingBody:
    score: int = attrs.field(validator=attrs.validators.in_((1, 2, 3, 4, 5)))
    comment: str | None = attrs.field(default=None, validator=MaxLength(1000))


@attrs.frozen
class NoteBody:
    text: str = attrs.field(validator=Text(MAX_TEXT))
    client_note_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


@attrs.frozen
class TransferBody:
    agent_id: str = attrs.field(validator=Text(MAX_ID))


@attrs.frozen
class ProactiveChatBody:
    message: str = attrs.field(validator=Text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


# --- WebSocket frames (tagged by "type") -------------------------------------------------------


@attrs.frozen
class MessageFrame:
    text: str = attrs.field(validator=Text(MAX_TEXT))
    client_message_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    conversation_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))
    client_timestamp: str | None = attrs.field(default=None, validator=MaxLength(64))


@attrs.frozen
class ResumeFrame:
    after_seq: int = attrs.field(validator=AtLeast(0))
    conversation_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


@attrs.frozen
class PingFrame:
    pass


@attrs.frozen
class PresenceFrame:
    status: str = attrs.field(validator=attrs.validators.in_(("online", "away")))


@attrs.frozen
class HeartbeatFrame:
    """The visitor's heartbeat on its open socket (what ``POST …/heartbeat`` carries, less the
    token: the socket already proved who it is). An open widget sends no HTTP heartbeat."""

    current_domain: str = attrs.field(validator=Text(255))
    current_url: str = attrs.field(validator=Text(MAX_URL))
    timestamp: str | int | float | None = None
    page_title: str | None = attrs.field(default=None, validator=MaxLength(500))
    referrer: str | None = attrs.field(default=None, validator=MaxLength(MAX_URL))
    time_zone: str | None = attrs.field(default=None, validator=MaxLength(64))
    language: str | None = attrs.field(default=None, validator=MaxLength(35))


@attrs.frozen
class TypingFrame:
    """The sender started (``on``) or stopped (``off``) typing; never the text. The widget may
    leave out ``conversationId`` (its latest conversation); the inbox names it."""

    state: str = attrs.field(validator=attrs.validators.in_(("on", "off")))
    conversation_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


@attrs.frozen
class ReadFrame:
    """The visitor read its conversation up to ``seq`` (None: everything so far); what
    ``POST …/conversations/{id}/read`` does. The widget may leave out ``conversationId``."""

    seq: int | None = attrs.field(default=None, validator=AtLeast(0))
    conversation_id: str | None = attrs.field(default=None, validator=MaxLength(MAX_ID))


FRAMES: dict[str, type[Any]] = {
    "message": MessageFrame,
    "resume": ResumeFrame,
    "ping": PingFrame,
    "presence": PresenceFrame,
    "heartbeat": HeartbeatFrame,
    "typing": TypingFrame,
    "read": ReadFrame,
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


# Every integer the API takes is stored in a PostgreSQL ``integer`` or compared with one (seqs,
# counts, seconds): one past this range reached the database and failed there (a socket's
# ``afterSeq`` of 2**31 closed it with an unhandled error).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"expected an integer from {INT_MIN} to {INT_MAX}")
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
        TransferBody,
        CannedReplyBody,
        CannedReplyPatch,
        NoteBody,
        RatingBody,
        WorkspacePatch,
        *FRAMES.values(),
    ):
        overrides: dict[str, Any] = {
            a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)
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
                re.sub(r"(?<=\.)([a-z]+(?:_[a-z]+)+)", lambda m: camel(m.group(1)), line)
                for line in cattrs.transform_error(exc, path="body", format_exception=_format)
            ]
        else:
            messages = [str(exc)]
        raise ApiError(422, "invalid_body", "; ".join(messages)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(raw: bytes | str | None) -> Any:
    """``raw`` as JSON; None (what an empty WebSocket frame reads as) is no JSON either."""
    try:
        return json.loads(raw if raw is not None else b"", parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def structure_frame(raw: str | bytes | None) -> Any:
    """A client frame, or a 422 :class:`ApiError` carrying the frame's ``clientMessageId`` when
    it is one the document allows (a string of at most 128 characters), never whatever was sent."""
    data = decode_json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ApiError(422, "invalid_frame", 'a frame is a JSON object with a string "type"')
    echo = data.get("clientMessageId")
    try:
        frame_type = data.pop("type")
        cls = FRAMES.get(frame_type)
        if cls is None:
            raise ApiError(
                422,
                "unknown_frame_type",
                f"unknown frame type {frame_type!r}; expected one of {sorted(FRAMES)}",
            )
        return structure(data, cls)
    except ApiError as exc:
        if isinstance(echo, str) and len(echo) <= MAX_ID:
            exc.client_message_id = echo
        raise
