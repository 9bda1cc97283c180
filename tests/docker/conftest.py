"""The image and the compose file, built and run for real (``pytest -m docker``, ``make docker-test``).

A Docker daemon is needed: the one running, or one ``docker/daemon start`` starts (root, Debian's
``docker.io``), stopped again at the end of the run. Without one every test here is skipped with
the reason, which ``-ra`` prints in the summary.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import _admin, with_database

DOCKER = Path(__file__).resolve().parents[2] / "docker"
TAG = os.environ.get("CURBE_TEST_IMAGE", "curbe-chat:test")


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[None]:
    if shutil.which("docker") is None:
        pytest.skip("docker: no docker client (apt-get install -y docker.io)")
    started = subprocess.run(
        [str(DOCKER / "daemon"), "start"], capture_output=True, text=True, timeout=90
    )
    if started.returncode != 0:
        pytest.skip(f"docker: no daemon could start: {started.stderr.strip()}")
    try:
        yield
    finally:
        if started.stdout.strip():  # this run started it: stop it
            subprocess.run([str(DOCKER / "daemon"), "stop"], timeout=60, check=False)


@pytest.fixture(scope="session")
def image(docker_daemon: None) -> str:
    """The server image, built by ``docker/build`` as an operator builds it."""
    built = subprocess.run(
        [str(DOCKER / "build"), TAG], capture_output=True, text=True, timeout=900
    )
    assert built.returncode == 0, f"docker/build failed:\n{built.stderr[-4000:]}"
    return TAG


@pytest.fixture(scope="session")
def tcp_postgres_url(postgres_url: str) -> str:
    """The test PostgreSQL, if a container on the host's network can reach it (TCP)."""
    if not urlsplit(postgres_url).hostname:
        pytest.skip(
            "docker: the containers need DATABASE_URL on TCP (the embedded one is a socket)"
        )
    return postgres_url


@pytest.fixture
def empty_database_url(tcp_postgres_url: str) -> Iterator[str]:
    """A new database with nothing in it: the containers apply every migration themselves."""
    name = f"curbe_docker_{secrets.token_hex(4)}"
    _admin(tcp_postgres_url, f"CREATE DATABASE {name}")
    yield with_database(tcp_postgres_url, name)
    _admin(tcp_postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
