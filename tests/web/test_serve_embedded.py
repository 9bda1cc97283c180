"""``curbe-chat serve`` with no DATABASE_URL: starts its own PostgreSQL, serves, stops it on exit."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
import trio

from tests.support import CLI, read_banner

pytestmark = pytest.mark.slow


def postmasters_of(data_dir: Path) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("postgres") for part in cmdline[:1]) and str(data_dir) in " ".join(
            cmdline
        ):
            out.append(proc)
    return out


async def test_serve_demo_on_embedded_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = await trio.lowlevel.open_process(
        [CLI, "serve", "--port", "0", "--demo", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(60):
            info = await read_banner(proc)
        assert postmasters_of(data_dir), "no embedded PostgreSQL runs on the data dir"
        demo = info["demo"]
        async with httpx.AsyncClient(base_url=info["baseUrl"], timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            login = await http.post("/api/auth/login", json=demo["login"])
            assert login.status_code == 200
            widgets = await http.get(
                "/api/chat/widgets", headers={"Authorization": f"Bearer {login.json()['token']}"}
            )
            assert [w["id"] for w in widgets.json()["widgets"]] == [demo["widgetId"]]
            # the demo site holds the widget's snippet, and the pages the banner prints exist
            site = await http.get("/demo")
            assert site.status_code == 200
            assert demo["embedCode"] in site.text
            assert (await http.get("/widget.js")).status_code == 200
            http.cookies.clear()  # signed out: the sign-in page itself
            assert (await http.get("/login")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await proc.wait() == 0
        assert postmasters_of(data_dir) == []  # stopped on exit
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
