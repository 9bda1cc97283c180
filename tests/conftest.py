"""Shared fixtures: a real PostgreSQL (``DATABASE_URL``, else an embedded one), a fresh database
per test cloned from a migrated template, and a real Hypercorn server on a free port.

Every test has a deadline, so a hang is a failure with a traceback rather than a stuck run:
a Trio test gets a watchdog (real time, so ``autojump_clock`` does not fire it) that fails the
test with the tree of its tasks and the line each one waits on; a plain test gets
``pytest-timeout``. ``@pytest.mark.deadline(seconds)`` changes the limit of one test;
``CURBE_TEST_DEADLINE`` the default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import trio
import trio_asyncio

from storage.db import apply_migrations

pytest.register_assert_rewrite("tests.support")

from tests.support import Server, open_server  # noqa: E402

pytest_plugins = ["tests.deadlines"]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(url: str, *statements: str) -> None:
    async def run() -> None:
        async with trio_asyncio.open_loop():
            connection = await trio_asyncio.aio_as_trio(asyncpg.connect)(url)
            try:
                for sql in statements:
                    await trio_asyncio.aio_as_trio(connection.execute)(sql)
            finally:
                await trio_asyncio.aio_as_trio(connection.close)()

    trio.run(run)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server tests run against: ``DATABASE_URL`` or an embedded PostgreSQL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from storage.embedded import embedded_postgres

    with embedded_postgres(tmp_path_factory.mktemp("pg") / "data") as pg:
        yield pg.url


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """A migrated template database, cloned by every test."""
    name = f"curbe_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")

    async def migrate() -> None:
        async with trio_asyncio.open_loop():
            conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(
                with_database(postgres_url, name)
            )
            try:
                await trio_asyncio.aio_as_trio(apply_migrations)(conn)
            finally:
                await trio_asyncio.aio_as_trio(conn.close)()

    trio.run(migrate)
    yield name
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = f"curbe_test_{secrets.token_hex(5)}"
    _admin(postgres_url, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    yield with_database(postgres_url, name)
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[Server]:
    """A real server (Hypercorn, trio worker) on a free port, with a fresh database."""
    async with open_server(database_url) as srv:
        yield srv


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
