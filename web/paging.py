"""Cursor pagination for lists that can grow without bound (``docs/api.md``, "Paging").

A list answers one page, in a stable order, with ``nextCursor``: an opaque string to pass back
as ``?after=`` for the next page (``null`` on the last page). A cursor is the sort key of the
last row sent, so rows arriving or leaving between two requests never make a page skip or repeat
a row that stayed. It names its list: a cursor of one list given to another is refused.
``?limit=`` chooses the page size, up to the list's maximum.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import attrs
from quart import request

from web.apidoc import query_param
from web.schema import Schema
from web.wire import ApiError, storable


@attrs.frozen
class Paging:
    """One list's paging: its name (in its cursors), its default and largest page."""

    name: str
    default: int
    most: int
    param: str = "after"  # the query parameter that carries the cursor

    def parameters(self, order: str) -> list[Schema]:
        return [
            query_param(
                "limit",
                f"rows per page, 1 to {self.most} (default {self.default}); anything else "
                "answers 422 `invalid_limit`",
                {"type": "integer", "minimum": 1, "maximum": self.most, "default": self.default},
            ),
            query_param(
                self.param,
                f"the cursor the previous page gave (rows in {order}); a cursor that is "
                "not one of this list's answers 422 `invalid_cursor`",
                {"type": "string", "maxLength": 512},
            ),
        ]

    def limit(self) -> int:
        raw = request.args.get("limit")
        if raw is None or raw == "":
            return self.default
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.most:
            raise ApiError(422, "invalid_limit", f"limit must be a whole number, 1 to {self.most}")
        return int(raw)

    def after(self) -> list[Any] | None:
        """The sort key the ``after`` cursor holds (None: the first page)."""
        raw = request.args.get(self.param)
        if raw is None or raw == "":
            return None
        try:
            if len(raw) > 512:
                raise ValueError("too long")
            decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if not isinstance(decoded, dict) or decoded.get("list") != self.name:
                raise ValueError("not this list's")
            key = decoded.get("after")
            if not isinstance(key, list) or not key:
                raise ValueError("no key")
            return key
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise ApiError(
                422, "invalid_cursor", f"{self.param} must be a cursor this list answered"
            ) from exc

    def after_key(self) -> tuple[dt.datetime, str] | None:
        """The ``after`` cursor of a list ordered by a time, then an id (None: the first page)."""
        key = self.after()
        if key is None:
            return None
        try:
            at, row_id = key
            if not isinstance(at, str) or not isinstance(row_id, str):
                raise TypeError("not a time and an id")
            if not storable(row_id):  # a forged id PostgreSQL cannot take
                raise ValueError("an id no row has")
            when = dt.datetime.fromisoformat(at)
            if when.tzinfo is None:
                raise ValueError("no time zone")
            return when, row_id
        except (ValueError, TypeError) as exc:
            raise ApiError(
                422, "invalid_cursor", f"{self.param} must be a cursor this list answered"
            ) from exc

    def seq_key(self) -> int | None:
        """The cursor of a list read back by seq: the seq it stops before (None: the latest)."""
        key = self.after()
        if key is None:
            return None
        if len(key) != 1 or type(key[0]) is not int or not 1 <= key[0] <= 2**31 - 1:
            raise ApiError(
                422, "invalid_cursor", f"{self.param} must be a cursor this list answered"
            )
        return key[0]

    def earlier(self, messages: list[Any], last: int) -> tuple[list[Any], str | None]:
        """``messages`` (up to ``last + 1``, in seq order) trimmed to ``last``, and the cursor of
        the page before them (None: none is earlier)."""
        if len(messages) <= last:
            return messages, None
        kept = messages[len(messages) - last :]
        return kept, self.cursor([kept[0].seq])

    def cursor(self, key: list[Any]) -> str:
        text = json.dumps({"list": self.name, "after": key}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
