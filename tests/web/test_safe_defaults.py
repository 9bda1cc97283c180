"""Safe defaults (issue #16): a 413 ends its connection, cookies are Secure over https, and the
demo agent has no password anyone else knows."""

from __future__ import annotations

import logging
import subprocess

import pytest
import trio

from storage import queries
from tests.support import CLI, Server, open_server, seed
from web.auth import hash_password, new_id, verify_password
from web.demo import DEMO_EMAIL, PUBLISHED_DEMO_PASSWORD, check_demo_left, seed_demo

pytestmark = pytest.mark.regression


async def test_a_413_closes_its_connection_instead_of_hanging_the_next_request(
    server: Server,
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    body = b"x" * (server.services.settings.max_body_bytes + 1)
    first = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    second = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(first + body + second)
        received = b""
        # before: the response came, then the connection hung with the unread body in it
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 413"), received[:200]
    assert b"connection: close" in head
    assert received.count(b"HTTP/1.1 ") == 1  # the second request was not taken as a body


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://chat.example.com", True), (None, False)]
)
async def test_the_session_cookie_is_secure_when_the_public_url_is_https(
    database_url: str, public_url: str | None, secure: bool
) -> None:
    async with open_server(database_url, public_url=public_url) as server:
        [who] = await seed(server)
        async with server.http() as client:
            r = await client.post(
                "/api/auth/login", json={"email": who.agent_email, "password": who.password}
            )
        assert r.status_code == 200, r.text
        cookie = r.headers["Set-Cookie"].lower()
        assert ("; secure" in cookie) is secure, cookie
        assert "httponly" in cookie and "samesite=lax" in cookie


async def test_each_demo_start_gives_the_demo_agent_a_new_password(server: Server) -> None:
    settings = server.services.settings
    first = await seed_demo(server.services.db, settings)
    second = await seed_demo(server.services.db, settings)
    assert first["agentId"] == second["agentId"]  # seeded once
    assert first["login"]["password"] != second["login"]["password"]
    assert PUBLISHED_DEMO_PASSWORD not in (first["login"]["password"], second["login"]["password"])
    row = await server.run(queries.select_agent_by_email, DEMO_EMAIL)
    assert await verify_password(row["password_hash"], second["login"]["password"])
    assert not await verify_password(row["password_hash"], first["login"]["password"])


async def test_a_start_without_demo_locks_a_demo_agent_with_the_published_password(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    [who] = await seed(server)
    agent_id = new_id("agt")
    await server.run(
        queries.insert_agent,
        agent_id,
        who.tenant_id,
        DEMO_EMAIL,
        "Javier Lazo",
        await hash_password(PUBLISHED_DEMO_PASSWORD),
    )
    with caplog.at_level(logging.WARNING, logger="curbe.demo"):
        assert await check_demo_left(server.services.db) is True
    row = await server.run(queries.select_agent_by_email, DEMO_EMAIL)
    assert not await verify_password(row["password_hash"], PUBLISHED_DEMO_PASSWORD)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "published demo password" in said and DEMO_EMAIL in said


async def test_no_demo_agent_no_warning(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="curbe.demo"):
        assert await check_demo_left(server.services.db) is False
    assert not caplog.records


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_demo_is_refused_on_an_address_others_can_reach(host: str, database_url: str) -> None:
    done = subprocess.run(
        [CLI, "serve", "--workers", "1", "--demo", "--host", host, "--port", "0"],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--force-demo" in done.stderr, done.stderr
