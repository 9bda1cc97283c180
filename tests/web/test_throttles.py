"""The anonymous endpoints under a flood from one address (issue #16): each answers 429 with
``Retry-After`` past its rate, and what it refuses stores nothing. These servers keep the
default rates (``throttle_scale=1``; other tests raise them, since all their clients are
127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from engine.throttle import Rate
from tests.support import Server, new_visitor, open_server, row_counts, seed
from web.throttles import PublicLimits

pytestmark = pytest.mark.regression

PAGE = {"currentDomain": "shop.example.com", "currentUrl": "https://shop.example.com/"}


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[Server]:
    async with open_server(database_url, throttle_scale=1.0) as srv:
        yield srv


def assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["code"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) == err["retryAfterSeconds"] >= 1


async def test_anonymous_heartbeats_cannot_mint_visitors_without_end(strict: Server) -> None:
    # before: 300 heartbeats with no token were 300 visitors (actors, rows, presence events)
    [who] = await seed(strict)
    codes: list[int] = []
    started = trio.current_time()
    async with strict.http() as client:
        for _ in range(60):
            r = await client.post(f"/api/chat/widgets/{who.widget_id}/heartbeat", json=PAGE)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert_throttled(r)
    rate = PublicLimits().new_visitor_address
    most = rate.burst + int((trio.current_time() - started) * rate.per_second) + 1
    assert codes.count(200) <= most and set(codes) == {200, 429}, codes
    assert (await strict.run(row_counts))["visitor_sessions"] == codes.count(200)


async def test_a_known_visitor_is_not_held_back_by_strangers_minting(database_url: str) -> None:
    limits = PublicLimits(new_visitor_address=Rate(0.01, 2))
    async with open_server(database_url, throttle_scale=1.0, public_limits=limits) as srv:
        [who] = await seed(srv)
        visitor = await new_visitor(srv, who.widget_id)
        async with srv.http() as client:
            for _ in range(5):
                await client.post(f"/api/chat/widgets/{who.widget_id}/heartbeat", json=PAGE)
        async with srv.http(visitor.token) as client:
            r = await client.post(f"/api/chat/widgets/{who.widget_id}/heartbeat", json=PAGE)
        assert r.status_code == 200, r.text


async def test_starting_chats_from_one_address_is_throttled(strict: Server) -> None:
    [who] = await seed(strict)
    burst = PublicLimits().start_chat_address.burst
    codes = []
    for n in range(burst + 2):
        visitor = await new_visitor(strict, who.widget_id)
        async with strict.http(visitor.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{who.widget_id}/conversations",
                json={"name": f"V{n}", "email": f"v{n}@example.com", "message": "hola"},
            )
        codes.append(r.status_code)
        if r.status_code == 429:
            assert_throttled(r)
    assert codes == [201] * burst + [429, 429], codes
    assert (await strict.run(row_counts))["conversations"] == burst


async def offline(srv: Server, widget_id: str, **headers: str) -> httpx.Response:
    async with srv.http(headers=headers) as client:
        return await client.post(
            f"/api/chat/widgets/{widget_id}/offline-messages",
            json={"name": "Ana", "email": "ana@example.com", "message": "call me"},
        )


async def test_offline_messages_are_throttled_and_honour_targeting(strict: Server) -> None:
    [who] = await seed(strict, domains=["shop.example.com"])
    # before: any page (or none) could leave messages, without end
    r = await offline(strict, who.widget_id, Origin="https://evil.example")
    assert r.status_code == 403 and r.json()["error"]["code"] == "domain_not_allowed", r.text
    assert (await strict.run(row_counts))["conversations"] == 0
    burst = PublicLimits().offline_address.burst
    codes = [
        (await offline(strict, who.widget_id, Origin="https://shop.example.com")).status_code
        for _ in range(burst + 1)
    ]
    # the refused one above took a token too: a flood of refusals is a flood
    assert codes[: burst - 1] == [201] * (burst - 1) and codes[-1] == 429, codes


async def test_widget_config_is_throttled(strict: Server) -> None:
    [who] = await seed(strict)
    burst = PublicLimits().config_address.burst
    async with strict.http() as client:
        codes = [
            (await client.get(f"/api/chat/widgets/{who.widget_id}/config")).status_code
            for _ in range(burst + 1)
        ]
    assert codes == [200] * burst + [429]


async def test_a_widgets_heartbeats_are_throttled_whatever_their_addresses(
    database_url: str,
) -> None:
    limits = PublicLimits(heartbeat_widget=Rate(0.01, 3))
    async with open_server(database_url, throttle_scale=1.0, public_limits=limits) as srv:
        [who] = await seed(srv)
        codes = []
        for n in range(4):  # from four addresses behind this host's proxy
            async with srv.http(headers={"X-Forwarded-For": f"203.0.113.{n}"}) as client:
                r = await client.post(f"/api/chat/widgets/{who.widget_id}/heartbeat", json=PAGE)
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429], codes


async def test_visitor_sockets_from_one_address_are_throttled(database_url: str) -> None:
    limits = PublicLimits(socket_address=Rate(0.01, 3))
    async with open_server(database_url, throttle_scale=1.0, public_limits=limits) as srv:
        [who] = await seed(srv)
        visitor = await new_visitor(srv, who.widget_id)
        url = f"{srv.ws_url}/api/chat/widgets/{who.widget_id}/ws?token={visitor.token}"
        firsts: list[Any] = []
        for _ in range(4):
            async with trio_websocket.open_websocket_url(url) as ws:
                with trio.fail_after(10):
                    try:
                        firsts.append(await ws.get_message())
                    except trio_websocket.ConnectionClosed as closed:
                        firsts.append(closed.reason)
        assert all('"ready"' in str(f) for f in firsts[:3]), firsts
        assert firsts[3].code == 1013 and "retry in" in firsts[3].reason, firsts[3]
