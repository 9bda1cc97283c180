"""A command refused by the CLI answers exit code 2 and one JSON error on stderr (it printed a
traceback and exit code 1: trio_asyncio's loop wrapped the refusal in an exception group)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support import CLI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "agent",
                "create",
                "--tenant",
                "ten_nope",
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--password",
                "12345678",
            ],
            "no tenant ten_nope",
        ),
        (["widget", "create", "--tenant", "ten_nope", "--name", "Shop"], "no tenant ten_nope"),
        (["visitor-keys", "retire", "knope"], "no key knope"),
    ],
)
def test_a_refused_command_is_exit_2_and_a_json_error(
    database_url: str, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [CLI, *args],
        env={**os.environ, "DATABASE_URL": database_url, "CURBE_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error == {"code": "invalid_arguments", "message": message}
