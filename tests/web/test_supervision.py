"""Supervision seen from outside, against a real server: an actor crashed on purpose (through the
:class:`engine.faults.FaultPlan` seam) answers 503 with ``Retry-After`` over HTTP and an error
frame over a socket, touches nothing else, and an actor given up shows in ``/healthz``
(``degraded``), ``/metrics`` and ``/api/ops/actors`` until it recovers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.conversation_actor import KIND as CONV
from engine.faults import FaultPlan
from engine.supervisor import SERVICE
from engine.widget import KIND as WIDGET
from tests.support import (
    OPS_TOKEN,
    Server,
    Visitor,
    inbox_socket,
    login,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
)
from tests.web.test_observability import sample, scrape


@pytest.fixture
def faults() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
async def fragile(database_url: str, faults: FaultPlan) -> AsyncIterator[Server]:
    """A server whose actors a test can crash; gives up after 1 restart in 60 s."""
    async with open_server(
        database_url, faults=faults, actor_max_restarts=1, actor_restart_window_seconds=60
    ) as srv:
        yield srv


async def start(srv: Server, widget_id: str, token: str, text: str = "hola") -> str:
    async with srv.http(token) as http:
        r = await http.post(
            f"/api/chat/widgets/{widget_id}/conversations",
            json={"name": "Carlos", "email": "c@example.com", "message": text},
        )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def test_a_crashed_conversation_answers_503_with_retry_after_and_nothing_else_moves(
    fragile: Server, faults: FaultPlan
) -> None:
    [a] = await seed(fragile)
    token = await login(fragile, a)
    v1 = await new_visitor(fragile, a.widget_id)
    v2 = await new_visitor(fragile, a.widget_id)
    c1 = await start(fragile, a.widget_id, v1.token)
    c2 = await start(fragile, a.widget_id, v2.token)
    faults.arm(CONV, "before_commit", c1)
    async with fragile.http(token) as http:
        r = await http.post(f"/api/chat/conversations/{c1}/accept")
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.json() == {
            "error": {
                "code": "actor_unavailable",
                "message": "the conversation actor stopped before answering; retry",
                "retryAfterSeconds": 1,
            }
        }
        assert "Traceback" not in r.text and "InjectedFault" not in r.text
        # the neighbour answers at once; the crashed one answers the retry
        assert (await http.post(f"/api/chat/conversations/{c2}/accept")).status_code == 200
        assert (await http.post(f"/api/chat/conversations/{c1}/accept")).status_code == 200
        r = await http.get("/api/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        actors = {(x["kind"], x["id"]): x for x in r.json()["actors"]}
        assert actors[(CONV, c1)]["restarts"] == 1
        assert actors[(CONV, c1)]["lastCrash"].startswith("InjectedFault: ")
        assert "engine/conversation_actor.py" in actors[(CONV, c1)]["lastCrash"]
        assert actors[(CONV, c2)]["restarts"] == 0
        assert r.json()["escalated"] == []


async def test_a_crash_reaches_a_socket_as_an_error_frame_and_the_socket_stays_open(
    fragile: Server, faults: FaultPlan
) -> None:
    [a] = await seed(fragile)
    v = await new_visitor(fragile, a.widget_id)
    cid = await start(fragile, a.widget_id, v.token)
    faults.arm(CONV, "handle", cid)
    async with visitor_socket(fragile, v) as ws:
        await ws.send(
            {"type": "message", "conversationId": cid, "text": "¿hola?", "clientMessageId": "w1"}
        )
        frame = await ws.wait_for("error")
        assert frame["error"]["code"] == "actor_unavailable"
        assert frame["error"]["retryAfterSeconds"] == 1
        assert frame["clientMessageId"] == "w1"
        await ws.send(
            {"type": "message", "conversationId": cid, "text": "¿hola?", "clientMessageId": "w1"}
        )
        ack = await ws.wait_for("ack", clientMessageId="w1")
        assert ack["message"]["seq"] == 3


async def test_heartbeats_read_a_warm_widget_without_its_mailbox_so_its_crash_fails_none(
    fragile: Server, faults: FaultPlan
) -> None:
    """Every heartbeat of a site reads its widget; a warm widget actor's row is read directly,
    and the ping it is told of needs no answer: a crash of that actor (here on the ping) costs
    the visitors nothing. Through the actor's mailbox the heartbeat would have answered 503."""
    [a] = await seed(fragile)
    v = await new_visitor(fragile, a.widget_id)  # the widget's actor is warm now
    faults.arm(WIDGET, "handle", a.widget_id)
    async with fragile.http(v.token) as http:
        for url in ("https://shop.example.com/a", "https://shop.example.com/b"):
            r = await http.post(
                f"/api/chat/widgets/{a.widget_id}/heartbeat",
                json={"currentDomain": "shop.example.com", "currentUrl": url},
            )
            assert r.status_code == 200, r.text
            assert r.json()["visitorId"] == v.visitor_id
        r = await http.get("/api/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    actors = {(x["kind"], x["id"]): x for x in r.json()["actors"]}
    assert faults.raised == [(WIDGET, "handle", a.widget_id)]  # the first ping crashed it
    assert actors[(WIDGET, a.widget_id)]["restarts"] == 1


async def test_an_actor_given_up_makes_health_degraded_until_it_answers_again(
    fragile: Server, faults: FaultPlan
) -> None:
    [a] = await seed(fragile)
    token = await login(fragile, a)
    v = await new_visitor(fragile, a.widget_id)
    cid = await start(fragile, a.widget_id, v.token)
    before = await scrape(fragile)
    faults.arm(CONV, "before_commit", cid, times=2)
    async with fragile.http(token) as http:
        for _ in range(2):  # one restart allowed: the second crash gives up
            r = await http.post(f"/api/chat/conversations/{cid}/accept")
            assert r.status_code == 503
        health = await http.get("/healthz")
        assert health.status_code == 200  # it still serves: degraded, not down
        assert health.json()["status"] == "degraded"
        # public: what is wrong, not whose (no ids, no error text)
        [public] = health.json()["escalated"]
        assert set(public) == {"kind", "at", "restarts"} and public["kind"] == CONV
        assert cid not in health.text and a.tenant_id not in health.text
        health = await http.get("/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        body = health.json()
        assert body["status"] == "degraded"
        [escalated] = body["escalated"]
        assert escalated["kind"] == CONV and escalated["id"] == cid
        assert escalated["restarts"] == 2
        assert escalated["error"].startswith("InjectedFault: ")
        assert escalated["where"].startswith("engine/conversation_actor.py:")
        ops = await http.get("/api/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert [e["id"] for e in ops.json()["escalated"]] == [cid]
        after = await scrape(fragile)
        assert sample(after, "curbe_actors_escalated") == 1
        assert (
            sample(after, "curbe_actor_escalations_total", kind=CONV)
            - sample(before, "curbe_actor_escalations_total", kind=CONV)
            == 1
        )
        # recovered: a new incarnation answers, then comes back for more
        assert (await http.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        r = await http.post(f"/api/chat/conversations/{cid}/messages", json={"text": "hi"})
        assert r.status_code == 201
        assert (await http.get("/healthz")).json() == {
            "status": "ok",
            "actors": fragile.services.supervisor.count(),
            "escalated": [],
        }


async def test_a_visitor_socket_whose_widget_actor_fails_is_closed_with_try_again(
    fragile: Server, faults: FaultPlan
) -> None:
    import trio_websocket

    from engine.widget import KIND as WIDGET

    [a] = await seed(fragile)
    # a widget whose actor is not running yet (a warm one's row is read without its mailbox):
    # a visitor token as a heartbeat would have issued it, without the heartbeat
    visitor_id = "vis_0123456789abcdef"
    v = Visitor(a.widget_id, visitor_id, fragile.services.tokens.issue(visitor_id, a.tenant_id))
    assert not fragile.services.supervisor.is_running(WIDGET, a.widget_id)
    faults.arm(WIDGET, "handle", a.widget_id)  # its first command, the socket's read, crashes
    url = f"{fragile.ws_url}/api/chat/widgets/{a.widget_id}/ws?token={v.token}"
    async with trio_websocket.open_websocket_url(url) as ws:
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason.code == 1013
    async with visitor_socket(fragile, v):  # the restarted actor serves the reconnect
        pass


async def test_the_routing_listener_and_presence_batches_run_as_supervised_services(
    server: Server,
) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    async with inbox_socket(server, token), server.http() as http:
        r = await http.get("/api/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    services = [x for x in r.json()["actors"] if x["kind"] == SERVICE]
    assert sorted((x["id"], x["state"], x["restarts"]) for x in services) == [
        ("activity_batches", "RUNNING", 0),
        ("file_janitor", "RUNNING", 0),
        ("presence_batches", "RUNNING", 0),
        ("read_marks", "RUNNING", 0),
        ("routing_listener", "RUNNING", 0),
        ("visitor_keys", "RUNNING", 0),
    ]
    [batches] = [x for x in services if x["id"] == "presence_batches"]
    assert batches["tenantsHolding"] == 0 and batches["batchesSent"] == 0
    [activity] = [x for x in services if x["id"] == "activity_batches"]
    assert activity["updatesSuperseded"] == 0 and activity["heldUpdates"] == 0
    [janitor] = [x for x in services if x["id"] == "file_janitor"]
    assert janitor["sweeps"] >= 1 and janitor["filesRemoved"] == 0  # it swept once at start
