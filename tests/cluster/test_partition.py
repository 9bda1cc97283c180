"""A node cut off from NATS and PostgreSQL stops serving its actors rather than split-brain.

Node ``p`` runs in a network namespace the test makes itself (``ip netns`` and two veth pairs, as
root). Its *front* link carries the test's own HTTP requests to it; its *back* link is the only
way it reaches PostgreSQL and NATS, through relays the test runs on this machine's end of that
link (addresses 169.254.x.y on the veth pairs: traffic only between the namespace and this
machine). Taking the back link down cuts ``p`` off the way a network partition does: packets
vanish, no connection is reset. Node ``s`` runs beside the test, connected as usual.

What must hold: within its lease time ``p`` stops trusting its leases and stops its actors (it
answers their commands with an error, never with an acknowledgement it cannot commit); ``s``
takes the shards over and serves the same conversation; when the link comes back ``p`` rejoins as
a node among others, and the conversation holds every acknowledged message once, in seq order,
with nothing that ``p`` was asked while cut off. (That a write of a stale owner which does reach
the database is refused inside its own transaction is ``tests/storage/test_leases.py``'s fencing
tests.)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from functools import partial
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import attrs
import httpx
import pytest
import trio

from storage.db import Database
from tests.cluster.support import TICK_SECONDS, TTL_SECONDS, balanced, open_node, owner_of, until
from tests.cluster.test_takeover import chat_owned_by
from tests.support import inbox_socket, login, seed, visitor_socket

pytestmark = pytest.mark.slow


def _can_make_namespaces() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (Debian's iproute2)"
    probe = f"curbe-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, (args, done.stderr)


@attrs.frozen
class Link:
    """A veth pair: ``host_if`` on this machine, its peer inside the namespace."""

    host_if: str
    host_ip: str
    ns_ip: str


@attrs.frozen
class Namespace:
    name: str
    front: Link  # the test's requests to the node
    back: Link  # the node's way to PostgreSQL and NATS


@contextmanager
def namespace() -> Iterator[Namespace]:
    tag = secrets.token_hex(3)
    name = f"curbe-{tag}"
    subnet = 100 + secrets.randbelow(150)  # 169.254.<subnet>.0/30 and 169.254.<subnet+1>.0/30
    sh("ip", "netns", "add", name)
    made: list[str] = []
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        links = []
        for i, kind in enumerate("fb"):
            host_if, ns_if = f"c{kind}{tag}h", f"c{kind}{tag}n"
            net = f"169.254.{subnet + i}"
            sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name)
            made.append(host_if)
            sh("ip", "addr", "add", f"{net}.1/30", "dev", host_if)
            sh("ip", "link", "set", host_if, "up")
            sh("ip", "-n", name, "addr", "add", f"{net}.2/30", "dev", ns_if)
            sh("ip", "-n", name, "link", "set", ns_if, "up")
            links.append(Link(host_if, f"{net}.1", f"{net}.2"))
        yield Namespace(name, links[0], links[1])
    finally:
        for host_if in made:  # deleting one end deletes the pair
            subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


Connect = Callable[[], Awaitable[trio.SocketStream]]


def server_of(url: str) -> Connect:
    """How to reach the server of a ``postgresql://`` or ``nats://`` URL from this machine: its
    host and port, or the unix socket an embedded PostgreSQL listens on (``?host=/dir``)."""
    parts = urlsplit(url)
    if parts.hostname:
        host, port = (
            parts.hostname,
            parts.port or (5432 if parts.scheme.startswith("post") else 4222),
        )
        return partial(trio.open_tcp_stream, host, port)
    query = parse_qs(parts.query)
    path = f"{query['host'][0]}/.s.PGSQL.{query.get('port', ['5432'])[0]}"
    return partial(trio.open_unix_socket, path)


async def relay(
    listen_host: str,
    connect: Connect,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Forward every connection to ``listen_host`` (this machine's end of the back link) to a
    server that listens on loopback or a unix socket only; reports the port it listens on."""

    async def pump(source: Any, sink: Any) -> None:
        try:
            async for chunk in source:
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def handle(down: trio.SocketStream) -> None:
        try:
            up = await connect()
        except OSError:
            await down.aclose()
            return
        async with down, up, trio.open_nursery() as nursery:
            for a, b in ((down, up), (up, down)):

                async def one_way(a: Any = a, b: Any = b) -> None:
                    await pump(a, b)
                    nursery.cancel_scope.cancel()  # one side closed: close both

                nursery.start_soon(one_way)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, handle, 0, host=listen_host))
        task_status.started(listener.socket.getsockname()[1])


def via(url: str, host: str, port: int) -> str:
    """``url`` with its server replaced by ``host:port`` (its user, database and other query
    parameters kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@{host}:{port}" if user else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


async def messages_of(connection: asyncpg.Connection, cid: str) -> list[tuple[int, str | None]]:
    rows = await connection.fetch(
        "SELECT seq, client_message_id FROM messages WHERE conversation_id = $1 ORDER BY seq",
        cid,
    )
    return [(r["seq"], r["client_message_id"]) for r in rows]


async def post_message(client: httpx.AsyncClient, path: str, n: str) -> httpx.Response:
    return await client.post(path, json={"text": f"message {n}", "clientMessageId": n})


async def test_a_node_cut_off_stops_serving_and_the_survivor_takes_over_with_nothing_stale(
    database_url: str, nats_url: str, db: Database
) -> None:
    why = _can_make_namespaces()
    if why is not None:
        pytest.skip(f"cannot make network namespaces here: {why}")
    async with AsyncExitStack() as stack:
        ns = stack.enter_context(namespace())
        relays = await stack.enter_async_context(trio.open_nursery())
        stack.callback(relays.cancel_scope.cancel)  # after the nodes stopped
        pg_port = await relays.start(relay, ns.back.host_ip, server_of(database_url))
        nats_port = await relays.start(relay, ns.back.host_ip, server_of(nats_url))
        survivor = await stack.enter_async_context(open_node(database_url, nats_url, "s", db))
        cut = await stack.enter_async_context(
            open_node(
                via(database_url, ns.back.host_ip, pg_port),
                via(nats_url, ns.back.host_ip, nats_port),
                "p",
                db,
                wrap=("ip", "netns", "exec", ns.name),
                host=ns.front.ns_ip,
            )
        )
        await until(lambda: balanced(db, ["s", "p"]), within=30, what="leases balanced")

        # a chat whose conversation p owns; its widget and the agent's inbox connected to s
        [javier] = await seed(survivor)  # type: ignore[arg-type]
        token = await login(survivor, javier)  # type: ignore[arg-type]
        visitor, cid = await chat_owned_by(cut, [survivor], db, javier.widget_id)
        path = f"/api/chat/widgets/{visitor.widget_id}/conversations/{cid}/messages"
        widget = await stack.enter_async_context(visitor_socket(survivor, visitor))  # type: ignore[arg-type]
        inbox = await stack.enter_async_context(inbox_socket(survivor, token))  # type: ignore[arg-type]
        async with survivor.http(token) as client:
            assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        acked: list[dict[str, Any]] = []
        async with cut.http(visitor.token) as client:
            for n in ("b0", "b1"):
                r = await post_message(client, path, n)
                assert r.status_code == 201, r.text
                acked.append(r.json())

        # the cut: p's link to PostgreSQL and NATS goes down
        sh("ip", "link", "set", ns.back.host_if, "down")
        cut_at = trio.current_time()
        answers: dict[str, httpx.Response | str] = {}

        async def ask_cut_node(n: str) -> None:
            try:
                async with cut.http(visitor.token, timeout=60) as client:
                    answers[n] = await post_message(client, path, n)
            except httpx.TimeoutException:
                answers[n] = "no answer"

        async with trio.open_nursery() as asking:
            # asked at once: p may still trust its lease, but it cannot commit what it is asked
            asking.start_soon(ask_cut_node, "during-cut")

            # within the lease time p no longer trusts its leases and holds no shard
            async def stopped_serving() -> bool:
                report = await cut.ops("/api/ops/cluster")
                return bool(report["shards"] == [] and report["trustedForSeconds"] == 0)

            # (each answer of a cut-off node takes up to ~3 s: it gives its database 2 s)
            bound = TTL_SECONDS + 2 + 4
            await until(stopped_serving, within=bound, what="p stopping its actors")
            assert trio.current_time() - cut_at <= bound
            report = await cut.ops("/api/ops/cluster")
            assert report["losses"] > 0
            assert report["nodes"] is None  # its database does not answer: it says so
            async with cut.http() as client:
                health = await client.get("/healthz")
            assert health.status_code == 503, health.text
            assert health.json()["error"]["code"] == "database_unavailable"

            # s takes the conversation over and serves it
            async def survivor_owns() -> bool:
                return await owner_of(db, cid) == "s"

            within = TTL_SECONDS + 3 * TICK_SECONDS + 2
            await until(survivor_owns, within=within, what="s taking p's shards over")
            async with survivor.http(visitor.token) as client:
                r = await post_message(client, path, "after")
            assert r.status_code == 201, r.text
            acked.append(r.json())
            assert acked[-1]["seq"] == acked[-2]["seq"] + 1

            # p, cut off, answers a command for the conversation with an error, not an ack
            asking.start_soon(ask_cut_node, "after-takeover")

        for n in ("during-cut", "after-takeover"):
            answer = answers[n]
            if isinstance(answer, httpx.Response):
                assert answer.status_code == 503, (n, answer.text)
                assert answer.json()["error"]["code"], (n, answer.text)

        # the link comes back: p rejoins as one node of two, and answers for the conversation
        sh("ip", "link", "set", ns.back.host_if, "up")
        await until(lambda: balanced(db, ["s", "p"]), within=60, what="p rejoining after the cut")
        async with cut.http(token) as client:
            r = await client.get(f"/api/chat/conversations/{cid}")
            assert r.status_code == 200 and r.json()["lastSeq"] == acked[-1]["seq"], r.text

        # one history: every acknowledged message once, in seq order, nothing p was asked
        stored = await db.run(messages_of, cid)
        seqs = [seq for seq, _ in stored]
        assert seqs == sorted(set(seqs))
        ids = [client_id for _, client_id in stored]
        assert ids[-3:] == ["b0", "b1", "after"]
        assert "during-cut" not in ids and "after-takeover" not in ids
        # the widget and the inbox on s saw each of the conversation's events once, in order
        for sock in (widget, inbox):
            await sock.wait_for("message_created", seq=acked[-1]["seq"])
            frames = [f for f in sock.seen if f.get("conversationId") == cid and "seq" in f]
            got = [f["seq"] for f in frames]
            assert got == sorted(set(got)), got
