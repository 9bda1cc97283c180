"""The conversation state machine ``engine.conversation.apply``: pure, synchronous, no Trio.

Covers the full transition table (every status x every command), seq numbering, the wait timer,
message validation, timestamps and wire forms, purity, and a Hypothesis property test over random
command sequences.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.clock import UTC, iso
from engine.conversation import (
    MAX_MESSAGE_LENGTH,
    TYPING_EXPIRES_SECONDS,
    TYPING_REPEAT_SECONDS,
    Accept,
    Command,
    Create,
    PostMessage,
    Reopen,
    Solve,
    Transfer,
    Transition,
    Typing,
    TypingGate,
    WaitTimeout,
    apply,
    typing_event,
)
from engine.errors import AlreadyAssigned, Conflict, EngineError, IllegalTransition
from engine.values import Agent, Conversation, Event, EventType, Kind, SenderType, Status

T0 = dt.datetime(2026, 11, 29, 13, 20, 0, 123456, tzinfo=UTC)
WAIT_SECONDS = 90

ALICE = Agent("agent-alice", "Alice", "https://example.test/alice.png")
BOB = Agent("agent-bob", "Bob")

CONV_ID = "conv-1"
TENANT_ID = "tenant-1"
WIDGET_ID = "widget-1"
VISITOR_ID = "visitor-1"

CREATED = EventType.CONVERSATION_CREATED.value
MESSAGE = EventType.MESSAGE_CREATED.value
ASSIGNED = EventType.CONVERSATION_ASSIGNED.value
STATUS = EventType.CONVERSATION_STATUS_CHANGED.value
TIMEOUT = EventType.CONVERSATION_WAIT_TIMEOUT.value

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def create_cmd(
    kind: Kind = Kind.LIVE_CHAT,
    text: str = "Hello, is anyone there?",
    *,
    wait: int = WAIT_SECONDS,
    visitor_name: str | None = "Vera",
    client_message_id: str | None = "cm-1",
) -> Create:
    return Create(
        conversation_id=CONV_ID,
        tenant_id=TENANT_ID,
        widget_id=WIDGET_ID,
        visitor_id=VISITOR_ID,
        kind=kind,
        wait_timeout_seconds=wait,
        first_message_id="msg-first",
        first_message=text,
        visitor_name=visitor_name,
        client_message_id=client_message_id,
    )


_msg_counter = iter(range(1, 10**9))


def visitor_msg(text: str = "still there?", **kw: Any) -> PostMessage:
    return PostMessage(
        message_id=f"msg-v{next(_msg_counter)}",
        sender_type=SenderType.VISITOR,
        sender_id=VISITOR_ID,
        sender_name="Vera",
        text=text,
        **kw,
    )


def agent_msg(text: str = "Hi, how can I help?", agent: Agent = ALICE, **kw: Any) -> PostMessage:
    return PostMessage(
        message_id=f"msg-a{next(_msg_counter)}",
        sender_type=SenderType.AGENT,
        sender_id=agent.id,
        sender_name=agent.name,
        text=text,
        **kw,
    )


def run(
    commands: Sequence[Command], state: Conversation | None = None, start: float = 0.0
) -> tuple[Conversation, list[Event], list[Transition]]:
    """Apply commands one second apart; return the final state, all events and all transitions."""
    events: list[Event] = []
    transitions: list[Transition] = []
    for i, command in enumerate(commands):
        t = apply(state, command, at(start + i))
        transitions.append(t)
        events.extend(t.events)
        state = t.state
    assert state is not None
    return state, events, transitions


def types(events: Sequence[Event]) -> list[str]:
    return [e.type for e in events]


# --- states of the table ------------------------------------------------------------------------

STATE_BUILDERS: dict[str, list[Command]] = {
    "none": [],
    "waiting": [create_cmd()],
    "waiting_offline": [create_cmd(Kind.OFFLINE_MESSAGE)],
    "waiting_timed_out": [create_cmd(), WaitTimeout()],
    "open_alice": [create_cmd(), Accept(ALICE)],
    "solved_alice": [create_cmd(), Accept(ALICE), Solve(ALICE)],
    "solved_unassigned": [create_cmd(), Solve(ALICE)],
}


def build(name: str) -> Conversation | None:
    commands = STATE_BUILDERS[name]
    if not commands:
        return None
    state, _, _ = run(commands)
    return state


COMMANDS: dict[str, Callable[[], Command]] = {
    "create_live": lambda: create_cmd(Kind.LIVE_CHAT),
    "create_offline": lambda: create_cmd(Kind.OFFLINE_MESSAGE),
    "accept_alice": lambda: Accept(ALICE),
    "accept_bob": lambda: Accept(BOB),
    "visitor_msg": visitor_msg,
    "agent_msg_alice": lambda: agent_msg(agent=ALICE),
    "solve": lambda: Solve(ALICE),
    "reopen_alice": lambda: Reopen(ALICE),
    "reopen_bob": lambda: Reopen(BOB),
    "wait_timeout": WaitTimeout,
    "transfer_bob": lambda: Transfer(BOB),
}


def ok(status: Status, events: list[str], assignee: str | None) -> tuple[Any, ...]:
    return ("ok", status, events, assignee)


def err(exc: type[EngineError], code: str) -> tuple[Any, ...]:
    return ("err", exc, code)


WAITING, OPEN, SOLVED = Status.WAITING, Status.OPEN, Status.SOLVED
IT = IllegalTransition
NO_CONV = err(IT, "no_conversation")
EXISTS = err(IT, "already_exists")
ILLEGAL = err(IT, "illegal_transition")

TABLE: dict[str, dict[str, tuple[Any, ...]]] = {
    "none": {
        "create_live": ok(WAITING, [CREATED, MESSAGE], None),
        "create_offline": ok(WAITING, [CREATED, MESSAGE], None),
        "accept_alice": NO_CONV,
        "accept_bob": NO_CONV,
        "visitor_msg": NO_CONV,
        "agent_msg_alice": NO_CONV,
        "solve": NO_CONV,
        "reopen_alice": NO_CONV,
        "reopen_bob": NO_CONV,
        "wait_timeout": NO_CONV,
        "transfer_bob": NO_CONV,
    },
    "waiting": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ok(OPEN, [ASSIGNED, STATUS], ALICE.id),
        "accept_bob": ok(OPEN, [ASSIGNED, STATUS], BOB.id),
        "visitor_msg": ok(WAITING, [MESSAGE], None),
        "agent_msg_alice": err(IT, "conversation_not_open"),
        "solve": ok(SOLVED, [STATUS], None),
        "reopen_alice": ILLEGAL,
        "reopen_bob": ILLEGAL,
        "wait_timeout": ok(WAITING, [TIMEOUT], None),
        "transfer_bob": ILLEGAL,
    },
    "waiting_offline": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ok(OPEN, [ASSIGNED, STATUS], ALICE.id),
        "accept_bob": ok(OPEN, [ASSIGNED, STATUS], BOB.id),
        "visitor_msg": ok(WAITING, [MESSAGE], None),
        "agent_msg_alice": err(IT, "conversation_not_open"),
        "solve": ok(SOLVED, [STATUS], None),
        "reopen_alice": ILLEGAL,
        "reopen_bob": ILLEGAL,
        "wait_timeout": ok(WAITING, [], None),  # a ticket has no wait timer
        "transfer_bob": ILLEGAL,
    },
    "waiting_timed_out": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ok(OPEN, [ASSIGNED, STATUS], ALICE.id),
        "accept_bob": ok(OPEN, [ASSIGNED, STATUS], BOB.id),
        "visitor_msg": ok(WAITING, [MESSAGE], None),
        "agent_msg_alice": err(IT, "conversation_not_open"),
        "solve": ok(SOLVED, [STATUS], None),
        "reopen_alice": ILLEGAL,
        "reopen_bob": ILLEGAL,
        "wait_timeout": ok(WAITING, [], None),  # fires once only
        "transfer_bob": ILLEGAL,
    },
    "open_alice": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ok(OPEN, [], ALICE.id),  # accepting twice is harmless
        "accept_bob": err(AlreadyAssigned, "already_assigned"),
        "visitor_msg": ok(OPEN, [MESSAGE], ALICE.id),
        "agent_msg_alice": ok(OPEN, [MESSAGE], ALICE.id),
        "solve": ok(SOLVED, [STATUS], ALICE.id),
        "reopen_alice": ILLEGAL,
        "reopen_bob": ILLEGAL,
        "wait_timeout": ok(OPEN, [], ALICE.id),
        "transfer_bob": ok(OPEN, [ASSIGNED], BOB.id),
    },
    "solved_alice": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ILLEGAL,
        "accept_bob": ILLEGAL,
        "visitor_msg": err(IT, "conversation_solved"),
        "agent_msg_alice": err(IT, "conversation_solved"),
        "solve": err(IT, "already_solved"),
        "reopen_alice": ok(OPEN, [STATUS], ALICE.id),  # same agent: no re-assignment event
        "reopen_bob": ok(OPEN, [ASSIGNED, STATUS], BOB.id),
        "wait_timeout": ok(SOLVED, [], ALICE.id),
        "transfer_bob": ILLEGAL,
    },
    "solved_unassigned": {
        "create_live": EXISTS,
        "create_offline": EXISTS,
        "accept_alice": ILLEGAL,
        "accept_bob": ILLEGAL,
        "visitor_msg": err(IT, "conversation_solved"),
        "agent_msg_alice": err(IT, "conversation_solved"),
        "solve": err(IT, "already_solved"),
        "reopen_alice": ok(OPEN, [ASSIGNED, STATUS], ALICE.id),
        "reopen_bob": ok(OPEN, [ASSIGNED, STATUS], BOB.id),
        "wait_timeout": ok(SOLVED, [], None),
        "transfer_bob": ILLEGAL,
    },
}

TABLE_CASES = [
    pytest.param(state_name, command_name, expected, id=f"{state_name}-{command_name}")
    for state_name, row in TABLE.items()
    for command_name, expected in row.items()
]


def test_table_covers_every_state_and_command() -> None:
    assert set(TABLE) == set(STATE_BUILDERS)
    for row in TABLE.values():
        assert set(row) == set(COMMANDS)


def test_table_states_are_what_they_claim() -> None:
    expected = {
        "waiting": (WAITING, None, False, Kind.LIVE_CHAT),
        "waiting_offline": (WAITING, None, False, Kind.OFFLINE_MESSAGE),
        "waiting_timed_out": (WAITING, None, True, Kind.LIVE_CHAT),
        "open_alice": (OPEN, ALICE, False, Kind.LIVE_CHAT),
        "solved_alice": (SOLVED, ALICE, False, Kind.LIVE_CHAT),
        "solved_unassigned": (SOLVED, None, False, Kind.LIVE_CHAT),
    }
    assert build("none") is None
    for name, (status, assignee, timed_out, kind) in expected.items():
        state = build(name)
        assert state is not None
        assert (state.status, state.assignee, state.wait_timed_out, state.kind) == (
            status,
            assignee,
            timed_out,
            kind,
        ), name


@pytest.mark.parametrize(("state_name", "command_name", "expected"), TABLE_CASES)
def test_transition_table(state_name: str, command_name: str, expected: tuple[Any, ...]) -> None:
    state = build(state_name)
    snapshot = attrs.evolve(state) if state is not None else None
    command = COMMANDS[command_name]()
    now = at(1000)

    if expected[0] == "err":
        _, exc_class, code = expected
        with pytest.raises(EngineError) as info:
            apply(state, command, now)
        assert type(info.value) is exc_class
        assert info.value.code == code
        assert info.value.status == 409
        assert str(info.value) == info.value.message
        assert info.value.message
        assert state == snapshot  # untouched
        return

    _, status, event_types, assignee_id = expected
    t = apply(state, command, now)
    assert isinstance(t, Transition)
    assert t.state.status is status
    assert types(t.events) == event_types
    assert (t.state.assignee.id if t.state.assignee else None) == assignee_id
    assert state == snapshot  # the input is never changed

    before_seq = state.last_seq if state is not None else 0
    assert [e.seq for e in t.events] == list(range(before_seq + 1, before_seq + 1 + len(t.events)))
    assert t.state.last_seq == before_seq + len(t.events)
    assert len(t.messages) == event_types.count(MESSAGE)
    if not t.events:
        assert t.state == state  # no-op: nothing changes, not even updated_at
    else:
        assert t.state.updated_at == now


# --- seq ----------------------------------------------------------------------------------------


def full_story() -> list[Command]:
    return [
        create_cmd(),
        visitor_msg("anyone?"),
        WaitTimeout(),
        WaitTimeout(),
        visitor_msg("hello??"),
        Accept(ALICE),
        Accept(ALICE),
        agent_msg("Hi! Sorry for the wait."),
        visitor_msg("no problem"),
        Solve(ALICE),
        Reopen(BOB),
        agent_msg("Bob here, following up.", agent=BOB),
        Solve(BOB),
        Reopen(BOB),
        visitor_msg("thanks"),
    ]


def test_seq_is_consecutive_without_gaps_across_commands() -> None:
    state, events, transitions = run(full_story())
    assert len(events) == 2 + 1 + 1 + 1 + 2 + 0 + 1 + 1 + 1 + 2 + 1 + 1 + 1 + 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert state.last_seq == events[-1].seq == len(events)
    previous = 0
    for t in transitions:
        if t.events:
            assert t.events[0].seq == previous + 1
        assert t.state.last_seq == (t.events[-1].seq if t.events else previous)
        previous = t.state.last_seq


def test_message_seq_equals_its_message_created_event_seq() -> None:
    _, events, transitions = run(full_story())
    messages = [m for t in transitions for m in t.messages]
    message_events = [e for e in events if e.type == MESSAGE]
    assert len(messages) == len(message_events) == 7
    for message, event in zip(messages, message_events, strict=True):
        assert message.seq == event.seq
        assert event.data == {"message": message.to_wire()}
        assert event.data["message"]["seq"] == event.seq
        assert event.data["message"]["id"] == message.id
    assert len({m.seq for m in messages}) == len(messages)


def test_each_transition_pairs_every_message_with_one_event() -> None:
    for t in run(full_story())[2]:
        seqs = {e.seq for e in t.events if e.type == MESSAGE}
        assert {m.seq for m in t.messages} == seqs


# --- Create -------------------------------------------------------------------------------------


def test_create_live_chat() -> None:
    now = at(5)
    t = apply(None, create_cmd(Kind.LIVE_CHAT, "Hi there"), now)
    s = t.state
    assert s.status is Status.WAITING
    assert s.kind is Kind.LIVE_CHAT
    assert (s.id, s.tenant_id, s.widget_id, s.visitor_id) == (
        CONV_ID,
        TENANT_ID,
        WIDGET_ID,
        VISITOR_ID,
    )
    assert s.wait_deadline == now + dt.timedelta(seconds=WAIT_SECONDS)
    assert s.wait_pending is True
    assert s.wait_timed_out is False
    assert s.created_at == s.updated_at == now
    assert s.assignee is None
    assert s.solved_at is None
    assert s.last_seq == 2

    assert types(t.events) == [CREATED, MESSAGE]
    assert [e.seq for e in t.events] == [1, 2]
    created = t.events[0].data["conversation"]
    assert created["id"] == CONV_ID
    assert created["status"] == "WAITING"
    assert created["kind"] == "live_chat"
    assert created["visitorId"] == VISITOR_ID
    assert created["waitDeadline"] == iso(now + dt.timedelta(seconds=WAIT_SECONDS))
    assert created["assignee"] is None

    (message,) = t.messages
    assert message.id == "msg-first"
    assert message.seq == 2
    assert message.sender_type is SenderType.VISITOR
    assert message.sender_id == VISITOR_ID
    assert message.sender_name == "Vera"
    assert message.text == "Hi there"
    assert message.client_message_id == "cm-1"
    assert message.client_timestamp is None
    assert message.conversation_id == CONV_ID
    assert message.tenant_id == TENANT_ID
    assert message.created_at == now


@pytest.mark.parametrize("wait", [1, 30, 600, 86400])
def test_create_live_chat_deadline_follows_wait_timeout_seconds(wait: int) -> None:
    now = at(42)
    t = apply(None, create_cmd(wait=wait), now)
    assert t.state.wait_deadline == now + dt.timedelta(seconds=wait)


def test_create_offline_message_has_no_deadline() -> None:
    t = apply(None, create_cmd(Kind.OFFLINE_MESSAGE), at(0))
    assert t.state.status is Status.WAITING
    assert t.state.kind is Kind.OFFLINE_MESSAGE
    assert t.state.wait_deadline is None
    assert t.state.wait_pending is False
    assert types(t.events) == [CREATED, MESSAGE]
    assert [e.seq for e in t.events] == [1, 2]
    assert t.events[0].data["conversation"]["waitDeadline"] is None
    assert t.messages[0].sender_type is SenderType.VISITOR
    assert t.messages[0].sender_id == VISITOR_ID


def test_create_without_visitor_name_or_client_id() -> None:
    t = apply(None, create_cmd(visitor_name=None, client_message_id=None), at(0))
    wire = t.messages[0].to_wire()
    assert wire["senderName"] is None
    assert wire["clientMessageId"] is None
    assert wire["senderType"] == "visitor"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_message"),
        (" ", "empty_message"),
        ("\n\t  \r\n", "empty_message"),
        ("\u3000\u00a0", "empty_message"),
        ("x" * (MAX_MESSAGE_LENGTH + 1), "message_too_long"),
        (" " * (MAX_MESSAGE_LENGTH + 1), "empty_message"),
    ],
    ids=["empty", "space", "whitespace", "unicode-space", "too-long", "long-blank"],
)
def test_create_rejects_bad_first_message(text: str, code: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        apply(None, create_cmd(text=text), at(0))
    assert info.value.code == code
    if code == "message_too_long":
        assert str(MAX_MESSAGE_LENGTH) in info.value.message


def test_create_accepts_exactly_max_length() -> None:
    text = "y" * MAX_MESSAGE_LENGTH
    t = apply(None, create_cmd(text=text), at(0))
    assert t.messages[0].text == text


def test_no_conversation_error_names_the_command() -> None:
    with pytest.raises(IllegalTransition) as info:
        apply(None, Accept(ALICE), at(0))
    assert info.value.message == "Accept needs an existing conversation"
    with pytest.raises(IllegalTransition) as info:
        apply(None, WaitTimeout(), at(0))
    assert info.value.message == "WaitTimeout needs an existing conversation"


def test_create_twice_names_the_conversation() -> None:
    state = build("waiting")
    with pytest.raises(IllegalTransition) as info:
        apply(state, create_cmd(), at(1))
    assert info.value.code == "already_exists"
    assert CONV_ID in info.value.message


# --- Accept -------------------------------------------------------------------------------------


def test_accept_assigns_and_opens() -> None:
    state = build("waiting")
    assert state is not None and state.wait_deadline is not None
    now = at(10)
    t = apply(state, Accept(ALICE), now)
    assert types(t.events) == [ASSIGNED, STATUS]
    assert [e.seq for e in t.events] == [3, 4]
    assert t.messages == ()
    assigned, changed = t.events
    assert assigned.data["agent"] == {
        "id": ALICE.id,
        "name": ALICE.name,
        "avatarUrl": ALICE.avatar_url,
    }
    assert assigned.data["conversation"]["status"] == "OPEN"
    assert assigned.data["conversation"]["assignee"] == ALICE.to_wire()
    assert changed.data["from"] == "WAITING"
    assert changed.data["to"] == "OPEN"
    assert changed.data["conversation"]["status"] == "OPEN"
    assert changed.data["conversation"]["waitDeadline"] is None

    s = t.state
    assert s.status is Status.OPEN
    assert s.assignee == ALICE
    assert s.wait_deadline is None
    assert s.wait_pending is False
    assert s.updated_at == now
    assert s.created_at == state.created_at
    assert s.last_seq == 4


def test_accept_by_same_agent_is_a_noop() -> None:
    state = build("open_alice")
    t = apply(state, Accept(ALICE), at(99))
    assert t.events == ()
    assert t.messages == ()
    assert t.state == state
    assert t.state.updated_at == state.updated_at


def test_already_assigned_carries_the_assignee() -> None:
    state = build("open_alice")
    with pytest.raises(AlreadyAssigned) as info:
        apply(state, Accept(BOB), at(99))
    exc = info.value
    assert exc.assignee_id == ALICE.id
    assert exc.assignee_name == ALICE.name
    assert "Alice" in exc.message
    assert "Alice" in str(exc)
    assert exc.code == "already_assigned"
    assert exc.status == 409
    assert isinstance(exc, Conflict)
    assert not isinstance(exc, IllegalTransition)


def test_accept_after_reopen_by_other_agent_names_new_assignee() -> None:
    state, _, _ = run([create_cmd(), Accept(ALICE), Solve(ALICE), Reopen(BOB)])
    with pytest.raises(AlreadyAssigned) as info:
        apply(state, Accept(ALICE), at(100))
    assert info.value.assignee_id == BOB.id
    assert "Bob" in info.value.message


def test_accept_solved_conversation_message_says_why() -> None:
    state = build("solved_alice")
    with pytest.raises(IllegalTransition) as info:
        apply(state, Accept(ALICE), at(100))
    assert "SOLVED" in info.value.message
    assert "WAITING" in info.value.message


# --- WaitTimeout --------------------------------------------------------------------------------


def test_wait_timeout_fires_once() -> None:
    state = build("waiting")
    assert state is not None
    fired_at = state.created_at + dt.timedelta(seconds=WAIT_SECONDS)
    t = apply(state, WaitTimeout(), fired_at)
    assert types(t.events) == [TIMEOUT]
    assert t.events[0].seq == state.last_seq + 1
    assert t.events[0].data["waitedSeconds"] == WAIT_SECONDS
    assert t.events[0].data["conversation"]["waitTimedOut"] is True
    assert t.events[0].data["conversation"]["status"] == "WAITING"
    assert t.state.wait_timed_out is True
    assert t.state.wait_pending is False
    assert t.state.status is Status.WAITING
    assert t.state.wait_deadline == state.wait_deadline
    assert t.state.updated_at == fired_at

    again = apply(t.state, WaitTimeout(), fired_at + dt.timedelta(seconds=5))
    assert again.events == ()
    assert again.state == t.state


def test_wait_timeout_waited_seconds_is_measured_from_creation() -> None:
    state = build("waiting")
    assert state is not None
    t = apply(state, WaitTimeout(), state.created_at + dt.timedelta(seconds=93, milliseconds=250))
    assert t.events[0].data["waitedSeconds"] == pytest.approx(93.25)


@pytest.mark.parametrize(
    "prefix",
    [
        [create_cmd(), Accept(ALICE)],
        [create_cmd(), Solve(ALICE)],
        [create_cmd(), Accept(ALICE), Solve(ALICE)],
        [create_cmd(), Accept(ALICE), Solve(ALICE), Reopen(BOB)],
        [create_cmd(Kind.OFFLINE_MESSAGE)],
    ],
    ids=["after-accept", "after-solve", "after-accept-solve", "after-reopen", "offline"],
)
def test_wait_timeout_is_a_noop_when_not_waiting(prefix: list[Command]) -> None:
    state, _, _ = run(prefix)
    t = apply(state, WaitTimeout(), at(WAIT_SECONDS + 100))
    assert t.events == ()
    assert t.state == state


def test_visitor_can_still_be_connected_after_timeout() -> None:
    state, _, _ = run([create_cmd(), WaitTimeout(), visitor_msg("hello?")])
    assert state.status is Status.WAITING
    assert state.wait_timed_out is True
    t = apply(state, Accept(BOB), at(500))
    assert types(t.events) == [ASSIGNED, STATUS]
    assert t.state.status is Status.OPEN
    assert t.state.assignee == BOB
    assert t.state.wait_deadline is None
    assert t.state.wait_pending is False
    reply = apply(t.state, agent_msg("Sorry!", agent=BOB), at(501))
    assert types(reply.events) == [MESSAGE]


def test_visitor_messages_do_not_touch_the_wait_timer() -> None:
    state = build("waiting")
    assert state is not None
    t = apply(state, visitor_msg(), at(30))
    assert t.state.wait_deadline == state.wait_deadline
    assert t.state.wait_pending is True


# --- PostMessage validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_message"),
        ("   ", "empty_message"),
        ("\t\n", "empty_message"),
        ("z" * (MAX_MESSAGE_LENGTH + 1), "message_too_long"),
        ("z" * (MAX_MESSAGE_LENGTH * 3), "message_too_long"),
    ],
    ids=["empty", "spaces", "tab-newline", "max-plus-one", "way-too-long"],
)
@pytest.mark.parametrize(
    ("state_name", "sender"),
    [("waiting", "visitor"), ("open_alice", "visitor"), ("open_alice", "agent")],
)
def test_post_message_rejects_bad_text(state_name: str, sender: str, text: str, code: str) -> None:
    state = build(state_name)
    assert state is not None
    snapshot = attrs.evolve(state)
    last_seq = state.last_seq
    command = visitor_msg(text) if sender == "visitor" else agent_msg(text)
    with pytest.raises(IllegalTransition) as info:
        apply(state, command, at(1000))
    assert info.value.code == code
    assert state == snapshot
    assert state.last_seq == last_seq


def test_post_message_accepts_exactly_max_length() -> None:
    state = build("open_alice")
    text = "q" * MAX_MESSAGE_LENGTH
    t = apply(state, agent_msg(text), at(1000))
    assert t.messages[0].text == text


def test_post_message_fields() -> None:
    state = build("open_alice")
    assert state is not None
    now = at(77)
    cmd = agent_msg(
        "Let me check.", client_message_id="client-7", client_timestamp="2026-11-29T13:21:00Z"
    )
    t = apply(state, cmd, now)
    (message,) = t.messages
    assert message.id == cmd.message_id
    assert message.sender_type is SenderType.AGENT
    assert message.sender_id == ALICE.id
    assert message.sender_name == ALICE.name
    assert message.text == "Let me check."
    assert message.client_message_id == "client-7"
    assert message.client_timestamp == "2026-11-29T13:21:00Z"
    assert message.seq == state.last_seq + 1
    assert t.state.updated_at == now
    assert t.state.status is Status.OPEN
    wire = message.to_wire()
    assert wire["clientTimestamp"] == "2026-11-29T13:21:00Z"
    assert wire["senderType"] == "agent"
    assert wire["conversationId"] == CONV_ID


def test_agent_message_on_waiting_conversation_says_accept_first() -> None:
    state = build("waiting")
    with pytest.raises(IllegalTransition) as info:
        apply(state, agent_msg(), at(1))
    assert info.value.code == "conversation_not_open"
    assert "accept" in info.value.message


# --- Solve / Reopen -----------------------------------------------------------------------------


@pytest.mark.parametrize("state_name", ["waiting", "waiting_offline", "open_alice"])
def test_solve(state_name: str) -> None:
    state = build(state_name)
    assert state is not None
    now = at(300)
    t = apply(state, Solve(ALICE), now)
    assert types(t.events) == [STATUS]
    data = t.events[0].data
    assert data["from"] == state.status.value
    assert data["to"] == "SOLVED"
    assert data["conversation"]["solvedAt"] == iso(now)
    assert t.state.status is Status.SOLVED
    assert t.state.solved_at == now
    assert t.state.updated_at == now
    assert t.state.wait_deadline is None
    assert t.state.wait_pending is False
    assert t.state.assignee == state.assignee


@pytest.mark.parametrize(
    ("state_name", "agent", "expected_types"),
    [
        ("solved_alice", ALICE, [STATUS]),
        ("solved_alice", BOB, [ASSIGNED, STATUS]),
        ("solved_unassigned", ALICE, [ASSIGNED, STATUS]),
    ],
)
def test_reopen(state_name: str, agent: Agent, expected_types: list[str]) -> None:
    state = build(state_name)
    assert state is not None
    now = at(400)
    t = apply(state, Reopen(agent), now)
    assert types(t.events) == expected_types
    assert [e.seq for e in t.events] == list(
        range(state.last_seq + 1, state.last_seq + 1 + len(expected_types))
    )
    changed = t.events[-1]
    assert changed.data["from"] == "SOLVED"
    assert changed.data["to"] == "OPEN"
    assert changed.data["conversation"]["solvedAt"] is None
    assert changed.data["conversation"]["assignee"] == agent.to_wire()
    if ASSIGNED in expected_types:
        assert t.events[0].data["agent"] == agent.to_wire()
    assert t.state.status is Status.OPEN
    assert t.state.assignee == agent
    assert t.state.solved_at is None
    assert t.state.updated_at == now
    assert t.state.wait_pending is False


def test_reopen_message_names_current_status() -> None:
    state = build("open_alice")
    with pytest.raises(IllegalTransition) as info:
        apply(state, Reopen(ALICE), at(1))
    assert "OPEN" in info.value.message


# --- timestamps and wire form -------------------------------------------------------------------


def test_all_timestamps_equal_now() -> None:
    times = [at(0), at(1.5), at(2.25), at(60), at(61), at(62), at(3600)]
    commands: list[Command] = [
        create_cmd(),
        visitor_msg(),
        WaitTimeout(),
        Accept(ALICE),
        agent_msg(),
        Solve(ALICE),
        Reopen(BOB),
    ]
    state: Conversation | None = None
    for now, command in zip(times, commands, strict=True):
        t = apply(state, command, now)
        assert t.events
        for event in t.events:
            assert event.at == now
            assert event.to_wire()["at"] == iso(now)
        for message in t.messages:
            assert message.created_at == now
            assert message.to_wire()["createdAt"] == iso(now)
        assert t.state.updated_at == now
        state = t.state


def test_timestamps_ignore_the_wall_clock() -> None:
    long_ago = dt.datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    t = apply(None, create_cmd(), long_ago)
    assert t.state.created_at == long_ago
    assert all(e.at == long_ago for e in t.events)
    assert t.events[0].to_wire()["at"] == "2001-02-03T04:05:06.789Z"


def test_wire_timestamps_are_utc_millis_with_z() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    now = dt.datetime(2026, 11, 29, 15, 20, 0, 987654, tzinfo=plus_two)
    t = apply(None, create_cmd(), now)
    at_wire = t.events[0].to_wire()["at"]
    assert at_wire == "2026-11-29T13:20:00.987Z"
    assert ISO_MS_Z.match(at_wire)
    created_at_wire = t.messages[0].to_wire()["createdAt"]
    assert created_at_wire == "2026-11-29T13:20:00.987Z"
    conv = t.state.to_wire()
    for key in ("createdAt", "updatedAt", "waitDeadline"):
        assert ISO_MS_Z.match(conv[key]), key
    assert conv["solvedAt"] is None


def test_wire_timestamps_for_a_whole_story() -> None:
    _, events, transitions = run(full_story())
    for event in events:
        assert ISO_MS_Z.match(event.to_wire()["at"])
    for message in (m for t in transitions for m in t.messages):
        assert ISO_MS_Z.match(message.to_wire()["createdAt"])


def test_event_wire_envelope() -> None:
    _, events, _ = run(full_story())
    for event in events:
        wire = event.to_wire()
        assert set(wire) == {"type", "at", "tenantId", "conversationId", "seq", "data"}
        assert "visitorId" not in wire
        assert wire["conversationId"] == CONV_ID
        assert wire["tenantId"] == TENANT_ID
        assert wire["seq"] == event.seq
        assert wire["type"] == event.type
        assert wire["type"] in {e.value for e in EventType}
        assert wire["data"] is event.data
        # routing information stays on the object
        assert event.visitor_id == VISITOR_ID
        assert event.conversation_id == CONV_ID
        assert event.tenant_id == TENANT_ID


def test_event_data_snapshots_are_wire_ready() -> None:
    _, events, _ = run(full_story())
    for event in events:
        conv = event.data.get("conversation")
        if conv is not None:
            assert conv["id"] == CONV_ID
            assert conv["status"] in {s.value for s in Status}
            assert ISO_MS_Z.match(conv["updatedAt"])
            assert conv["updatedAt"] == iso(event.at)


@pytest.mark.regression
def test_snapshot_last_seq_equals_the_event_seq() -> None:
    _, events, _ = run(full_story())
    with_snapshot = [e for e in events if "conversation" in e.data]
    assert {e.type for e in with_snapshot} == {CREATED, ASSIGNED, STATUS, TIMEOUT}
    for event in with_snapshot:
        assert event.data["conversation"]["lastSeq"] == event.seq, event.type


# --- purity -------------------------------------------------------------------------------------


def test_same_inputs_give_equal_outputs() -> None:
    commands = full_story()
    first = run(commands)
    second = run(commands)
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert first[2] == second[2]
    for a, b in zip(first[1], second[1], strict=True):
        assert a.to_wire() == b.to_wire()


def test_apply_does_not_mutate_its_input() -> None:
    state = build("waiting")
    assert state is not None
    wire_before = state.to_wire()
    fields_before = attrs.asdict(state, recurse=True)
    for command in (visitor_msg(), Accept(ALICE), Solve(ALICE), WaitTimeout()):
        t = apply(state, command, at(500))
        assert t.state is not state
        assert t.state.last_seq > state.last_seq
    assert state.last_seq == 2
    assert state.status is Status.WAITING
    assert state.to_wire() == wire_before
    assert attrs.asdict(state, recurse=True) == fields_before


def test_states_events_and_messages_are_frozen() -> None:
    t = apply(None, create_cmd(), at(0))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.state.last_seq = 99  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.events[0].seq = 99  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.messages[0].text = "changed"  # type: ignore[misc]
    assert isinstance(t.events, tuple)
    assert isinstance(t.messages, tuple)


def test_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the state machine must not do I/O")

    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(builtins, "print", forbidden)
    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    state, events, _ = run(full_story())
    assert state.last_seq == len(events)


# --- property test ------------------------------------------------------------------------------

AGENTS = [ALICE, BOB, Agent("agent-carol", "Carol")]

texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "\n", "ok", "x" * MAX_MESSAGE_LENGTH, "x" * (MAX_MESSAGE_LENGTH + 1)]
    ),
)
agents = st.sampled_from(AGENTS)
commands_strategy: st.SearchStrategy[Command] = st.one_of(
    st.builds(
        create_cmd,
        kind=st.sampled_from(list(Kind)),
        text=texts,
        wait=st.integers(min_value=1, max_value=3600),
    ),
    st.builds(Accept, agents),
    st.builds(Solve, agents),
    st.builds(Reopen, agents),
    st.builds(Transfer, agents),
    st.just(WaitTimeout()),
    st.builds(
        PostMessage,
        message_id=st.uuids().map(str),
        sender_type=st.sampled_from(list(SenderType)),
        sender_id=st.sampled_from([VISITOR_ID, *(a.id for a in AGENTS)]),
        sender_name=st.none() | st.just("Someone"),
        text=texts,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    commands=st.lists(commands_strategy, max_size=40),
    steps=st.lists(st.floats(min_value=0, max_value=1e5), min_size=40, max_size=40),
)
def test_random_command_sequences_keep_invariants(
    commands: list[Command], steps: list[float]
) -> None:
    state: Conversation | None = None
    now = T0
    all_events: list[Event] = []
    for command, step in zip(commands, steps, strict=False):
        now = now + dt.timedelta(seconds=step)
        before = state
        snapshot = attrs.evolve(state) if state is not None else None
        try:
            t = apply(state, command, now)
        except EngineError as exc:
            assert isinstance(exc.code, str) and exc.code
            assert exc.message
            assert state == snapshot
            continue
        assert before == snapshot  # the input is not mutated on success either
        before_seq = before.last_seq if before is not None else 0
        assert [e.seq for e in t.events] == list(
            range(before_seq + 1, before_seq + 1 + len(t.events))
        )
        assert t.state.last_seq == before_seq + len(t.events)
        for m in t.messages:
            (event,) = [e for e in t.events if e.seq == m.seq]
            assert event.type == MESSAGE
        assert all(e.at == now for e in t.events)
        state = t.state
        all_events.extend(t.events)

        assert isinstance(state.status, Status)
        assert state.status in set(Status)
        assert state.status.value in {"WAITING", "OPEN", "SOLVED"}
        if state.status is Status.OPEN:
            assert state.assignee is not None
        assert (state.solved_at is not None) == (state.status is Status.SOLVED)
        if state.status is not Status.WAITING:
            assert state.wait_deadline is None
        if state.kind is Kind.OFFLINE_MESSAGE:
            assert state.wait_deadline is None
            assert not state.wait_timed_out

    assert [e.seq for e in all_events] == list(range(1, len(all_events) + 1))
    if state is not None:
        assert state.last_seq == len(all_events)
        assert sum(e.type == TIMEOUT for e in all_events) <= 1
        assert sum(e.type == CREATED for e in all_events) == 1


# --- proactive chats: an agent starts the conversation with a live visitor ----------------------


def test_agent_started_chat_is_open_assigned_with_the_agents_message_and_no_timer() -> None:
    cmd = attrs.evolve(create_cmd(text="Hi! Can I help you pick a plan?"), opened_by=ALICE)
    t = apply(None, cmd, T0)
    assert t.state.status is Status.OPEN
    assert t.state.assignee == ALICE
    assert t.state.wait_deadline is None
    assert [e.type for e in t.events] == [
        "conversation_created",
        "conversation_assigned",
        "message_created",
    ]
    assert [e.seq for e in t.events] == [1, 2, 3]
    [message] = t.messages
    assert message.sender_type is SenderType.AGENT and message.sender_id == ALICE.id
    assert message.sender_name == "Alice"
    assert t.events[1].data["agent"] == ALICE.to_wire()
    assert all(e.visitor_id == VISITOR_ID for e in t.events)  # they reach the visitor's stream
    # the visitor answers, and the wait timer never fires on it
    t2 = apply(t.state, WaitTimeout(), T0 + dt.timedelta(hours=1))
    assert t2.events == () and t2.state == t.state


def test_only_a_live_chat_can_be_agent_started() -> None:
    cmd = attrs.evolve(create_cmd(Kind.OFFLINE_MESSAGE), opened_by=ALICE)
    with pytest.raises(IllegalTransition):
        apply(None, cmd, T0)


# --- typing: who hears it, and how often ------------------------------------------------------


def typing_cmd(sender: str = "visitor", on: bool = True) -> Typing:
    if sender == "visitor":
        return Typing(SenderType.VISITOR, VISITOR_ID, None, on=on)
    return Typing(SenderType.AGENT, ALICE.id, ALICE.name, on=on)


@pytest.mark.parametrize(
    ("name", "visitor_heard", "agent_heard"),
    [
        ("waiting", True, False),  # nobody can answer yet: an agent typing is nobody's news
        ("open_alice", True, True),
        ("solved_alice", False, False),
        ("offline", False, False),  # a ticket is answered by email, not live
    ],
)
def test_typing_is_heard_in_live_chats_that_can_still_be_answered(
    name: str, visitor_heard: bool, agent_heard: bool
) -> None:
    state = build(name) if name != "offline" else run([create_cmd(Kind.OFFLINE_MESSAGE)])[0]
    assert state is not None
    heard = typing_event(state, typing_cmd("visitor"), at(5))
    assert (heard is not None) is visitor_heard
    if heard is not None:  # to the inbox only: not to the visitor's own streams
        assert heard.visitor_id is None and heard.seq is None
        assert heard.conversation_id == state.id
        assert heard.data["senderName"] is None and heard.data["state"] == "on"
    heard = typing_event(state, typing_cmd("agent", on=False), at(5))
    assert (heard is not None) is agent_heard
    if heard is not None:  # to the visitor of the chat (and the inbox)
        assert heard.visitor_id == VISITOR_ID and heard.seq is None
        assert heard.data == {
            "senderType": "agent",
            "senderId": ALICE.id,
            "senderName": ALICE.name,
            "state": "off",
            "expiresInSeconds": TYPING_EXPIRES_SECONDS,
        }
    assert typing_event(state, typing_cmd(), at(5)) == typing_event(state, typing_cmd(), at(5))


def test_the_typing_gate_passes_changes_at_once_and_repeats_sparingly() -> None:
    gate = TypingGate()
    on, off = typing_cmd(on=True), typing_cmd(on=False)
    assert not gate.passes(off, 0.0)  # an off with no on before: nothing to clear
    assert gate.passes(on, 0.0)
    assert not gate.passes(on, 1.0) and not gate.passes(on, TYPING_REPEAT_SECONDS - 0.01)
    assert gate.passes(on, TYPING_REPEAT_SECONDS)  # still typing: said again
    assert gate.passes(off, TYPING_REPEAT_SECONDS + 0.1)  # a change: at once
    assert not gate.passes(off, TYPING_REPEAT_SECONDS + 0.2)
    assert len(gate) == 0  # nobody typing: nothing remembered
    # senders are apart: the agent's on does not hold back the visitor's
    assert gate.passes(on, 10.0) and gate.passes(typing_cmd("agent"), 10.1)
    assert len(gate) == 2
    gate.sent(SenderType.VISITOR, VISITOR_ID)  # its message ended the typing
    assert gate.passes(on, 10.2)  # the next on goes out at once
    assert not gate.passes(typing_cmd("agent"), 10.2)
