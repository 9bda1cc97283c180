"""``docker/Caddyfile``, the proxy of ``compose.yaml``, run for real (Debian's ``caddy``) in front of
two containers: sockets upgrade through it, requests go round both nodes, and a node stopped
for an upgrade costs a chat nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from engine.metrics import parse_samples
from tests.cluster.support import open_nats, until
from tests.docker.conftest import DOCKER
from tests.docker.support import (
    Address,
    Chat,
    docker,
    free_port,
    messages_both_ways,
    open_chat,
    open_container,
    seed_with_cli,
)
from tests.support import inbox_socket, visitor_socket

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@asynccontextmanager
async def open_caddy(upstreams: list[Address], home: Path) -> AsyncIterator[Address]:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("docker: no caddy to run the proxy's Caddyfile (apt-get install -y caddy)")
    proxy = Address(free_port())
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "CURBE_SITE_ADDRESS": f":{proxy.port}",
        "CURBE_UPSTREAMS": " ".join(f"127.0.0.1:{u.port}" for u in upstreams),
        "CADDY_ADMIN": "off",
    }
    command = [caddy, "run", "--config", str(DOCKER / "Caddyfile"), "--adapter", "caddyfile"]
    log = (home / "caddy.log").open("wb")
    process = await trio.lowlevel.open_process(
        command, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:

        async def answers() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"caddy exited: {(home / 'caddy.log').read_text()[-2000:]}")
            try:
                async with proxy.http() as client:
                    return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:  # not listening yet (httpx's, not an OSError)
                return False

        await until(answers, within=30, what="caddy proxying /healthz")
        yield proxy
    finally:
        process.terminate()
        with trio.CancelScope(shield=True):
            await process.wait()
        log.close()


@pytest.mark.deadline(420)
async def test_the_proxy_upgrades_sockets_spreads_requests_and_rides_out_a_node_upgrade(
    image: str,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        nats = await stack.enter_async_context(open_nats())
        env = {"DATABASE_URL": empty_database_url, "NATS_URL": nats, "CURBE_WORKERS": "1"}
        a = await stack.enter_async_context(open_container(image, "a", **env))
        b = await stack.enter_async_context(open_container(image, "b", **env))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.wait_healthy)
            nursery.start_soon(b.wait_healthy)
        proxy = await stack.enter_async_context(open_caddy([a, b], tmp_path))

        who = await seed_with_cli(a)
        # everything through the proxy: both sockets are upgraded by it
        async with open_chat(proxy, proxy, who) as chat:
            seqs = await messages_both_ways(chat, "1")

            # requests go round both nodes (no stickiness needed: any node serves any request)
            async with proxy.http(chat.visitor.token) as client:
                for _ in range(10):
                    r = await client.post(
                        f"/api/chat/widgets/{who.widget_id}/heartbeat",
                        json={"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"},
                    )  # fmt: skip
                    assert r.status_code == 200, r.text
            for node in (a, b):
                async with node.http() as client:
                    samples = parse_samples((await client.get("/metrics")).text)
                beats = sum(
                    v for (name, _), v in samples.items() if name == "curbe_heartbeats_total"
                )
                assert beats >= 4, (node.name, beats)

            # ``a`` is stopped for an upgrade; whatever sockets it held are closed (1001: see
            # test_image.py), and both sides reconnect through the proxy, which now reaches ``b``
            # only: the widget resumes and the chat goes on, nothing lost
            await docker("stop", "-t", "40", a.name, within=60)

            async def b_holds_every_shard() -> bool:
                async with b.http() as client:
                    samples = parse_samples((await client.get("/metrics")).text)
                return samples.get(("curbe_shards_held", ())) == 64

            await until(b_holds_every_shard, within=30, what="b holding every shard")
        async with (
            visitor_socket(proxy, chat.visitor) as widget,  # type: ignore[arg-type]
            inbox_socket(proxy, chat.agent_token) as inbox,  # type: ignore[arg-type]
        ):
            await widget.send(
                {"type": "resume", "conversationId": chat.conversation_id, "afterSeq": seqs[-1]}
            )
            resumed = await widget.wait_for("resumed", conversationId=chat.conversation_id)
            assert resumed["lastSeq"] == seqs[-1]
            again = Chat(chat.conversation_id, chat.visitor, chat.agent_token, widget, inbox)
            assert await messages_both_ways(again, "2") == [seqs[-1] + 1, seqs[-1] + 2]
