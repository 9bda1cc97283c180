"""Which errors mean "the database cannot be reached now" (answered 503, retryable) and which
are faults (answered 500 and logged with their traceback)."""

from __future__ import annotations

import errno

import asyncpg
import pytest

from storage.db import unavailable


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        TimeoutError("connect timed out"),
        OSError(errno.EHOSTUNREACH, "Connect call failed"),  # a host cut off: what asyncpg raises
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("too many clients"),
    ],
)
def test_unreachable_databases_are_unavailable(exc: BaseException) -> None:
    assert unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "no such file"),  # an OSError, but a fault
        OSError(errno.EACCES, "permission denied"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        ValueError("bad"),
    ],
)
def test_faults_are_not(exc: BaseException) -> None:
    assert not unavailable(exc)
