"""Containers of the server image on the host's network, driven like ``tests.support.Server``."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

from tests.support import (
    OPS_TOKEN,
    Seed,
    Visitor,
    accept,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    visitor_socket,
)


async def docker(*args: str, within: float = 120) -> str:
    """``docker ARGS``: its standard output; a failure raises with its standard error."""
    with trio.fail_after(within):
        done = await trio.run_process(
            ["docker", *args], capture_stdout=True, capture_stderr=True, check=False
        )
    if done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class Address:
    """A server on this host's loopback: a container, or the proxy in front of them."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def http(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=15, **kwargs)


@attrs.define
class Container(Address):
    name: str = ""

    async def inspect(self, template: str) -> str:
        return (await docker("inspect", "-f", template, self.name)).strip()

    async def exec(self, *command: str) -> str:
        return await docker("exec", self.name, *command)

    async def logs(self) -> list[dict[str, Any]]:
        """The server's log records (JSON lines on standard error); other lines as ``{"line"}``."""
        with trio.fail_after(30):
            done = await trio.run_process(
                ["docker", "logs", self.name], capture_stdout=True, capture_stderr=True
            )
        out = []
        for line in (done.stdout + done.stderr).decode().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = {"line": line}
            out.append(record if isinstance(record, dict) else {"line": line})
        return out

    async def wait_healthy(self, within: float = 120) -> None:
        """Until Docker's own HEALTHCHECK (``/healthz``) says ``healthy``."""
        with trio.move_on_after(within):
            while True:
                state = json.loads(await self.inspect("{{json .State}}"))
                if not state["Running"]:
                    raise AssertionError(f"{self.name} exited: {state} {await self.logs()}")
                if state.get("Health", {}).get("Status") == "healthy":
                    return
                await trio.sleep(0.5)
        raise AssertionError(f"{self.name} not healthy within {within} s: {await self.logs()}")


@asynccontextmanager
async def open_container(image: str, node: str, **env: str) -> AsyncIterator[Container]:
    """``docker run -d`` of ``image`` on the host's network on a free port; removed on exit."""
    container = Container(free_port(), f"curbe-test-{node}-{secrets.token_hex(3)}")
    variables = {
        "CURBE_PORT": str(container.port),
        "CURBE_OPS_TOKEN": OPS_TOKEN,
        "CURBE_NODE_ID": node,
        "CURBE_PUBLIC_URL": container.base_url,
        **env,
    }
    flags = [item for k, v in variables.items() for item in ("-e", f"{k}={v}")]
    await docker("run", "-d", "--network", "host", "--name", container.name, *flags, image)
    try:
        yield container
    finally:
        with trio.CancelScope(shield=True):
            await docker("rm", "-f", container.name, within=60)


async def seed_with_cli(node: Container) -> Seed:
    """A tenant, a widget and an agent made with ``curbe-chat`` inside the container."""

    async def cli(*args: str) -> dict[str, Any]:
        out = await node.exec("curbe-chat", *args)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    tenant = await cli("tenant", "create", "--name", "InsureMax")
    widget = await cli("widget", "create", "--tenant", tenant["id"], "--name", "InsureMax")
    password = "correct horse battery"
    agent = await cli(
        "agent", "create", "--tenant", tenant["id"], "--email", "javier@insuremax.example",
        "--name", "Javier Lazo", "--password", password,
    )  # fmt: skip
    return Seed(tenant["id"], widget["id"], agent["id"], agent["email"], agent["name"], password)


@attrs.define
class Chat:
    """A conversation between a visitor and an agent, each on its own open socket."""

    conversation_id: str
    visitor: Visitor
    agent_token: str
    widget: Any  # tests.support.Socket
    inbox: Any


@asynccontextmanager
async def open_chat(visitor_node: Any, agent_node: Any, who: Seed) -> AsyncIterator[Chat]:
    """Heartbeat → the agent online on its socket → start chat → accept, each step checked."""
    token = await login(agent_node, who)
    async with inbox_socket(agent_node, token) as inbox:
        visitor = await new_visitor(visitor_node, who.widget_id)
        async with visitor_socket(visitor_node, visitor) as widget:
            async with visitor_node.http(visitor.token) as client:
                r = await client.get(f"/api/chat/widgets/{who.widget_id}/config")
                assert r.status_code == 200 and r.json()["agentsOnline"] is True, r.text
            cid = await new_chat(visitor_node, visitor)
            await inbox.wait_for("conversation_created", conversationId=cid)
            await accept(agent_node, token, cid)
            assigned = await widget.wait_for("conversation_assigned", conversationId=cid)
            assert assigned["data"]["agent"]["id"] == who.agent_id
            yield Chat(cid, visitor, token, widget, inbox)


async def heard(sock: Any, conversation_id: str, text: str) -> dict[str, Any]:
    """The ``message_created`` event of ``text`` on ``sock`` (earlier events pass by)."""
    while True:
        event = await sock.wait_for("message_created", conversationId=conversation_id)
        if event["data"]["message"]["text"] == text:
            return event  # type: ignore[no-any-return]


async def messages_both_ways(chat: Chat, tag: str) -> list[int]:
    """One message each way over the sockets, each acknowledged and heard by the other side;
    answers the two messages' seqs."""
    await chat.widget.send(
        {"type": "message", "text": f"visitor {tag}", "clientMessageId": f"v{tag}"}
    )
    await chat.widget.wait_for("ack", clientMessageId=f"v{tag}")
    first = await heard(chat.inbox, chat.conversation_id, f"visitor {tag}")
    await chat.inbox.send(
        {"type": "message", "conversationId": chat.conversation_id, "text": f"agent {tag}",
         "clientMessageId": f"a{tag}"}
    )  # fmt: skip
    await chat.inbox.wait_for("ack", clientMessageId=f"a{tag}")
    second = await heard(chat.widget, chat.conversation_id, f"agent {tag}")
    return [first["seq"], second["seq"]]
