"""A bench client worker: a process of simulated widgets or agents, driven over stdin/stdout.

``python -m bench.worker NAME`` reads one JSON command per line and answers each with one JSON
line. The orchestrator (:mod:`bench.run`) starts several, so the client's CPU is never counted in
the server's, and no single client process is the bottleneck.

A widget does what ``widget/widget.js`` does: heartbeat, then config, then one WebSocket (kept
open, pinged every 25 s, heartbeat + config every 15 s); on a dropped socket it reconnects with
the same jittered backoff (0.5 s doubling to 15 s), fetches a fresh token on 4401, and resumes
its conversation after the last seq it saw. Messages carry their send time: ``bench|cid|n|ns``
(``time.monotonic_ns``, one clock for every process of the machine), so the agents' worker
measures send -> inbox, losses, duplicates and order per conversation.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections import defaultdict
from typing import Any

import attrs
import trio

from bench.wire import COUNTERS, ClosedError, Endpoint, Http, WebSocket, WireError

HEARTBEAT_EVERY = 15.0
PING_EVERY = 25.0
BACKOFF_MIN, BACKOFF_MAX = 0.5, 15.0
MARK = "bench|"
# a typing visitor's widget says "on" at most every 4 s; the bench at most once a second per
# widget (the typing frame rate), so every message of a slow conversation follows a typing event
TYPING_EVERY_MS = 1000.0
# an agent's open thread is marked read about once a second while messages come into it
AGENT_READ_EVERY = 1.0


def now_ms() -> float:
    return time.monotonic_ns() / 1e6


def backoff(attempt: int) -> float:
    cap = min(BACKOFF_MAX, BACKOFF_MIN * 2**attempt)
    return float(cap / 2 + random.random() * cap / 2)


@attrs.define(eq=False)
class Widget:
    index: int
    source: str
    visitor_id: str | None = None
    token: str | None = None
    ws: WebSocket | None = None
    conversation_id: str | None = None
    last_seq: int = 0  # the highest seq of its conversation seen on its own socket
    seqs: set[int] = attrs.Factory(set)  # seen since the last reset (resume check)
    duplicates: int = 0
    sent: int = 0  # messages sent (n of the next is sent + 1)
    acked: int = 0
    back: trio.Event = attrs.Factory(trio.Event)
    back_at: float = 0.0
    resumed: trio.Event = attrs.Factory(trio.Event)
    pending: dict[str, float] = attrs.Factory(dict)  # clientMessageId -> scheduled ms
    ack_latencies: list[float] = attrs.Factory(list)
    ack_seq: int = 0  # the highest seq an ack gave this widget
    ack_event: trio.Event = attrs.Factory(trio.Event)  # set (and replaced) on every ack
    mark_seq: int = 0  # last_seq when the orchestrator marked (before a restart)
    resumed_seq: int = 0  # lastSeq of the latest resumed frame
    typed_at: float = 0.0  # when its last typing frame went out (ms)


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.http: Endpoint | None = None
        self.wsep: Endpoint | None = None
        self.widget_id = ""
        self.sources: list[str] = ["127.0.0.1"]
        self.widgets: list[Widget] = []
        self.nursery: trio.Nursery | None = None
        self.reconnect = True
        self.background = False
        self.socket_heartbeat = False  # set by ``setup``: the server takes heartbeat frames
        self.typing = False  # set by ``setup``: the server takes typing frames
        self.reading = False  # set by ``setup``: the server takes the visitor's read frames
        self.typing_sent = 0  # typing frames sent in the current ``deliver``
        self.agent_reads = 0  # read marks the agents sent (``agents_read``)
        self.errors: dict[str, int] = defaultdict(int)
        # agents
        self.agent_token: str | None = None
        self.inboxes: list[Inbox] = []
        self.history: set[int] = set()  # widgets whose conversations were filled (probe)
        self._changed = trio.Event()

    def poke(self) -> None:
        """Something a waiter may be waiting for happened (an ack, an inbox frame)."""
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, done: Any) -> None:
        while not done():
            await self._changed.wait()

    # ---- plumbing --------------------------------------------------------------------------

    def source(self, i: int) -> str:
        return self.sources[i % len(self.sources)]

    def error(self, what: str, exc: BaseException | None = None) -> None:
        key = what if exc is None else f"{what}: {type(exc).__name__} {str(exc)[:80]}"
        self.errors[key] += 1

    async def heartbeat(self, w: Widget, http: Http) -> bool:
        status, body, _ = await http.request(
            "POST",
            f"/api/chat/widgets/{self.widget_id}/heartbeat",
            {
                "visitorId": w.visitor_id,
                "currentDomain": "shop.example.com",
                "currentUrl": f"https://shop.example.com/p/{w.index}",
                "timestamp": "2026-12-04T00:00:00Z",
            }
            if w.visitor_id
            else {
                "currentDomain": "shop.example.com",
                "currentUrl": f"https://shop.example.com/p/{w.index}",
                "timestamp": "2026-12-04T00:00:00Z",
            },
            token=w.token,
        )
        if status != 200:
            self.error(f"heartbeat {status}")
            return False
        w.visitor_id, w.token = body["visitorId"], body["visitorToken"]
        return True

    async def heartbeat_and_config(self, w: Widget) -> bool:
        assert self.http is not None
        http = await Http.open(self.http, w.source)
        try:
            if not await self.heartbeat(w, http):
                return False
            status, _, _ = await http.request("GET", f"/api/chat/widgets/{self.widget_id}/config")
            if status != 200:
                self.error(f"config {status}")
            return status == 200
        finally:
            await http.aclose()

    async def open_socket(self, w: Widget) -> WebSocket:
        assert self.wsep is not None
        ws = await WebSocket.open(
            self.wsep, f"/api/chat/widgets/{self.widget_id}/ws?token={w.token}", w.source
        )
        first = await ws.receive()
        if first.get("type") != "ready":
            await ws.aclose()
            raise WireError(f"first frame {first.get('type')}")
        return ws

    # ---- a widget's life -------------------------------------------------------------------

    async def live(self, w: Widget, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve the socket; reconnect while ``self.reconnect`` (as widget.js does)."""
        attempt, started = 0, False
        while True:
            try:
                if w.token is None and not await self.heartbeat_and_config(w):
                    raise WireError("no heartbeat")
                try:
                    w.ws = await self.open_socket(w)
                except ClosedError as closed:
                    if closed.code == 4401:
                        w.token = None  # a fresh token first, then the socket
                    raise
                if w.conversation_id is not None and started:
                    await w.ws.send(
                        {
                            "type": "resume",
                            "conversationId": w.conversation_id,
                            "afterSeq": w.last_seq,
                        }
                    )
                else:
                    w.resumed.set()
                attempt = 0
                w.back_at = now_ms()
                w.back.set()
                if not started:
                    started = True
                    task_status.started(True)
                await self.read(w, w.ws)
            except (WireError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.error("socket", exc)
                if not started:
                    started = True
                    task_status.started(False)
                    return
            w.ws = None
            if not self.reconnect:
                return
            w.back = trio.Event()
            w.resumed = trio.Event()
            await trio.sleep(backoff(attempt))
            attempt += 1

    async def read(self, w: Widget, ws: WebSocket) -> None:
        while True:
            frame = await ws.receive()
            kind = frame.get("type")
            if kind == "ack":
                t = w.pending.pop(frame.get("clientMessageId") or "", None)
                if t is not None:
                    w.ack_latencies.append(now_ms() - t)
                    w.acked += 1
                seq = (frame.get("message") or {}).get("seq")
                if isinstance(seq, int):
                    w.ack_seq = max(w.ack_seq, seq)
                w.ack_event.set()
                w.ack_event = trio.Event()
                self.poke()
            elif kind == "resumed":
                w.resumed_seq = frame.get("lastSeq") or 0
                w.resumed.set()
            elif "seq" in frame and frame.get("conversationId") == w.conversation_id:
                seq = frame["seq"]
                if seq in w.seqs:
                    w.duplicates += 1
                w.seqs.add(seq)
                w.last_seq = max(w.last_seq, seq)

    # ---- commands --------------------------------------------------------------------------

    async def cmd_setup(self, c: dict[str, Any]) -> dict[str, Any]:
        self.http, self.wsep = Endpoint.parse(c["http"]), Endpoint.parse(c["ws"])
        self.widget_id = c.get("widget", "")
        self.sources = c.get("sources") or self.sources
        self.socket_heartbeat = bool(c.get("socket_heartbeat", False))
        self.typing = bool(c.get("typing", False))
        self.reading = bool(c.get("read", False))
        return {}

    async def cmd_retarget(self, c: dict[str, Any]) -> dict[str, Any]:
        """The server came back on other ports (a baseline picks its own)."""
        self.http, self.wsep = Endpoint.parse(c["http"]), Endpoint.parse(c["ws"])
        return {}

    async def cmd_open(self, c: dict[str, Any]) -> dict[str, Any]:
        """Open ``n`` more widgets, ``concurrency`` at a time; answers the connect figures."""
        assert self.nursery is not None
        n, limit = c["n"], trio.CapacityLimiter(c.get("concurrency", 64))
        fresh = [
            Widget(len(self.widgets) + i, self.source(len(self.widgets) + i)) for i in range(n)
        ]
        self.widgets += fresh
        latencies: list[float] = []
        failed = 0
        t0 = now_ms()

        async def one(w: Widget) -> None:
            nonlocal failed
            async with limit:
                t = now_ms()
                assert self.nursery is not None
                if await self.nursery.start(self.live, w):
                    latencies.append(now_ms() - t)
                else:
                    failed += 1

        async with trio.open_nursery() as n_:
            for w in fresh:
                n_.start_soon(one, w)
        return {"opened": len(latencies), "failed": failed, "ms": now_ms() - t0, "lat": latencies}

    async def cmd_background(self, c: dict[str, Any]) -> dict[str, Any]:
        self.background = bool(c["on"])
        return {}

    async def background_loop(self) -> None:
        """What each open widget does, spread evenly: a heartbeat every 15 s (on its socket when
        the server takes heartbeat frames, as widget.js then does; else over HTTP) and, with HTTP
        heartbeats, a ping every 25 s (a socket heartbeat keeps the socket busy enough)."""
        assert self.nursery is not None
        tick, k = 0.05, 0
        while True:
            await trio.sleep(tick)
            if not self.background or not self.widgets:
                continue
            n = len(self.widgets)
            beats = n * tick / HEARTBEAT_EVERY
            pings = 0.0 if self.socket_heartbeat else n * tick / PING_EVERY
            for _ in range(int(beats) + (random.random() < beats % 1)):
                w = self.widgets[k % n]
                k += 1
                if w.token is not None:
                    self.nursery.start_soon(self.background_beat, w)
            for _ in range(int(pings) + (random.random() < pings % 1)):
                w = random.choice(self.widgets)
                if w.ws is not None:
                    self.nursery.start_soon(self.ping, w.ws)

    async def background_beat(self, w: Widget) -> None:
        try:
            if self.socket_heartbeat and w.ws is not None:
                await w.ws.send({"type": "heartbeat", **self.page(w)})
                return
            assert self.http is not None
            http = await Http.open(self.http, w.source)
            try:
                await self.heartbeat(w, http)
            finally:
                await http.aclose()
        except (WireError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.error("background heartbeat", exc)

    @staticmethod
    def page(w: Widget) -> dict[str, str]:
        return {
            "currentDomain": "shop.example.com",
            "currentUrl": f"https://shop.example.com/p/{w.index}",
            "timestamp": "2026-12-04T00:00:00Z",
        }

    async def ping(self, ws: WebSocket) -> None:
        try:
            await ws.send({"type": "ping"})
        except (WireError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def cmd_counters(self, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "sent": COUNTERS.sent,
            "received": COUNTERS.received,
            "requests": COUNTERS.requests,
            "sockets": COUNTERS.sockets,
            "connected": sum(1 for w in self.widgets if w.ws is not None),
            "widgets": len(self.widgets),
            "errors": dict(self.errors),
        }

    async def cmd_heartbeats(self, c: dict[str, Any]) -> dict[str, Any]:
        """Offered heartbeats at ``rate`` for ``seconds`` over keep-alive connections; latency
        is counted from the scheduled time (a late send is a slow answer, not a missing one)."""
        assert self.http is not None
        rate, seconds = c["rate"], c["seconds"]
        pool: trio.MemorySendChannel[Http]
        pool, take = trio.open_memory_channel[Http](10_000)
        for i in range(c.get("connections", 32)):
            pool.send_nowait(await Http.open(self.http, self.source(i)))
        latencies: list[float] = []
        failed = 0
        beating = [w for w in self.widgets if w.token is not None]

        async def one(w: Widget, due: float) -> None:
            nonlocal failed
            http = await take.receive()
            try:
                ok = await self.heartbeat(w, http)
                if ok:
                    latencies.append(now_ms() - due)
                else:
                    failed += 1
                pool.send_nowait(http)
            except (WireError, OSError, trio.BrokenResourceError) as exc:
                failed += 1
                self.error("heartbeat", exc)
                assert self.http is not None
                pool.send_nowait(await Http.open(self.http, self.source(0)))

        t0 = now_ms()
        total = int(rate * seconds)
        async with trio.open_nursery() as n_:
            for i in range(total):
                due = t0 + i * 1000 / rate
                delay = (due - now_ms()) / 1000
                if delay > 0:
                    await trio.sleep(delay)
                n_.start_soon(one, beating[i % len(beating)], due)
        elapsed = now_ms() - t0
        while True:
            try:
                await take.receive_nowait().aclose()
            except trio.WouldBlock:
                break
        return {"done": len(latencies), "failed": failed, "ms": elapsed, "lat": latencies}

    async def cmd_converse(self, c: dict[str, Any]) -> dict[str, Any]:
        """Start a conversation for ``n`` widgets that have none; answers their ids."""
        assert self.http is not None
        chosen = [w for w in self.widgets if w.conversation_id is None and w.ws is not None]
        chosen = chosen[: c["n"]]
        limit = trio.CapacityLimiter(16)
        out: list[str] = []

        async def one(w: Widget) -> None:
            assert self.http is not None
            async with limit:
                http = await Http.open(self.http, w.source)
                try:
                    status, body, _ = await http.request(
                        "POST",
                        f"/api/chat/widgets/{self.widget_id}/conversations",
                        {"name": f"Bench {w.index}", "email": "b@example.com", "message": "hi"},
                        token=w.token,
                    )
                finally:
                    await http.aclose()
            if status != 201:
                self.error(f"converse {status}")
                return
            w.conversation_id = body["id"]
            w.last_seq = max(w.last_seq, body.get("lastSeq") or 1)
            out.append(body["id"])

        async with trio.open_nursery() as n_:
            for w in chosen:
                n_.start_soon(one, w)
        return {"conversations": out}

    async def send(self, w: Widget, due: float) -> None:
        if w.ws is None:
            self.error("send: not connected")
            return
        w.sent += 1
        cmid = f"{self.name}-{w.index}-{w.sent}"
        w.pending[cmid] = due
        try:
            if self.typing and now_ms() - w.typed_at >= TYPING_EVERY_MS:
                # the visitor typed it: "on" first (the message ends it), within the frame rate
                w.typed_at = now_ms()
                self.typing_sent += 1
                await w.ws.send(
                    {"type": "typing", "conversationId": w.conversation_id, "state": "on"}
                )
                if self.reading:  # and it read the chat so far (a stored mark; told to nobody
                    # when it passes the visitor's own messages only, as here)
                    await w.ws.send({"type": "read", "conversationId": w.conversation_id})
            await w.ws.send(
                {
                    "type": "message",
                    "conversationId": w.conversation_id,
                    "text": f"{MARK}{w.conversation_id}|{w.sent}|{int(due * 1000)}",
                    "clientMessageId": cmid,
                }
            )
        except (WireError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.error("send", exc)

    async def cmd_deliver(self, c: dict[str, Any]) -> dict[str, Any]:
        """Send at ``rate`` msg/s for ``seconds`` round-robin over the conversations, wait for
        the acks (up to ``drain`` s); answers per conversation how many were sent and acked."""
        talkers = [w for w in self.widgets if w.conversation_id is not None]
        rate, seconds = c["rate"], c["seconds"]
        for w in talkers:
            w.ack_latencies.clear()
        before = {w.conversation_id: (w.sent, w.acked) for w in talkers}
        self.typing_sent = 0
        t0 = now_ms()
        for i in range(int(rate * seconds)):
            due = t0 + i * 1000 / rate
            delay = (due - now_ms()) / 1000
            if delay > 0:
                await trio.sleep(delay)
            await self.send(talkers[i % len(talkers)], due)
        elapsed = now_ms() - t0
        with trio.move_on_after(c.get("drain", 10)):
            await self.until(lambda: not any(w.pending for w in talkers))
        lat = [x for w in talkers for x in w.ack_latencies]
        return {
            "ms": elapsed,
            "sent": {w.conversation_id: w.sent for w in talkers},
            "since": {cid: s for cid, (s, _) in before.items()},
            "acked": {w.conversation_id: w.acked for w in talkers},
            "unacked": sum(len(w.pending) for w in talkers),
            "lat": lat,
            "typing": self.typing_sent,
        }

    async def cmd_fill(self, c: dict[str, Any]) -> dict[str, Any]:
        """Give every conversation of this worker at least ``m`` messages (acked), for the
        rehydration probe; answers how many it sent."""
        talkers = [w for w in self.widgets if w.conversation_id is not None and w.sent == 0]
        talkers = talkers[: c["k"]]
        self.history = {w.index for w in talkers}
        sent = 0

        async def one(w: Widget) -> None:
            nonlocal sent
            while w.sent + 1 < c["m"]:
                await self.send(w, now_ms())
                sent += 1
                with trio.move_on_after(10):
                    while w.pending:
                        await w.ack_event.wait()

        async with trio.open_nursery() as n_:
            for w in talkers:
                n_.start_soon(one, w)
        return {"sent": sent, "conversations": len(talkers)}

    async def cmd_probe(self, c: dict[str, Any]) -> dict[str, Any]:
        """One message to each filled conversation at ``rate``/s; answers the ack latencies:
        after a restart, the first command to a conversation the server must rehydrate."""
        talkers = [w for w in self.widgets if w.index in self.history]
        for w in talkers:
            w.ack_latencies.clear()
        rate = c.get("rate", 20)
        t0 = now_ms()
        for i, w in enumerate(talkers):
            due = t0 + i * 1000 / rate
            delay = (due - now_ms()) / 1000
            if delay > 0:
                await trio.sleep(delay)
            await self.send(w, due)
        with trio.move_on_after(c.get("drain", 10)):
            await self.until(lambda: not any(w.pending for w in talkers))
        return {
            "lat": [x for w in talkers for x in w.ack_latencies],
            "unacked": sum(len(w.pending) for w in talkers),
        }

    async def cmd_mark(self, c: dict[str, Any]) -> dict[str, Any]:
        """Before a restart: forget the seqs seen, so the resume check counts what comes after."""
        for w in self.widgets:
            w.seqs.clear()
            w.duplicates = 0
            w.mark_seq = w.last_seq
        return {}

    async def cmd_await_back(self, c: dict[str, Any]) -> dict[str, Any]:
        """Wait (up to ``timeout`` s) until every widget is connected again and resumed; answers
        when the last came back and what the resumes delivered."""
        with trio.move_on_after(c["timeout"]):
            for w in self.widgets:
                await w.back.wait()
                await w.resumed.wait()
        back = [w for w in self.widgets if w.back.is_set() and w.ws is not None]
        talkers = [w for w in back if w.conversation_id is not None]
        gaps = sum(len(set(range(w.mark_seq + 1, w.last_seq + 1)) - w.seqs) for w in talkers)
        return {
            "back": len(back),
            "total": len(self.widgets),
            "last_back_at": max((w.back_at for w in back), default=0.0),
            "resumed": sum(1 for w in talkers if w.resumed.is_set()),
            "duplicates": sum(w.duplicates for w in talkers),
            "behind": sum(1 for w in talkers if w.last_seq < max(w.ack_seq, w.resumed_seq)),
            "gaps": gaps,
        }

    # ---- agents ----------------------------------------------------------------------------

    async def cmd_inbox(self, c: dict[str, Any]) -> dict[str, Any]:
        """Sign in and open ``n`` inbox sockets (each an agent's stream of the tenant)."""
        assert self.http is not None and self.nursery is not None
        http = await Http.open(self.http)
        try:
            status, body, _ = await http.request(
                "POST", "/api/auth/login", {"email": c["email"], "password": c["password"]}
            )
        finally:
            await http.aclose()
        if status != 200:
            raise WireError(f"login {status}")
        self.agent_token = body["token"]
        for _ in range(c["n"]):
            inbox = Inbox()
            self.inboxes.append(inbox)
            await self.nursery.start(self.inbox_live, inbox)
        if self.reading:  # the server takes read marks: each agent reads the thread it has open
            self.nursery.start_soon(self.agents_read)
        return {"opened": len(self.inboxes)}

    async def agents_read(self) -> None:
        """Once a second, each inbox marks read the conversation it heard from last (an agent's
        open thread follows the latest chat): a mark past the visitors' messages, so a
        ``conversation_read`` to the inboxes and to that visitor ("Seen"). A failure (the
        server restarting) is counted and the next tick opens a new connection, to the server's
        address as ``retarget`` last set it."""
        http: Http | None = None
        try:
            while True:
                await trio.sleep(AGENT_READ_EVERY)
                for inbox in self.inboxes:
                    cid, inbox.latest = inbox.latest, None
                    if cid is None:
                        continue
                    try:
                        if http is None:
                            assert self.http is not None
                            http = await Http.open(self.http)
                        status, _, _ = await http.request(
                            "POST", f"/api/chat/conversations/{cid}/read", token=self.agent_token
                        )
                    except (WireError, OSError, trio.BrokenResourceError) as exc:
                        self.error("agent read", exc)
                        if http is not None:
                            await http.aclose()
                            http = None
                        continue
                    if status != 200:
                        self.error(f"agent read {status}")
                    else:
                        self.agent_reads += 1
        finally:
            if http is not None:
                await http.aclose()

    async def inbox_live(self, inbox: Inbox, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert self.wsep is not None
        attempt, started = 0, False
        while True:
            try:
                ws = await WebSocket.open(self.wsep, f"/api/chat/inbox/ws?token={self.agent_token}")
                first = await ws.receive()
                if first.get("type") != "ready":
                    raise WireError(f"inbox first frame {first.get('type')}")
                attempt = 0
                inbox.connected = True
                if not started:
                    started = True
                    task_status.started()
                while True:
                    inbox.take(await ws.receive())
                    self.poke()
            except (WireError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.error("inbox", exc)
            inbox.connected = False
            await trio.sleep(backoff(attempt))
            attempt += 1

    async def cmd_inbox_report(self, c: dict[str, Any]) -> dict[str, Any]:
        """Wait (up to ``drain`` s) until every inbox saw every acked message (``expect``: cid ->
        highest n), then answer losses, duplicates, order violations and latencies; reset."""
        expect: dict[str, int] = c["expect"]
        since: dict[str, int] = c.get("since", {})
        with trio.move_on_after(c.get("drain", 10)):
            await self.until(lambda: all(i.has(expect) for i in self.inboxes))
        out: dict[str, Any] = {
            "lost": 0,
            "duplicates": 0,
            "order": 0,
            "lat": [],
            "typing": 0,
            "reads": 0,
            "hint_frames": 0,
        }
        for inbox in self.inboxes:
            for cid, top in expect.items():
                seen = inbox.seen.get(cid, set())
                out["lost"] += sum(
                    1 for n in range(since.get(cid, 0) + 1, top + 1) if n not in seen
                )
            out["duplicates"] += inbox.duplicates
            out["order"] += inbox.order
            out["lat"] += inbox.latencies
            out["typing"] += inbox.typing
            out["reads"] += inbox.reads
            out["hint_frames"] += inbox.hint_frames
            inbox.reset()
        return out


@attrs.define(eq=False)
class Inbox:
    connected: bool = False
    seen: dict[str, set[int]] = attrs.Factory(lambda: defaultdict(set))
    last: dict[str, int] = attrs.Factory(dict)
    duplicates: int = 0
    order: int = 0
    latencies: list[float] = attrs.Factory(list)
    typing: int = 0  # typing events heard
    reads: int = 0  # conversation_read events heard
    hint_frames: int = 0  # the frames that brought them (an activity_batch brings several)
    latest: str | None = None  # the conversation of the last message heard (its open thread)

    def take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("typing", "conversation_read", "activity_batch"):
            self.hint_frames += 1
            events = frame["data"]["events"] if kind == "activity_batch" else [frame]
            for event in events:
                if event.get("type") == "typing":
                    self.typing += 1
                else:
                    self.reads += 1
            return
        if frame.get("type") != "message_created":
            return
        text = ((frame.get("data") or {}).get("message") or {}).get("text") or ""
        if not text.startswith(MARK):
            return
        _, cid, n_, due_us = text.split("|")
        self.latest = cid
        n = int(n_)
        self.latencies.append(now_ms() - int(due_us) / 1e3)
        if n in self.seen[cid]:
            self.duplicates += 1
        elif n < self.last.get(cid, 0):
            self.order += 1
        self.seen[cid].add(n)
        self.last[cid] = max(self.last.get(cid, 0), n)

    def has(self, expect: dict[str, int]) -> bool:
        return all(self.last.get(cid, 0) >= top for cid, top in expect.items())

    def reset(self) -> None:
        self.duplicates = self.order = self.typing = self.reads = self.hint_frames = 0
        self.latencies = []


async def main(name: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    worker = Worker(name)
    stdin = trio.lowlevel.FdStream(0)
    buffer = b""
    async with trio.open_nursery() as nursery:
        worker.nursery = nursery
        nursery.start_soon(worker.background_loop)
        while True:
            while b"\n" not in buffer:
                chunk = await stdin.receive_some()
                if not chunk:
                    nursery.cancel_scope.cancel()
                    return
                buffer += chunk
            line, buffer = buffer.split(b"\n", 1)
            command = json.loads(line)
            if command["cmd"] == "exit":
                worker.reconnect = False
                for w in worker.widgets:
                    if w.ws is not None:
                        await w.ws.aclose()
                print(json.dumps({"ok": True}), flush=True)
                nursery.cancel_scope.cancel()
                return
            handler = getattr(worker, "cmd_" + command["cmd"])
            try:
                answer = await handler(command)
                answer["ok"] = True
            except Exception as exc:  # answered, not raised: the orchestrator decides
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "w")
