"""Bounded sockets (issue #16): frames are rate-limited per socket and per type, and one visitor or
one agent holds a bounded number of sockets. Servers here keep the default rates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import trio
import trio_websocket

from tests.support import (
    Server,
    inbox_socket,
    login,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
)
from web.throttles import FRAME_RATES, SOCKETS_PER_AGENT, SOCKETS_PER_VISITOR

pytestmark = pytest.mark.regression


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[Server]:
    async with open_server(database_url, throttle_scale=1.0) as srv:
        yield srv


async def test_a_ping_flood_is_answered_with_refusals_and_the_socket_stays_open(
    strict: Server,
) -> None:
    # before: 1,000 pings in 0.3 s were 1,000 pongs
    [who] = await seed(strict)
    visitor = await new_visitor(strict, who.widget_id)
    async with visitor_socket(strict, visitor) as sock:
        started = trio.current_time()
        for _ in range(200):
            await sock.ws.send_message(json.dumps({"type": "ping"}))
        answers = [await sock.next() for _ in range(200)]
        elapsed = trio.current_time() - started
        pongs = [a for a in answers if a["type"] == "pong"]
        refused = [a for a in answers if a["type"] == "error"]
        rate = FRAME_RATES["ping"]
        assert len(pongs) <= rate.burst + rate.per_second * elapsed + 1, len(pongs)
        assert len(pongs) + len(refused) == 200
        assert {r["error"]["code"] for r in refused} == {"too_many_requests"}
        assert all(r["error"]["retryAfterSeconds"] >= 1 for r in refused)
        # bad frames are slowed as well
        for _ in range(50):
            await sock.ws.send_message("not json")
        codes = [(await sock.next())["error"]["code"] for _ in range(50)]
        assert "too_many_requests" in codes and "malformed_json" in codes


async def closed_with(url: str) -> trio_websocket.CloseReason:
    async with trio_websocket.open_websocket_url(url) as ws:
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    return closed.value.reason


async def test_one_visitor_holds_a_bounded_number_of_sockets(strict: Server) -> None:
    # before: 60 sockets on one visitor token were 60 subscriptions
    [who] = await seed(strict)
    visitor = await new_visitor(strict, who.widget_id)
    url = f"{strict.ws_url}/api/chat/widgets/{who.widget_id}/ws?token={visitor.token}"
    async with AsyncExitStack() as stack:
        for _ in range(SOCKETS_PER_VISITOR):
            await stack.enter_async_context(visitor_socket(strict, visitor))
        reason = await closed_with(url)
        assert reason.code == 1013 and "open sockets" in (reason.reason or ""), reason
    # once they are closed, the visitor may open one again
    async with visitor_socket(strict, visitor) as sock:
        await sock.send({"type": "ping"})
        await sock.wait_for("pong")


async def test_one_agent_holds_a_bounded_number_of_sockets(strict: Server) -> None:
    [who] = await seed(strict)
    token = await login(strict, who)
    async with AsyncExitStack() as stack:
        for _ in range(SOCKETS_PER_AGENT):
            await stack.enter_async_context(inbox_socket(strict, token))
        reason = await closed_with(f"{strict.ws_url}/api/chat/inbox/ws?token={token}")
        assert reason.code == 1013, reason
