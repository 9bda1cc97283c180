"""What the web layer talks to: the database, the supervisor, the broker, presence, settings."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import attrs

from engine.broker import Broker
from engine.clock import Clock
from engine.events import Event, EventType
from engine.supervisor import Supervisor
from storage.db import Database
from web.auth import VisitorSigner
from web.people import LoginLimiter


@attrs.define
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    ops_token: str | None = None
    visitor_expiry_seconds: float = 60.0
    actor_idle_seconds: float = 300.0
    max_body_bytes: int = 64 * 1024
    shutdown_grace_seconds: float = 5.0
    demo: bool = False
    session_days: int = 30
    login_max_failures: int = 5
    login_window_seconds: float = 900.0

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class AgentPresence:
    """Which agents have an inbox open (several tabs = one agent), and who set themself away."""

    def __init__(self, broker: Broker, clock: Clock) -> None:
        self._broker = broker
        self._clock = clock
        self._connections: dict[str, Counter[str]] = {}
        self._away: set[str] = set()

    def _online(self, tenant_id: str) -> set[str]:
        return {
            a for a, n in self._connections.get(tenant_id, Counter()).items() if n > 0
        } - self._away

    def agents_online(self, tenant_id: str) -> bool:
        return bool(self._online(tenant_id))

    def status(self, tenant_id: str, agent_id: str) -> str:
        if self._connections.get(tenant_id, Counter())[agent_id] <= 0:
            return "offline"
        return "away" if agent_id in self._away else "online"

    def connect(self, tenant_id: str, agent_id: str) -> None:
        before = self.status(tenant_id, agent_id)
        self._connections.setdefault(tenant_id, Counter())[agent_id] += 1
        self._changed(tenant_id, agent_id, before)

    def disconnect(self, tenant_id: str, agent_id: str) -> None:
        before = self.status(tenant_id, agent_id)
        counts = self._connections.get(tenant_id)
        if counts is not None:
            counts[agent_id] -= 1
            if counts[agent_id] <= 0:
                del counts[agent_id]
                self._away.discard(agent_id)
        self._changed(tenant_id, agent_id, before)

    def set_away(self, tenant_id: str, agent_id: str, away: bool) -> None:
        before = self.status(tenant_id, agent_id)
        (self._away.add if away else self._away.discard)(agent_id)
        self._changed(tenant_id, agent_id, before)

    def _changed(self, tenant_id: str, agent_id: str, before: str) -> None:
        after = self.status(tenant_id, agent_id)
        if after == before:
            return
        self._broker.publish(
            Event(
                type=EventType.AGENT_PRESENCE_UPDATE.value,
                at=self._clock.now(),
                tenant_id=tenant_id,
                data={
                    "agentId": agent_id,
                    "status": after,
                    "agentsOnline": self.agents_online(tenant_id),
                },
            )
        )


@attrs.define
class Services:
    settings: Settings
    db: Database
    supervisor: Supervisor
    broker: Broker
    clock: Clock
    signer: VisitorSigner
    presence: AgentPresence
    started_at: dt.datetime
    login_limiter: LoginLimiter = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.login_limiter is None:
            self.login_limiter = LoginLimiter(
                self.clock,
                max_failures=self.settings.login_max_failures,
                window=dt.timedelta(seconds=self.settings.login_window_seconds),
            )
