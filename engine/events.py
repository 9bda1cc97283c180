"""The realtime event envelope shared by the visitor stream and the inbox stream.

Every event is ``{"type", "at", "tenantId", "conversationId"?, "seq"?, "data"}`` on the wire.
``seq`` counts up by one per conversation and is assigned by the conversation state machine, so a
client that has seen seq N can ask for every later event exactly once.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import attrs

from engine.clock import iso


class EventType(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_STATUS_CHANGED = "conversation_status_changed"
    CONVERSATION_ASSIGNED = "conversation_assigned"
    MESSAGE_CREATED = "message_created"
    CONVERSATION_WAIT_TIMEOUT = "conversation_wait_timeout"
    VISITOR_PRESENCE_UPDATE = "visitor_presence_update"
    AGENT_PRESENCE_UPDATE = "agent_presence_update"
    AGENTS_ONLINE_CHANGED = "agents_online_changed"
    QUEUE_POSITION = "queue_position"
    CONVERSATION_READ = "conversation_read"
    WIDGET_STATUS_CHANGED = "widget_status_changed"
    WIDGET_UPDATED = "widget_updated"
    WIDGET_DELETED = "widget_deleted"


@attrs.frozen
class Event:
    """One realtime event.

    ``visitor_id`` and ``to_all_visitors`` are for routing only (which visitor streams get it) and
    never go on the wire.
    ``data`` is already in wire form (camelCase, JSON-ready); it is stored as-is, so a replay sends
    exactly what the live stream sent.
    """

    type: EventType = attrs.field(converter=EventType)
    at: dt.datetime
    tenant_id: str
    data: dict[str, Any]
    conversation_id: str | None = None
    seq: int | None = None
    visitor_id: str | None = None
    # routing only: also to every visitor stream of the tenant (agentsOnline changes)
    to_all_visitors: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": self.type, "at": iso(self.at), "tenantId": self.tenant_id}
        if self.conversation_id is not None:
            wire["conversationId"] = self.conversation_id
            wire["seq"] = self.seq
        wire["data"] = self.data
        return wire
