"""Agent presence: which agents of a tenant have an inbox open, and who set themself away.

An agent is *online* while at least one inbox socket is open (several tabs = one agent) and they
have not chosen Away; *away* with an inbox open and Away chosen; *offline* with none open.
Changes are published as ``agent_presence_update`` (inbox) and, when the tenant's
``agentsOnline`` flips, ``agents_online_changed`` to every visitor of the tenant. Routing asks
who is :meth:`available` and since when an agent is offline.

**Several processes.** An agent's tabs may be open on several processes. Each process counts
its own sockets and shares them as *facts* over the bus (``share``: one message per change, and
every process's whole table every ``interval`` seconds); each process merges every process's
facts into the same view and publishes the resulting events to its own sockets. An agent is
online when the sum of their sockets over every process is positive; Away is the latest choice
(by time) among the processes where they have a tab. A process not heard from for ``expire``
seconds (stopped, killed, cut off) is forgotten, and its agents' tabs with it. Only the process
where a change happened wakes the router (one nudge, not one per process).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, Literal

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock
from engine.values import AgentPresenceUpdate, AgentsOnlineChanged, Event, EventType

log = logging.getLogger("curbe.presence")

# an agent is online (an inbox open, not away), away (chose to be) or offline (no inbox open)
AgentStatus = Literal["online", "away", "offline"]
Key = tuple[str, str]  # (tenant_id, agent_id)


@attrs.define
class Tabs:
    """One process's fact about one agent: open inbox sockets, and their Away choice."""

    count: int = 0
    away: bool = False
    at: float = 0.0  # when Away was last chosen or left (seconds since the epoch)


class AgentPresence:
    """Which agents have an inbox open (several tabs = one agent, on any process), and who set
    themself away."""

    def __init__(
        self,
        broker: Broker,
        clock: Clock,
        *,
        node_id: str = "local",
        share: Callable[[bytes], None] | None = None,
        interval: float = 2.0,
        expire: float = 7.0,
    ) -> None:
        self._broker = broker
        self._clock = clock
        self.node_id = node_id
        self._share = share
        self.interval = interval
        self.expire = expire
        self._tables: dict[str, dict[Key, Tabs]] = {node_id: {}}  # node -> its facts
        self._heard: dict[str, float] = {}  # other node -> Trio time last heard
        self._agents: dict[str, set[str]] = {}  # tenant -> agents with a fact anywhere
        self._offline_since: dict[Key, dt.datetime] = {}

    # --- the merged view ----------------------------------------------------------------------

    def _merged(self, key: Key) -> tuple[int, bool]:
        count, away, latest = 0, False, -1.0
        for table in self._tables.values():
            tabs = table.get(key)
            if tabs is None or tabs.count <= 0:
                continue
            count += tabs.count
            if tabs.at > latest:
                away, latest = tabs.away, tabs.at
        return count, away

    def status(self, tenant_id: str, agent_id: str) -> AgentStatus:
        count, away = self._merged((tenant_id, agent_id))
        if count <= 0:
            return "offline"
        return "away" if away else "online"

    def _online(self, tenant_id: str) -> set[str]:
        return {a for a in self._agents.get(tenant_id, ()) if self.status(tenant_id, a) == "online"}

    def agents_online(self, tenant_id: str) -> bool:
        return any(self.status(tenant_id, a) == "online" for a in self._agents.get(tenant_id, ()))

    def available(self, tenant_id: str) -> set[str]:
        """Agents who can take a chat now: an inbox open and not away."""
        return self._online(tenant_id)

    def offline_since(self, tenant_id: str, agent_id: str) -> dt.datetime | None:
        """When the agent's last inbox closed (None while one is open, or never seen)."""
        return self._offline_since.get((tenant_id, agent_id))

    # --- this process's sockets -----------------------------------------------------------------

    def connect(self, tenant_id: str, agent_id: str) -> None:
        def change(tabs: Tabs) -> None:
            tabs.count += 1

        self._local(tenant_id, agent_id, change)

    def disconnect(self, tenant_id: str, agent_id: str) -> None:
        def change(tabs: Tabs) -> None:
            tabs.count -= 1

        self._local(tenant_id, agent_id, change)

    def set_away(self, tenant_id: str, agent_id: str, away: bool) -> None:
        def change(tabs: Tabs) -> None:
            tabs.away, tabs.at = away, self._clock.now().timestamp()

        self._local(tenant_id, agent_id, change)

    def _local(self, tenant_id: str, agent_id: str, change: Callable[[Tabs], None]) -> None:
        key = (tenant_id, agent_id)
        table = self._tables[self.node_id]
        with self._watch([key], routing=True):
            tabs = table.setdefault(key, Tabs())
            change(tabs)
            if tabs.count <= 0:  # the last tab here closed: its Away choice goes with it
                del table[key]
            self._index(key)
        if self._share is not None:
            self._share(self._fact("one", [key]))

    # --- the other processes' facts (several processes) -----------------------------------------

    def _fact(self, kind: str, keys: list[Key]) -> bytes:
        table = self._tables[self.node_id]
        rows = []
        for key in keys:
            tabs = table.get(key, Tabs())
            rows.append([key[0], key[1], tabs.count, tabs.away, tabs.at])
        return json.dumps({"n": self.node_id, "k": kind, "rows": rows}).encode()

    def receive(self, payload: bytes) -> None:
        """Another process's fact: one agent (``one``), or its whole table (``all``)."""
        try:
            message = json.loads(payload)
            node, kind = str(message["n"]), message["k"]
            rows = {
                (str(t), str(a)): Tabs(int(c), bool(w), float(at))
                for t, a, c, w, at in message["rows"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("a presence fact could not be read", extra={"error": str(exc)})
            return
        if node == self.node_id:
            return
        self._heard[node] = trio.current_time()
        table = self._tables.setdefault(node, {})
        keys = list(rows) if kind == "one" else list(set(rows) | set(table))
        with self._watch(keys, routing=False):
            if kind != "one":
                table.clear()
            for key, tabs in rows.items():
                if tabs.count > 0:
                    table[key] = tabs
                else:
                    table.pop(key, None)
            for key in keys:
                self._index(key)
        if kind == "hello" and self._share is not None:  # a process started: tell it all
            self._share(self._fact("all", list(self._tables[self.node_id])))

    def forget_silent(self) -> list[str]:
        """Forget the processes not heard from for ``expire`` seconds; answers which."""
        now = trio.current_time()
        gone = [n for n, at in self._heard.items() if now - at > self.expire]
        for node in gone:
            del self._heard[node]
            log.warning("presence of a silent process forgotten", extra={"node_id": node})
            keys = list(self._tables.get(node, {}))
            with self._watch(keys, routing=True):  # seen before the facts go: their changes
                self._tables.pop(node, None)
                for key in keys:
                    self._index(key)
        return gone

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Share this process's whole table every ``interval`` and forget silent processes
        (a service, several processes only; Trio)."""
        assert self._share is not None
        self._share(self._fact("hello", list(self._tables[self.node_id])))
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            self._share(self._fact("all", list(self._tables[self.node_id])))
            self.forget_silent()

    def describe(self) -> dict[str, Any]:
        return {
            "nodes_heard": sorted(self._heard),
            "agents_here": sum(t.count for t in self._tables[self.node_id].values()),
        }

    # --- change detection ---------------------------------------------------------------------

    def _index(self, key: Key) -> None:
        tenant_id, agent_id = key
        if any(key in table for table in self._tables.values()):
            self._agents.setdefault(tenant_id, set()).add(agent_id)
        else:
            agents = self._agents.get(tenant_id)
            if agents is not None:
                agents.discard(agent_id)
                if not agents:
                    del self._agents[tenant_id]

    class _Watch:
        def __init__(self, presence: AgentPresence, keys: list[Key], routing: bool) -> None:
            self.presence, self.keys, self.routing = presence, keys, routing

        def __enter__(self) -> None:
            p = self.presence
            self.before = {k: p.status(*k) for k in self.keys}
            self.tenants = {t: p.agents_online(t) for t, _ in self.keys}

        def __exit__(self, *exc: object) -> None:
            if exc[0] is None:
                self.presence._changed(self.before, self.tenants, self.routing)

    def _watch(self, keys: list[Key], *, routing: bool) -> AgentPresence._Watch:
        return AgentPresence._Watch(self, keys, routing)

    def _changed(
        self, before: dict[Key, AgentStatus], tenants: dict[str, bool], routing: bool
    ) -> None:
        now = self._clock.now()
        flipped = {t for t, was in tenants.items() if self.agents_online(t) != was}
        for tenant_id in sorted(flipped):  # every widget of the tenant learns at once
            self._broker.publish_here(
                Event(
                    type=EventType.AGENTS_ONLINE_CHANGED.value,
                    at=now,
                    tenant_id=tenant_id,
                    data=AgentsOnlineChanged(self.agents_online(tenant_id)).to_wire(),
                    to_all_visitors=True,
                ),
                routing=routing,
            )
        for (tenant_id, agent_id), was in before.items():
            after = self.status(tenant_id, agent_id)
            if after == was:
                continue
            if after == "offline":
                self._offline_since[(tenant_id, agent_id)] = now
            else:
                self._offline_since.pop((tenant_id, agent_id), None)
            self._broker.publish_here(
                Event(
                    type=EventType.AGENT_PRESENCE_UPDATE.value,
                    at=now,
                    tenant_id=tenant_id,
                    data=AgentPresenceUpdate(
                        agent_id, after, self.agents_online(tenant_id)
                    ).to_wire(),
                ),
                routing=routing,
            )
