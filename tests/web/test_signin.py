"""Sign-in under abuse (issue #16): the limit cannot be raced, holds per account and per address
across every process, believes ``X-Forwarded-For`` only from trusted proxies, and password checks
(argon2, 64 MiB each) run a few at a time."""

from __future__ import annotations

import ipaddress
import os
import subprocess

import httpx
import pytest
import trio

from tests.support import CLI, OPS_TOKEN, Seed, Server, open_server, read_banner, seed
from web import auth
from web.deps import forwarded_client, trusted_networks

pytestmark = pytest.mark.regression


async def sign_in(server: Server, who: Seed, password: str, **headers: str) -> httpx.Response:
    async with server.http(headers=headers) as client:
        return await client.post(
            "/api/auth/login", json={"email": who.agent_email, "password": password}
        )


async def test_parallel_wrong_passwords_cannot_slip_past_the_limit(server: Server) -> None:
    # before: the limit was read before the password check and written after it, so twelve
    # attempts at once all got their check (and a 401)
    [who] = await seed(server)
    codes: list[int] = []

    async def attempt() -> None:
        codes.append((await sign_in(server, who, "wrong")).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(12):
            nursery.start_soon(attempt)
    assert sorted(codes) == [401] * 5 + [429] * 7, codes
    assert (await sign_in(server, who, who.password)).status_code == 429


async def test_password_checks_run_a_few_at_once(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    [who] = await seed(server)
    running, most = 0, 0
    real = auth.verify_password

    async def counted(password_hash: str, password: str) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await real(password_hash, password)
        finally:
            running -= 1

    monkeypatch.setattr(auth, "verify_password", counted)
    codes: list[int] = []

    async def attempt(n: int) -> None:  # unknown emails: the dummy hash costs the same
        unknown = Seed(who.tenant_id, who.widget_id, who.agent_id, f"nobody{n}@example.com", "")
        codes.append((await sign_in(server, unknown, "wrong")).status_code)

    async with trio.open_nursery() as nursery:
        for n in range(12):
            nursery.start_soon(attempt, n)
    assert codes == [401] * 12
    assert most == server.services.settings.password_checks == 2


async def test_a_sign_in_that_waits_too_long_for_its_check_is_told_to_retry(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = trio.Event()
    started = trio.Event()
    real = auth.verify_password

    async def held(password_hash: str, password: str) -> bool:
        started.set()
        await release.wait()
        return await real(password_hash, password)

    async with open_server(
        database_url, password_checks=1, password_check_wait_seconds=0.2
    ) as server:
        [who] = await seed(server)
        monkeypatch.setattr(auth, "verify_password", held)
        first: list[httpx.Response] = []
        async with trio.open_nursery() as nursery:

            async def hold() -> None:
                first.append(await sign_in(server, who, who.password))

            nursery.start_soon(hold)
            await started.wait()
            busy = await sign_in(server, who, who.password)
            release.set()
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy", busy.text
        assert busy.headers["Retry-After"] == "2"
        assert first[0].status_code == 200, first[0].text
        # a refusal for busy is not a failure: five wrong attempts still get their 401
        monkeypatch.setattr(auth, "verify_password", real)
        for _ in range(5):
            assert (await sign_in(server, who, "wrong")).status_code == 401


async def test_behind_a_trusted_proxy_one_address_locked_out_leaves_the_others_alone(
    database_url: str,
) -> None:
    async with open_server(database_url) as server:  # a proxy on this host is trusted
        [who] = await seed(server)
        for _ in range(5):
            r = await sign_in(server, who, "wrong", **{"X-Forwarded-For": "203.0.113.5"})
            assert r.status_code == 401
        locked = await sign_in(server, who, who.password, **{"X-Forwarded-For": "203.0.113.5"})
        assert locked.status_code == 429
        # the agent, from another address behind the same proxy
        other = await sign_in(server, who, who.password, **{"X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 200, other.text


async def test_from_a_client_that_is_no_trusted_proxy_a_forged_forwarded_for_changes_nothing(
    database_url: str,
) -> None:
    async with open_server(database_url, trusted_proxies=()) as server:
        [who] = await seed(server)
        for n in range(5):
            r = await sign_in(server, who, "wrong", **{"X-Forwarded-For": f"203.0.113.{n}"})
            assert r.status_code == 401
        r = await sign_in(server, who, who.password, **{"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429  # the socket's address is the only one believed


async def test_one_account_is_limited_from_every_address_together(database_url: str) -> None:
    async with open_server(database_url, login_max_per_account=6) as server:
        [who] = await seed(server)
        for n in range(6):  # a guess spread over many addresses
            r = await sign_in(server, who, "wrong", **{"X-Forwarded-For": f"203.0.113.{n}"})
            assert r.status_code == 401
        r = await sign_in(server, who, who.password, **{"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429, r.text


async def test_every_process_counts_against_one_limit(server: Server, database_url: str) -> None:
    # before: each process kept its own count in memory. ``other`` is a second server process
    # on the same database
    [who] = await seed(server)
    other = await trio.lowlevel.open_process(
        [CLI, "serve", "--workers", "1", "--port", "0"],
        env={**os.environ, "DATABASE_URL": database_url, "CURBE_OPS_TOKEN": OPS_TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(60):
            banner = await read_banner(other)
        async with httpx.AsyncClient(base_url=banner["baseUrl"], timeout=15) as there:

            async def sign_in_there(password: str) -> int:
                r = await there.post(
                    "/api/auth/login", json={"email": who.agent_email, "password": password}
                )
                return r.status_code

            for _ in range(3):
                assert (await sign_in(server, who, "wrong")).status_code == 401
            for _ in range(2):
                assert await sign_in_there("wrong") == 401
            assert (await sign_in(server, who, who.password)).status_code == 429
            assert await sign_in_there(who.password) == 429
    finally:
        other.terminate()
        with trio.CancelScope(shield=True):
            await other.wait()


TRUSTED = trusted_networks(("10.0.0.0/8", "127.0.0.1"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: its header is ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # 1.2.3.4 may be forged
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "not-an-address, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.5, 10.0.0.3", "10.0.0.5"),  # only proxies: the first of them
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_walks_forwarded_for_through_trusted_proxies_only(
    peer: str, forwarded: str | None, client: str
) -> None:
    assert forwarded_client(peer, forwarded, TRUSTED) == client
    assert all(isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) for n in TRUSTED)
