"""How far behind a socket may fall before the server closes it 1013 (the client reconnects and
resumes from storage): a visitor's stream by the broker's default, an inbox, which hears its
whole tenant, by :data:`web.streams.INBOX_BUFFER`.

Each burst is published in one go, as one busy moment of the server does (publishing never
yields), so the socket's pump cannot send anything before the whole burst is queued: the bound
is what decides, whatever the TCP buffers would have taken.
"""

from __future__ import annotations

import pytest
import trio_websocket

from engine.broker import DEFAULT_BUFFER
from engine.values import Event, EventType
from tests.support import Server, inbox_socket, login, new_visitor, seed, visitor_socket
from web.streams import INBOX_BUFFER


def burst(server: Server, n: int, tenant_id: str, visitor_id: str | None = None) -> None:
    now = server.services.clock.now()
    for i in range(n):
        server.services.broker.publish(
            Event(
                # (not visitor presence: the inbox gets that coalesced, tests/web/test_presence_flood.py)
                EventType.QUEUE_POSITION if visitor_id else EventType.WIDGET_UPDATED,
                now,
                tenant_id,
                {"n": i},
                visitor_id=visitor_id,
            )
        )


async def test_an_inbox_takes_a_burst_far_beyond_a_visitor_socket_bound(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    n = 4 * DEFAULT_BUFFER
    assert n < INBOX_BUFFER
    async with inbox_socket(server, token) as inbox:
        burst(server, n, a.tenant_id)
        frames = [await inbox.next() for _ in range(n)]
        assert [f["data"]["n"] for f in frames] == list(range(n))  # all of it, in order
        assert [f["type"] for f in await inbox.drain()] == []  # still open: it answers a ping


async def test_an_inbox_past_its_bound_is_closed_try_again(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with inbox_socket(server, token) as inbox:
        burst(server, INBOX_BUFFER + 1, a.tenant_id)
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                await inbox.next()
    assert closed.value.reason.code == 1013
    assert "slow subscriber" in (closed.value.reason.reason or "")


async def test_a_visitor_socket_past_its_bound_is_closed_try_again(server: Server) -> None:
    [a] = await seed(server)
    v = await new_visitor(server, a.widget_id)
    async with visitor_socket(server, v) as vs:
        burst(server, DEFAULT_BUFFER, a.tenant_id, v.visitor_id)  # at the bound: kept
        frames = [await vs.next() for _ in range(DEFAULT_BUFFER)]
        assert [f["data"]["n"] for f in frames] == list(range(DEFAULT_BUFFER))
        burst(server, DEFAULT_BUFFER + 1, a.tenant_id, v.visitor_id)
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                await vs.next()
    assert closed.value.reason.code == 1013
