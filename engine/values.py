"""The engine's values: what crosses its ports, to storage and to the wire.

Plain attrs classes and enums, no behaviour beyond their own shape: a conversation and its
messages, a visitor's session, an event, a commit, what routing reads. The state machines
(``conversation``, ``visitor``, ``widget``, ``routing``) compute them; the storage ports
(:mod:`engine.store`) load and save them; :mod:`engine.wire` writes them as JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

import attrs

from engine.wire import OFF_WIRE, OPTIONAL, RAW, UNSET, Wire, doc, structure

# --- events: the realtime envelope shared by the visitor stream and the inbox stream. Every event
# is ``{"type", "at", "tenantId", "conversationId"?, "seq"?, "data"}`` on the wire; ``seq`` counts
# up by one per conversation (the conversation state machine assigns it), so a client that has
# seen seq N can ask for every later event exactly once.


class EventType(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_STATUS_CHANGED = "conversation_status_changed"
    CONVERSATION_ASSIGNED = "conversation_assigned"
    MESSAGE_CREATED = "message_created"
    CONVERSATION_WAIT_TIMEOUT = "conversation_wait_timeout"
    VISITOR_PRESENCE_UPDATE = "visitor_presence_update"
    VISITOR_PRESENCE_BATCH = "visitor_presence_batch"
    ACTIVITY_BATCH = "activity_batch"
    AGENT_PRESENCE_UPDATE = "agent_presence_update"
    AGENTS_ONLINE_CHANGED = "agents_online_changed"
    QUEUE_POSITION = "queue_position"
    CONVERSATION_READ = "conversation_read"
    TYPING = "typing"
    NOTE_CREATED = "note_created"
    CONVERSATION_RATED = "conversation_rated"
    WIDGET_STATUS_CHANGED = "widget_status_changed"
    WIDGET_UPDATED = "widget_updated"
    WIDGET_DELETED = "widget_deleted"


@attrs.frozen
class Event(Wire):
    """One realtime event. `conversationId` and `seq` are on every conversation event and absent
    on the others (presence, widgets, queue_position).

    ``visitor_id`` and ``to_all_visitors`` are for routing only (which visitor streams get it) and
    never go on the wire. ``data`` is already in wire form (camelCase, JSON-ready); it is stored
    as-is, so a replay sends exactly what the live stream sent.
    """

    type: EventType = attrs.field(converter=EventType)
    at: dt.datetime
    tenant_id: str
    data: dict[str, Any] = attrs.field(metadata=RAW | doc("the event's payload (docs/events.md)"))
    conversation_id: str | None = attrs.field(default=None, metadata=OPTIONAL)
    seq: int | None = attrs.field(
        default=None, metadata=OPTIONAL | doc("counts up by one per conversation")
    )
    visitor_id: str | None = attrs.field(default=None, metadata=OFF_WIRE)
    # routing only: also to every visitor stream of the tenant (agentsOnline changes)
    to_all_visitors: bool = attrs.field(default=False, metadata=OFF_WIRE)


class Status(StrEnum):
    WAITING = "WAITING"
    OPEN = "OPEN"
    SOLVED = "SOLVED"


class Kind(StrEnum):
    LIVE_CHAT = "live_chat"
    OFFLINE_MESSAGE = "offline_message"


class SenderType(StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"


@attrs.frozen
class Attachment(Wire):
    """A file sent in a message (issue #17): its bytes live in the file store under its id,
    fetched through the conversation's routes by whoever may read the conversation."""

    id: str
    name: str = attrs.field(metadata=doc("the name it was sent with, for display and download"))
    content_type: str = attrs.field(metadata=doc("found from its bytes, never from its name"))
    size: int = attrs.field(metadata=doc("bytes"))
    width: int | None = attrs.field(default=None, metadata=doc("pixels, for an image"))
    height: int | None = attrs.field(default=None, metadata=doc("pixels, for an image"))
    thumbnail: bool = attrs.field(
        default=False, metadata=doc("an image has a thumbnail at …/attachments/{id}/thumbnail")
    )

    @classmethod
    def all_of(cls, value: Any) -> tuple[Attachment, ...]:
        """A message's ``attachments`` (the stored column or its wire form) as values."""
        return tuple(structure(a, cls) for a in value or ())


@attrs.frozen
class Agent(Wire):
    id: str
    name: str
    avatar_url: str | None = None


@attrs.frozen
class Message(Wire):
    id: str
    conversation_id: str
    tenant_id: str = attrs.field(metadata=OFF_WIRE)
    seq: int
    sender_type: SenderType
    sender_id: str
    sender_name: str | None
    text: str = attrs.field(metadata=doc("may be empty when the message carries attachments"))
    client_message_id: str | None
    client_timestamp: str | None
    created_at: dt.datetime
    attachments: tuple[Attachment, ...] = attrs.field(
        default=(), metadata=OPTIONAL | doc("files sent with it; absent when none")
    )


@attrs.frozen
class Conversation(Wire):
    id: str
    tenant_id: str
    widget_id: str
    visitor_id: str
    kind: Kind
    status: Status
    created_at: dt.datetime
    updated_at: dt.datetime
    last_seq: int = 0
    assignee: Agent | None = None
    wait_deadline: dt.datetime | None = None
    wait_timed_out: bool = False
    solved_at: dt.datetime | None = None

    @property
    def wait_pending(self) -> bool:
        """True while the wait timer must run: WAITING, deadline set, not yet fired."""
        return (
            self.status is Status.WAITING
            and self.wait_deadline is not None
            and not self.wait_timed_out
        )


@attrs.frozen
class Contact:
    """Who the visitor says they are, stored with the conversation that starts (same commit).

    ``None`` keeps what is stored; ``phone`` is only ever what a person typed.
    """

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    location: str | None = None


ADJECTIVES = (
    "Pink", "Blue", "Green", "Amber", "Coral", "Silver", "Golden", "Indigo", "Olive", "Ruby",
    "Teal", "Violet", "Crimson", "Ivory", "Jade", "Scarlet", "Azure", "Copper", "Plum", "Sage",
)  # fmt: skip

ANIMALS = (
    "Lion", "Otter", "Falcon", "Panda", "Koala", "Fox", "Heron", "Lynx", "Dolphin", "Owl",
    "Badger", "Tiger", "Robin", "Seal", "Zebra", "Wolf", "Crane", "Gecko", "Bison", "Puffin",
)  # fmt: skip


def visitor_alias(visitor_id: str) -> str:
    """A stable, friendly name for an anonymous visitor ("Pink Lion")."""
    digest = hashlib.sha256(visitor_id.encode()).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {ANIMALS[digest[1] % len(ANIMALS)]}"


@attrs.frozen
class VisitorSession:
    visitor_id: str
    tenant_id: str
    widget_id: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    current_url: str | None = None
    current_domain: str | None = None
    page_title: str | None = None
    referrer: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    location: str | None = None
    conversation_id: str | None = None  # the active live chat (conversation commits write it)
    name: str | None = None  # what the visitor gave when starting a chat (the contact's name)

    def to_wire(self, now: dt.datetime, *, in_chat: bool | None = None) -> dict[str, Any]:
        return self.live(now, in_chat=in_chat).to_wire()

    def with_presence_of(self, live: VisitorSession) -> VisitorSession:
        """This stored session with the presence ``live`` (the visitor actor's own session)
        holds, when that is newer: the actor owns presence and queues its later writes, so the
        stored row may lag a round. Everything else stays as stored."""
        if live.tenant_id != self.tenant_id or live.last_seen_at < self.last_seen_at:
            return self
        return attrs.evolve(
            self,
            widget_id=live.widget_id,
            last_seen_at=live.last_seen_at,
            current_url=live.current_url,
            current_domain=live.current_domain,
            page_title=live.page_title,
            referrer=live.referrer,
        )

    def live(self, now: dt.datetime, *, in_chat: bool | None = None) -> LiveVisitor:
        """The live visitor as the inbox lists it."""
        return LiveVisitor(
            visitor_id=self.visitor_id,
            display_name=self.name or visitor_alias(self.visitor_id),
            name=self.name,
            widget_id=self.widget_id,
            current_url=self.current_url,
            page_title=self.page_title,
            referrer=self.referrer,
            first_seen_at=self.first_seen_at,
            last_seen_at=self.last_seen_at,
            time_on_site_seconds=max(0, int((now - self.first_seen_at).total_seconds())),
            in_chat=self.conversation_id is not None if in_chat is None else in_chat,
            conversation_id=self.conversation_id,
            location=self.location,
        )


@attrs.frozen
class LiveVisitor(Wire):
    """A visitor on one of the tenant's sites now (the payload of ``visitor_presence_update``)."""

    visitor_id: str
    display_name: str = attrs.field(
        metadata=doc('the name given, else a stable alias ("Pink Lion")')
    )
    name: str | None = attrs.field(metadata=doc("the name the visitor gave when starting a chat"))
    widget_id: str
    current_url: str | None
    page_title: str | None
    referrer: str | None
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    time_on_site_seconds: int
    in_chat: bool
    conversation_id: str | None
    location: str | None = attrs.field(
        metadata=doc("the browser's time zone and language, labelled")
    )


class Link(StrEnum):
    """What a commit does to ``visitor_sessions.conversation_id`` (the visitor's live chat)."""

    SET = "set"  # a live chat became active (created, started by an agent, reopened)
    CLEAR = "clear"  # it was solved


@attrs.frozen
class Commit:
    """One batch of a conversation actor's transitions, persisted in one transaction.

    ``claim``: the agent who takes the chat OPEN through it (see :func:`claim_of`); the commit
    locks that agent's row and refuses (:class:`~engine.errors.AtCapacity`) past their limit.
    ``contact``: the
    visitor's contact, upserted in the same transaction (a chat's start). ``link``: the visitor's
    active live chat is set or cleared; a second active live chat of one visitor is refused
    (:class:`~engine.errors.ConversationActive`) by a partial unique index.
    """

    state: Conversation
    events: tuple[Event, ...]
    messages: tuple[Message, ...]
    claim: str | None = None
    contact: Contact | None = None
    link: Link | None = None


@attrs.frozen
class WaitingChat:
    id: str
    visitor_id: str
    created_at: dt.datetime
    routing: str


@attrs.frozen
class OpenChat:
    id: str
    assignee_id: str
    routing: str


@attrs.frozen
class RoutingAgent:
    id: str
    name: str
    avatar_url: str | None
    capacity: int


@attrs.frozen
class RoutingSnapshot:
    waiting: tuple[WaitingChat, ...]
    open: tuple[OpenChat, ...]  # OPEN live chats: what a hand-over may move
    agents: tuple[RoutingAgent, ...]
    average_wait_seconds: float | None = None
    # every OPEN conversation (tickets too) per agent: what their capacity counts, exactly as
    # the accepting commit counts it; None: count ``open``
    held: Mapping[str, int] | None = None


# --- event payloads: what an event's ``data`` holds, one class per type (docs/events.md) --------


@attrs.frozen
class ConversationCreated(Wire):
    conversation: Conversation


@attrs.frozen
class ConversationAssigned(Wire):
    agent: Agent
    conversation: Conversation
    previous_agent: Agent | None = attrs.field(
        default=UNSET, metadata=OPTIONAL | doc("a hand-over only: who had it (null: nobody)")
    )


@attrs.frozen
class ConversationStatusChanged(Wire):
    from_: Status
    to: Status
    conversation: Conversation


@attrs.frozen
class MessageCreated(Wire):
    message: Message


@attrs.frozen
class ConversationWaitTimeout(Wire):
    waited_seconds: float
    conversation: Conversation


@attrs.frozen(kw_only=True)
class VisitorPresenceUpdate(LiveVisitor):
    online: bool = attrs.field(metadata=doc("false: the visitor left (no heartbeat in time)"))


@attrs.frozen
class VisitorPresenceBatch(Wire):
    """Several ``visitor_presence_update`` payloads of one tenant sent as one frame: the latest of
    each visitor that changed within the last second (``engine.broker.PresenceBatcher``)."""

    visitors: list[VisitorPresenceUpdate] = attrs.field(
        metadata=doc("in the order they changed; one per visitor, its latest")
    )


@attrs.frozen
class ActivityBatch(Wire):
    """Several ``typing`` and ``conversation_read`` events of one tenant sent to an inbox as one
    frame: the latest per conversation and sender (or reader) within a quarter of a second
    (``engine.broker.ActivityBatcher``)."""

    events: list[dict[str, Any]] = attrs.field(
        metadata=RAW
        | doc(
            "each a whole `typing` or `conversation_read` event as it would have come alone, "
            "in the order they came; apply them in turn"
        )
    )


@attrs.frozen
class AgentPresenceUpdate(Wire):
    agent_id: str
    status: Literal["online", "away", "offline"]
    agents_online: bool


@attrs.frozen
class AgentsOnlineChanged(Wire):
    agents_online: bool


@attrs.frozen
class QueuePosition(Wire):
    conversation_id: str
    position: int
    ahead: int
    estimated_wait_seconds: int | None


@attrs.frozen
class ConversationRead(Wire):
    agent_id: str | None = attrs.field(
        metadata=doc("the agent whose mark moved; null when it is the visitor's")
    )
    conversation_id: str
    last_read_seq: int = attrs.field(metadata=doc("it never moves back"))
    reader: Literal["agent", "visitor"] = attrs.field(
        default="agent",
        metadata=doc(
            "whose mark: an agent's (to the inbox and the visitor: Seen) or the visitor's"
        ),
    )


@attrs.frozen
class TypingChanged(Wire):
    """Someone is typing in a conversation (``on``) or stopped (``off``). Never stored, no
    ``seq``, never replayed; the text typed is never sent (docs/events.md)."""

    sender_type: SenderType
    sender_id: str
    sender_name: str | None = attrs.field(
        metadata=doc("an agent's name; null for a visitor (the inbox knows its contact)")
    )
    state: Literal["on", "off"]
    expires_in_seconds: int = attrs.field(
        metadata=doc("show it no longer than this without a new `on` (the sender may be gone)")
    )


@attrs.frozen
class Rating(Wire):
    """The visitor's rating of a solved chat."""

    conversation_id: str
    score: int = attrs.field(metadata={"schema": {"minimum": 1, "maximum": 5}})
    comment: str | None
    rated_at: dt.datetime


@attrs.frozen
class Mention(Wire):
    id: str
    name: str


@attrs.frozen
class Note(Wire):
    """An internal note: agents only, never on a visitor's stream, in its replay or its thread."""

    id: str
    conversation_id: str
    author_id: str
    author_name: str
    text: str
    mentions: list[Mention] = attrs.field(metadata=doc("the colleagues it names (@Name)"))
    client_note_id: str | None
    created_at: dt.datetime


@attrs.frozen
class NoteCreated(Wire):
    note: Note


@attrs.frozen
class WidgetDeleted(Wire):
    id: str


# the payload class of each event type the engine describes (a widget's own shape is the web's)
PAYLOADS: dict[EventType, type[Any]] = {
    EventType.CONVERSATION_CREATED: ConversationCreated,
    EventType.CONVERSATION_ASSIGNED: ConversationAssigned,
    EventType.CONVERSATION_STATUS_CHANGED: ConversationStatusChanged,
    EventType.MESSAGE_CREATED: MessageCreated,
    EventType.CONVERSATION_WAIT_TIMEOUT: ConversationWaitTimeout,
    EventType.VISITOR_PRESENCE_UPDATE: VisitorPresenceUpdate,
    EventType.VISITOR_PRESENCE_BATCH: VisitorPresenceBatch,
    EventType.ACTIVITY_BATCH: ActivityBatch,
    EventType.AGENT_PRESENCE_UPDATE: AgentPresenceUpdate,
    EventType.AGENTS_ONLINE_CHANGED: AgentsOnlineChanged,
    EventType.QUEUE_POSITION: QueuePosition,
    EventType.CONVERSATION_READ: ConversationRead,
    EventType.TYPING: TypingChanged,
    EventType.NOTE_CREATED: NoteCreated,
    EventType.CONVERSATION_RATED: Rating,
    EventType.WIDGET_DELETED: WidgetDeleted,
}
