"""Agent presence across processes (``engine/presence.py``): each process shares its own
sockets as facts and merges everyone's into one view. Two presences are joined here by an
in-memory stand-in for the bus subject (the NATS side is tested with real processes in
``tests/cluster``); time is Trio's fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import trio
import trio.testing

from engine.broker import ROUTING, Broker
from engine.clock import TrioClock
from engine.presence import AgentPresence
from engine.values import Event


class Node:
    def __init__(self, name: str, peers: list[Node]) -> None:
        self.broker = Broker()
        self.peers = peers
        self.presence = AgentPresence(
            self.broker, TrioClock(), node_id=name, share=self.share, interval=2, expire=7
        )
        self.connected = True  # False: cut off from the bus (its facts reach no one)

    def share(self, payload: bytes) -> None:
        if not self.connected:
            return
        for peer in self.peers:
            if peer is not self and peer.connected:
                peer.presence.receive(payload)


def cluster(*names: str) -> list[Node]:
    nodes: list[Node] = []
    nodes.extend(Node(n, nodes) for n in names)
    return nodes


def drain(sub: object) -> list[Event]:
    out = []
    queue = sub.__aiter__()  # type: ignore[attr-defined]
    while len(queue):
        out.append(queue.receive_nowait())
    return out


def watch(node: Node, *topics: tuple[str, str]) -> Iterator[object]:
    return node.broker.subscribe(*topics)


async def test_an_agent_with_tabs_on_two_nodes_is_one_online_agent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = cluster("a", "b")
    with a.broker.subscribe(("tenant", "t1")) as inbox_a:
        a.presence.connect("t1", "javier")
        b.presence.connect("t1", "javier")
        for node in (a, b):
            assert node.presence.status("t1", "javier") == "online"
            assert node.presence.available("t1") == {"javier"}
        b.presence.disconnect("t1", "javier")  # one tab closed: still online everywhere
        assert a.presence.status("t1", "javier") == "online"
        assert b.presence.agents_online("t1")
        a.presence.disconnect("t1", "javier")  # the last tab: offline everywhere
        for node in (a, b):
            assert node.presence.status("t1", "javier") == "offline"
            assert node.presence.offline_since("t1", "javier") is not None
        updates = [e.data["status"] for e in drain(inbox_a) if e.type == "agent_presence_update"]
        assert updates == ["online", "offline"]  # one change each way, however many tabs


async def test_away_is_the_latest_choice_on_any_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = cluster("a", "b")
    a.presence.connect("t1", "ana")
    b.presence.connect("t1", "ana")
    await trio.sleep(1)
    a.presence.set_away("t1", "ana", True)
    assert b.presence.status("t1", "ana") == "away"
    await trio.sleep(1)
    b.presence.set_away("t1", "ana", False)
    assert a.presence.status("t1", "ana") == "online"
    assert b.presence.available("t1") == {"ana"}


async def test_only_the_node_where_a_change_happened_wakes_the_router(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = cluster("a", "b")
    with a.broker.subscribe(ROUTING) as route_a, b.broker.subscribe(ROUTING) as route_b:
        a.presence.connect("t1", "javier")
        assert [e.type for e in drain(route_a)] == ["agent_presence_update"]
        assert drain(route_b) == []


async def test_a_silent_node_is_forgotten_with_its_agents(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = cluster("a", "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.presence.run)
        await nursery.start(b.presence.run)
        b.presence.connect("t1", "javier")
        assert a.presence.status("t1", "javier") == "online"
        await trio.sleep(10)  # both share their tables every 2 s: nothing is forgotten
        assert a.presence.status("t1", "javier") == "online"
        b.connected = False  # b is killed or cut off
        t0 = trio.current_time()
        with a.broker.subscribe(("visitors", "t1")) as widgets_a:
            async for event in widgets_a:  # the widgets of the tenant learn it once
                assert event.type == "agents_online_changed"
                assert event.data == {"agentsOnline": False}
                break
            # last heard up to one share interval before the cut; checked every interval
            assert 7 - 2 < trio.current_time() - t0 <= 7 + 2
            assert a.presence.status("t1", "javier") == "offline"
            assert drain(widgets_a) == []
        nursery.cancel_scope.cancel()


async def test_a_node_that_starts_learns_the_whole_table_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = cluster("a", "b")
    b.connected = False
    a.presence.connect("t1", "javier")
    assert b.presence.status("t1", "javier") == "offline"
    b.connected = True
    async with trio.open_nursery() as nursery:
        await nursery.start(b.presence.run)  # says hello; a answers with its whole table
        assert b.presence.status("t1", "javier") == "online"
        nursery.cancel_scope.cancel()


async def test_an_unreadable_fact_changes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    (a,) = cluster("a")
    a.presence.connect("t1", "javier")
    for junk in (b"", b"{}", b'{"n": "b", "k": "all", "rows": [[1]]}', b"\xff"):
        a.presence.receive(junk)
    assert a.presence.status("t1", "javier") == "online"
