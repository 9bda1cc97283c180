"""What the relay baselines share: the bench protocol's state, routes and frames, without any I/O.

The relays (:mod:`bench.baselines.quart_relay`, :mod:`bench.baselines.trio_relay`,
:mod:`bench.baselines.websockets_relay`) each do only their stack's I/O around this module:
read a request or a frame, call it, write the bytes it returns. That keeps the three floors
doing the same work per message (one ``json.loads`` per frame, one ``json.dumps`` per event
whatever its audience, one per answer) so they differ by their stack only.

Not runnable itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TENANT_ID = "ten_bench"
AGENT_ID = "agt_bench"
AGENT_TOKEN = "agent-token"

# Outgoing texts a socket may have queued before it is closed 1013 (too slow), by default
# (--queue-size). The product's broker buffers as many events per subscriber
# (engine.broker.DEFAULT_BUFFER). A socket's own frames are read only while its queue is at
# most half full: a client that sends faster than it reads is slowed down (as TCP would slow
# it), never closed for it, and its own acks and events (two texts per message) cannot fill
# its queue. Only events published by others can overflow it.
QUEUE_SIZE = 256
MAX_BODY_BYTES = 1 << 20  # HTTP request bodies (the bare relays; Quart keeps its own limit)

CLOSE_TOO_SLOW = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404

HOST = "127.0.0.1"

# HTTP endpoints (the second item of route_http's answer is the widget id, "" when none)
HEARTBEAT = "heartbeat"
CONFIG = "config"
CONVERSATIONS = "conversations"
LOGIN = "login"
HEALTHZ = "healthz"
# WebSocket endpoints
VISITOR_WS = "visitor_ws"
INBOX_WS = "inbox_ws"

NOT_FOUND = {"error": {"code": "not_found"}}
INVALID_BODY = {"error": {"code": "invalid_body"}}
UNAUTHENTICATED = {"error": {"code": "unauthenticated"}}
HEALTH = {"status": "ok"}
LOGIN_ANSWER = {"token": AGENT_TOKEN, "agent": {"id": AGENT_ID}}
INBOX_READY = json.dumps({"type": "ready", "agentId": AGENT_ID, "tenantId": TENANT_ID})


def now_iso() -> str:
    """ISO 8601 in UTC, milliseconds and a ``Z``: the product's wire format for timestamps."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """``prefix_`` and 16 hex digits, as the product mints its ids."""
    return f"{prefix}_{secrets.token_hex(8)}"


def widget_config(widget_id: str) -> dict[str, Any]:
    return {
        "widgetId": widget_id,
        "name": "Bench",
        "agentsOnline": True,
        "waitTimeoutSeconds": 60,
        "appearance": {"color": "#3b82f6", "position": "right", "title": "Chat with us"},
        "channels": {"liveChat": True},
    }


def visitor_ready(visitor_id: str) -> str:
    return json.dumps({"type": "ready", "visitorId": visitor_id, "agentsOnline": True})


def error_frame(code: str, client_message_id: Any = None) -> str:
    frame: dict[str, Any] = {"type": "error", "error": {"code": code}}
    if client_message_id is not None:
        frame["clientMessageId"] = client_message_id
    return json.dumps(frame)


def bearer(authorization: str | None) -> str | None:
    """The visitor id in ``Authorization: Bearer <visitorToken>`` (the token is the id)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def route_http(method: str, path: str) -> tuple[str, str]:
    """``(endpoint, widget_id)`` for a request path (no query); endpoint ``""`` when none matches."""
    parts = path.split("/")
    if len(parts) == 6 and parts[1] == "api" and parts[2] == "chat" and parts[3] == "widgets":
        widget_id, action = parts[4], parts[5]
        if widget_id:
            if action == "heartbeat" and method == "POST":
                return HEARTBEAT, widget_id
            if action == "config" and method == "GET":
                return CONFIG, widget_id
            if action == "conversations" and method == "POST":
                return CONVERSATIONS, widget_id
    elif path == "/api/auth/login" and method == "POST":
        return LOGIN, ""
    elif path == "/healthz" and method == "GET":
        return HEALTHZ, ""
    return "", ""


def route_ws(path: str) -> tuple[str, str]:
    """``(endpoint, widget_id)`` for a WebSocket path (no query); endpoint ``""`` when none matches."""
    if path == "/api/chat/inbox/ws":
        return INBOX_WS, ""
    parts = path.split("/")
    if (
        len(parts) == 6
        and parts[1] == "api"
        and parts[2] == "chat"
        and parts[3] == "widgets"
        and parts[4]
        and parts[5] == "ws"
    ):
        return VISITOR_WS, parts[4]
    return "", ""


def parse_frame(raw: str | bytes) -> dict[str, Any] | None:
    """A client frame as a JSON object, or None when it is not one (such frames are ignored)."""
    try:
        frame = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None
    return frame if isinstance(frame, dict) else None


class BadRequest(Exception):
    """A request body the relay cannot take: answered 400 ``invalid_body``."""


class FrameError(Exception):
    """A frame the relay cannot take; ``text`` is the error frame to send back."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Outbox(Protocol):
    """A socket's bounded queue of outgoing texts, drained by the socket's own writer task.

    Its reader waits until the queue is at most half full before it takes the next frame.
    """

    def offer(self, text: str) -> None:
        """Queue without waiting; when the queue is full the socket is closed 1013 instead."""


@dataclass(slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    text: str
    client_message_id: str | None
    created_at: str
    visitor_id: str

    def event_text(self) -> str:
        """The ``message_created`` event, serialized once for every socket that gets it."""
        return json.dumps(
            {
                "type": "message_created",
                "at": self.created_at,
                "tenantId": TENANT_ID,
                "conversationId": self.conversation_id,
                "seq": self.seq,
                "data": {
                    "message": {
                        "id": self.id,
                        "conversationId": self.conversation_id,
                        "seq": self.seq,
                        "senderType": "visitor",
                        "senderId": self.visitor_id,
                        "text": self.text,
                        "clientMessageId": self.client_message_id,
                        "createdAt": self.created_at,
                    }
                },
            }
        )

    def ack_text(self) -> str:
        return json.dumps(
            {
                "type": "ack",
                "clientMessageId": self.client_message_id,
                "message": {
                    "id": self.id,
                    "conversationId": self.conversation_id,
                    "seq": self.seq,
                    "text": self.text,
                    "author": "visitor",
                    "createdAt": self.created_at,
                },
            }
        )


class Relay:
    """In-memory state of a relay: presence, the last seq of each conversation, the sockets."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size  # of each socket's outbox
        self.presence: dict[str, tuple[str, float]] = {}  # visitorId -> (currentUrl, monotonic)
        self.last_seq: dict[str, int] = {}  # conversationId -> last seq
        self.inbox: set[Outbox] = set()
        self.visitors: dict[str, set[Outbox]] = {}  # visitorId -> that visitor's sockets

    # --- sockets ----------------------------------------------------------------------------

    def join(self, visitor_id: str | None, outbox: Outbox) -> None:
        """Register a socket: a visitor's (``visitor_id``) or an inbox (None)."""
        if visitor_id is None:
            self.inbox.add(outbox)
        else:
            self.visitors.setdefault(visitor_id, set()).add(outbox)

    def leave(self, visitor_id: str | None, outbox: Outbox) -> None:
        if visitor_id is None:
            self.inbox.discard(outbox)
            return
        sockets = self.visitors.get(visitor_id)
        if sockets is not None:
            sockets.discard(outbox)
            if not sockets:
                del self.visitors[visitor_id]

    def publish(self, message: Message) -> None:
        """Queue the event on every inbox socket and on the author's sockets (never waits)."""
        text = message.event_text()
        for outbox in self.inbox:
            outbox.offer(text)
        for outbox in self.visitors.get(message.visitor_id, ()):
            outbox.offer(text)

    # --- HTTP -------------------------------------------------------------------------------

    def heartbeat(self, body: Any) -> tuple[dict[str, Any], str, str]:
        """Record presence. Returns ``(answer, visitorId, currentUrl)``."""
        if not isinstance(body, dict):
            raise BadRequest
        url = body.get("currentUrl")
        visitor_id = body.get("visitorId")
        if not isinstance(url, str) or not (visitor_id is None or isinstance(visitor_id, str)):
            raise BadRequest
        if not visitor_id:
            visitor_id = new_id("vis")
        self.presence[visitor_id] = (url, time.monotonic())
        answer = {"widgetStatus": "ACTIVE", "visitorId": visitor_id, "visitorToken": visitor_id}
        return answer, visitor_id, url

    def start(self, visitor_id: str, body: Any) -> tuple[dict[str, Any], Message]:
        """Open a conversation with its first message (seq 1); the caller publishes it."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            raise BadRequest
        conversation_id = new_id("cnv")
        self.last_seq[conversation_id] = 1
        message = Message(
            new_id("msg"), conversation_id, 1, body["message"], None, now_iso(), visitor_id
        )
        return {"id": conversation_id, "status": "WAITING", "lastSeq": 1}, message

    def http(
        self, method: str, target: str, authorization: str | None, body: bytes
    ) -> tuple[int, bytes]:
        """The whole HTTP side of a relay without persistence: ``(status, JSON body)``."""
        endpoint, widget_id = route_http(method, target.partition("?")[0])
        answer: dict[str, Any]
        try:
            if endpoint == HEARTBEAT:
                status, answer = 200, self.heartbeat(json.loads(body))[0]
            elif endpoint == CONFIG:
                status, answer = 200, widget_config(widget_id)
            elif endpoint == CONVERSATIONS:
                visitor_id = bearer(authorization)
                if visitor_id is None:
                    status, answer = 401, UNAUTHENTICATED
                else:
                    answer, message = self.start(visitor_id, json.loads(body))
                    self.publish(message)
                    status = 201
            elif endpoint == LOGIN:
                status, answer = 200, login(json.loads(body))
            elif endpoint == HEALTHZ:
                status, answer = 200, HEALTH
            else:
                status, answer = 404, NOT_FOUND
        except (ValueError, BadRequest):  # ValueError: not JSON (nor UTF-8)
            status, answer = 400, INVALID_BODY
        return status, json.dumps(answer).encode()

    # --- WebSocket frames -------------------------------------------------------------------

    def check_message(self, frame: dict[str, Any]) -> tuple[str, str, str | None]:
        """``(conversationId, text, clientMessageId)`` of a ``message`` frame, or FrameError."""
        conversation_id = frame.get("conversationId")
        text = frame.get("text")
        client_message_id = frame.get("clientMessageId")
        if (
            not isinstance(conversation_id, str)
            or not isinstance(text, str)
            or not (client_message_id is None or isinstance(client_message_id, str))
        ):
            raise FrameError(error_frame("invalid_frame", client_message_id))
        if conversation_id not in self.last_seq:
            raise FrameError(error_frame("not_found", client_message_id))
        return conversation_id, text, client_message_id

    def new_message(
        self, visitor_id: str, conversation_id: str, text: str, client_message_id: str | None
    ) -> Message:
        """Take the conversation's next seq (after :meth:`check_message`)."""
        seq = self.last_seq[conversation_id] + 1
        self.last_seq[conversation_id] = seq
        return Message(
            new_id("msg"), conversation_id, seq, text, client_message_id, now_iso(), visitor_id
        )

    def answer(self, frame: dict[str, Any]) -> str | None:
        """The answer to a ``ping`` or ``resume`` frame; None for any other frame (ignored)."""
        kind = frame.get("type")
        if kind == "ping":
            return json.dumps({"type": "pong", "serverTime": now_iso()})
        if kind == "resume":
            conversation_id = frame.get("conversationId")
            last = self.last_seq.get(conversation_id) if isinstance(conversation_id, str) else None
            if last is None:
                if not isinstance(conversation_id, str):
                    return error_frame("not_found")
                # a relay keeps nothing across a restart: nothing to replay, which is no error
                last = 0
            return json.dumps(
                {"type": "resumed", "conversationId": conversation_id, "lastSeq": last}
            )
        return None

    def on_frame(self, visitor_id: str | None, outbox: Outbox, raw: str | bytes) -> None:
        """Handle one client frame of a relay without persistence (a visitor's or the inbox's)."""
        frame = parse_frame(raw)
        if frame is None:
            return
        if visitor_id is not None and frame.get("type") == "message":
            try:
                conversation_id, text, client_message_id = self.check_message(frame)
            except FrameError as exc:
                outbox.offer(exc.text)
                return
            message = self.new_message(visitor_id, conversation_id, text, client_message_id)
            self.publish(message)
            outbox.offer(message.ack_text())
            return
        reply = self.answer(frame)
        if reply is not None:
            outbox.offer(reply)


def login(body: Any) -> dict[str, Any]:
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("email"), str)
        or not isinstance(body.get("password"), str)
    ):
        raise BadRequest
    return LOGIN_ANSWER


# --- process ---------------------------------------------------------------------------------


def parse_args(
    prog: str, description: str, argv: Sequence[str] | None, *, persist: bool, ws_port: bool
) -> argparse.Namespace:
    """``--port`` (HTTP, or HTTP and WS), ``--ws-port`` (two-port relays), ``--queue-size``,
    ``--persist``.

    A relay without persistence refuses ``--persist`` (exit 2) rather than ignore it, so a bench
    never compares a persisting product with a relay it believes persists.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    if ws_port:
        parser.add_argument(
            "--ws-port", type=int, default=0, help="WebSocket port to bind (0: any free port)"
        )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=QUEUE_SIZE,
        help=f"texts a socket may have queued before it is closed 1013 (default {QUEUE_SIZE})",
    )
    parser.add_argument(
        "--persist",
        action="store_true",
        help="write messages and heartbeats to PostgreSQL (DATABASE_URL)"
        if persist
        else "not supported by this relay",
    )
    args = parser.parse_args(argv)
    if args.persist and not persist:
        parser.error("--persist: this relay has no persistence")
    if args.queue_size < 4:
        parser.error("--queue-size: at least 4")
    return args


def raise_nofile_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (bench runs open many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                hard = int(f.read())
        except (OSError, ValueError):
            return
    if soft < hard:
        try:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
            )
        except (OSError, ValueError):
            pass


def banner(http_port: int, ws_port: int) -> str:
    """The one line a relay prints on stdout once it listens."""
    return json.dumps(
        {"http": f"http://{HOST}:{http_port}", "ws": f"ws://{HOST}:{ws_port}", "pid": os.getpid()}
    )
