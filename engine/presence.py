"""Agent presence: which agents of a tenant have an inbox open, and who set themself away.

An agent is *online* while at least one inbox socket is open (several tabs = one agent) and they
have not chosen Away; *away* with an inbox open and Away chosen; *offline* with none open.
Changes are published as ``agent_presence_update`` (inbox) and, when the tenant's
``agentsOnline`` flips, ``agents_online_changed`` to every visitor of the tenant. Routing asks
who is :meth:`available` and since when an agent is offline.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Literal

from engine.broker import Broker
from engine.clock import Clock
from engine.values import AgentPresenceUpdate, AgentsOnlineChanged, Event, EventType

# an agent is online (an inbox open, not away), away (chose to be) or offline (no inbox open)
AgentStatus = Literal["online", "away", "offline"]


class AgentPresence:
    """Which agents have an inbox open (several tabs = one agent), and who set themself away."""

    def __init__(self, broker: Broker, clock: Clock) -> None:
        self._broker = broker
        self._clock = clock
        self._connections: dict[str, Counter[str]] = {}
        self._away: set[str] = set()
        self._offline_since: dict[tuple[str, str], dt.datetime] = {}

    def _online(self, tenant_id: str) -> set[str]:
        return {
            a for a, n in self._connections.get(tenant_id, Counter()).items() if n > 0
        } - self._away

    def agents_online(self, tenant_id: str) -> bool:
        return bool(self._online(tenant_id))

    def status(self, tenant_id: str, agent_id: str) -> AgentStatus:
        if self._connections.get(tenant_id, Counter())[agent_id] <= 0:
            return "offline"
        return "away" if agent_id in self._away else "online"

    def connect(self, tenant_id: str, agent_id: str) -> None:
        before = self.status(tenant_id, agent_id)
        was_online = self.agents_online(tenant_id)
        self._connections.setdefault(tenant_id, Counter())[agent_id] += 1
        self._changed(tenant_id, agent_id, before, was_online)

    def disconnect(self, tenant_id: str, agent_id: str) -> None:
        before = self.status(tenant_id, agent_id)
        was_online = self.agents_online(tenant_id)
        counts = self._connections.get(tenant_id)
        if counts is not None:
            counts[agent_id] -= 1
            if counts[agent_id] <= 0:
                del counts[agent_id]
                self._away.discard(agent_id)
        self._changed(tenant_id, agent_id, before, was_online)

    def set_away(self, tenant_id: str, agent_id: str, away: bool) -> None:
        before = self.status(tenant_id, agent_id)
        was_online = self.agents_online(tenant_id)
        (self._away.add if away else self._away.discard)(agent_id)
        self._changed(tenant_id, agent_id, before, was_online)

    def available(self, tenant_id: str) -> set[str]:
        """Agents who can take a chat now: an inbox open and not away."""
        return self._online(tenant_id)

    def offline_since(self, tenant_id: str, agent_id: str) -> dt.datetime | None:
        """When the agent's last inbox closed (None while one is open, or never seen)."""
        return self._offline_since.get((tenant_id, agent_id))

    def _changed(self, tenant_id: str, agent_id: str, before: str, was_online: bool) -> None:
        after = self.status(tenant_id, agent_id)
        if after == before:
            return
        if after == "offline":
            self._offline_since[(tenant_id, agent_id)] = self._clock.now()
        else:
            self._offline_since.pop((tenant_id, agent_id), None)
        online = self.agents_online(tenant_id)
        if online != was_online:  # every widget of the tenant learns at once
            self._broker.publish(
                Event(
                    type=EventType.AGENTS_ONLINE_CHANGED.value,
                    at=self._clock.now(),
                    tenant_id=tenant_id,
                    data=AgentsOnlineChanged(online).to_wire(),
                    to_all_visitors=True,
                )
            )
        self._broker.publish(
            Event(
                type=EventType.AGENT_PRESENCE_UPDATE.value,
                at=self._clock.now(),
                tenant_id=tenant_id,
                data=AgentPresenceUpdate(agent_id, after, self.agents_online(tenant_id)).to_wire(),
            )
        )
