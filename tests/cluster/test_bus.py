"""``storage/bus.py`` against a real NATS server: requests answered through this process's one
inbox (no asyncio future or timer per request), told apart from a subject nobody serves and from
an owner that does not answer in time; events published to the stream reach a follower in order,
and the stream's acknowledgements are counted, a refusal as a failure."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel
import trio_asyncio

from engine import metrics
from storage.bus import NatsBus, NoResponders
from tests.cluster.support import until


@pytest.fixture
async def buses(nats_url: str) -> AsyncIterator[tuple[NatsBus, NatsBus]]:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        a = await NatsBus.connect(nats_url, name="test-a")
        b = await NatsBus.connect(nats_url, name="test-b")
        await nursery.start(a.run)
        await nursery.start(b.run)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()
            nursery.cancel_scope.cancel()


async def registered(bus: NatsBus) -> None:
    """The server has the bus's subscriptions (a PING answered after them): a request from
    another connection now finds its responder."""
    await trio_asyncio.aio_as_trio(bus.nc.flush)()


async def test_a_request_is_answered_and_many_at_once_each_get_their_own(
    buses: tuple[NatsBus, NatsBus],
) -> None:
    a, b = buses
    subject = f"curbe.test{secrets.token_hex(3)}.cmd.0"

    async def echo(payload: bytes) -> bytes:
        await trio.lowlevel.checkpoint()
        return b"re:" + payload

    await b.serve(subject, echo)
    await registered(b)
    answers: dict[int, bytes] = {}

    async def ask(i: int) -> None:
        with trio.fail_after(10):
            answers[i] = await a.request(subject, str(i).encode())

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(ask, i)
    assert answers == {i: f"re:{i}".encode() for i in range(200)}
    assert a._waiting == {}  # nothing left behind


async def test_nobody_serving_and_nobody_answering_in_time_are_told_apart(
    buses: tuple[NatsBus, NatsBus],
) -> None:
    a, b = buses
    subject = f"curbe.test{secrets.token_hex(3)}.cmd.1"
    with trio.fail_after(10), pytest.raises(NoResponders):
        await a.request(subject, b"anyone?")

    release = trio.Event()

    async def stuck(payload: bytes) -> bytes:
        await release.wait()
        return b"late"

    await b.serve(subject, stuck)
    await registered(b)
    with pytest.raises(trio.TooSlowError), trio.fail_after(0.5):  # the caller's deadline
        await a.request(subject, b"slow")
    assert a._waiting == {}
    release.set()  # the late answer finds nobody waiting, and is dropped
    with trio.fail_after(10):
        assert await a.request(subject, b"again") == b"late"


async def test_events_reach_a_follower_in_order_and_a_refusal_is_counted(
    buses: tuple[NatsBus, NatsBus],
) -> None:
    a, b = buses
    cluster = f"test{secrets.token_hex(3)}"
    got: list[bytes] = []
    all_in = trio.Event()

    def handler(payload: bytes) -> None:
        got.append(payload)
        if len(got) == 300:
            all_in.set()

    await b.follow_events(f"curbe.{cluster}.ev.>", handler)
    failed = metrics.BUS_EVENTS.labels("failed")._value.get()
    for i in range(300):
        a.publish_event(f"curbe.{cluster}.ev.t.c{i % 7}", str(i).encode())
    with trio.fail_after(10):
        await all_in.wait()
    assert got == [str(i).encode() for i in range(300)]
    assert a.publish_failures == 0

    # a subject no stream captures: the server answers the acknowledgement inbox "no responders"
    a.publish_event(f"curbe.{cluster}.elsewhere", b"lost")

    async def refused() -> bool:
        return a.publish_failures == 1

    await until(refused, within=10, what="the refusal counted")
    assert metrics.BUS_EVENTS.labels("failed")._value.get() == failed + 1
