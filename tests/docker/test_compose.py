"""``docker/compose.yaml`` read by Debian's ``docker-compose config``, with the ``.env`` an operator
makes from ``env.example``: the set the operations guide describes, with no secret committed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docker.conftest import DOCKER

pytestmark = pytest.mark.docker

NODES = ("curbe-1", "curbe-2")


def compose_config(folder: Path) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip(
            "docker: no docker-compose to validate compose.yaml (apt-get install -y docker-compose)"
        )
    return subprocess.run(
        [compose, "--project-directory", str(folder), "-f", str(folder / "compose.yaml"), "config"],
        capture_output=True, text=True, timeout=60, cwd=folder,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of docker/ as an operator has it: with a ``.env`` made from ``env.example``."""
    folder = tmp_path / "docker"
    shutil.copytree(DOCKER, folder)
    (folder / ".env").unlink(missing_ok=True)
    return folder


def test_the_compose_file_is_a_cluster_behind_a_proxy_started_in_order_of_health(
    project: Path,
) -> None:
    env = (project / "env.example").read_text()
    (project / ".env").write_text(env.replace("change-me-to-a-long-random-string", "s3cretPw"))
    done = compose_config(project)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "nats", "proxy", *NODES}

    assert services["postgres"]["image"].startswith("postgres:16")
    assert "postgres-data" in config["volumes"]
    assert "-js" in services["nats"]["command"]
    for name in ("postgres", "nats"):
        assert services[name]["healthcheck"]["test"], name

    for name in NODES:
        node = services[name]
        assert node["image"] == "curbe-chat:latest"
        environment = node["environment"]
        assert environment["DATABASE_URL"] == "postgresql://curbe:s3cretPw@postgres:5432/curbe"
        assert environment["NATS_URL"] == "nats://nats:4222"
        assert environment["CURBE_OPS_TOKEN"]  # from .env, the same on every node
        assert "172.16.0.0/12" in environment["CURBE_TRUSTED_PROXIES"]  # the proxy's network
        assert node["hostname"] == name  # its node id in the cluster
        assert node["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "nats": {"condition": "service_healthy"},
        }
        # docker stop waits longer than the server's own stop (grace 10 s + 15 s)
        assert node["stop_grace_period"] == "30s"
        assert "ports" not in node  # reached through the proxy only

    proxy = services["proxy"]
    assert proxy["depends_on"] == {n: {"condition": "service_healthy"} for n in NODES}
    assert proxy["environment"]["CURBE_UPSTREAMS"] == "curbe-1:8000 curbe-2:8000"
    mounts = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in proxy["volumes"]]
    assert "/etc/caddy/Caddyfile" in mounts
    assert proxy["ports"]  # the only published ports


def test_without_its_env_file_the_compose_file_refuses_to_start(project: Path) -> None:
    # no default password anywhere: compose stops and names what is missing
    done = compose_config(project)
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr or ".env" in done.stderr, done.stderr


def test_the_env_file_is_never_committed(repo_root: Path) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "docker/.env"], cwd=repo_root, timeout=30, check=False
    )
    assert ignored.returncode == 0, "docker/.env must be in .gitignore"
