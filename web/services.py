"""What the web layer talks to: the database, the supervisor, the broker, presence, settings."""

from __future__ import annotations

import collections
import datetime as dt
import tempfile

import attrs
import trio

from engine.broker import Broker
from engine.clock import Clock
from engine.cluster import Cluster
from engine.conversation_actor import KIND as CONVERSATION
from engine.presence import AgentPresence
from engine.routing import KIND as ROUTER
from engine.supervisor import Supervisor
from engine.visitor import KIND as VISITOR
from engine.widget import KIND as WIDGET
from storage.db import Database
from storage.files import FileStore, LocalFiles, S3Files
from web.auth import VisitorTokens
from web.janitor import FileJanitor
from web.nearby import PingGate, RowCache
from web.reads import VisitorReads
from web.throttles import PublicLimits, Throttles

__all__ = ["ACTOR_KINDS", "AgentPresence", "Services", "Settings"]

# every kind of actor the supervisor runs (the gauges and /ops count each)
ACTOR_KINDS = (CONVERSATION, VISITOR, WIDGET, ROUTER)


@attrs.define
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    ops_token: str | None = None
    visitor_expiry_seconds: float = 60.0
    actor_idle_seconds: float = 300.0
    max_body_bytes: int = 64 * 1024
    # attachments (issue 17): the largest file a message may carry, where the files live (empty:
    # a temporary folder of this process, for library callers and tests; ``serve`` uses the
    # data folder), how often the janitor removes the files due, files examined at once
    max_upload_bytes: int = 10 * 1024 * 1024
    files_dir: str = ""
    # an S3-compatible bucket instead of the local disk (storage/files.py S3Files): the endpoint
    # (https://s3.eu-west-1.amazonaws.com, http://minio:9000) and bucket turn it on
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_prefix: str = ""
    janitor_seconds: float = 60.0
    file_checks: int = 2
    shutdown_grace_seconds: float = 5.0
    # how long an idle keep-alive HTTP connection stays open (Hypercorn's keep_alive_timeout).
    # Longer than a reverse proxy keeps its idle upstream connections (docker/Caddyfile: 30 s),
    # so that the proxy, not this server, closes them: a request the proxy sends on a
    # connection this server is closing would fail
    keep_alive_seconds: float = 75.0
    # connections the kernel queues for accept: after a restart every open widget reconnects at
    # once, and past a full queue the kernel resets them (each reset costs a widget up to 15 s of
    # backoff). Linux caps it at net.core.somaxconn (4,096 by default); Hypercorn's default is 100.
    listen_backlog: int = 4096
    # net allocations between two young collections of Python's cyclic garbage collector
    # (CPython's default: 700). A loaded server keeps ~700,000 objects alive (2,000 widgets), and
    # every object a young collection finds still in flight is promoted; once promotions reach a
    # quarter of the old generation CPython scans all of it: at 700 that was a 0.5-0.6 s pause
    # every ~2 s at 1,000 msg/s, collecting nothing (docs/benchmarks.md). `curbe-chat serve` only.
    gc_young_threshold: int = 50_000
    demo: bool = False
    demo_password: str | None = None  # the demo agent's; None: a new random one (web/demo.py)
    session_days: int = 30
    # visitor tokens (web/auth.py): how long one lasts without a heartbeat to renew it, and how
    # often each process reloads the signing keys (a key retired elsewhere stops verifying here)
    visitor_token_days: float = 30.0
    visitor_key_reload_seconds: float = 60.0
    reoffer_after_seconds: float = 30.0
    presence_interval_seconds: float = 1.0
    # sign-in (web/signin.py): failures per account from one address, per account, per address,
    # in the window; argon2 checks at once, and how long one more waits for its turn
    login_max_failures: int = 5
    login_max_per_account: int = 20
    login_max_per_address: int = 30
    login_window_seconds: float = 900.0
    password_checks: int = 2
    password_check_wait_seconds: float = 5.0
    # proxies whose X-Forwarded-For is believed (addresses or networks: "10.0.0.0/8"); a proxy on
    # this host by default. Otherwise the client is the socket's peer (web/deps.py client_ip)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # the anonymous endpoints' throttles (web/throttles.py), all multiplied by this
    throttle_scale: float = 1.0
    public_limits: PublicLimits = attrs.field(factory=PublicLimits)
    # supervision (engine/supervisor.py): how long a caller waits for an actor's answer, and the
    # restart intensity past which an actor is given up
    actor_call_timeout_seconds: float = 10.0
    actor_max_restarts: int = 3
    actor_restart_window_seconds: float = 10.0
    # several processes (engine/placement.py, engine/cluster.py): with a NATS URL this process
    # joins the cluster of every process on the same database and NATS
    nats_url: str | None = None
    node_id: str | None = None  # default: host-pid-random
    lease_ttl_seconds: float = 8.0  # a dead process's actors are taken over within ttl + tick
    lease_tick_seconds: float = 1.0
    # ``serve --workers N`` (web/workers.py): the parent's listening socket, inherited; or each
    # worker binds the port itself with SO_REUSEPORT
    listen_fd: int | None = None
    reuse_port: bool = False

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when browsers reach the server over https."""
        return (self.public_url or "").lower().startswith("https://")

    def unreachable_base_url(self) -> str | None:
        """The base URL when no browser can reach it (no public URL and a wildcard address, as
        in the image): the embed code and links would carry it, so the server warns."""
        if self.public_url is None and self.host in ("0.0.0.0", "::", ""):
            return self.base_url
        return None


def file_store(settings: Settings) -> FileStore:
    """The store the settings name: an S3-compatible bucket, or the local disk (a temporary
    folder of this process when none is set: library callers and tests)."""
    if settings.s3_endpoint and settings.s3_bucket:
        return S3Files(
            settings.s3_endpoint,
            settings.s3_bucket,
            access_key=settings.s3_access_key_id,
            secret_key=settings.s3_secret_access_key,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
        )
    return LocalFiles(settings.files_dir or tempfile.mkdtemp(prefix="curbe-files-"))


@attrs.define
class Services:
    settings: Settings
    db: Database
    supervisor: Supervisor
    broker: Broker
    clock: Clock
    tokens: VisitorTokens
    presence: AgentPresence
    started_at: dt.datetime
    cluster: Cluster | None = None  # several processes
    # several processes: what spares a heartbeat a crossing to the widget's process (web/nearby.py)
    pings: PingGate = attrs.field(factory=PingGate)
    widget_rows: RowCache = attrs.field(factory=RowCache)
    # set when the server begins to stop (web/server.py ``stop_trigger``): open sockets close 1001
    stopping: trio.Event = attrs.field(factory=trio.Event)
    # argon2 checks running at once (web/signin.py); sized from settings in __attrs_post_init__
    password_checks: trio.CapacityLimiter = attrs.field(default=None)
    throttles: Throttles = attrs.field(default=None)
    # open sockets per owner here (``visitor:<id>``, ``agent:<id>``): capped (web/streams.py)
    open_sockets: collections.Counter[str] = attrs.field(factory=collections.Counter)
    files: FileStore = attrs.field(default=None)  # attachments' bytes (storage/files.py)
    janitor: FileJanitor | None = None  # removes the files due (web/janitor.py)
    reads: VisitorReads | None = None  # visitors' read marks from sockets, written together
    # uploads examined at once (Pillow in a thread: web/uploads.py)
    file_checks: trio.CapacityLimiter = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.password_checks is None:
            self.password_checks = trio.CapacityLimiter(self.settings.password_checks)
        if self.file_checks is None:
            self.file_checks = trio.CapacityLimiter(self.settings.file_checks)
        if self.files is None:
            self.files = file_store(self.settings)
        if self.throttles is None:
            limits = self.settings.public_limits.scaled(self.settings.throttle_scale)
            self.throttles = Throttles(limits)
