"""The shapes of HTTP answers that are more than one engine value: attrs classes that the
presenters (:mod:`web.presenters`) fill, :func:`engine.wire.unstructure` writes, and the OpenAPI
document shows (:mod:`web.schema`). A field added here is on the wire and in the document at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from engine.presence import AgentStatus
from engine.supervisor import ActorReport, EscalationReport
from engine.values import (
    Attachment,
    Conversation,
    Kind,
    LiveVisitor,
    Message,
    Note,
    Rating,
    SenderType,
    Status,
)
from engine.wire import OPTIONAL, Wire, doc
from storage.queries import SEARCH_LANGUAGES, VIEWS
from web.widgets import WidgetView


@attrs.frozen
class MessageSummary(Wire):
    """A message as a list row shows it."""

    id: str
    seq: int
    sender_type: SenderType
    sender_id: str
    sender_name: str | None
    text: str
    created_at: dt.datetime
    attachments: tuple[Attachment, ...] = attrs.field(
        default=(), metadata=OPTIONAL | doc("files sent with it; absent when none")
    )


@attrs.frozen
class Contact(Wire):
    """Who the visitor is, as the inbox shows it."""

    visitor_id: str
    display_name: str = attrs.field(
        metadata=doc('the name given, else a stable alias ("Pink Lion")')
    )
    name: str | None
    email: str | None
    phone: str | None = attrs.field(metadata=doc("only what a person typed"))
    ip: str | None
    user_agent: str | None
    current_url: str | None
    location: str | None
    browser: str | None
    os: str | None
    device: str | None


# the cursor of the messages before the first one listed (a conversation's latest come first)
EARLIER = doc(
    "null: these are all; else pass as `before` to GET …/messages for the page before them"
)


def _views() -> Any:
    return attrs.field(
        kw_only=True,
        metadata=doc("the inbox views that hold it for this agent (the server's rules)")
        | {"schema": {"items": {"enum": list(VIEWS)}}},
    )


@attrs.frozen
class ConversationWithMessages(Conversation):
    """The visitor's view: the conversation and its latest messages, in seq order."""

    messages: list[Message] = attrs.field(kw_only=True)
    earlier_messages: str | None = attrs.field(kw_only=True, default=None, metadata=EARLIER)
    assigned_seq: int | None = attrs.field(
        kw_only=True,
        metadata=doc(
            'seq of the latest conversation_assigned event (where the widget draws "{agent} '
            'joined the chat"); null while never assigned'
        ),
    )
    visitor_last_read_seq: int = attrs.field(
        kw_only=True,
        metadata=doc("the visitor's read mark: agent messages past it are unread (the badge)"),
    )
    rating: Rating | None = attrs.field(
        kw_only=True, default=None, metadata=doc("the visitor's rating once it gave one")
    )
    agents_last_read_seq: int = attrs.field(
        kw_only=True,
        metadata=doc("the highest agent's read mark: the visitor's messages up to it are \"Seen\""),
    )


@attrs.frozen
class NewConversation(Conversation):
    """A conversation just created, with its first message."""

    messages: list[Message] = attrs.field(kw_only=True)
    agents_online: bool = attrs.field(kw_only=True)


@attrs.frozen
class ConversationDetail(Conversation):
    """The conversation, the contact and its latest messages in seq order."""

    messages: list[Message] = attrs.field(kw_only=True)
    earlier_messages: str | None = attrs.field(kw_only=True, default=None, metadata=EARLIER)
    contact: Contact = attrs.field(kw_only=True)
    views: list[str] = _views()
    visitor_last_read_seq: int = attrs.field(
        kw_only=True,
        metadata=doc('the visitor\'s read mark: agent messages up to it are "Seen"'),
    )
    rating: Rating | None = attrs.field(
        kw_only=True, default=None, metadata=doc("the visitor's rating of the solved chat")
    )


@attrs.frozen
class MessagePage(Wire):
    """Messages read back from a cursor, in seq order."""

    messages: list[Message]
    earlier_messages: str | None = attrs.field(metadata=EARLIER)


@attrs.frozen
class ConversationListItem(Conversation):
    """A conversation as an inbox list shows it."""

    contact: Contact = attrs.field(kw_only=True)
    last_message: MessageSummary | None = attrs.field(kw_only=True)
    first_message: MessageSummary | None = attrs.field(kw_only=True)
    unread: bool = attrs.field(
        kw_only=True, metadata=doc("a visitor message this agent has not opened yet")
    )
    assignee_online: bool | None = attrs.field(
        kw_only=True, metadata=doc("false: the assignee has no inbox open")
    )
    views: list[str] = _views()


@attrs.frozen
class AgentProfile(Wire):
    """The signed-in agent (the component ``Agent``)."""

    id: str
    tenant_id: str
    email: str
    name: str
    avatar_url: str | None


@attrs.frozen
class SignedIn(Wire):
    token: str
    agent: AgentProfile


@attrs.frozen
class Me(Wire):
    agent: AgentProfile
    presence: AgentStatus


@attrs.frozen
class ProfileAnswer(Wire):
    agent: AgentProfile


@attrs.frozen
class Done(Wire):
    ok: Literal[True] = True


@attrs.frozen
class Deleted(Wire):
    id: str
    deleted: Literal[True] = True


@attrs.frozen
class ReportRow(Wire):
    week: str = attrs.field(
        metadata=doc("its Monday, YYYY-MM-DD (weeks start Monday 00:00 UTC)")
        | {"schema": {"format": "date"}}
    )
    agent_id: str
    agent_name: str
    chats: int = attrs.field(metadata=doc("live chats created that week the agent holds"))
    median_first_response_seconds: float | None = attrs.field(
        metadata=doc("to the first agent message; null: none answered")
    )
    median_resolution_seconds: float | None = attrs.field(
        metadata=doc("to solved; null: none solved")
    )
    average_rating: float | None = attrs.field(metadata=doc("null: none rated"))
    ratings: int


@attrs.frozen
class AgentReport(Wire):
    weeks: list[str] = attrs.field(
        metadata=doc("every week of the report (its Monday, YYYY-MM-DD), oldest first")
    )
    rows: list[ReportRow]


@attrs.frozen
class Notes(Wire):
    notes: list[Note]


@attrs.frozen
class Mentioned(Wire):
    note: Note
    contact_name: str | None = attrs.field(metadata=doc("the name the visitor gave, if any"))
    conversation_status: Status


@attrs.frozen
class Mentions(Wire):
    mentions: list[Mentioned]


@attrs.frozen
class CannedReply(Wire):
    id: str
    shortcut: str = attrs.field(metadata=doc("what follows `/` in the composer"))
    text: str = attrs.field(
        metadata=doc(
            "may hold `{{visitor.name}}`, `{{visitor.first_name}}`, `{{agent.name}}`, filled in "
            "by the inbox when the reply is inserted"
        )
    )
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class CannedReplies(Wire):
    canned_replies: list[CannedReply]


@attrs.frozen
class TeamMember(Wire):
    """An agent of the tenant as a colleague sees it (the transfer dialog)."""

    id: str
    name: str
    avatar_url: str | None
    status: Literal["online", "away", "offline"] = attrs.field(
        metadata=doc("online: an inbox open and not away; only they can be handed a chat")
    )
    open_chats: int = attrs.field(metadata=doc("OPEN chats they hold now"))
    capacity: int = attrs.field(metadata=doc("their limit of OPEN chats"))


@attrs.frozen
class Team(Wire):
    agents: list[TeamMember] = attrs.field(metadata=doc("by name"))


@attrs.frozen
class Segment(Wire):
    """A piece of a search result's text: a match (drawn highlighted) or the text around it.
    Plain text, never markup: the inbox writes it with ``textContent``."""

    text: str
    match: bool


_HEADLINE = doc("the text around the matches, cut into pieces in order")


@attrs.frozen
class MessageHit(Wire):
    """A message that matched, with what the result list shows and opens."""

    conversation_id: str
    status: Status
    kind: Kind
    contact: Contact
    message: MessageSummary = attrs.field(
        metadata=doc("the whole message; the thread opens at its `seq`")
    )
    headline: list[Segment] = attrs.field(metadata=_HEADLINE)


@attrs.frozen
class ContactHit(Wire):
    """A contact whose name, email or phone matched, with its latest conversation."""

    conversation_id: str = attrs.field(metadata=doc("the contact's latest conversation"))
    status: Status
    kind: Kind
    contact: Contact
    field: Literal["name", "email", "phone"] = attrs.field(metadata=doc("what matched"))
    headline: list[Segment] = attrs.field(metadata=_HEADLINE)


@attrs.frozen
class SearchResults(Wire):
    query: str
    contacts: list[ContactHit] = attrs.field(
        metadata=doc("on the first page only, the latest updated first, at most 10")
    )
    messages: list[MessageHit] = attrs.field(metadata=doc("the newest first"))
    next_cursor: str | None = attrs.field(
        default=None,
        metadata=doc("pass as `after` for more messages; null when these are all"),
    )


@attrs.frozen
class Workspace(Wire):
    """The agent's workspace (tenant)."""

    id: str
    name: str
    search_language: str = attrs.field(
        metadata=doc(
            "the language messages are searched in: `english` and `spanish` find a word's "
            "other forms (and Spanish words without their accents), `simple` whole words"
        )
        | {"schema": {"enum": list(SEARCH_LANGUAGES)}}
    )


@attrs.frozen
class ReadMark(Wire):
    conversation_id: str
    last_read_seq: int = attrs.field(metadata=doc("it never moves back"))


@attrs.frozen
class ConversationList(Wire):
    conversations: list[ConversationListItem]
    view: str = attrs.field(metadata={"schema": {"enum": list(VIEWS)}})
    next_cursor: str | None = attrs.field(
        default=None, metadata=doc("pass as `after` for the next page; null on the last page")
    )


@attrs.frozen
class Counts(Wire):
    counts: dict[str, int] = attrs.field(
        metadata={
            "schema": {
                "properties": {name: {"type": "integer", "minimum": 0} for name in VIEWS}
                | {"liveVisitors": {"type": "integer", "minimum": 0}},
                "required": [*VIEWS, "liveVisitors"],
                "additionalProperties": False,
            }
        }
    )


@attrs.frozen
class LiveVisitors(Wire):
    visitors: list[LiveVisitor]
    total: int = attrs.field(metadata=doc("live visitors in all, on every page"))
    next_cursor: str | None = attrs.field(
        metadata=doc("pass as `after` for the next page; null on the last page")
    )


@attrs.frozen
class HeartbeatAnswer(Wire):
    widget_status: Literal["ACTIVE"]
    visitor_id: str
    visitor_token: str
    server_time: dt.datetime
    conversation_id: str | None
    agents_online: bool


@attrs.frozen
class Health(Wire):
    status: Literal["ok", "degraded"] = attrs.field(
        metadata=doc("`degraded`: it serves, but actors or services were given up")
    )
    actors: int
    escalated: list[EscalationReport]


@attrs.frozen
class BrokerReport(Wire):
    subscribers: int
    published: int
    delivered: int
    dropped_subscribers: int = attrs.field(metadata=doc("slow sockets dropped (1013)"))


@attrs.frozen
class ClusterNode(Wire):
    node_id: str
    address: str | None = attrs.field(metadata=doc("the node's public URL"))
    started_at: dt.datetime
    seen_at: dt.datetime = attrs.field(metadata=doc("its last lease renewal"))
    live: bool = attrs.field(metadata=doc("renewed within the lease time"))
    shards: int = attrs.field(metadata=doc("live leases it holds"))


@attrs.frozen
class ClusterReport(Wire):
    mode: Literal["single", "cluster"] = attrs.field(
        metadata=doc("`single`: one process, no NATS; `cluster`: this process is one node")
    )
    node_id: str | None
    shards: list[int] = attrs.field(metadata=doc("the shards this process owns"))
    draining: list[int] = attrs.field(metadata=doc("shards being given back to a newcomer"))
    trusted_for_seconds: float = attrs.field(
        metadata=doc("how long its leases stay trusted without a renewal")
    )
    takeovers: int = attrs.field(metadata=doc("shards taken since start"))
    losses: int = attrs.field(metadata=doc("shards lost without giving them back"))
    forwarded: int = attrs.field(metadata=doc("commands sent to their owner on another node"))
    served: int = attrs.field(metadata=doc("commands from other nodes run here"))
    bus_connected: bool
    nodes: list[ClusterNode] | None = attrs.field(
        metadata=doc(
            "every node the database knows; null when the database did not answer within 2 s "
            "(this node may be cut off from it: see `trustedForSeconds`)"
        )
    )


@attrs.frozen
class ActorList(Wire):
    actors: list[ActorReport] = attrs.field(metadata=doc("without `recentEvents`"))
    broker: BrokerReport
    escalated: list[EscalationReport]


@attrs.frozen
class WidgetList(Wire):
    widgets: list[WidgetView]
