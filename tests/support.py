"""Test helpers: a server on a free port, HTTP and WebSocket clients, seeding."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx
import hypercorn.trio
import trio
import trio_asyncio
import trio_websocket

from engine.faults import NO_FAULTS, Faults
from storage import queries
from web import workers
from web.auth import hash_password, new_id
from web.server import http_app, hypercorn_config, open_services, stop_trigger
from web.services import Services, Settings

OPS_TOKEN = "ops-test-token"
CLI = str(Path(sys.executable).parent / "curbe-chat")
CHAT_TABLES = ("conversations", "messages", "conversation_events", "contacts", "visitor_sessions")


async def row_counts(
    connection: asyncpg.Connection, tables: tuple[str, ...] = CHAT_TABLES
) -> dict[str, int]:
    """Row counts of ``tables`` (asyncio; run via ``server.run``): bad input must not move them."""
    return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in tables}


async def read_banner(proc: trio.Process) -> dict[str, Any]:
    """The JSON object ``curbe-chat serve`` prints on stdout once it listens (Trio; the caller
    bounds the wait): read as the parent of ``--workers`` reads its workers'."""
    assert proc.stdout is not None
    try:
        return await workers.read_banner(proc.stdout)
    except RuntimeError as exc:
        raise AssertionError(f"serve exited before it printed its address ({exc})") from None


@attrs.define
class Server:
    base_url: str
    services: Services
    ws_url: str
    stop: trio.Event = attrs.field(factory=trio.Event)  # set: the server stops (as on SIGTERM)

    def http(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10, **kwargs)

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.services.db.run(fn, *args, **kwargs)


@attrs.define
class ManualClock:
    """A wall clock the test moves by hand (``advance``): for rules computed from ``now`` (a
    widget's 24-hour window), where the real clock would mean a day of waiting."""

    offset: dt.timedelta = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@asynccontextmanager
async def open_server(
    database_url: str, *, clock: Any = None, faults: Faults = NO_FAULTS, **settings: Any
) -> AsyncIterator[Server]:
    # every test client comes from 127.0.0.1: the public throttles (sized for real sites, where
    # visitors have addresses of their own) are raised unless a test asks for its own scale
    settings.setdefault("throttle_scale", 1000.0)
    s = Settings(host="127.0.0.1", port=0, ops_token=OPS_TOKEN, **settings)
    async with (
        trio_asyncio.open_loop(),
        open_services(s, database_url, clock=clock, faults=faults) as services,
    ):
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                lambda task_status: hypercorn.trio.serve(
                    http_app(services),
                    hypercorn_config(s),
                    shutdown_trigger=stop_trigger(services, stop.wait),
                    task_status=task_status,
                )
            )
            base = binds[0]
            port = int(base.rsplit(":", 1)[1])
            s.port = port
            yield Server(
                base_url=base, services=services, ws_url=base.replace("http://", "ws://"), stop=stop
            )
            stop.set()


@attrs.define
class Seed:
    tenant_id: str
    widget_id: str
    agent_id: str
    agent_email: str
    agent_name: str
    password: str = "correct horse battery"


async def seed(
    srv: Server,
    *,
    agents: int = 1,
    domains: list[str] | None = None,
    wait_timeout: int = 60,
    tenant_name: str = "InsureMax",
) -> list[Seed]:
    tenant_id = new_id("ten")
    widget_id = new_id("wgt")
    await srv.run(queries.insert_tenant, tenant_id, tenant_name)
    await srv.run(
        queries.insert_widget, widget_id, tenant_id, "InsureMax", domains or [], wait_timeout
    )
    names = ["Javier Lazo", "Ana Ruiz", "Bea Soto"]
    return [await add_agent(srv, tenant_id, widget_id, names[n % 3]) for n in range(agents)]


async def add_agent(srv: Server, tenant_id: str, widget_id: str, name: str) -> Seed:
    """One more agent of the tenant (password ``correct horse battery``)."""
    agent_id = new_id("agt")
    email = f"{agent_id}@example.com"
    await srv.run(
        queries.insert_agent,
        agent_id,
        tenant_id,
        email,
        name,
        await hash_password("correct horse battery"),
    )
    return Seed(tenant_id, widget_id, agent_id, email, name)


async def login(srv: Server, who: Seed) -> str:
    async with srv.http() as client:
        r = await client.post(
            "/api/auth/login", json={"email": who.agent_email, "password": who.password}
        )
        assert r.status_code == 200, r.text
        return r.json()["token"]  # type: ignore[no-any-return]


@attrs.define
class Visitor:
    widget_id: str
    visitor_id: str
    token: str


async def new_visitor(
    srv: Server, widget_id: str, url: str = "https://shop.example.com/pricing"
) -> Visitor:
    async with srv.http() as client:
        r = await client.post(
            f"/api/chat/widgets/{widget_id}/heartbeat",
            json={
                "currentDomain": "shop.example.com",
                "currentUrl": url,
                "timestamp": "2020-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        return Visitor(widget_id, body["visitorId"], body["visitorToken"])


async def start_chat(
    srv: Server, v: Visitor, message: str = "hola", **extra: Any
) -> dict[str, Any]:
    """``v`` starts a chat as Carlos Lopez (``extra``: more fields of the body); the answer."""
    body = {"name": "Carlos Lopez", "email": "carlos@example.com", "message": message, **extra}
    async with srv.http(v.token) as client:
        r = await client.post(f"/api/chat/widgets/{v.widget_id}/conversations", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def new_chat(srv: Server, v: Visitor, message: str = "hola", **extra: Any) -> str:
    """:func:`start_chat`'s conversation id."""
    return str((await start_chat(srv, v, message, **extra))["id"])


async def accept(srv: Server, token: str, cid: str) -> dict[str, Any]:
    """The agent signed in with ``token`` accepts ``cid``; the answer."""
    async with srv.http(token) as client:
        r = await client.post(f"/api/chat/conversations/{cid}/accept")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def accepted_chat(srv: Server, who: Seed, token: str) -> tuple[Visitor, str]:
    """A new visitor of ``who``'s widget starts a chat that ``who``'s agent accepts."""
    v = await new_visitor(srv, who.widget_id)
    cid = await new_chat(srv, v)
    await accept(srv, token, cid)
    return v, cid


async def agent_says(
    srv: Server, token: str, cid: str, text: str, client_message_id: str | None = None
) -> dict[str, Any]:
    """The agent signed in with ``token`` answers in ``cid``; the stored message."""
    body: dict[str, Any] = {"text": text}
    if client_message_id is not None:
        body["clientMessageId"] = client_message_id
    async with srv.http(token) as client:
        r = await client.post(f"/api/chat/conversations/{cid}/messages", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def visitor_says(
    srv: Server, v: Visitor, cid: str, text: str, **extra: Any
) -> dict[str, Any]:
    """``v`` writes in ``cid`` (``extra``: more fields of the body); the stored message."""
    async with srv.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations/{cid}/messages",
            json={"text": text, **extra},
        )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def detail(srv: Server, token: str, cid: str) -> dict[str, Any]:
    """The conversation as the inbox reads it."""
    async with srv.http(token) as client:
        r = await client.get(f"/api/chat/conversations/{cid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def visitor_view(srv: Server, v: Visitor) -> dict[str, Any]:
    """``v``'s conversation as the widget reads it."""
    async with srv.http(v.token) as client:
        r = await client.get(f"/api/chat/widgets/{v.widget_id}/conversation")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


class Socket:
    """A real WebSocket client that reads JSON frames and waits for the ones a test wants."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        # a ``visitor_presence_batch`` is read as the updates it carries, an ``activity_batch``
        # as the events it carries, as inbox.js does
        # (``unfold = False``: as the frame it is, for a test of the batching itself)
        self.unfold = True
        self.batches: list[dict[str, Any]] = []
        self._unfolded: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(frame))

    async def next(self) -> dict[str, Any]:
        if self._unfolded:
            frame = self._unfolded.pop(0)
        else:
            with trio.fail_after(10):
                frame = json.loads(await self.ws.get_message())
            if self.unfold and frame.get("type") == "visitor_presence_batch":
                self.batches.append(frame)
                head = {k: v for k, v in frame.items() if k != "data"}
                head["type"] = "visitor_presence_update"
                frame, *self._unfolded = [{**head, "data": v} for v in frame["data"]["visitors"]]
            elif self.unfold and frame.get("type") == "activity_batch":
                self.batches.append(frame)
                frame, *self._unfolded = frame["data"]["events"]
        self.seen.append(frame)
        return frame  # type: ignore[no-any-return]

    async def wait_for(self, type_: str, **match: Any) -> dict[str, Any]:
        while True:
            frame = await self.next()
            if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def drain(self) -> list[dict[str, Any]]:
        """Frames already sent: asks for a pong and returns everything before it."""
        await self.send({"type": "ping"})
        out = []
        while True:
            frame = await self.next()
            if frame["type"] == "pong":
                return out
            out.append(frame)


@asynccontextmanager
async def open_socket(srv: Server, path: str) -> AsyncIterator[Socket]:
    async with trio_websocket.open_websocket_url(srv.ws_url + path) as ws:
        sock = Socket(ws)
        ready = await sock.next()
        assert ready["type"] == "ready", ready
        yield sock


def visitor_socket(srv: Server, v: Visitor) -> Any:
    return open_socket(srv, f"/api/chat/widgets/{v.widget_id}/ws?token={v.token}")


def inbox_socket(srv: Server, token: str) -> Any:
    return open_socket(srv, f"/api/chat/inbox/ws?token={token}")


def parse_utc(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
