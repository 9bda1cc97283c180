"""Visitor tokens on a real server (issue 16, finding 9): they expire, the heartbeat renews them
while the visitor is active, and the signing keys rotate (``curbe-chat visitor-keys``) without
logging anyone out; a retired key's tokens are refused."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
import trio
import trio_websocket

from storage import queries
from tests.support import CLI, ManualClock, Server, Visitor, open_server, seed
from web.auth import TokenKey, VisitorTokens

pytestmark = pytest.mark.regression

PAGE = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}


async def beat(srv: Server, widget_id: str, token: str | None) -> dict[str, Any]:
    async with srv.http(token) as client:
        r = await client.post(f"/api/chat/widgets/{widget_id}/heartbeat", json=PAGE)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def start_chat(srv: Server, widget_id: str, token: str) -> int:
    async with srv.http(token) as client:
        r = await client.post(
            f"/api/chat/widgets/{widget_id}/conversations",
            json={"name": "Carlos", "email": "carlos@example.com", "message": "hola"},
        )
    return r.status_code


async def socket_close_code(srv: Server, v: Visitor) -> int | None:
    """None: the socket opened (ready); else the code it was closed with."""
    url = f"{srv.ws_url}/api/chat/widgets/{v.widget_id}/ws?token={v.token}"
    async with trio_websocket.open_websocket_url(url) as ws:
        try:
            first = json.loads(await ws.get_message())
        except trio_websocket.ConnectionClosed as closed:
            return closed.reason.code  # type: ignore[no-any-return]
        assert first["type"] == "ready"
        return None


def kid(token: str) -> str:
    return token.split(".")[1]


async def test_a_token_lasts_while_the_visitor_is_active_and_expires_when_not(
    database_url: str,
) -> None:
    clock = ManualClock()
    async with open_server(database_url, clock=clock) as srv:
        [a] = await seed(srv)
        first = await beat(srv, a.widget_id, None)
        token, visitor_id = first["visitorToken"], first["visitorId"]
        assert token.startswith("vt2.")
        assert (await beat(srv, a.widget_id, token))["visitorToken"] == token  # no churn

        clock.advance(days=2)  # a heartbeat two days later: renewed, the same visitor
        again = await beat(srv, a.widget_id, token)
        renewed = again["visitorToken"]
        assert renewed != token and again["visitorId"] == visitor_id
        assert int(renewed.split(".")[4]) > int(token.split(".")[4])

        clock.advance(days=29)  # the first token is 31 days old: expired; the renewed is not
        assert await start_chat(srv, a.widget_id, token) == 401
        assert await socket_close_code(srv, Visitor(a.widget_id, visitor_id, token)) == 4401
        stranger = await beat(srv, a.widget_id, token)
        assert stranger["visitorId"] != visitor_id  # an expired token proves nothing
        assert await start_chat(srv, a.widget_id, renewed) == 201


def keys_cli(database_url: str, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [CLI, "visitor-keys", *args],
        env={**os.environ, "DATABASE_URL": database_url, "CURBE_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout if done.returncode == 0 else done.stderr.strip().splitlines()[-1]
    return done.returncode, json.loads(out)


async def test_keys_rotate_without_logging_anyone_out_and_a_retired_key_is_refused(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        hello = await beat(srv, a.widget_id, None)
        old, visitor_id = hello["visitorToken"], hello["visitorId"]
        first_kid = kid(old)

        code, listed = await trio.to_thread.run_sync(keys_cli, database_url, "rotate")
        assert code == 0, listed
        new_kid = listed["rotated"]
        assert [k["kid"] for k in listed["keys"]] == [first_kid, new_kid]
        assert [k["signing"] for k in listed["keys"]] == [False, True]

        # a token the new key signed (another process that reloaded first) is known here at
        # once: an unknown key id makes this process reload its keys
        [_, stored] = await srv.run(queries.select_token_keys)
        elsewhere = VisitorTokens(
            [TokenKey(stored.kid, stored.secret)],
            clock=srv.services.clock,
            lifetime=srv.services.tokens.lifetime,
        )
        assert await start_chat(srv, a.widget_id, elsewhere.issue(visitor_id, a.tenant_id)) == 201

        # the old token still works, and the next heartbeat moves it to the new key
        assert await socket_close_code(srv, Visitor(a.widget_id, visitor_id, old)) is None
        moved = await beat(srv, a.widget_id, old)
        assert moved["visitorId"] == visitor_id and kid(moved["visitorToken"]) == new_kid

        code, retired = await trio.to_thread.run_sync(keys_cli, database_url, "retire", first_kid)
        assert code == 0, retired
        await srv.services.tokens.reload()  # what the visitor_keys service does every minute
        assert await start_chat(srv, a.widget_id, old) == 401
        assert await socket_close_code(srv, Visitor(a.widget_id, visitor_id, old)) == 4401
        assert (await beat(srv, a.widget_id, old))["visitorId"] != visitor_id
        assert (
            await socket_close_code(srv, Visitor(a.widget_id, visitor_id, moved["visitorToken"]))
            is None
        )

        for args, message in [
            (("retire", new_kid), "only key left"),
            (("retire", first_kid), "retired already"),
            (("retire", "nope"), "no key nope"),
        ]:
            code, refused = await trio.to_thread.run_sync(keys_cli, database_url, *args)
            assert code == 2 and message in refused["error"]["message"], refused
        code, listed = await trio.to_thread.run_sync(keys_cli, database_url, "list")
        active = [(k["kid"], k["retiredAt"] is None) for k in listed["keys"]]
        assert active == [(first_kid, False), (new_kid, True)], listed


async def test_the_key_reload_runs_as_a_supervised_service(server: Server) -> None:
    async with server.http() as client:
        r = await client.get(
            "/api/ops/actors?kind=service", headers={"Authorization": "Bearer ops-test-token"}
        )
    [keys] = [x for x in r.json()["actors"] if x["id"] == "visitor_keys"]
    assert keys["state"] == "RUNNING" and keys["signingKid"] in keys["kids"]
