"""``curbe-chat``: serve, and the admin commands (each create prints one JSON object).

Database options are the same for every command: ``DATABASE_URL`` when set, otherwise an
embedded PostgreSQL in ``--data-dir`` (default ``.curbe-data``), started for the command and
stopped on exit (an admin command run while ``serve`` owns that folder uses the running server).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any

import attrs
import trio
import trio_asyncio

from storage import queries
from storage.db import Database
from web.auth import hash_password, new_id
from web.logs import configure as configure_logs
from web.services import Settings

DEFAULT_DATA_DIR = ".curbe-data"
log = logging.getLogger("curbe.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curbe-chat", description="Curbe Chat live chat server")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=os.environ.get("CURBE_DATA_DIR", DEFAULT_DATA_DIR),
        help="embedded PostgreSQL folder, used when DATABASE_URL is unset (default .curbe-data)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", default=os.environ.get("CURBE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CURBE_PORT", "8000")))
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo tenant, agent and widget; the agent's password is new at each start "
        "(CURBE_DEMO_PASSWORD to choose it); refused on a non-loopback --host",
    )
    serve.add_argument(
        "--force-demo", action="store_true", help="allow --demo on a non-loopback --host"
    )
    serve.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL"),
        help="join the cluster of every server on this NATS and the same database (NATS_URL)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("CURBE_WORKERS", "0")) or None,
        help="worker processes behind the port (CURBE_WORKERS; default: one per core); more "
        "than one joins them in a cluster over NATS (an embedded one without NATS_URL)",
    )
    serve.add_argument(
        "--balance",
        choices=("shared", "reuseport"),
        default=os.environ.get("CURBE_BALANCE", "reuseport"),
        help="how workers share the port: one socket per worker with SO_REUSEPORT (reuseport, "
        "default) or one socket the parent listens on (shared) (CURBE_BALANCE)",
    )
    # set by the parent of ``--workers`` for each worker: not for people
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument(
        "--public-url",
        default=os.environ.get("CURBE_PUBLIC_URL"),
        help="the URL browsers reach this server at (embed code, links); default http://HOST:PORT",
    )

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="action", required=True)
    t_create = tenant.add_parser("create", parents=[common])
    t_create.add_argument("--name", required=True)

    agent = sub.add_parser("agent", help="agents").add_subparsers(dest="action", required=True)
    a_create = agent.add_parser("create", parents=[common])
    a_create.add_argument("--tenant", required=True)
    a_create.add_argument("--email", required=True)
    a_create.add_argument("--name", required=True)
    a_create.add_argument("--password", required=True)
    a_create.add_argument("--avatar-url")
    a_create.add_argument(
        "--max-chats", type=int, default=5, help="OPEN chats the agent takes at once (5)"
    )

    widget = sub.add_parser("widget", help="widgets").add_subparsers(dest="action", required=True)
    w_create = widget.add_parser("create", parents=[common])
    w_create.add_argument("--tenant", required=True)
    w_create.add_argument("--name", required=True)
    w_create.add_argument("--domain", action="append", default=[], help="Targeting (repeatable)")
    w_create.add_argument("--wait-timeout", type=int, default=60, help="seconds (default 60)")

    keys = sub.add_parser(
        "visitor-keys", help="the keys that sign visitor tokens (docs/security.md)"
    ).add_subparsers(dest="action", required=True)
    keys.add_parser("list", parents=[common], help="every key, newest last")
    keys.add_parser(
        "rotate", parents=[common], help="a new key signs from now on; the others still verify"
    )
    k_retire = keys.add_parser(
        "retire", parents=[common], help="a key stops verifying: its tokens are refused"
    )
    k_retire.add_argument("kid", help="the key id (from list)")
    return parser


@contextlib.contextmanager
def database_url(data_dir: str) -> Iterator[str]:
    """``DATABASE_URL``, or an embedded PostgreSQL in ``data_dir`` for the duration."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from storage import embedded

    attach = getattr(embedded, "attach_or_start_embedded_postgres", None)
    pg = attach(data_dir) if attach else embedded.start_embedded_postgres(data_dir)
    try:
        yield pg.url
    finally:
        pg.stop()


def _run_with_db(url: str, fn: Callable[[Database], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with trio_asyncio.open_loop():
            db = await Database.connect(url, min_size=1, max_size=2)
            try:
                await db.migrate()
                return await fn(db)
            finally:
                await db.close()

    try:
        return trio.run(main)
    except BaseExceptionGroup as group:  # trio_asyncio's loop wraps what ``fn`` raised
        matched, _ = group.split(CliError)
        refused: BaseException | None = matched
        while isinstance(refused, BaseExceptionGroup):
            refused = refused.exceptions[0]
        if refused is not None:
            raise refused from None
        raise


class CliError(Exception):
    pass


async def _create_tenant(db: Database, name: str) -> dict[str, Any]:
    tenant_id = new_id("ten")
    await db.run(queries.insert_tenant, tenant_id, name)
    return {"id": tenant_id, "name": name}


async def _create_agent(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    if await db.run(queries.select_tenant, args.tenant) is None:
        raise CliError(f"no tenant {args.tenant}")
    if await db.run(queries.select_agent_by_email, args.email) is not None:
        raise CliError(f"an agent with email {args.email} exists already")
    if len(args.password) < 8:
        raise CliError("the password needs at least 8 characters")
    if args.max_chats < 1:
        raise CliError("--max-chats must be 1 or more")
    agent_id = new_id("agt")
    await db.run(
        queries.insert_agent,
        agent_id,
        args.tenant,
        args.email,
        args.name,
        await hash_password(args.password),
        args.avatar_url,
        args.max_chats,
    )
    return {
        "id": agent_id,
        "tenantId": args.tenant,
        "email": args.email,
        "name": args.name,
        "maxChats": args.max_chats,
    }


async def _create_widget(
    db: Database, tenant_id: str, name: str, domains: Sequence[str], wait_timeout: int
) -> dict[str, Any]:
    if await db.run(queries.select_tenant, tenant_id) is None:
        raise CliError(f"no tenant {tenant_id}")
    if not 1 <= wait_timeout <= 3600:
        raise CliError("--wait-timeout must be between 1 and 3600 seconds")
    widget_id = new_id("wgt")
    await db.run(queries.insert_widget, widget_id, tenant_id, name, list(domains), wait_timeout)
    return {"id": widget_id, "tenantId": tenant_id, "name": name, "domains": list(domains)}


async def _visitor_keys(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "rotate":
        kid = await db.run(queries.insert_token_key)
        return {"rotated": kid, "keys": await _key_list(db)}
    if args.action == "retire":
        outcome = await db.run(queries.retire_token_key, args.kid)
        if outcome != "retired":
            raise CliError(
                {
                    "unknown": f"no key {args.kid}",
                    "already": f"key {args.kid} is retired already",
                    "last": f"key {args.kid} is the only key left: rotate first",
                }[outcome]
            )
        return {"retired": args.kid, "keys": await _key_list(db)}
    return {"keys": await _key_list(db)}


async def _key_list(db: Database) -> list[dict[str, Any]]:
    rows = await db.run(queries.select_token_keys, retired=True)
    active = [r.kid for r in rows if r.retired_at is None]
    return [
        {
            "kid": r.kid,
            "createdAt": r.created_at.isoformat(),
            "retiredAt": r.retired_at.isoformat() if r.retired_at else None,
            "signing": bool(active) and r.kid == active[-1],
        }
        for r in rows
    ]


# The ``Settings`` fields ``serve`` reads from the environment (field -> variable); each is in
# docs/operations.md's table (tests/web/test_cli_environment.py checks both ways).
ENVIRONMENT = {
    "visitor_expiry_seconds": "CURBE_VISITOR_EXPIRY_SECONDS",
    "actor_call_timeout_seconds": "CURBE_ACTOR_CALL_TIMEOUT_SECONDS",
    "listen_backlog": "CURBE_LISTEN_BACKLOG",
    "gc_young_threshold": "CURBE_GC_YOUNG_THRESHOLD",
    "lease_ttl_seconds": "CURBE_LEASE_TTL_SECONDS",
    "lease_tick_seconds": "CURBE_LEASE_TICK_SECONDS",
    "shutdown_grace_seconds": "CURBE_SHUTDOWN_GRACE_SECONDS",
    "keep_alive_seconds": "CURBE_KEEP_ALIVE_SECONDS",
    "trusted_proxies": "CURBE_TRUSTED_PROXIES",
    "password_checks": "CURBE_PASSWORD_CHECKS",
    "throttle_scale": "CURBE_THROTTLE_SCALE",
    "visitor_token_days": "CURBE_VISITOR_TOKEN_DAYS",
    "visitor_key_reload_seconds": "CURBE_VISITOR_KEY_RELOAD_SECONDS",
    "max_upload_bytes": "CURBE_MAX_UPLOAD_BYTES",
    "files_dir": "CURBE_FILES_DIR",
    "janitor_seconds": "CURBE_JANITOR_SECONDS",
    "s3_endpoint": "CURBE_S3_ENDPOINT",
    "s3_bucket": "CURBE_S3_BUCKET",
    "s3_region": "CURBE_S3_REGION",
    "s3_access_key_id": "CURBE_S3_ACCESS_KEY_ID",
    "s3_secret_access_key": "CURBE_S3_SECRET_ACCESS_KEY",
    "s3_prefix": "CURBE_S3_PREFIX",
}


def _from_environment(**variables: str) -> dict[str, Any]:
    """``Settings`` fields read from environment variables (field name -> variable), each parsed
    as its field's type; a variable that is unset keeps the field's default, written once, in
    :class:`Settings`."""
    fields = attrs.fields_dict(Settings)
    out: dict[str, Any] = {}
    for name, variable in variables.items():
        raw = os.environ.get(variable)
        default: Any = fields[name].default
        if raw is not None and isinstance(default, tuple):  # a comma-separated list
            out[name] = tuple(item.strip() for item in raw.split(",") if item.strip())
        elif raw is not None:
            out[name] = type(default)(raw)
    return out


def _default_workers() -> int:
    from web.workers import default_workers

    return default_workers()


def _serve_workers(args: argparse.Namespace, workers: int) -> None:
    """The parent of ``--workers N`` (web/workers.py)."""
    from web import workers as w

    ops_token = os.environ.get("CURBE_OPS_TOKEN")
    token = ops_token or secrets.token_urlsafe(24)
    defaults = Settings(**_from_environment(**ENVIRONMENT))
    backlog, grace = defaults.listen_backlog, defaults.shutdown_grace_seconds
    sock = w.listening_socket(args.host, args.port, backlog, reuse_port=args.balance == "reuseport")
    watch, keep = os.pipe()  # ``keep`` stays open in the parent only
    argv = ["--public-url", args.public_url] if args.public_url else []
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        url = stack.enter_context(database_url(args.data_dir))
        nats = args.nats_url or stack.enter_context(w.embedded_nats(args.data_dir))
        folder = stack.enter_context(w.metrics_folder())
        plan = w.Plan(
            workers=workers,
            balance=args.balance,
            host=args.host,
            port=sock.getsockname()[1],
            sock=sock,
            argv=argv,
            parent_fd=watch,
            environment=w.parent_environment(
                url, nats, token, {"PROMETHEUS_MULTIPROC_DIR": folder}
            ),
            demo=args.demo,
            node_base=os.environ.get("CURBE_NODE_ID") or f"{socket.gethostname()}-{os.getpid()}",
            grace_seconds=grace,
        )
        trio.run(partial(w.run, plan, ops_token_shown=None if ops_token else token))
    os.close(keep)


def loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> None:
    workers = args.workers or _default_workers()
    if workers < 1:
        raise SystemExit("--workers must be 1 or more")
    if args.demo and not args.force_demo and not loopback(args.host):
        raise SystemExit(
            f"--demo seeds an agent and prints its password: refused on --host {args.host}, "
            "which other machines can reach (use 127.0.0.1, or add --force-demo)"
        )
    if args.demo:  # the demo agent's password: new at each start, the same in every worker
        os.environ.setdefault("CURBE_DEMO_PASSWORD", secrets.token_urlsafe(12))
    if workers > 1:
        _serve_workers(args, workers)
        return
    from web.server import serve, tune_gc  # imported when serving only: admin commands start fast

    ops_token = os.environ.get("CURBE_OPS_TOKEN")
    settings = Settings(
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        ops_token=ops_token or secrets.token_urlsafe(24),
        demo=args.demo,
        demo_password=os.environ.get("CURBE_DEMO_PASSWORD") if args.demo else None,
        nats_url=args.nats_url or None,
        node_id=os.environ.get("CURBE_NODE_ID") or None,
        listen_fd=args.listen_fd,
        reuse_port=args.reuse_port,
        **_from_environment(**ENVIRONMENT),
    )
    if not settings.files_dir:  # attachments live beside the database, in the data folder
        settings.files_dir = os.path.join(args.data_dir, "files")
    tune_gc(settings.gc_young_threshold)
    with database_url(args.data_dir) as url:

        async def main() -> None:
            stop = trio.Event()

            async def watch_signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop.set()
                        return

            async def watch_parent(fd: int) -> None:
                await trio.lowlevel.wait_readable(fd)  # end-of-file: the parent is gone
                stop.set()

            async def watch(scope: trio.CancelScope) -> None:
                with scope:
                    async with trio.open_nursery() as watchers:
                        watchers.start_soon(watch_signals)
                        if args.parent_fd is not None:
                            watchers.start_soon(watch_parent, args.parent_fd)

            # the watchers end with the stop: a worker's parent stays alive until the worker
            # has exited, and waiting for its end-of-file held every stop to the deadline
            watching = trio.CancelScope()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, watching)
                info = await nursery.start(serve, settings, url, stop.wait)
                if not ops_token:
                    info["opsToken"] = settings.ops_token
                print(json.dumps(info, indent=2), flush=True)
                await stop.wait()
                watching.cancel()
                nursery.cancel_scope.deadline = (
                    trio.current_time() + settings.shutdown_grace_seconds + 5
                )
            if nursery.cancel_scope.cancelled_caught:
                log.warning(
                    "stop cut short: still stopping after the grace period",
                    extra={"status": "cut_short"},
                )

        trio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logs(
        os.environ.get("CURBE_LOG_LEVEL", "INFO"), os.environ.get("CURBE_LOG_FORMAT", "json")
    )
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
            return 0
        with database_url(args.data_dir) as url:
            if args.command == "tenant":
                result = _run_with_db(url, lambda db: _create_tenant(db, args.name))
            elif args.command == "agent":
                result = _run_with_db(url, lambda db: _create_agent(db, args))
            elif args.command == "visitor-keys":
                result = _run_with_db(url, lambda db: _visitor_keys(db, args))
            else:
                result = _run_with_db(
                    url,
                    lambda db: _create_widget(
                        db, args.tenant, args.name, args.domain, args.wait_timeout
                    ),
                )
    except CliError as exc:
        print(
            json.dumps({"error": {"code": "invalid_arguments", "message": str(exc)}}),
            file=sys.stderr,
        )
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
