"""A hypothesis state machine over both sockets: frames of every type, well formed and not
(wrong types, out-of-range integers, unknown types, JSON that is not an object, text that is not
JSON, binary, oversized), sent to a visitor's socket and an agent's inbox socket in any order.

After each frame the machine sends a barrier (a ``message`` frame with no text: it is refused
with an ``error`` frame carrying the barrier's ``clientMessageId``) and reads up to its answer.
Every frame the server sends is checked against the socket's ``serverFrames`` schema in the
OpenAPI document, every close code against its ``closeCodes``; an ``internal_error`` is a finding,
and so is an ``actor_unavailable``, ``actor_timeout`` or ``database_unavailable`` (nothing here
breaks the server on purpose); and a frame refused with an ``error`` must leave the
database's signature unchanged.

Holds when: 0 frames outside the document, 0 internal errors (those four codes), 0
undocumented closes, 0 stored changes from a refused frame.
"""

from __future__ import annotations

import collections
import functools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import trio
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bench.wire import ClosedError, Endpoint, WebSocket, WireError
from chaos.fuzz import Fixtures, Signature, seeded_server
from chaos.harness import Refusals, call, nonzero

VISITOR_WS = "/api/chat/widgets/{widgetId}/ws"
UNHEALTHY = {"internal_error", "actor_unavailable", "actor_timeout", "database_unavailable"}
INBOX_WS = "/api/chat/inbox/ws"

# --- what the machine sends ---------------------------------------------------------------

short = st.text(max_size=40)
ids = st.one_of(st.none(), short, st.integers(), st.just(""))
seqs = st.one_of(
    st.integers(min_value=0, max_value=50),
    st.integers(),  # negative and past PostgreSQL's integer
    st.floats(allow_nan=False),
    short,
    st.none(),
    st.booleans(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | short,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(short, inner, max_size=4),
    max_leaves=12,
)


def frames(conversation: str) -> st.SearchStrategy[Any]:
    """A frame: a dict (sent as JSON), a ``str`` sent as is, or ``bytes`` (a binary frame)."""
    conv = st.one_of(st.just(conversation), ids)
    text = st.one_of(st.text(min_size=1, max_size=200), st.just("   "), st.integers(), st.none())
    typed = st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("message"), "text": text},
            optional={"clientMessageId": ids, "conversationId": conv, "clientTimestamp": ids},
        ),
        st.fixed_dictionaries(
            {"type": st.just("resume"), "afterSeq": seqs}, optional={"conversationId": conv}
        ),
        st.just({"type": "ping"}),
        st.fixed_dictionaries(
            {"type": st.just("heartbeat")},
            optional={
                "currentDomain": st.one_of(st.just("shop.example.com"), short, st.integers()),
                "currentUrl": st.one_of(st.just("https://shop.example.com/x"), short),
                "pageTitle": ids,
                "timeZone": ids,
                "language": ids,
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("read")}, optional={"seq": seqs, "conversationId": conv}
        ),
        st.fixed_dictionaries(
            {"type": st.just("typing"), "state": st.one_of(st.sampled_from(["on", "off"]), short)},
            optional={"conversationId": conv},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("presence"),
                "status": st.one_of(st.sampled_from(["online", "away"]), short),
            }
        ),
    )
    extra = st.dictionaries(short, json_values, max_size=3)
    return st.one_of(
        typed,
        st.builds(lambda f, e: {**e, **f}, typed, extra),  # unknown fields beside known ones
        st.fixed_dictionaries({"type": short}),  # unknown types
        json_values.map(json.dumps),  # JSON that is not an object, or an object with no type
        st.text(max_size=80),  # text that is not JSON
        st.binary(max_size=80),  # a binary frame
        st.just("x" * (70 * 1024)),  # past the 64 KiB limit
    )


# --- what the server answers ------------------------------------------------------------------


class Document:
    """Validators for each socket's ``serverFrames`` and its ``closeCodes``."""

    def __init__(self, doc: dict[str, Any]) -> None:
        registry: Registry[Any] = Registry().with_resource(
            "urn:curbe", Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        self.frames: dict[str, Draft202012Validator] = {}
        self.closes: dict[str, set[int]] = {}
        for path, spec in doc["x-websockets"].items():
            pointer = "/x-websockets/" + path.replace("~", "~0").replace("/", "~1")
            self.frames[path] = Draft202012Validator(
                {"$ref": f"urn:curbe#{pointer}/serverFrames"}, registry=registry
            )
            self.closes[path] = {int(code) for code in spec["closeCodes"]}

    def frame_errors(self, path: str, frame: Any) -> list[str]:
        return [e.message[:200] for e in self.frames[path].iter_errors(frame)][:3]


@attrs.define
class Tally:
    frames_sent: int = 0
    frames_received: int = 0
    answers: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outside_document: int = 0
    internal_errors: int = 0
    bad_closes: int = 0
    documented_closes: collections.Counter[int] = attrs.field(factory=collections.Counter)
    refusals: Refusals = attrs.field(factory=Refusals)
    examples: list[str] = attrs.field(factory=list)

    def found(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text[:500])


class Socket:
    """One socket of the machine (the bench's own client, in the Trio loop: the machine runs in a
    worker thread and crosses over), reopened after a documented close."""

    def __init__(self, endpoint: Endpoint, path: str, address: str, doc: Document, tally: Tally):
        # ``path``: the socket as the document names it; ``address``: what is opened
        self.endpoint, self.path, self.address, self.doc, self.tally = (
            endpoint, path, address, doc, tally
        )  # fmt: skip
        self.ws: WebSocket | None = None
        self.barriers = 0

    def close(self) -> None:
        if self.ws is not None:
            trio.from_thread.run(trio.aclose_forcefully, self.ws.stream)
            self.ws = None

    def note(self, frame: Any) -> dict[str, Any]:
        self.tally.frames_received += 1
        for error in self.doc.frame_errors(self.path, frame):
            self.tally.outside_document += 1
            self.tally.found(f"{self.path}: {error} — {json.dumps(frame)[:300]}")
        if not isinstance(frame, dict):
            return {}
        kind = str(frame.get("type"))
        if kind == "error":
            code = str(frame.get("error", {}).get("code"))
            self.tally.answers[f"error:{code}"] += 1
            if code in UNHEALTHY:
                # nothing here breaks the server on purpose: a crashed actor or an unanswered
                # query is a fault of the code, as an internal error is
                self.tally.internal_errors += 1
                self.tally.found(f"{self.path}: {code} — {json.dumps(frame)[:300]}")
        else:
            self.tally.answers[kind] += 1
            if kind == "heartbeat":
                self.tally.refusals.beat()
        return frame

    def exchange(self, frame: Any) -> list[dict[str, Any]]:
        """Send ``frame`` and a barrier; answers what came back before the barrier's answer."""
        got: list[dict[str, Any]] = trio.from_thread.run(self._exchange, frame)
        return got

    async def _exchange(self, frame: Any) -> list[dict[str, Any]]:
        if self.ws is None:
            self.ws = await WebSocket.open(self.endpoint, self.address)
            while self.note(await self._receive()).get("type") != "ready":
                pass
        self.barriers += 1
        barrier = f"barrier-{self.barriers}"
        self.tally.frames_sent += 1
        got: list[dict[str, Any]] = []
        try:
            if isinstance(frame, bytes):
                await self.ws._frame(0x2, frame)
            else:
                text = frame if isinstance(frame, str) else json.dumps(frame)
                await self.ws._frame(0x1, text.encode())
            await self.ws.send({"type": "message", "clientMessageId": barrier})
            while True:
                answer = self.note(await self._receive())
                if answer.get("type") == "error" and answer.get("clientMessageId") == barrier:
                    return got
                got.append(answer)
        except ClosedError as closed:
            if closed.code in self.doc.closes[self.path]:
                self.tally.documented_closes[closed.code] += 1
            else:
                self.tally.bad_closes += 1
                self.tally.found(f"{self.path}: closed {closed.code} after {str(frame)[:200]}")
        except (WireError, OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            self.tally.bad_closes += 1  # cut without a close frame, or silent for 15 s
            self.tally.found(f"{self.path}: {exc!r} after {str(frame)[:200]}")
        await trio.aclose_forcefully(self.ws.stream)
        self.ws = None
        return got

    async def _receive(self) -> Any:
        assert self.ws is not None
        with trio.fail_after(15):
            return await self.ws.receive()


def refused(answers: list[dict[str, Any]]) -> bool:
    """The frame was refused and nothing else it could have caused came back."""
    kinds = {a.get("type") for a in answers}
    return "error" in kinds and not kinds & {"ack", "resumed", "heartbeat", "message_created"}


def drive(
    endpoint: Endpoint, doc: dict[str, Any], url: str, fixtures: Fixtures, *, runs: int, steps: int
) -> dict[str, Any]:
    """Run the machine ``runs`` times, ``steps`` frames each (blocking: run it in a thread)."""
    document = Document(doc)
    tally = Tally()
    signature = Signature(url)
    visitor_path = VISITOR_WS.replace("{widgetId}", fixtures.widget)
    visitor_query = "?token=" + quote(fixtures.visitor_token)
    inbox_query = "?presence=0&token=" + quote(fixtures.agent_token)
    began = time.monotonic()

    class Frames(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.visitor = Socket(
                endpoint, VISITOR_WS, visitor_path + visitor_query, document, tally
            )
            self.inbox = Socket(endpoint, INBOX_WS, INBOX_WS + inbox_query, document, tally)

        def _send(self, socket: Socket, frame: Any) -> None:
            before = signature.take()
            answers = socket.exchange(frame)
            if not refused(answers):
                return
            after = signature.take()
            codes = {a.get("error", {}).get("code") for a in answers if a.get("type") == "error"}
            # a heartbeat from outside Targeting is recorded on purpose, as over HTTP
            recorded = {"widgets"} if "domain_not_allowed" in codes else set()
            if stored := tally.refusals.judge(before, after, recorded):
                tally.found(f"{socket.path}: refused but stored {stored}: {str(frame)[:200]}")

        @rule(frame=frames(fixtures.conversation))
        def to_visitor(self, frame: Any) -> None:
            self._send(self.visitor, frame)

        @rule(frame=frames(fixtures.conversation))
        def to_inbox(self, frame: Any) -> None:
            self._send(self.inbox, frame)

        def teardown(self) -> None:
            self.visitor.close()
            self.inbox.close()

    try:
        run_state_machine_as_test(
            Frames,
            settings=settings(
                max_examples=runs,
                stateful_step_count=steps,
                phases=[Phase.generate],
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        signature.close()
    return {
        "runs": runs,
        "framesSent": tally.frames_sent,
        "framesReceived": tally.frames_received,
        "seconds": round(time.monotonic() - began, 1),
        "answers": dict(tally.answers.most_common()),
        "documentedCloses": {str(k): v for k, v in tally.documented_closes.items()},
        "outsideDocument": tally.outside_document,
        "internalErrors": tally.internal_errors,
        "undocumentedCloses": tally.bad_closes,
        "refusedButStored": tally.refusals.stored,
        "recordedRefusals": tally.refusals.recorded,
        "deferredSaves": tally.refusals.deferred,
        "examples": tally.examples,
    }


async def run(database_url: str, logs: Path, *, runs: int, steps: int) -> dict[str, Any]:
    async with seeded_server(database_url, logs, "curbe_chaos_frames") as (server, url, f):
        _, doc = await call(server.endpoint, "GET", "/api/openapi.json")
        figures: dict[str, Any] = await trio.to_thread.run_sync(
            functools.partial(drive, server.endpoint, doc, url, f, runs=runs, steps=steps)
        )
    return figures


def holds(figures: dict[str, Any]) -> list[str]:
    keys = ("outsideDocument", "internalErrors", "undocumentedCloses", "refusedButStored")
    return nonzero(figures, *keys, examples=True)
