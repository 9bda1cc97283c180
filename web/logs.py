"""Structured logs: one JSON object per line on stderr.

``{"ts", "level", "logger", "msg", ...ids}`` where the ids are whatever the call passed in
``extra`` among :data:`FIELDS` (tenant, conversation, visitor, agent, widget, actor). Logs carry
ids and outcomes, never a chat message's text, a token or a password: call sites pass ids only,
and :func:`configure` is the one place the format is chosen (``CURBE_LOG_FORMAT=text`` for a
human-readable line instead).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

FIELDS = (
    "tenant_id",
    "conversation_id",
    "visitor_id",
    "agent_id",
    "widget_id",
    "actor_kind",
    "actor_id",
    "event_type",
    "seq",
    "restarts",
    "status",
    "domain",
    "migration",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                out[_camel(field)] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
