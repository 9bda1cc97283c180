"""Storage verbs: asyncio functions that take the connection first, SQL in plain sight.

Call them from Trio through :meth:`storage.db.Database.run`, which wraps each call in one
transaction. Rows come back as engine objects (``Conversation``, ``Message``) or plain dicts in
snake_case; the web layer turns them into camelCase wire objects.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Sequence
from typing import Any

import asyncpg
import attrs

from engine.errors import AtCapacity, ConversationActive
from engine.values import (
    Agent,
    Attachment,
    Commit,
    Contact,
    Conversation,
    Event,
    Kind,
    Link,
    Message,
    OpenChat,
    RoutingAgent,
    RoutingSnapshot,
    SenderType,
    Status,
    VisitorSession,
    WaitingChat,
)
from storage.db import single_statement

Row = dict[str, Any]


def _row(record: asyncpg.Record | None) -> Row | None:
    return dict(record) if record is not None else None


# --- secrets ----------------------------------------------------------------------------------


async def select_or_create_secret(connection: asyncpg.Connection, name: str) -> bytes:
    await connection.execute(
        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        secrets.token_bytes(32),
    )
    value: bytes = await connection.fetchval(
        "SELECT value FROM server_secrets WHERE name = $1", name
    )
    return value


# --- visitor token keys (web/auth.py VisitorTokens) ------------------------------------------

TOKEN_KEYS_LOCK = 74_201_127  # pg_advisory_xact_lock key: one key change at a time


@attrs.frozen
class TokenKeyRow:
    kid: str
    secret: bytes
    created_at: dt.datetime
    retired_at: dt.datetime | None


async def select_token_keys(
    connection: asyncpg.Connection, *, retired: bool = False
) -> list[TokenKeyRow]:
    """The visitor-token keys, oldest first; the retired ones only when ``retired``."""
    rows = await connection.fetch(
        """SELECT kid, secret, created_at, retired_at FROM visitor_token_keys
            WHERE $1 OR retired_at IS NULL ORDER BY created_at, kid""",
        retired,
    )
    return [TokenKeyRow(**dict(r)) for r in rows]


async def ensure_token_key(connection: asyncpg.Connection) -> list[TokenKeyRow]:
    """The keys not retired; a first one made when there is none (a new database)."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", TOKEN_KEYS_LOCK)
    keys = await select_token_keys(connection)
    if not keys:
        await insert_token_key(connection)
        keys = await select_token_keys(connection)
    return keys


async def insert_token_key(connection: asyncpg.Connection) -> str:
    """A new key, which signs from now on (the newest not retired); its key id."""
    kid = "k" + secrets.token_hex(4)
    await connection.execute(
        "INSERT INTO visitor_token_keys (kid, secret, created_at) VALUES ($1, $2, now())",
        kid,
        secrets.token_bytes(32),
    )
    return kid


async def retire_token_key(connection: asyncpg.Connection, kid: str) -> str:
    """Retire ``kid``: ``retired``, or why not: ``unknown``, ``already``, ``last`` (the only key
    not retired: nothing could sign)."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", TOKEN_KEYS_LOCK)
    row = await connection.fetchrow(
        "SELECT retired_at FROM visitor_token_keys WHERE kid = $1 FOR UPDATE", kid
    )
    if row is None:
        return "unknown"
    if row["retired_at"] is not None:
        return "already"
    active = await connection.fetchval(
        "SELECT count(*) FROM visitor_token_keys WHERE retired_at IS NULL"
    )
    if active <= 1:
        return "last"
    await connection.execute("UPDATE visitor_token_keys SET retired_at = now() WHERE kid = $1", kid)
    return "retired"


# --- tenants, agents, sessions --------------------------------------------------------------


async def insert_tenant(connection: asyncpg.Connection, tenant_id: str, name: str) -> None:
    await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, name)


async def select_tenant(connection: asyncpg.Connection, tenant_id: str) -> Row | None:
    return _row(await connection.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id))


async def insert_agent(
    connection: asyncpg.Connection,
    agent_id: str,
    tenant_id: str,
    email: str,
    name: str,
    password_hash: str,
    avatar_url: str | None = None,
    max_open_chats: int = 5,
) -> None:
    await connection.execute(
        """INSERT INTO agents (id, tenant_id, email, name, password_hash, avatar_url,
                               max_open_chats)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        agent_id,
        tenant_id,
        email,
        name,
        password_hash,
        avatar_url,
        max_open_chats,
    )


async def select_agent_by_email(connection: asyncpg.Connection, email: str) -> Row | None:
    return _row(
        await connection.fetchrow("SELECT * FROM agents WHERE lower(email) = lower($1)", email)
    )


async def update_agent_password_hash(
    connection: asyncpg.Connection, agent_id: str, password_hash: str
) -> None:
    await connection.execute(
        "UPDATE agents SET password_hash = $2 WHERE id = $1", agent_id, password_hash
    )


async def insert_agent_session(
    connection: asyncpg.Connection,
    token_hash: bytes,
    agent_id: str,
    tenant_id: str,
    expires_at: dt.datetime,
) -> None:
    await connection.execute(
        """INSERT INTO agent_sessions (token_hash, agent_id, tenant_id, expires_at)
           VALUES ($1, $2, $3, $4)""",
        token_hash,
        agent_id,
        tenant_id,
        expires_at,
    )


async def select_agent_by_session(
    connection: asyncpg.Connection, token_hash: bytes, now: dt.datetime
) -> Row | None:
    return _row(
        await connection.fetchrow(
            """SELECT a.id, a.tenant_id, a.email, a.name, a.avatar_url
                 FROM agent_sessions s JOIN agents a ON a.id = s.agent_id
                WHERE s.token_hash = $1 AND s.expires_at > $2""",
            token_hash,
            now,
        )
    )


async def delete_agent_session(connection: asyncpg.Connection, token_hash: bytes) -> None:
    await connection.execute("DELETE FROM agent_sessions WHERE token_hash = $1", token_hash)


# --- widgets ----------------------------------------------------------------------------------


async def insert_widget(
    connection: asyncpg.Connection,
    widget_id: str,
    tenant_id: str,
    name: str,
    domains: Sequence[str],
    wait_timeout_seconds: int,
    settings: dict[str, Any] | None = None,
) -> Row:
    row = await connection.fetchrow(
        """INSERT INTO widgets (id, tenant_id, name, domains, wait_timeout_seconds, settings)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING *""",
        widget_id,
        tenant_id,
        name,
        list(domains),
        wait_timeout_seconds,
        settings or {},
    )
    return _widget(row)


def _widget(row: Any) -> Row:
    return dict(row)


async def select_widget(connection: asyncpg.Connection, widget_id: str) -> Row | None:
    """A live widget by id alone: the visitor side knows the id, the tenant comes from the row."""
    row = await connection.fetchrow(
        "SELECT * FROM widgets WHERE id = $1 AND deleted_at IS NULL", widget_id
    )
    return _widget(row) if row else None


async def select_widgets(connection: asyncpg.Connection, tenant_id: str) -> list[Row]:
    rows = await connection.fetch(
        """SELECT * FROM widgets WHERE tenant_id = $1 AND deleted_at IS NULL
            ORDER BY created_at, id""",
        tenant_id,
    )
    return [_widget(r) for r in rows]


async def select_recently_active_widgets(
    connection: asyncpg.Connection, since: dt.datetime
) -> list[str]:
    """Ids of widgets pinged after ``since``: their actors re-arm the 24-hour timer on start."""
    rows = await connection.fetch(
        "SELECT id FROM widgets WHERE deleted_at IS NULL AND last_seen_at > $1", since
    )
    return [r["id"] for r in rows]


async def save_widget_ping(connection: asyncpg.Connection, row: Row) -> None:
    await connection.execute(
        """UPDATE widgets SET last_seen_at = $2, last_seen_domain = $3, last_seen_url = $4
            WHERE id = $1""",
        row["id"],
        row["last_seen_at"],
        row["last_seen_domain"],
        row["last_seen_url"],
    )


async def save_widget_refusal(connection: asyncpg.Connection, row: Row) -> None:
    await connection.execute(
        """UPDATE widgets SET last_refused_at = $2, last_refused_domain = $3 WHERE id = $1""",
        row["id"],
        row["last_refused_at"],
        row["last_refused_domain"],
    )


_WIDGET_COLUMNS = ("name", "domains", "wait_timeout_seconds", "settings")


async def update_widget(
    connection: asyncpg.Connection, widget_id: str, changes: dict[str, Any], now: dt.datetime
) -> Row | None:
    """Set the given editable columns; the new row, or None when the widget is gone."""
    unknown = set(changes) - set(_WIDGET_COLUMNS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    row = await connection.fetchrow(
        """UPDATE widgets SET
                name = COALESCE($2, name),
                domains = COALESCE($3, domains),
                wait_timeout_seconds = COALESCE($4, wait_timeout_seconds),
                settings = COALESCE($5::jsonb, settings),
                updated_at = $6
            WHERE id = $1 AND deleted_at IS NULL
        RETURNING *""",
        widget_id,
        changes.get("name"),
        list(changes["domains"]) if "domains" in changes else None,
        changes.get("wait_timeout_seconds"),
        changes.get("settings"),
        now,
    )
    return _widget(row) if row else None


async def delete_widget(connection: asyncpg.Connection, widget_id: str, now: dt.datetime) -> None:
    await connection.execute(
        "UPDATE widgets SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL", widget_id, now
    )


# --- visitors and contacts -------------------------------------------------------------------


def _visitor(row: asyncpg.Record) -> VisitorSession:
    return VisitorSession(
        visitor_id=row["visitor_id"],
        tenant_id=row["tenant_id"],
        widget_id=row["widget_id"],
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        current_url=row["current_url"],
        current_domain=row["current_domain"],
        page_title=row["page_title"],
        referrer=row["referrer"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        location=row["location"],
        conversation_id=row["conversation_id"],
        name=row.get("contact_name"),
    )


_VISITORS = """SELECT v.*, ct.name AS contact_name FROM visitor_sessions v
                 LEFT JOIN contacts ct ON ct.tenant_id = v.tenant_id AND ct.visitor_id = v.visitor_id"""


async def select_visitor_session(
    connection: asyncpg.Connection, visitor_id: str
) -> VisitorSession | None:
    row = await connection.fetchrow(f"{_VISITORS} WHERE v.visitor_id = $1", visitor_id)
    return _visitor(row) if row else None


@single_statement
async def select_visitor_sessions(
    connection: asyncpg.Connection, visitor_ids: list[str]
) -> dict[str, VisitorSession]:
    """:func:`select_visitor_session` for many visitors in one statement (a group-read round):
    the sessions found, by visitor id (an id with no row is absent)."""
    rows = await connection.fetch(f"{_VISITORS} WHERE v.visitor_id = ANY($1::text[])", visitor_ids)
    return {row["visitor_id"]: _visitor(row) for row in rows}


# What a visitor session write stores (both paths): every column but ``conversation_id``.
_VISITOR_INSERT = """INSERT INTO visitor_sessions (visitor_id, tenant_id, widget_id, first_seen_at,
                   last_seen_at, current_url, current_domain, page_title, referrer, ip,
                   user_agent, location)"""
_VISITOR_UPSERT = """ON CONFLICT (visitor_id) DO UPDATE SET
                   widget_id = EXCLUDED.widget_id, last_seen_at = EXCLUDED.last_seen_at,
                   first_seen_at = EXCLUDED.first_seen_at,
                   current_url = EXCLUDED.current_url, current_domain = EXCLUDED.current_domain,
                   page_title = EXCLUDED.page_title, referrer = EXCLUDED.referrer,
                   ip = EXCLUDED.ip, user_agent = EXCLUDED.user_agent,
                   location = EXCLUDED.location"""


def _visitor_row(s: VisitorSession) -> tuple[Any, ...]:
    """The values of :data:`_VISITOR_INSERT`'s columns, in order."""
    return (
        s.visitor_id,
        s.tenant_id,
        s.widget_id,
        s.first_seen_at,
        s.last_seen_at,
        s.current_url,
        s.current_domain,
        s.page_title,
        s.referrer,
        s.ip,
        s.user_agent,
        s.location,
    )


@single_statement
async def save_visitor_session(connection: asyncpg.Connection, session: VisitorSession) -> None:
    """Upsert the session: every column but ``conversation_id``, which only conversation
    commits write (the visitor's active live chat; see :class:`engine.commit.Commit`)."""
    await connection.execute(
        f"""{_VISITOR_INSERT}
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           {_VISITOR_UPSERT}""",
        *_visitor_row(session),
    )


@single_statement
async def save_visitor_sessions(
    connection: asyncpg.Connection, sessions: list[VisitorSession]
) -> None:
    """:func:`save_visitor_session` for many sessions in one statement (a group-commit round);
    the latest of one visitor's sessions wins."""
    latest = list({s.visitor_id: s for s in sessions}.values())
    await connection.execute(
        f"""{_VISITOR_INSERT}
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                   $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[],
                   $10::text[], $11::text[], $12::text[])
           {_VISITOR_UPSERT}""",
        *_columns(latest, _visitor_row, 12),
    )


def _columns(rows: Sequence[Any], values: Any, width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column arrays, for ``unnest``."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, values(row), strict=True):
            column.append(value)
    return columns


async def select_live_visitors(
    connection: asyncpg.Connection,
    tenant_id: str,
    since: dt.datetime,
    *,
    limit: int | None = None,
    after: tuple[dt.datetime, str] | None = None,
) -> list[VisitorSession]:
    """The tenant's visitors with a heartbeat after ``since`` in arrival order (first seen, then
    id); ``limit`` rows after the ``after`` key (a page) when given."""
    first_seen, visitor = after if after is not None else (None, None)
    rows = await connection.fetch(
        f"""{_VISITORS} WHERE v.tenant_id = $1 AND v.last_seen_at > $2
              AND ($3::timestamptz IS NULL OR (v.first_seen_at, v.visitor_id) > ($3, $4::text))
            ORDER BY v.first_seen_at, v.visitor_id
            LIMIT $5""",
        tenant_id,
        since,
        first_seen,
        visitor,
        limit,
    )
    return [_visitor(r) for r in rows]


@single_statement
async def count_live_visitors(
    connection: asyncpg.Connection, tenant_id: str, since: dt.datetime
) -> int:
    """How many visitors of ``tenant_id`` sent a heartbeat after ``since`` (counted in SQL: the
    inbox's count must not load every row of a flood)."""
    count: int = await connection.fetchval(
        "SELECT count(*) FROM visitor_sessions WHERE tenant_id = $1 AND last_seen_at > $2",
        tenant_id,
        since,
    )
    return count


async def select_live_visitors_page(
    connection: asyncpg.Connection,
    tenant_id: str,
    since: dt.datetime,
    *,
    limit: int,
    after: tuple[dt.datetime, str] | None,
) -> tuple[list[VisitorSession], int]:
    """One page of :func:`select_live_visitors` and how many there are in all (in SQL)."""
    page = await select_live_visitors(connection, tenant_id, since, limit=limit, after=after)
    return page, await count_live_visitors(connection, tenant_id, since)


# A contact as agents see it: what the visitor gave when a chat started (written by that
# conversation's commit) and where the visitor is now (the visitor session's, written by the
# visitor-session actor): each column has one writer.
_CONTACT = """to_jsonb(ct) || jsonb_build_object(
                  'current_url', COALESCE(vs.current_url, ct.current_url))"""
_CONTACT_JOIN = """LEFT JOIN visitor_sessions vs
                  ON vs.tenant_id = ct.tenant_id AND vs.visitor_id = ct.visitor_id"""


async def select_contact(
    connection: asyncpg.Connection, tenant_id: str, visitor_id: str
) -> Row | None:
    contact: Row | None = await connection.fetchval(
        f"""SELECT {_CONTACT} FROM contacts ct {_CONTACT_JOIN}
             WHERE ct.tenant_id = $1 AND ct.visitor_id = $2""",
        tenant_id,
        visitor_id,
    )
    return contact


# --- conversations ----------------------------------------------------------------------------


def _conversation(row: asyncpg.Record) -> Conversation:
    assignee = None
    if row["assignee_id"] is not None:
        assignee = Agent(row["assignee_id"], row["assignee_name"], row["assignee_avatar"])
    return Conversation(
        id=row["id"],
        tenant_id=row["tenant_id"],
        widget_id=row["widget_id"],
        visitor_id=row["visitor_id"],
        kind=Kind(row["kind"]),
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_seq=row["last_seq"],
        assignee=assignee,
        wait_deadline=row["wait_deadline"],
        wait_timed_out=row["wait_timed_out"],
        solved_at=row["solved_at"],
    )


#: A message's columns as :func:`_message` reads them (not its search vector, which only
#: searches read, nor the language it was indexed in).
MESSAGE_COLUMNS = """id, conversation_id, tenant_id, seq, sender_type, sender_id, sender_name,
                     text, client_message_id, client_timestamp, created_at, attachments"""


def _message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        tenant_id=row["tenant_id"],
        seq=row["seq"],
        sender_type=SenderType(row["sender_type"]),
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        text=row["text"],
        client_message_id=row["client_message_id"],
        client_timestamp=row["client_timestamp"],
        created_at=row["created_at"],
        attachments=Attachment.all_of(row["attachments"]),
    )


async def select_conversation(
    connection: asyncpg.Connection, conversation_id: str
) -> Conversation | None:
    row = await connection.fetchrow("SELECT * FROM conversations WHERE id = $1", conversation_id)
    return _conversation(row) if row else None


async def select_conversation_for_actor(
    connection: asyncpg.Connection, conversation_id: str
) -> tuple[Conversation, list[Message]] | None:
    """The state an actor rehydrates from: the conversation and its client-identified messages."""
    row = await connection.fetchrow("SELECT * FROM conversations WHERE id = $1", conversation_id)
    if row is None:
        return None
    rows = await connection.fetch(
        f"""SELECT {MESSAGE_COLUMNS} FROM messages
            WHERE conversation_id = $1 AND client_message_id IS NOT NULL
            ORDER BY seq""",
        conversation_id,
    )
    return _conversation(row), [_message(r) for r in rows]


ACTIVE_CHAT_INDEX = "conversations_one_active_live_chat"

# What a commit writes, one shape for the lone and the grouped statements alike.
_CONVERSATION_INSERT = """INSERT INTO conversations (id, tenant_id, widget_id, visitor_id, kind,
                    status, assignee_id, assignee_name, assignee_avatar, last_seq, wait_deadline,
                    wait_timed_out, created_at, updated_at, solved_at)"""
_CONVERSATION_UPSERT = """ON CONFLICT (id) DO UPDATE SET
                    status = EXCLUDED.status, assignee_id = EXCLUDED.assignee_id,
                    assignee_name = EXCLUDED.assignee_name,
                    assignee_avatar = EXCLUDED.assignee_avatar, last_seq = EXCLUDED.last_seq,
                    wait_deadline = EXCLUDED.wait_deadline,
                    wait_timed_out = EXCLUDED.wait_timed_out,
                    updated_at = EXCLUDED.updated_at, solved_at = EXCLUDED.solved_at"""
_MESSAGE_INSERT = """INSERT INTO messages (id, conversation_id, tenant_id, seq, sender_type,
                    sender_id, sender_name, text, client_message_id, client_timestamp,
                    created_at, language)"""
# a message with files goes alone (see groupable): its attachments, and the claim of its files
_FILES_MESSAGE_INSERT = _MESSAGE_INSERT.replace("language)", "language, attachments)")
#: The language a message is indexed in for search: its workspace's, when it is stored.
_MESSAGE_LANGUAGE = "(SELECT search_language FROM tenants WHERE id = {})"
_EVENT_INSERT = "INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, at, data)"


def _conversation_row(st: Conversation) -> tuple[Any, ...]:
    """The values of :data:`_CONVERSATION_INSERT`'s columns, in order."""
    return (
        st.id,
        st.tenant_id,
        st.widget_id,
        st.visitor_id,
        st.kind.value,
        st.status.value,
        st.assignee.id if st.assignee else None,
        st.assignee.name if st.assignee else None,
        st.assignee.avatar_url if st.assignee else None,
        st.last_seq,
        st.wait_deadline,
        st.wait_timed_out,
        st.created_at,
        st.updated_at,
        st.solved_at,
    )


def _message_row(m: Message) -> tuple[Any, ...]:
    """The values of :data:`_MESSAGE_INSERT`'s columns, in order."""
    return (
        m.id,
        m.conversation_id,
        m.tenant_id,
        m.seq,
        m.sender_type.value,
        m.sender_id,
        m.sender_name,
        m.text,
        m.client_message_id,
        m.client_timestamp,
        m.created_at,
    )


def _event_row(e: Event, data: Any) -> tuple[Any, ...]:
    """The values of :data:`_EVENT_INSERT`'s columns, ``data`` as the statement takes it (a
    dict through the jsonb codec, or JSON text to cast)."""
    return (e.conversation_id, e.seq, e.tenant_id, e.type.value, e.at, data)


async def commit_conversation(connection: asyncpg.Connection, commit: Commit) -> None:
    """Persist one batch of an actor's transitions: the new state, its events, its messages;
    with the checks and side rows the batch asks for (see :class:`engine.commit.Commit`).

    Raises :class:`~engine.errors.AtCapacity` or :class:`~engine.errors.ConversationActive`
    (the caller's transaction then rolls back: nothing of the batch is stored).
    """
    state = commit.state
    if commit.claim is not None:
        await _check_capacity(connection, state, commit.claim)
    if commit.contact is not None:
        await _upsert_contact(connection, state, commit.contact)
    if commit.link is Link.SET:
        await _activate(connection, state)
    else:
        await _upsert_conversation(connection, state)
    if commit.messages:
        await connection.executemany(
            f"""{_FILES_MESSAGE_INSERT}
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                       {_MESSAGE_LANGUAGE.format("$3")}, $12)""",
            [(*_message_row(m), _attachments_value(m)) for m in commit.messages],
        )
        files = [a.id for m in commit.messages for a in m.attachments]
        if files:  # stored with their message: no longer the janitor's (migration 016)
            await connection.execute(
                "DELETE FROM file_deletions WHERE attachment_id = ANY($1::text[])", files
            )
    if commit.events:
        await connection.executemany(
            f"""{_EVENT_INSERT} VALUES ($1, $2, $3, $4, $5, $6)""",
            [_event_row(e, e.data) for e in commit.events],
        )
    if commit.link is Link.SET:
        await connection.execute(
            "UPDATE visitor_sessions SET conversation_id = $2 WHERE visitor_id = $1",
            state.visitor_id,
            state.id,
        )
    elif commit.link is Link.CLEAR:
        await connection.execute(
            """UPDATE visitor_sessions SET conversation_id = NULL
                WHERE visitor_id = $1 AND conversation_id = $2""",
            state.visitor_id,
            state.id,
        )


def groupable(commit: Commit) -> bool:
    """A commit :func:`commit_conversations` may store with others: no capacity claim, no
    contact, no change to the visitor's link, no files (those checks and side rows go alone)."""
    return (
        commit.claim is None
        and commit.contact is None
        and commit.link is None
        and not any(m.attachments for m in commit.messages)
    )


def _attachments_value(m: Message) -> list[dict[str, Any]] | None:
    """A message's ``attachments`` column: their wire form, or NULL for none."""
    return [a.to_wire() for a in m.attachments] or None


@single_statement
async def commit_conversations(connection: asyncpg.Connection, commits: list[Commit]) -> None:
    """Many actors' :func:`groupable` commits in one statement (a group-commit round): the
    conversations' new states, their messages and their events, each table written once through
    ``unnest``. One statement is one transaction: all of the round is stored, or nothing."""
    states = list({c.state.id: c.state for c in commits}.values())
    if len(states) != len(commits):  # one actor commits one batch at a time: never two here
        raise ValueError("two commits of one conversation in one round")
    messages = [m for c in commits for m in c.messages]
    events = [e for c in commits for e in c.events]
    await connection.execute(
        f"""WITH c AS (
             {_CONVERSATION_INSERT}
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::integer[],
                    $11::timestamptz[], $12::boolean[], $13::timestamptz[], $14::timestamptz[],
                    $15::timestamptz[])
             {_CONVERSATION_UPSERT}
           ), m AS (
             {_MESSAGE_INSERT}
             SELECT u.*, {_MESSAGE_LANGUAGE.format("u.tenant_id")}
               FROM unnest($16::text[], $17::text[], $18::text[], $19::integer[],
                    $20::text[], $21::text[], $22::text[], $23::text[], $24::text[],
                    $25::text[], $26::timestamptz[])
                    AS u(id, conversation_id, tenant_id, seq, sender_type, sender_id,
                         sender_name, text, client_message_id, client_timestamp, created_at)
           )
           {_EVENT_INSERT}
           SELECT conversation_id, seq, tenant_id, type, at, data::jsonb
             FROM unnest($27::text[], $28::integer[], $29::text[], $30::text[],
                         $31::timestamptz[], $32::text[])
                  AS e(conversation_id, seq, tenant_id, type, at, data)""",
        *_columns(states, _conversation_row, 15),
        *_columns(messages, _message_row, 11),
        *_columns(events, lambda e: _event_row(e, json.dumps(e.data)), 6),
    )


async def _activate(connection: asyncpg.Connection, state: Conversation) -> None:
    """Write a live chat that becomes active; the one-active-chat index may refuse it."""
    for _ in range(3):
        try:
            async with connection.transaction():  # a savepoint: the index may refuse
                await _upsert_conversation(connection, state)
            return
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != ACTIVE_CHAT_INDEX:
                raise
        other = await connection.fetchval(
            """SELECT id FROM conversations
                WHERE tenant_id = $1 AND visitor_id = $2 AND kind = 'live_chat'
                  AND status <> 'SOLVED' AND id <> $3""",
            state.tenant_id,
            state.visitor_id,
            state.id,
        )
        if other is not None:
            raise ConversationActive(
                f"this visitor already has an active conversation ({other}); resume it",
                conversation_id=other,
            )
        # the other chat was solved between the refusal and the look: try again
    raise ConversationActive("this visitor's chats are changing; retry", conversation_id="")


async def _check_capacity(
    connection: asyncpg.Connection, state: Conversation, agent_id: str
) -> None:
    """Refuse if ``agent_id`` already holds as many OPEN chats as their limit.

    The agent's row is locked first, so commits that give the same agent a chat run this check
    one after another; the count then runs in a new snapshot (READ COMMITTED) and sees every
    commit that went before.
    """
    capacity = await connection.fetchval(
        "SELECT max_open_chats FROM agents WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        agent_id,
        state.tenant_id,
    )
    if capacity is None:
        return  # not an agent of this tenant (the API never sends one)
    open_chats: int = await connection.fetchval(
        """SELECT count(*) FROM conversations
            WHERE tenant_id = $1 AND assignee_id = $2 AND status = 'OPEN' AND id <> $3""",
        state.tenant_id,
        agent_id,
        state.id,
    )
    if open_chats >= capacity:
        raise AtCapacity(
            f"you have {open_chats} open chats, your limit; solve one first",
            open_chats=open_chats,
            capacity=capacity,
        )


async def _upsert_conversation(connection: asyncpg.Connection, state: Conversation) -> None:
    await connection.execute(
        f"""{_CONVERSATION_INSERT}
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
           {_CONVERSATION_UPSERT}""",
        *_conversation_row(state),
    )


async def _upsert_contact(
    connection: asyncpg.Connection, state: Conversation, contact: Contact
) -> None:
    """Create or update the visitor's contact; a field left ``None`` keeps what was stored."""
    await connection.execute(
        """INSERT INTO contacts (tenant_id, visitor_id, name, email, phone, ip, user_agent,
                                 location, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT (tenant_id, visitor_id) DO UPDATE SET
               name = COALESCE(EXCLUDED.name, contacts.name),
               email = COALESCE(EXCLUDED.email, contacts.email),
               phone = COALESCE(EXCLUDED.phone, contacts.phone),
               ip = COALESCE(EXCLUDED.ip, contacts.ip),
               user_agent = COALESCE(EXCLUDED.user_agent, contacts.user_agent),
               location = COALESCE(EXCLUDED.location, contacts.location),
               updated_at = EXCLUDED.updated_at""",
        state.tenant_id,
        state.visitor_id,
        contact.name,
        contact.email,
        contact.phone,
        contact.ip,
        contact.user_agent,
        contact.location,
        state.updated_at,
    )


async def select_events_after(
    connection: asyncpg.Connection,
    conversation_id: str,
    after_seq: int,
    tenant_id: str,
    visitor_id: str | None = None,
    *,
    limit: int | None = None,
) -> tuple[int, list[Event]] | None:
    """Events of a conversation after ``after_seq``, in order, at most ``limit``; ``None`` when
    the conversation is unknown or not this tenant's (or, with ``visitor_id``, not this
    visitor's). The first item is the conversation's last seq."""
    owner = await connection.fetchrow(
        "SELECT visitor_id, last_seq FROM conversations WHERE id = $1 AND tenant_id = $2",
        conversation_id,
        tenant_id,
    )
    if owner is None or (visitor_id is not None and owner["visitor_id"] != visitor_id):
        return None
    rows = await connection.fetch(
        """SELECT * FROM conversation_events WHERE conversation_id = $1 AND seq > $2
            ORDER BY seq LIMIT $3""",
        conversation_id,
        after_seq,
        limit,
    )
    return owner["last_seq"], [
        Event(
            type=r["type"],
            at=r["at"],
            tenant_id=r["tenant_id"],
            data=r["data"],
            conversation_id=r["conversation_id"],
            seq=r["seq"],
            visitor_id=owner["visitor_id"],
        )
        for r in rows
    ]


async def select_messages(
    connection: asyncpg.Connection,
    conversation_id: str,
    *,
    last: int | None = None,
    before: int | None = None,
) -> list[Message]:
    """A conversation's messages in seq order: every one, or the ``last`` of those before seq
    ``before`` (a page, reading back)."""
    if last is None and before is None:
        rows = await connection.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY seq",
            conversation_id,
        )
        return [_message(r) for r in rows]
    rows = await connection.fetch(
        f"""SELECT {MESSAGE_COLUMNS} FROM messages
            WHERE conversation_id = $1 AND ($2::int IS NULL OR seq < $2)
            ORDER BY seq DESC LIMIT $3""",
        conversation_id,
        before,
        last,
    )
    return [_message(r) for r in reversed(rows)]


async def select_latest_conversation(
    connection: asyncpg.Connection, tenant_id: str, visitor_id: str, kind: Kind = Kind.LIVE_CHAT
) -> Conversation | None:
    row = await connection.fetchrow(
        """SELECT * FROM conversations WHERE tenant_id = $1 AND visitor_id = $2 AND kind = $3
            ORDER BY created_at DESC, id DESC LIMIT 1""",
        tenant_id,
        visitor_id,
        kind.value,
    )
    return _conversation(row) if row else None


async def select_conversation_detail(
    connection: asyncpg.Connection,
    tenant_id: str,
    conversation_id: str,
    agent_id: str,
    *,
    last_messages: int | None = None,
) -> tuple[Conversation, Row | None, list[Message], list[str], int, Row | None] | None:
    """The conversation, its contact, its messages (the ``last_messages`` latest, when given),
    the views that hold it for the agent, the visitor's read mark (what it has seen) and the
    visitor's rating (None: not rated)."""
    row = await connection.fetchrow(
        f"SELECT c.*, {MEMBERSHIP} FROM conversations c WHERE c.tenant_id = $1 AND c.id = $3"
        " AND ($2::text IS NOT NULL)",
        tenant_id,
        agent_id,
        conversation_id,
    )
    if row is None:
        return None
    conversation = _conversation(row)
    contact = await select_contact(connection, tenant_id, conversation.visitor_id)
    messages = await select_messages(connection, conversation_id, last=last_messages)
    visitor_mark, _ = await select_read_marks(connection, conversation_id)
    rating = await select_rating(connection, conversation_id)
    return conversation, contact, messages, list(row["views"]), visitor_mark, rating


OPEN = "(c.status = 'OPEN' OR (c.kind = 'offline_message' AND c.status <> 'SOLVED'))"

UNREAD = """c.status <> 'SOLVED' AND EXISTS (
    SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender_type = 'visitor'
       AND m.seq > COALESCE((SELECT r.last_read_seq FROM conversation_reads r
                              WHERE r.conversation_id = c.id AND r.agent_id = $2), 0))"""

# The inbox's views, one rule each, in SQL over ``conversations c`` with ``$2`` the asking agent.
# A view's list, its count and a conversation's membership (``views``) all read these rules;
# nothing else (the inbox page included) decides what a view holds.
VIEW_RULES: dict[str, str] = {
    # work in progress: live chats an agent took, and offline messages (tickets) not solved
    "open": OPEN,
    # visitor messages this agent has not opened (conversation_reads is per agent)
    "unread": UNREAD,
    "assigned": "c.status <> 'SOLVED' AND c.assignee_id = $2",
    "unassigned": "c.status <> 'SOLVED' AND c.assignee_id IS NULL",
    "waiting": "c.status = 'WAITING' AND c.kind = 'live_chat'",
    "solved": "c.status = 'SOLVED'",
    "all": "true",
}
VIEWS = tuple(VIEW_RULES)

# the views that hold ``c`` for agent ``$2``, in VIEWS order
MEMBERSHIP = (
    "array_remove(ARRAY["
    + ", ".join(f"CASE WHEN {rule} THEN '{view}' END" for view, rule in VIEW_RULES.items())
    + "], NULL) AS views"
)


async def count_conversations(
    connection: asyncpg.Connection, tenant_id: str, agent_id: str
) -> dict[str, int]:
    """How many conversations each inbox view holds for this agent (one query)."""
    row = await connection.fetchrow(
        "SELECT "
        + ", ".join(
            f"count(*) FILTER (WHERE {rule}) AS {view}" for view, rule in VIEW_RULES.items()
        )
        + " FROM conversations c WHERE c.tenant_id = $1 AND ($2::text IS NOT NULL)",
        tenant_id,
        agent_id,
    )
    return {view: int(row[view]) for view in VIEWS}


async def mark_read(
    connection: asyncpg.Connection,
    tenant_id: str,
    agent_id: str,
    conversation_id: str,
    seq: int | None,
    now: dt.datetime,
) -> ReadMark | None:
    """Move the agent's read mark forward (never back); None for an unknown id.

    ``seq`` None = everything so far; a ``seq`` past the end is clamped to the last one. One
    statement, no write when the mark does not move; ``news`` when it moved past a visitor's
    message (what the visitor's "Seen" and the agent's unread count are about).
    """
    row = await connection.fetchrow(
        """WITH c AS (
             SELECT last_seq, visitor_id FROM conversations WHERE id = $2 AND tenant_id = $5
           ), old AS (
             SELECT last_read_seq FROM conversation_reads
              WHERE agent_id = $1 AND conversation_id = $2
           ), moved AS (
             INSERT INTO conversation_reads (agent_id, conversation_id, last_read_seq, read_at)
             SELECT $1, $2, LEAST(COALESCE($3::int, last_seq), last_seq), $4 FROM c
             ON CONFLICT (agent_id, conversation_id) DO UPDATE
                SET last_read_seq = EXCLUDED.last_read_seq, read_at = EXCLUDED.read_at
              WHERE conversation_reads.last_read_seq < EXCLUDED.last_read_seq
             RETURNING last_read_seq
           )
           SELECT c.last_seq, c.visitor_id,
                  COALESCE((SELECT last_read_seq FROM moved),
                           (SELECT last_read_seq FROM old)) AS mark,
                  EXISTS (SELECT 1 FROM messages m
                           WHERE m.conversation_id = $2 AND m.sender_type = 'visitor'
                             AND m.seq > COALESCE((SELECT last_read_seq FROM old), 0)
                             AND m.seq <= (SELECT last_read_seq FROM moved)) AS news
             FROM c""",
        agent_id,
        conversation_id,
        seq,
        now,
        tenant_id,
    )
    if row is None:
        return None
    return ReadMark(int(row["mark"]), bool(row["news"]), row["visitor_id"])


@attrs.frozen
class ReadMark:
    """A read mark after a move: where it stands, whether it moved past anything the other side
    sees change (``news``: then it is told), and the conversation's visitor."""

    seq: int
    news: bool
    visitor_id: str | None = None


async def mark_visitor_read(
    connection: asyncpg.Connection,
    tenant_id: str,
    visitor_id: str,
    conversation_id: str,
    seq: int | None,
    now: dt.datetime,
) -> ReadMark | None:
    """Move the visitor's read mark forward (never back); None for a conversation that is not
    this visitor's. ``seq`` None = everything so far; past the end: the last one
    (:func:`mark_visitor_reads` for one)."""
    marks = await mark_visitor_reads(
        connection, [(tenant_id, visitor_id, conversation_id, seq)], now
    )
    return marks.get(conversation_id)


async def mark_visitor_reads(
    connection: asyncpg.Connection,
    marks: Sequence[tuple[str, str, str, int | None]],
    now: dt.datetime,
) -> dict[str, ReadMark]:
    """Move visitors' read marks forward (never back), ``(tenant, visitor, conversation, seq)``
    each, one conversation once: one statement for them all. The marks by conversation; one
    that is not that visitor's (in that tenant) is left out.

    No write where a mark would not move (a visitor's widget says what it has read about once a
    second while the chat is in front of it: most say it again). ``news`` when it moved past
    anything but the visitor's own messages (an agent's message, an agent joining: what the
    widget's unread badge and the agents' "Seen" are about); every seq of a conversation is an
    event, a message's the seq of its ``message_created``."""
    rows = await connection.fetch(
        """WITH i AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
                        AS i (tenant_id, visitor_id, conversation_id, seq)
           ), c AS (
             SELECT i.conversation_id,
                    LEAST(COALESCE(i.seq, conv.last_seq), conv.last_seq) AS target
               FROM i JOIN conversations conv
                 ON conv.id = i.conversation_id AND conv.tenant_id = i.tenant_id
                AND conv.visitor_id = i.visitor_id
           ), old AS (
             SELECT r.conversation_id, r.last_read_seq
               FROM visitor_reads r JOIN c USING (conversation_id)
           ), moved AS (
             INSERT INTO visitor_reads (conversation_id, last_read_seq, read_at)
             SELECT conversation_id, target, $5 FROM c
             ON CONFLICT (conversation_id) DO UPDATE
                SET last_read_seq = EXCLUDED.last_read_seq, read_at = EXCLUDED.read_at
              WHERE visitor_reads.last_read_seq < EXCLUDED.last_read_seq
             RETURNING conversation_id, last_read_seq
           )
           SELECT c.conversation_id,
                  COALESCE(m.last_read_seq, o.last_read_seq) AS mark,
                  m.last_read_seq IS NOT NULL AND (
                    SELECT count(*) FROM messages x
                     WHERE x.conversation_id = c.conversation_id AND x.sender_type = 'visitor'
                       AND x.seq > COALESCE(o.last_read_seq, 0) AND x.seq <= m.last_read_seq
                  ) < m.last_read_seq - COALESCE(o.last_read_seq, 0) AS news
             FROM c LEFT JOIN old o USING (conversation_id)
                    LEFT JOIN moved m USING (conversation_id)""",
        [m[0] for m in marks],
        [m[1] for m in marks],
        [m[2] for m in marks],
        [m[3] for m in marks],
        now,
    )
    return {r["conversation_id"]: ReadMark(int(r["mark"]), bool(r["news"])) for r in rows}


async def select_read_marks(
    connection: asyncpg.Connection, conversation_id: str
) -> tuple[int, int]:
    """``(visitor's mark, the highest agent's mark)`` of a conversation (0: nothing read)."""
    row = await connection.fetchrow(
        """SELECT COALESCE((SELECT last_read_seq FROM visitor_reads WHERE conversation_id = $1), 0)
                      AS visitor,
                  COALESCE((SELECT max(last_read_seq) FROM conversation_reads
                             WHERE conversation_id = $1), 0) AS agents""",
        conversation_id,
    )
    return int(row["visitor"]), int(row["agents"])


async def update_agent_profile(
    connection: asyncpg.Connection,
    agent_id: str,
    name: str | None,
    avatar_url: str | None,
    clear_avatar: bool,
) -> Row | None:
    return _row(
        await connection.fetchrow(
            """UPDATE agents SET name = COALESCE($2, name),
                      avatar_url = CASE WHEN $4 THEN NULL ELSE COALESCE($3, avatar_url) END
                WHERE id = $1
            RETURNING id, tenant_id, email, name, avatar_url""",
            agent_id,
            name,
            avatar_url,
            clear_avatar,
        )
    )


async def select_conversations(
    connection: asyncpg.Connection,
    tenant_id: str,
    view: str,
    agent_id: str,
    limit: int = 200,
    after: tuple[dt.datetime, str] | None = None,
) -> list[tuple[Conversation, Row | None, Row | None, Row | None, bool, list[str]]]:
    """Conversations of one inbox view, the most recently updated first (then by id, down),
    ``limit`` of them after the ``after`` key (a page); each with its contact, last message,
    first message, whether it is unread for this agent and the views that hold it."""
    updated, cid = after if after is not None else (None, None)
    where = VIEW_RULES[view]
    rows = await connection.fetch(
        f"""SELECT c.*, {_CONTACT} AS contact,
                   (SELECT to_jsonb(m) - 'search' - 'language' FROM messages m
                     WHERE m.conversation_id = c.id
                     ORDER BY m.seq DESC LIMIT 1) AS last_message,
                   (SELECT to_jsonb(m) - 'search' - 'language' FROM messages m
                     WHERE m.conversation_id = c.id
                     ORDER BY m.seq ASC LIMIT 1) AS first_message,
                   ({UNREAD}) AS unread, {MEMBERSHIP}
              FROM conversations c
              LEFT JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.visitor_id = c.visitor_id
              {_CONTACT_JOIN}
             WHERE c.tenant_id = $1 AND ($2::text IS NOT NULL) AND {where}
               AND ($4::timestamptz IS NULL OR (c.updated_at, c.id) < ($4, $5::text))
             ORDER BY c.updated_at DESC, c.id DESC LIMIT $3""",
        tenant_id,
        agent_id,
        limit,
        updated,
        cid,
    )
    return [
        (
            _conversation(r),
            r["contact"],
            r["last_message"],
            r["first_message"],
            r["unread"],
            list(r["views"]),
        )
        for r in rows
    ]


async def select_pending_wait_timers(connection: asyncpg.Connection) -> list[str]:
    """Conversations whose wait timer must run: re-armed at start-up."""
    rows = await connection.fetch(
        """SELECT id FROM conversations
            WHERE status = 'WAITING' AND wait_deadline IS NOT NULL AND NOT wait_timed_out"""
    )
    return [r["id"] for r in rows]


# --- routing ----------------------------------------------------------------------------------


async def select_team(connection: asyncpg.Connection, tenant_id: str) -> list[Row]:
    """The tenant's agents (id, name, avatar_url, max_open_chats) with ``held``: their OPEN chats,
    counted as the accepting commit counts them."""
    rows: list[Row] = await connection.fetch(
        """SELECT a.id, a.name, a.avatar_url, a.max_open_chats,
                  (SELECT count(*) FROM conversations c
                    WHERE c.tenant_id = a.tenant_id AND c.assignee_id = a.id
                      AND c.status = 'OPEN') AS held
             FROM agents a WHERE a.tenant_id = $1""",
        tenant_id,
    )
    return rows


async def select_routing(connection: asyncpg.Connection, tenant_id: str) -> RoutingSnapshot:
    """What the tenant's router decides from: waiting and open chats, agents, recent waits."""
    rows = await connection.fetch(
        """SELECT c.id, c.visitor_id, c.status, c.assignee_id, c.created_at,
                  COALESCE(w.settings->>'routing', 'manual') AS routing
             FROM conversations c JOIN widgets w ON w.id = c.widget_id
            WHERE c.tenant_id = $1 AND c.kind = 'live_chat' AND c.status IN ('WAITING', 'OPEN')
            ORDER BY c.created_at, c.id""",
        tenant_id,
    )
    agents = await select_team(connection, tenant_id)
    average = await connection.fetchval(
        """SELECT avg(extract(epoch FROM waited)) FROM (
               SELECT min(e.at) - c.created_at AS waited
                 FROM conversations c
                 JOIN conversation_events e ON e.conversation_id = c.id
                WHERE c.tenant_id = $1 AND c.kind = 'live_chat'
                  AND e.type = 'conversation_assigned'
                GROUP BY c.id, c.created_at
                ORDER BY c.created_at DESC LIMIT 20) recent""",
        tenant_id,
    )
    return RoutingSnapshot(
        waiting=tuple(
            WaitingChat(r["id"], r["visitor_id"], r["created_at"], r["routing"])
            for r in rows
            if r["status"] == "WAITING"
        ),
        open=tuple(
            OpenChat(r["id"], r["assignee_id"], r["routing"])
            for r in rows
            if r["status"] == "OPEN" and r["assignee_id"] is not None
        ),
        agents=tuple(
            RoutingAgent(a["id"], a["name"], a["avatar_url"], a["max_open_chats"]) for a in agents
        ),
        average_wait_seconds=float(average) if average is not None else None,
        held={a["id"]: int(a["held"]) for a in agents},
    )


async def select_tenants_with_waiting_chats(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        """SELECT DISTINCT tenant_id FROM conversations
            WHERE status = 'WAITING' AND kind = 'live_chat'"""
    )
    return [r["tenant_id"] for r in rows]


async def select_visitor_thread(
    connection: asyncpg.Connection,
    tenant_id: str,
    visitor_id: str,
    *,
    last_messages: int | None = None,
) -> tuple[Conversation, list[Message], int | None, tuple[int, int], Row | None] | None:
    """The visitor's latest live chat, its messages (the ``last_messages`` latest, when given),
    the seq of its latest assignment (where the widget draws "{agent} joined the chat"), the
    read marks (as :func:`select_read_marks`) and its rating (as :func:`select_rating`); one
    crossing for the widget's rehydration, three statements."""
    latest = await select_latest_conversation(connection, tenant_id, visitor_id)
    if latest is None:
        return None
    messages = await select_messages(connection, latest.id, last=last_messages)
    row = await connection.fetchrow(
        """SELECT (SELECT max(seq) FROM conversation_events
                    WHERE conversation_id = $1 AND type = 'conversation_assigned') AS assigned,
                  COALESCE((SELECT last_read_seq FROM visitor_reads
                             WHERE conversation_id = $1), 0) AS visitor_mark,
                  COALESCE((SELECT max(last_read_seq) FROM conversation_reads
                             WHERE conversation_id = $1), 0) AS agents_mark,
                  r.conversation_id, r.score, r.comment, r.rated_at
             FROM (SELECT 1) AS one
             LEFT JOIN conversation_ratings r ON r.conversation_id = $1""",
        latest.id,
    )
    rating = (
        {k: row[k] for k in ("conversation_id", "score", "comment", "rated_at")}
        if row["score"] is not None
        else None
    )
    marks = (int(row["visitor_mark"]), int(row["agents_mark"]))
    return latest, messages, row["assigned"], marks, rating


# --- sign-in attempts (migration 009) ----------------------------------------------------------

LOGIN_LOCK_CLASS = 16  # pg_advisory_xact_lock(class, key): apart from the migration lock's space


async def begin_login_attempt(
    connection: asyncpg.Connection,
    attempt: str,
    limits: Sequence[tuple[str, int]],
    now: dt.datetime,
    window: dt.timedelta,
) -> dt.datetime | None:
    """Count sign-in ``attempt`` against each ``(key, limit)`` before its password is checked.

    Answers None when every key had room (the attempt is recorded under each: it counts as a
    failure until :func:`forget_login_attempt` or :func:`clear_login_failures`), or else the
    moment the first full key has room again (nothing recorded). Attempts on the same keys are
    taken one at a time (advisory locks in key order), so parallel ones cannot all see room.
    """
    keys = sorted(key for key, _ in limits)
    for key in keys:
        await connection.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", LOGIN_LOCK_CLASS, key
        )
    await connection.execute(
        "DELETE FROM login_attempts WHERE key = ANY($1::text[]) AND at <= $2", keys, now - window
    )
    counted = {
        r["key"]: r
        for r in await connection.fetch(
            """SELECT key, count(*) AS n, min(at) AS first FROM login_attempts
                WHERE key = ANY($1::text[]) GROUP BY key""",
            keys,
        )
    }
    full: list[dt.datetime] = [
        counted[key]["first"] + window
        for key, limit in limits
        if key in counted and counted[key]["n"] >= limit
    ]
    if full:
        return max(full)
    await connection.executemany(
        "INSERT INTO login_attempts (attempt, key, at) VALUES ($1, $2, $3)",
        [(attempt, key, now) for key in keys],
    )
    return None


@single_statement
async def forget_login_attempt(connection: asyncpg.Connection, attempt: str) -> None:
    """An attempt that checked no password (the server was busy): it counts for nothing."""
    await connection.execute("DELETE FROM login_attempts WHERE attempt = $1", attempt)


@single_statement
async def clear_login_failures(connection: asyncpg.Connection, attempt: str, key: str) -> None:
    """A sign-in that succeeded: its own rows, and the earlier failures under ``key`` (its
    account from its address), no longer count."""
    await connection.execute(
        "DELETE FROM login_attempts WHERE attempt = $1 OR key = $2", attempt, key
    )


async def begin_sign_in(
    connection: asyncpg.Connection,
    attempt: str,
    limits: Sequence[tuple[str, int]],
    now: dt.datetime,
    window: dt.timedelta,
    email: str,
) -> tuple[dt.datetime | None, Row | None]:
    """:func:`begin_login_attempt`, and when it has room the agent row of ``email`` (or None)
    read in the same crossing: ``(None, row)``, or ``(free_at, None)`` when a limit is full."""
    free_at = await begin_login_attempt(connection, attempt, limits, now, window)
    if free_at is not None:
        return free_at, None
    return None, await select_agent_by_email(connection, email)


async def select_message_page(
    connection: asyncpg.Connection,
    tenant_id: str,
    conversation_id: str,
    *,
    last: int,
    before: int | None,
    visitor_id: str | None = None,
) -> list[Message] | None:
    """:func:`select_messages` of a conversation of ``tenant_id`` (and, with ``visitor_id``, of
    that visitor); None when it is not one."""
    owner = await connection.fetchval(
        "SELECT visitor_id FROM conversations WHERE id = $1 AND tenant_id = $2",
        conversation_id,
        tenant_id,
    )
    if owner is None or (visitor_id is not None and owner != visitor_id):
        return None
    return await select_messages(connection, conversation_id, last=last, before=before)


# --- canned replies (migration 012) ------------------------------------------------------------

CANNED_LIMIT = 500  # a workspace's canned replies, at most (Settings lists them all)


def _like(words: str) -> str:
    """``words`` as an ILIKE pattern that matches them literally (``%``, ``_``, ``\\`` escaped)."""
    return re.sub(r"([%_\\])", r"\\\1", words)


async def select_canned_replies(
    connection: asyncpg.Connection, tenant_id: str, query: str | None, limit: int
) -> list[Row]:
    """The workspace's canned replies: all of them by shortcut, or those matching ``query``:
    shortcuts that start with it first, then texts that hold it (case-insensitive)."""
    if not query:
        rows = await connection.fetch(
            """SELECT * FROM canned_replies WHERE tenant_id = $1
                ORDER BY lower(shortcut) LIMIT $2""",
            tenant_id,
            limit,
        )
    else:
        rows = await connection.fetch(
            """SELECT *, lower(shortcut) LIKE lower($2) || '%' AS by_shortcut
                 FROM canned_replies
                WHERE tenant_id = $1
                  AND (lower(shortcut) LIKE lower($2) || '%' OR text ILIKE '%' || $2 || '%')
                ORDER BY by_shortcut DESC, lower(shortcut) LIMIT $3""",
            tenant_id,
            _like(query),
            limit,
        )
    return [dict(r) for r in rows]


async def insert_canned_reply(
    connection: asyncpg.Connection,
    tenant_id: str,
    reply_id: str,
    shortcut: str,
    text: str,
    now: dt.datetime,
) -> Row | None:
    """The new reply, or None when its shortcut is taken in the workspace (any case)."""
    row = await connection.fetchrow(
        """INSERT INTO canned_replies (id, tenant_id, shortcut, text, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $5)
           ON CONFLICT (tenant_id, lower(shortcut)) DO NOTHING
           RETURNING *""",
        reply_id,
        tenant_id,
        shortcut,
        text,
        now,
    )
    return dict(row) if row else None


async def update_canned_reply(
    connection: asyncpg.Connection,
    tenant_id: str,
    reply_id: str,
    shortcut: str | None,
    text: str | None,
    now: dt.datetime,
) -> Row | bool | None:
    """The reply after the change; None when there is no such reply in the workspace; False
    when the new shortcut is another reply's."""
    try:
        row = await connection.fetchrow(
            """UPDATE canned_replies SET shortcut = COALESCE($3, shortcut),
                      text = COALESCE($4, text), updated_at = $5
                WHERE tenant_id = $1 AND id = $2 RETURNING *""",
            tenant_id,
            reply_id,
            shortcut,
            text,
            now,
        )
    except asyncpg.UniqueViolationError:
        return False
    return dict(row) if row else None


async def delete_canned_reply(
    connection: asyncpg.Connection, tenant_id: str, reply_id: str
) -> bool:
    deleted = await connection.fetchval(
        "DELETE FROM canned_replies WHERE tenant_id = $1 AND id = $2 RETURNING id",
        tenant_id,
        reply_id,
    )
    return deleted is not None


async def count_canned_replies(connection: asyncpg.Connection, tenant_id: str) -> int:
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM canned_replies WHERE tenant_id = $1", tenant_id
        )
    )


# --- internal notes and mentions (migration 013) -----------------------------------------------

NOTES_LIMIT = 500  # a conversation's notes read at once
# a note's mentions as a JSON array of {id, name}, by name (``n``: the note)
NOTE_MENTIONS = """COALESCE(
    (SELECT json_agg(json_build_object('id', a.id, 'name', a.name) ORDER BY a.name, a.id)
       FROM note_mentions m JOIN agents a ON a.id = m.agent_id
      WHERE m.note_id = n.id), '[]')"""
MENTIONS_LIMIT = 100  # an agent's latest mentions


async def insert_note(
    connection: asyncpg.Connection,
    tenant_id: str,
    conversation_id: str,
    note_id: str,
    author: Row,
    text: str,
    client_note_id: str | None,
    mentioned: Sequence[str],
    now: dt.datetime,
) -> tuple[Row, bool] | None:
    """Store a note and its mentions in one transaction: ``(note, True)``; the note its author
    sent before with that ``client_note_id``: ``(note, False)``; None for a conversation not
    of the tenant."""
    async with connection.transaction():
        exists = await connection.fetchval(
            "SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2",
            conversation_id,
            tenant_id,
        )
        if exists is None:
            return None
        row = await connection.fetchrow(
            """INSERT INTO conversation_notes (id, tenant_id, conversation_id, author_id,
                                               author_name, text, client_note_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (author_id, client_note_id) DO NOTHING
               RETURNING *""",
            note_id,
            tenant_id,
            conversation_id,
            author["id"],
            author["name"],
            text,
            client_note_id,
            now,
        )
        if row is None:  # sent again: the first one
            row = await connection.fetchrow(
                "SELECT * FROM conversation_notes WHERE author_id = $1 AND client_note_id = $2",
                author["id"],
                client_note_id,
            )
            assert row is not None  # the conflict was on this very key
            return await _with_mentions(connection, dict(row)), False
        await connection.executemany(
            "INSERT INTO note_mentions (note_id, agent_id) VALUES ($1, $2)",
            [(note_id, agent_id) for agent_id in dict.fromkeys(mentioned)],
        )
        return await _with_mentions(connection, dict(row)), True


async def _with_mentions(connection: asyncpg.Connection, note: Row) -> Row:
    rows = await connection.fetch(
        """SELECT a.id, a.name FROM note_mentions m JOIN agents a ON a.id = m.agent_id
            WHERE m.note_id = $1 ORDER BY a.name, a.id""",
        note["id"],
    )
    note["mentions"] = [dict(r) for r in rows]
    return note


async def select_notes(
    connection: asyncpg.Connection, tenant_id: str, conversation_id: str
) -> list[Row] | None:
    """A conversation's notes, oldest first (at most :data:`NOTES_LIMIT`, the latest); None for
    a conversation not of the tenant."""
    exists = await connection.fetchval(
        "SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2", conversation_id, tenant_id
    )
    if exists is None:
        return None
    rows = await connection.fetch(
        f"""SELECT n.*, {NOTE_MENTIONS} AS mentions
             FROM conversation_notes n
            WHERE n.conversation_id = $1 AND n.tenant_id = $2
            ORDER BY n.created_at DESC, n.id DESC LIMIT $3""",
        conversation_id,
        tenant_id,
        NOTES_LIMIT,
    )
    return [_note_row(r) for r in reversed(rows)]


def _note_row(record: Any) -> Row:
    note = dict(record)
    if isinstance(note["mentions"], str):
        note["mentions"] = json.loads(note["mentions"])
    return note


async def select_mentions(
    connection: asyncpg.Connection, tenant_id: str, agent_id: str
) -> list[Row]:
    """The notes that mention the agent, newest first, each with its conversation's contact."""
    rows = await connection.fetch(
        f"""SELECT n.*, {NOTE_MENTIONS} AS mentions, c.status AS conversation_status,
                  ct.name AS contact_name
             FROM note_mentions mine
             JOIN conversation_notes n ON n.id = mine.note_id
             JOIN conversations c ON c.id = n.conversation_id
             LEFT JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.visitor_id = c.visitor_id
            WHERE mine.agent_id = $1 AND n.tenant_id = $2
            ORDER BY n.created_at DESC, n.id DESC LIMIT $3""",
        agent_id,
        tenant_id,
        MENTIONS_LIMIT,
    )
    return [_note_row(r) for r in rows]


# --- ratings (migration 014) -------------------------------------------------------------------


async def rate_conversation(
    connection: asyncpg.Connection,
    tenant_id: str,
    visitor_id: str,
    conversation_id: str,
    score: int,
    comment: str | None,
    now: dt.datetime,
) -> Row | str | None:
    """Store the visitor's rating of its SOLVED conversation (again: replaced); the rating,
    ``"not_solved"``, or None for a conversation that is not this visitor's."""
    status = await connection.fetchval(
        "SELECT status FROM conversations WHERE id = $1 AND tenant_id = $2 AND visitor_id = $3",
        conversation_id,
        tenant_id,
        visitor_id,
    )
    if status is None:
        return None
    if status != "SOLVED":
        return "not_solved"
    row = await connection.fetchrow(
        """INSERT INTO conversation_ratings (conversation_id, tenant_id, score, comment, rated_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (conversation_id) DO UPDATE SET
               score = EXCLUDED.score, comment = EXCLUDED.comment, rated_at = EXCLUDED.rated_at
           RETURNING conversation_id, score, comment, rated_at""",
        conversation_id,
        tenant_id,
        score,
        comment,
        now,
    )
    return dict(row)


async def select_rating(connection: asyncpg.Connection, conversation_id: str) -> Row | None:
    row = await connection.fetchrow(
        """SELECT conversation_id, score, comment, rated_at FROM conversation_ratings
            WHERE conversation_id = $1""",
        conversation_id,
    )
    return dict(row) if row else None


# --- reports -------------------------------------------------------------------------------------


async def select_agent_report(
    connection: asyncpg.Connection, tenant_id: str, since: dt.datetime
) -> list[Row]:
    """Per week (Monday 00:00 UTC) and agent, the live chats created since ``since`` that the
    agent holds (its assignee now: a transferred chat counts for whom it went to): how many, the
    median seconds to the first agent message and to solved, the average rating."""
    rows = await connection.fetch(
        """WITH chats AS (
               SELECT c.assignee_id, c.created_at, c.solved_at, r.score,
                      date_trunc('week', c.created_at AT TIME ZONE 'UTC') AS week,
                      (SELECT min(m.created_at) FROM messages m
                        WHERE m.conversation_id = c.id AND m.sender_type = 'agent') AS replied
                 FROM conversations c
                 LEFT JOIN conversation_ratings r ON r.conversation_id = c.id
                WHERE c.tenant_id = $1 AND c.kind = 'live_chat'
                  AND c.assignee_id IS NOT NULL AND c.created_at >= $2)
           SELECT chats.week::date AS week, a.id AS agent_id, a.name AS agent_name,
                  count(*) AS chats,
                  percentile_cont(0.5) WITHIN GROUP (
                      ORDER BY extract(epoch FROM replied - chats.created_at))
                      FILTER (WHERE replied IS NOT NULL) AS first_response,
                  percentile_cont(0.5) WITHIN GROUP (
                      ORDER BY extract(epoch FROM solved_at - chats.created_at))
                      FILTER (WHERE solved_at IS NOT NULL) AS resolution,
                  avg(score) AS rating, count(score) AS ratings
             FROM chats JOIN agents a ON a.id = chats.assignee_id
            GROUP BY chats.week, a.id, a.name
            ORDER BY chats.week, a.name, a.id""",
        tenant_id,
        since,
    )
    return [dict(r) for r in rows]


# --- search (migration 015) -------------------------------------------------------------------

#: The languages a workspace may search in; a message is indexed in its workspace's language at
#: the time it is stored (``messages.language``), and a search asks each of them.
SEARCH_LANGUAGES = ("simple", "english", "spanish")
#: What marks a match in a headline: control characters, taken out of the text first, so that a
#: visitor's text can never forge a mark (web/routes/search.py cuts the headline at them).
MATCH_START, MATCH_END = "\x01", "\x02"
_MARKS = f"StartSel={MATCH_START}, StopSel={MATCH_END}"
#: A message up to this long comes whole, its matches marked; a longer one as up to two excerpts
#: around its matches (which leave out what the parser takes for HTML tags).
WHOLE_HEADLINE = 300
_HEADLINE_WHOLE = f"{_MARKS}, HighlightAll=true"
_HEADLINE_EXCERPTS = f'{_MARKS}, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "'
# one branch per language, each with a constant configuration so that the GIN index serves it
_MATCHES = " OR ".join(
    f"(m.language = '{language}' AND m.search @@ websearch_to_tsquery('{language}', $2))"
    for language in SEARCH_LANGUAGES
)


async def set_search_language(
    connection: asyncpg.Connection, tenant_id: str, language: str
) -> Row | None:
    """The workspace after the change (messages stored from now on are indexed in it)."""
    return _row(
        await connection.fetchrow(
            "UPDATE tenants SET search_language = $2 WHERE id = $1 RETURNING *",
            tenant_id,
            language,
        )
    )


async def search_messages(
    connection: asyncpg.Connection,
    tenant_id: str,
    words: str,
    *,
    limit: int,
    after: tuple[dt.datetime, str] | None = None,
) -> list[Row]:
    """The workspace's messages matching ``words`` (web search syntax: words, "a phrase",
    -without, or), the newest first, ``limit`` of them after the ``after`` key; each with its
    headline (matches between :data:`MATCH_START` and :data:`MATCH_END`), its conversation's
    status and kind, and the contact."""
    at, message_id = after if after is not None else (None, None)
    rows = await connection.fetch(
        f"""WITH hits AS (
              SELECT m.id, m.conversation_id, m.seq, m.sender_type, m.sender_id, m.sender_name,
                     m.text, m.created_at, m.language
                FROM messages m
               WHERE m.tenant_id = $1 AND ({_MATCHES})
                 AND ($4::timestamptz IS NULL OR (m.created_at, m.id) < ($4, $5::text))
               ORDER BY m.created_at DESC, m.id DESC LIMIT $3)
            SELECT to_jsonb(h) - 'language' AS message, c.status, c.kind, c.visitor_id,
                   ts_headline(curbe_search_config(h.language),
                               translate(h.text, $6, ''),
                               websearch_to_tsquery(curbe_search_config(h.language), $2),
                               CASE WHEN length(h.text) <= $7 THEN $8 ELSE $9 END) AS headline,
                   {_CONTACT} AS contact
              FROM hits h
              JOIN conversations c ON c.id = h.conversation_id
              LEFT JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.visitor_id = c.visitor_id
              {_CONTACT_JOIN}
             ORDER BY h.created_at DESC, h.id DESC""",
        tenant_id,
        words,
        limit,
        at,
        message_id,
        MATCH_START + MATCH_END,
        WHOLE_HEADLINE,
        _HEADLINE_WHOLE,
        _HEADLINE_EXCERPTS,
    )
    return [dict(r) for r in rows]


async def search_contacts(
    connection: asyncpg.Connection, tenant_id: str, words: str, digits: str | None, limit: int
) -> list[Row]:
    """The workspace's contacts whose name or email holds ``words`` (case-insensitive), or whose
    phone holds ``digits`` whatever its spaces and signs, the latest updated first; each with its
    latest conversation (contacts without one are left out: there is nothing to open)."""
    rows = await connection.fetch(
        f"""SELECT {_CONTACT} AS contact, ct.visitor_id, c.id AS conversation_id, c.status,
                   c.kind
              FROM contacts ct
              {_CONTACT_JOIN}
              JOIN LATERAL (
                   SELECT id, status, kind FROM conversations c
                    WHERE c.tenant_id = ct.tenant_id AND c.visitor_id = ct.visitor_id
                    ORDER BY c.updated_at DESC, c.id DESC LIMIT 1) c ON true
             WHERE ct.tenant_id = $1
               AND (ct.name ILIKE '%' || $2 || '%' OR ct.email ILIKE '%' || $2 || '%'
                    OR ($3::text IS NOT NULL
                        AND regexp_replace(ct.phone, '[^0-9]', '', 'g') LIKE '%' || $3 || '%'))
             ORDER BY ct.updated_at DESC, ct.visitor_id LIMIT $4""",
        tenant_id,
        _like(words),
        digits,
        limit,
    )
    return [dict(r) for r in rows]


# --- attachments' files (migration 016) ------------------------------------------------------


async def expect_file(
    connection: asyncpg.Connection, tenant_id: str, attachment_id: str, due_at: dt.datetime
) -> None:
    """Record a file before its bytes are written: the janitor removes it at ``due_at`` unless
    the commit of its message claims it first (:func:`commit_conversation`)."""
    await connection.execute(
        """INSERT INTO file_deletions (attachment_id, tenant_id, due_at) VALUES ($1, $2, $3)
           ON CONFLICT (attachment_id) DO UPDATE SET due_at = EXCLUDED.due_at""",
        attachment_id,
        tenant_id,
        due_at,
    )


async def select_due_files(
    connection: asyncpg.Connection, now: dt.datetime, limit: int
) -> list[tuple[str, str]]:
    """``(tenant_id, attachment_id)`` of files due for removal, the longest due first."""
    rows = await connection.fetch(
        """SELECT tenant_id, attachment_id FROM file_deletions WHERE due_at <= $1
            ORDER BY due_at LIMIT $2""",
        now,
        limit,
    )
    return [(r["tenant_id"], r["attachment_id"]) for r in rows]


async def forget_files(connection: asyncpg.Connection, attachment_ids: list[str]) -> None:
    await connection.execute(
        "DELETE FROM file_deletions WHERE attachment_id = ANY($1::text[])", attachment_ids
    )


async def select_attachment(
    connection: asyncpg.Connection,
    tenant_id: str,
    conversation_id: str,
    attachment_id: str,
    visitor_id: str | None = None,
) -> Row | None:
    """An attachment of a message of the conversation, in the tenant (and the visitor's own
    conversation when ``visitor_id`` is given); None otherwise."""
    row = await connection.fetchrow(
        """SELECT a.value AS attachment
             FROM conversations c
             JOIN messages m ON m.conversation_id = c.id AND m.attachments IS NOT NULL
             CROSS JOIN LATERAL jsonb_array_elements(m.attachments) AS a(value)
            WHERE c.id = $1 AND c.tenant_id = $2 AND ($4::text IS NULL OR c.visitor_id = $4)
              AND a.value->>'id' = $3
            LIMIT 1""",
        conversation_id,
        tenant_id,
        attachment_id,
        visitor_id,
    )
    return dict(row["attachment"]) if row else None
