"""Generated requests from the OpenAPI document (schemathesis), one at a time, against a real
server with a seeded tenant; every answer checked against the document and every refusal
against the database.

Each operation is driven three ways: valid data with real ids and real credentials (so requests
get past the 404 and the 401 to the code behind them), data that breaks the schema (negative
mode) with the same ids and credentials, and everything generated (ids and credentials too).
Before each request the database's signature is read: for every chat table its row count and the
highest ``xmin`` (any insert, update or delete moves one of them). A refused request (4xx) must
leave every signature as it was, except the refusals the contract says are recorded (below).

Holds when: no answer is a 5xx, every answer is in the document (status, content type, headers,
body schema), and no refused request changed a stored row.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import requests
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench.run import run_cli
from chaos.harness import (
    OPS_TOKEN,
    Ledger,
    Refusals,
    ServerProcess,
    Visitor,
    agent_token,
    drop_database,
    log_file,
    nonzero,
    open_chat,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# every table a request may write; login_attempts is left out on purpose (a sign-in attempt is
# counted before its password is checked, so a refused sign-in is recorded: issue 16)
TABLES = (
    "tenants",
    "agents",
    "agent_sessions",
    "widgets",
    "contacts",
    "visitor_sessions",
    "conversations",
    "messages",
    "conversation_events",
    "conversation_reads",
    "visitor_token_keys",
)
# refusals the contract records: a heartbeat from outside Targeting marks the widget
# MISCONFIGURED (docs/widgets.md), an agent's sign-out ends its session even when answered 4xx
RECORDED_REFUSALS = {("POST", "/api/chat/widgets/{widgetId}/heartbeat", 403): {"widgets"}}


@attrs.frozen
class Fixtures:
    """Real ids and credentials the generated requests may carry."""

    agent_token: str
    visitor_token: str
    visitor_id: str
    widget: str  # the widget the visitor chats on
    spare_widget: str  # the one PATCH and DELETE may change
    conversation: str
    ops_token: str


class Signature:
    """Row count and highest ``xmin`` of every table in :data:`TABLES` (a thread of its own: an
    asyncio loop and one connection)."""

    QUERY = " UNION ALL ".join(
        f"SELECT '{t}' AS t, count(*) AS n, coalesce(max(xmin::text::bigint), 0) AS x FROM {t}"
        for t in TABLES
    )

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.connection: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))

    def take(self) -> dict[str, tuple[int, int]]:
        rows = self.loop.run_until_complete(self.connection.fetch(self.QUERY))
        return {r["t"]: (int(r["n"]), int(r["x"])) for r in rows}

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()


@attrs.define
class Findings:
    requests: int = 0
    no_answer: int = 0
    unsendable: int = 0
    by_status: collections.Counter[int] = attrs.field(factory=collections.Counter)
    server_errors: int = 0
    outside_document: int = 0
    refusals: Refusals = attrs.field(factory=Refusals)
    http_refusals: int = 0  # refused by the HTTP layer before any route (HTTP_LAYER_STATUSES)
    examples: list[str] = attrs.field(factory=list)  # the first few of each kind of finding
    kinds: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def found(self, kind: str, text: str) -> None:
        self.kinds[kind] += 1
        if self.kinds[kind] <= 5:
            self.examples.append(f"{kind}: {text[:600]}")


def auth_for(operation: Any, fixtures: Fixtures) -> str | None:
    """The real credential an operation takes, if it takes one (the first scheme we hold)."""
    if operation.path == "/api/auth/logout":
        return None  # a real sign-out would end the session every other request uses
    tokens = {
        "agentBearer": fixtures.agent_token,
        "visitorBearer": fixtures.visitor_token,
        "opsBearer": fixtures.ops_token,
    }
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            if scheme in tokens:
                return tokens[scheme]
    return None


def real_ids(operation: Any, fixtures: Fixtures) -> dict[str, str]:
    """Path parameters that name things that exist (PATCH and DELETE of a widget: the spare)."""
    ids = {
        "widgetId": fixtures.widget,
        "conversationId": fixtures.conversation,
        "visitorId": fixtures.visitor_id,
        "widgetRef": fixtures.spare_widget,
        "kind": "conversation",
        "actorId": fixtures.conversation,
    }
    if operation.method.upper() in ("PATCH", "DELETE") and "{widgetId}" in operation.path:
        ids["widgetId"] = fixtures.spare_widget
    names = {p.name for p in operation.path_parameters}
    return {k: v for k, v in ids.items() if k in names}


# what Hypercorn (h11) answers a request it cannot take as HTTP, before the app sees it: a
# header value with a control character or a malformed request line (400), headers too large
# (431), a Transfer-Encoding other than chunked (501); no body, and the connection closed
HTTP_LAYER_STATUSES = {400, 431, 501}


def http_layer_refusal(response: requests.Response) -> bool:
    """Whether ``response`` is the HTTP layer's refusal, not the app's: the app always answers
    a JSON body (web/app.py), the HTTP layer an empty one with ``Connection: close``."""
    return (
        response.status_code in HTTP_LAYER_STATUSES
        and response.content == b""
        and "content-type" not in response.headers
        and response.headers.get("connection", "").lower() == "close"
    )


def as_sent(case: Any) -> str:
    """The request as a ``curl`` command: all of it (headers, query and body), to replay."""
    try:
        return str(case.as_curl_command())
    except Exception:  # a case curl cannot render: the path at least
        return f"{case.method} {case.formatted_path}"


def describe(case: Any, response: requests.Response) -> str:
    body = response.text[:300].replace("\n", " ")
    return f"{as_sent(case)} -> {response.status_code} {body}"


def drive(
    base: str,
    url: str,
    fixtures: Fixtures,
    *,
    budget: int,
    seed: int = 16,
    progress: Any = None,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Send about ``budget`` generated requests, one at a time (blocking: run it in a thread),
    over every operation of the document or the operationIds in ``only``."""
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    if only:
        operations = [o for o in operations if o.definition.raw.get("operationId") in only]
        missing = set(only) - {o.definition.raw.get("operationId") for o in operations}
        if missing:
            raise ValueError(f"no such operation in the document: {sorted(missing)}")
    rng = random.Random(seed)
    findings = Findings()
    signature = Signature(url)
    session = requests.Session()
    began = time.monotonic()
    before = signature.take()

    def send(case: Any) -> None:
        nonlocal before
        try:
            response = case.call(base_url=base, session=session, timeout=15)
        except (requests.ConnectionError, requests.Timeout) as exc:
            findings.no_answer += 1  # the server reset, closed or did not answer in 15 s
            findings.found("no answer", f"{as_sent(case)}: {exc!r}")
            return
        except requests.RequestException as exc:
            findings.unsendable += 1  # a header or URL the client library refuses to send
            findings.found("unsendable", f"{case.method} {case.formatted_path}: {exc!r}")
            return
        findings.requests += 1
        findings.by_status[response.status_code] += 1
        layer = http_layer_refusal(response)
        if layer:
            # refused by the HTTP layer before any route (docs/api.md, "Malformed HTTP"):
            # counted apart, each kept as a curl command to look at
            findings.http_refusals += 1
            findings.found("refused by the HTTP layer", describe(case, response))
        elif response.status_code >= 500:
            findings.server_errors += 1
            findings.found("5xx", describe(case, response))
        try:
            if not layer:
                case.validate_response(response, checks=CHECKS)
        except (FailureGroup, AssertionError) as failed:
            if response.status_code < 500:
                findings.outside_document += 1
                parts = failed.exceptions if isinstance(failed, FailureGroup) else [failed]
                titles = "; ".join(sorted({getattr(f, "title", repr(f)) for f in parts}))
                findings.found("outside the document", f"{titles} — {describe(case, response)}")
        after = signature.take()
        if case.operation.path.endswith("/heartbeat") and response.status_code == 200:
            findings.refusals.beat()
        if 400 <= response.status_code < 500:
            recorded = RECORDED_REFUSALS.get(
                (case.method.upper(), case.operation.path, response.status_code), set()
            )
            if stored := findings.refusals.judge(before, after, recorded):
                findings.found("refused but stored", f"{stored} — {describe(case, response)}")
        before = after
        if progress is not None and findings.requests % 1000 == 0:
            progress(findings.requests, time.monotonic() - began)

    def run(strategy: Any, examples: int) -> None:
        @settings(
            max_examples=examples,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            send(case)

        try:
            with with_reporter(lambda _: None):  # not its "reproduce with @seed" lines
                one()
        except Unsatisfiable:
            pass  # nothing of this kind to generate (no input to break, in negative mode)

    try:
        while findings.requests < budget:
            sent = findings.requests
            each = max(1, (budget - sent) // (len(operations) * 3) + 1)
            for operation in rng.sample(operations, len(operations)):
                token = auth_for(operation, fixtures)
                headers = {"Authorization": f"Bearer {token}"} if token else None
                ids = real_ids(operation, fixtures)
                for mode, fixed in (
                    (GenerationMode.POSITIVE, True),
                    (GenerationMode.NEGATIVE, True),
                    (GenerationMode.POSITIVE, False),
                ):
                    if not fixed:
                        strategy = operation.as_strategy(generation_mode=mode)
                    else:
                        strategy = operation.as_strategy(
                            generation_mode=mode, path_parameters=ids or None, headers=headers
                        )
                    run(strategy, each)
                    if findings.requests >= budget:
                        break
                if findings.requests >= budget:
                    break
            if findings.requests == sent:
                break  # nothing more can be generated
    finally:
        session.close()
        signature.close()
    return {
        "requests": findings.requests,
        "seconds": round(time.monotonic() - began, 1),
        "operations": len(operations),
        "byStatus": {str(k): v for k, v in sorted(findings.by_status.items())},
        "serverErrors": findings.server_errors,
        "noAnswer": findings.no_answer,
        "unsendable": findings.unsendable,
        "httpLayerRefusals": findings.http_refusals,
        "outsideDocument": findings.outside_document,
        "refusedButStored": findings.refusals.stored,
        "recordedRefusals": findings.refusals.recorded,
        "deferredSaves": findings.refusals.deferred,
        "examples": findings.examples[:30],
    }


@contextlib.asynccontextmanager
async def seeded_server(
    database_url: str, logs: Path, name: str
) -> AsyncIterator[tuple[ServerProcess, str, Fixtures]]:
    """A server on a fresh database with a tenant, an agent signed in, a visitor chatting on one
    widget and a spare widget; answers it, the database's URL and the fixtures."""
    chat = await open_chat(database_url, name)
    # nothing in the background may write while a refusal is being checked: no visitor expires
    env = dict(chat.env, CURBE_VISITOR_EXPIRY_SECONDS="86400")
    with log_file(logs, name) as log:
        server = ServerProcess(env, log)
        async with trio.open_nursery() as nursery:
            await server.start(nursery)
            spare = await run_cli(env, "widget", "create", "--tenant", chat.tenant, "--name",
                                  "Spare", "--wait-timeout", "3600")  # fmt: skip
            visitor = Visitor(server, chat.widget, "fuzz", Ledger())
            await visitor.join()
            conversation = await visitor.start_chat()
            assert visitor.token is not None and visitor.visitor_id is not None
            fixtures = Fixtures(
                agent_token=await agent_token(server, chat),
                visitor_token=visitor.token,
                visitor_id=visitor.visitor_id,
                widget=chat.widget,
                spare_widget=spare["id"],
                conversation=conversation,
                ops_token=OPS_TOKEN,
            )
            try:
                yield server, chat.url, fixtures
            finally:
                await server.stop()
    await drop_database(database_url, name)


def progress(n: int, seconds: float) -> None:
    print(f"  requests: {n} in {seconds:.0f} s", file=sys.stderr, flush=True)


async def run(
    database_url: str, logs: Path, *, budget: int, operations: tuple[str, ...] = ()
) -> dict[str, Any]:
    async with seeded_server(database_url, logs, "curbe_chaos_requests") as (server, url, f):
        figures: dict[str, Any] = await trio.to_thread.run_sync(
            functools.partial(
                drive, server.base, url, f, budget=budget, progress=progress, only=operations
            )
        )
    return figures


def holds(figures: dict[str, Any]) -> list[str]:
    keys = ("serverErrors", "noAnswer", "outsideDocument", "refusedButStored")
    return nonzero(figures, *keys, examples=True)
