"""A server process killed with SIGKILL in the middle of an OPEN conversation loses nothing.

The server runs as a real ``curbe-chat serve`` subprocess (the console script), is seeded with the
real CLI commands, and is killed with no chance to clean up. The restarted process rehydrates the
conversation actor from PostgreSQL, honours the tokens issued before the crash, replays every event
on ``resume`` and re-arms a wait timer whose deadline was stored before the crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.support import CLI, read_banner

pytestmark = pytest.mark.slow


def cli(database_url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [CLI, *args],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@asynccontextmanager
async def serve_process(database_url: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """``curbe-chat serve`` on a free port; yields the process and its base URL."""
    proc = await trio.lowlevel.open_process(
        [CLI, "serve", "--workers", "1", "--port", "0"],
        env={**os.environ, "DATABASE_URL": database_url, "CURBE_OPS_TOKEN": "ops"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(30):
            info = await read_banner(proc)
        yield proc, info["baseUrl"]
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def next_frame(ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(10):
        return json.loads(await ws.get_message())  # type: ignore[no-any-return]


async def frames_until(ws: trio_websocket.WebSocketConnection, type_: str) -> list[dict[str, Any]]:
    out = []
    while True:
        frame = await next_frame(ws)
        out.append(frame)
        if frame["type"] == type_:
            return out


async def test_sigkill_mid_conversation_loses_nothing(database_url: str) -> None:
    tenant = cli(database_url, "tenant", "create", "--name", "InsureMax")
    widget = cli(database_url, "widget", "create", "--tenant", tenant["id"], "--name", "Site")
    slow_widget = cli(
        database_url,
        "widget",
        "create",
        "--tenant",
        tenant["id"],
        "--name",
        "Slow",
        "--wait-timeout",
        "3",
    )
    cli(
        database_url,
        "agent",
        "create",
        "--tenant",
        tenant["id"],
        "--email",
        "javier@example.com",
        "--name",
        "Javier Lazo",
        "--password",
        "correct horse battery",
    )
    hb = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}

    async with serve_process(database_url) as (proc, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            login = await http.post(
                "/api/auth/login",
                json={"email": "javier@example.com", "password": "correct horse battery"},
            )
            agent = {"Authorization": f"Bearer {login.json()['token']}"}
            visitor = (
                await http.post(f"/api/chat/widgets/{widget['id']}/heartbeat", json=hb)
            ).json()
            vauth = {"Authorization": f"Bearer {visitor['visitorToken']}"}
            started = await http.post(
                f"/api/chat/widgets/{widget['id']}/conversations",
                json={"name": "Carlos Lopez", "email": "carlos@example.com", "message": "hola"},
                headers=vauth,
            )
            cid = started.json()["id"]
            assert (
                await http.post(f"/api/chat/conversations/{cid}/accept", headers=agent)
            ).status_code == 200
            acked = []
            for n in range(5):
                who, path, headers = (
                    ("agent", f"/api/chat/conversations/{cid}/messages", agent)
                    if n % 2
                    else (
                        "visitor",
                        f"/api/chat/widgets/{widget['id']}/conversations/{cid}/messages",
                        vauth,
                    )
                )
                r = await http.post(
                    path, json={"text": f"{who} {n}", "clientMessageId": f"k{n}"}, headers=headers
                )
                assert r.status_code == 201, r.text
                acked.append(r.json())
            # a second visitor waits on a 3 s timer when the server dies
            slow = (
                await http.post(f"/api/chat/widgets/{slow_widget['id']}/heartbeat", json=hb)
            ).json()
            sauth = {"Authorization": f"Bearer {slow['visitorToken']}"}
            waiting = await http.post(
                f"/api/chat/widgets/{slow_widget['id']}/conversations",
                json={"name": "Ana", "email": "ana@example.com", "message": "hello?"},
                headers=sauth,
            )
            waiting_id = waiting.json()["id"]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async with serve_process(database_url) as (proc, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            # tokens issued before the crash still work; the conversation is whole
            r = await http.get(f"/api/chat/widgets/{widget['id']}/conversation", headers=vauth)
            assert r.status_code == 200, r.text
            conversation = r.json()
            assert conversation["status"] == "OPEN"
            assert conversation["assignee"]["name"] == "Javier Lazo"
            stored = {m["id"]: m for m in conversation["messages"]}
            for message in acked:
                assert stored[message["id"]] == message
            assert [m["seq"] for m in conversation["messages"]] == sorted(
                m["seq"] for m in conversation["messages"]
            )
            last_seq = conversation["lastSeq"]

            ws_url = (
                base.replace("http", "ws")
                + f"/api/chat/widgets/{widget['id']}/ws?token={visitor['visitorToken']}"
            )
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                assert (await next_frame(ws))["type"] == "ready"
                await ws.send_message(json.dumps({"type": "resume", "afterSeq": 0}))
                replay = await frames_until(ws, "resumed")
                seqs = [f["seq"] for f in replay if "seq" in f]
                assert seqs == list(range(1, last_seq + 1))
                # the rehydrated actor keeps going: next seq, delivered live
                r = await http.post(
                    f"/api/chat/conversations/{cid}/messages",
                    json={"text": "still here", "clientMessageId": "after-restart"},
                    headers=agent,
                )
                assert r.status_code == 201 and r.json()["seq"] == last_seq + 1
                live = await next_frame(ws)
                assert live["type"] == "message_created" and live["seq"] == last_seq + 1
                # a clientMessageId sent before the crash is still known: no double message
                again = await http.post(
                    f"/api/chat/conversations/{cid}/messages",
                    json={"text": "agent 1", "clientMessageId": "k1"},
                    headers=agent,
                )
                assert again.status_code == 201 and again.json()["id"] == acked[1]["id"]

            # the stored wait deadline was re-armed at start-up and fires after the restart
            slow_ws = (
                base.replace("http", "ws")
                + f"/api/chat/widgets/{slow_widget['id']}/ws?token={slow['visitorToken']}"
            )
            async with trio_websocket.open_websocket_url(slow_ws) as ws:
                assert (await next_frame(ws))["type"] == "ready"
                await ws.send_message(json.dumps({"type": "resume", "afterSeq": 2}))
                frames = await frames_until(ws, "conversation_wait_timeout")
                assert frames[-1]["conversationId"] == waiting_id
