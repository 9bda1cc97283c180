"""What every fault scenario shares: a fresh database, a server process it may kill, a tenant
seeded through the command line, visitors that speak only the public API (and retry the way
``widget.js`` does, with the same ``clientMessageId``), a ledger of what the server acknowledged,
and SQL that reads what was stored."""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import IO, Any

import asyncpg
import attrs
import trio
import trio_asyncio

from bench.run import Server, Target, free_port, fresh_database, run_cli
from bench.wire import Endpoint, Http, WireError

PASSWORD = "chaos password 1"
OPS_TOKEN = "chaos-ops"
CURBE = Target("curbe", "Curbe Chat", None, persist=True)
# what a request meets while the server is down or restarting: refused, reset, cut short
TRANSPORT = (OSError, WireError, trio.BrokenResourceError, trio.ClosedResourceError)
# writes an accepted heartbeat makes later, coalesced: the visitor's actor saves an unchanged
# heartbeat up to a second later (engine/visitor.py, ``publish_interval``), the widget's actor
# its installation ping every 5 s (engine/widget.py, ``persist_seconds``). Within these many
# seconds of an accepted heartbeat, a change to these tables only is that save, not the doing
# of a refusal that happens to follow.
DEFERRED = {"visitor_sessions": 2.0, "widgets": 6.5}


def deferred(changed: set[str], since_heartbeat: float) -> bool:
    """Whether every table in ``changed`` may be a coalesced save of an accepted heartbeat."""
    return bool(changed) and all(since_heartbeat < DEFERRED.get(t, -1.0) for t in changed)


Signed = dict[str, tuple[int, int]]  # per table: row count and highest xmin (fuzz.Signature)


@attrs.define
class Refusals:
    """What refused requests and frames changed in the database, judged from the signatures
    taken before and after each (the requests and the frame machine share it)."""

    stored: int = 0  # refusals that changed what they should not have: findings
    recorded: int = 0  # refusals the contract records (a heartbeat from outside Targeting)
    deferred: int = 0  # coalesced saves of an earlier accepted heartbeat (DEFERRED), apart
    last_beat: float = -1e9  # when a heartbeat was last accepted (monotonic)

    def beat(self) -> None:
        """A heartbeat was accepted: its coalesced saves may follow (DEFERRED)."""
        self.last_beat = time.monotonic()

    def judge(self, before: Signed, after: Signed, recorded: set[str]) -> list[str]:
        """Count one refusal; the tables it changed that it should not have (none: [])."""
        changed = {t for t in after if after[t] != before.get(t)}
        if deferred(changed, time.monotonic() - self.last_beat):
            self.deferred += 1
            return []
        if changed - recorded:
            self.stored += 1
            return sorted(changed)
        if changed:
            self.recorded += 1
        return []


PAGE = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/chaos"}


async def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """One query on its own connection (Trio; opens an asyncio loop for asyncpg)."""
    async with trio_asyncio.open_loop():

        async def fetch() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(url)
            try:
                return list(await connection.fetch(query, *args))
            finally:
                await connection.close()

        rows: list[asyncpg.Record] = await trio_asyncio.aio_as_trio(fetch)()
        return rows


@attrs.define
class Chat:
    """A tenant with an agent and two widgets: one whose wait never ends within a run (the
    message load) and one whose wait timer fires after ``timer_seconds`` (the timers)."""

    env: dict[str, str]
    url: str  # the database, straight (not through a proxy)
    tenant: str
    widget: str
    timer_widget: str
    agent_email: str = "agent@chaos.example"


async def open_chat(database_url: str, name: str, *, timer_seconds: int = 2) -> Chat:
    """A fresh database ``name`` on ``database_url``'s server, migrated and seeded."""
    url = await fresh_database(database_url, name)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        CURBE_LOG_LEVEL="WARNING",
        CURBE_OPS_TOKEN=OPS_TOKEN,
        PYTHONUNBUFFERED="1",
        # every visitor here comes from 127.0.0.1: the public throttles, sized for one person
        # per address, would refuse most of them (web/throttles.py)
        CURBE_THROTTLE_SCALE="1000",
    )
    tenant = await run_cli(env, "tenant", "create", "--name", "Chaos")
    await run_cli(env, "agent", "create", "--tenant", tenant["id"], "--email",
                  "agent@chaos.example", "--name", "Chaos Agent", "--password", PASSWORD,
                  "--max-chats", "1000")  # fmt: skip
    widget = await run_cli(env, "widget", "create", "--tenant", tenant["id"], "--name", "Load",
                           "--wait-timeout", "3600")  # fmt: skip
    timers = await run_cli(env, "widget", "create", "--tenant", tenant["id"], "--name", "Timers",
                           "--wait-timeout", str(timer_seconds))  # fmt: skip
    return Chat(env, url, tenant["id"], widget["id"], timers["id"])


async def drop_database(database_url: str, name: str) -> None:
    await fresh_database(database_url, name, create=False)


class ServerProcess:
    """``curbe-chat serve --workers 1`` that a scenario starts, kills with SIGKILL and starts
    again on the same port; its log goes to ``log`` (a file) so the figures stay readable."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.server = Server(CURBE, env, free_port(), stderr=log)
        self.starts: list[float] = []  # seconds from spawn to listening, per start

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.server.port)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self, nursery: trio.Nursery) -> None:
        began = time.monotonic()
        await self.server.start(nursery)
        self.starts.append(time.monotonic() - began)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut."""
        process = self.server.process
        assert process is not None
        process.kill()
        await process.wait()

    async def stop(self) -> None:
        await self.server.stop()

    async def health(self) -> str:
        """``/healthz``'s ``status`` (``ok``, ``degraded``), or what kept it from answering."""
        try:
            status, answer = await call(self.endpoint, "GET", "/healthz")
        except TRANSPORT as exc:
            return f"no answer ({type(exc).__name__})"
        if status != 200 or not isinstance(answer, dict):
            return f"HTTP {status}"
        return str(answer.get("status"))


async def call(
    endpoint: Endpoint, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One request on its own connection: a server killed mid-answer breaks only this one."""
    http = await Http.open(endpoint)
    try:
        status, answer, _ = await http.request(method, path, body, token=token)
    finally:
        await trio.aclose_forcefully(http.stream)
    return status, answer


@attrs.define
class Ledger:
    """What the clients sent, what the server acknowledged and every other answer they met.

    ``outcomes`` are ``(sent, answered, ok)`` per attempt (monotonic times): the database
    scenario reads from them when errors happened."""

    sent: dict[str, str] = attrs.field(factory=dict)  # clientMessageId -> conversation id
    acked: set[str] = attrs.field(factory=set)
    refused: collections.Counter[int] = attrs.field(factory=collections.Counter)
    transport_errors: int = 0
    unexpected: list[str] = attrs.field(factory=list)  # answers no retry can mend
    outcomes: list[tuple[float, float, bool]] = attrs.field(factory=list)

    def note(self, sent: float, ok: bool) -> None:
        self.outcomes.append((sent, time.monotonic(), ok))


# what a client retries: the server is restarting (503), or asks to slow down (429)
RETRIED = {429, 503}


async def agent_token(server: ServerProcess, chat: Chat) -> str:
    status, answer = await call(
        server.endpoint, "POST", "/api/auth/login",
        {"email": chat.agent_email, "password": PASSWORD},
    )  # fmt: skip
    if status != 200:
        raise RuntimeError(f"sign-in answered {status}: {answer}")
    return str(answer["token"])


class Visitor:
    """One visitor of one widget over the public API, retrying like ``widget.js``: the same
    request again (same ``clientMessageId``) until the server answers it."""

    def __init__(self, server: ServerProcess, widget: str, name: str, ledger: Ledger) -> None:
        self.server = server
        self.widget = widget
        self.name = name
        self.ledger = ledger
        self.token: str | None = None
        self.visitor_id: str | None = None
        self.conversation: str | None = None
        self.said = 0

    async def _until_answered(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        while True:
            sent = time.monotonic()
            try:
                status, answer = await call(self.server.endpoint, method, path, body, self.token)
            except TRANSPORT:
                self.ledger.transport_errors += 1
                self.ledger.note(sent, False)
            else:
                if status not in RETRIED:
                    self.ledger.note(sent, status < 400)
                    return status, answer
                self.ledger.refused[status] += 1
                self.ledger.note(sent, False)
            await trio.sleep(0.05)

    async def join(self) -> None:
        status, answer = await self._until_answered(
            "POST", f"/api/chat/widgets/{self.widget}/heartbeat", dict(PAGE)
        )
        if status != 200:
            raise RuntimeError(f"heartbeat answered {status}: {answer}")
        self.token = answer["visitorToken"]
        self.visitor_id = answer["visitorId"]

    async def start_chat(self) -> str:
        cmid = f"{self.name}-0"
        body = {"name": self.name, "email": "v@example.com", "message": "hello",
                "clientMessageId": cmid}  # fmt: skip
        status, answer = await self._until_answered(
            "POST", f"/api/chat/widgets/{self.widget}/conversations", body
        )
        if status != 201:
            raise RuntimeError(f"start chat answered {status}: {answer}")
        self.conversation = str(answer["id"])
        self.ledger.sent[cmid] = self.conversation
        self.ledger.acked.add(cmid)
        return self.conversation

    async def say(self) -> None:
        """One more message, retried until acknowledged (or answered something no retry mends)."""
        assert self.conversation is not None
        self.said += 1
        cmid = f"{self.name}-{self.said}"
        self.ledger.sent[cmid] = self.conversation
        status, answer = await self._until_answered(
            "POST",
            f"/api/chat/widgets/{self.widget}/conversations/{self.conversation}/messages",
            {"text": f"message {cmid}", "clientMessageId": cmid},
        )
        if status == 201:
            self.ledger.acked.add(cmid)
        else:
            self.ledger.unexpected.append(f"{cmid}: {status} {answer}")

    async def keep_talking(self, stop: trio.Event, pause: float) -> None:
        """Say messages until ``stop``; the one in flight when it is set is finished first."""
        while not stop.is_set():
            await self.say()
            await trio.sleep(pause)


async def stored_messages(url: str, conversations: list[str]) -> collections.Counter[str]:
    """How many stored rows each visitor ``clientMessageId`` has in ``conversations``."""
    rows = await sql(
        url,
        "SELECT client_message_id, count(*) AS n FROM messages WHERE sender_type = 'visitor' "
        "AND conversation_id = ANY($1::text[]) GROUP BY client_message_id",
        conversations,
    )
    return collections.Counter({str(r["client_message_id"]): int(r["n"]) for r in rows})


def tally(ledger: Ledger, stored: collections.Counter[str]) -> dict[str, int]:
    """Acknowledged but not stored (lost), stored more than once (duplicates), stored without a
    client having sent it (strays)."""
    return {
        "sent": len(ledger.sent),
        "acknowledged": len(ledger.acked),
        "lost": sum(1 for cmid in ledger.acked if stored[cmid] == 0),
        "duplicates": sum(n - 1 for n in stored.values() if n > 1),
        "strays": sum(1 for cmid in stored if cmid not in ledger.sent),
    }


def nonzero(figures: dict[str, Any], *keys: str, examples: bool = False) -> list[str]:
    """The figures among ``keys`` that are not 0, as ``key = value`` (and the examples, if asked
    and anything is broken): what a scenario's ``holds`` reports."""
    broken = [f"{key} = {figures[key]}" for key in keys if figures[key]]
    if broken and examples:
        broken.append(f"examples: {figures['examples']}")
    return broken


def log_file(folder: Path, name: str) -> IO[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / f"{name}.log", "wb")  # closed by the scenario
