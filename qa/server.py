"""What a QA run stands on: a fresh database, a real ``curbe-chat serve --demo`` process, and a
customer's site on a second origin.

- **Database.** With ``DATABASE_URL`` set, a new database ``curbe_qa_<random>`` on that server,
  dropped at the end; otherwise an embedded PostgreSQL in a temporary ``--data-dir``. A run never
  sees an older run's data.
- **Server.** The console script next to this Python (``curbe-chat``; else ``python -m
  web.cli``), ``--port 0``; its banner (one JSON object on stdout) says where it listens and
  holds the demo login. Its log goes to ``server.log`` beside the artifacts.
- **Customer's site.** A stdlib HTTP server in a thread on ``localhost:<port>`` (the Curbe
  server is ``127.0.0.1:<port>``: another origin, another domain), serving whatever HTML the run
  puts in :attr:`HostSite.pages`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BANNER_TIMEOUT = 90.0


def _admin(url: str, *statements: str) -> None:
    """Run SQL statements on ``url`` (plain asyncio: nothing else runs a loop here)."""
    import asyncio

    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            for sql in statements:
                await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database() -> Iterator[tuple[dict[str, str], list[str], str]]:
    """Yields (environment for ``serve``, extra ``serve`` arguments, a description)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        name = f"curbe_qa_{secrets.token_hex(5)}"
        _admin(url, f'CREATE DATABASE "{name}"')
        try:
            yield {"DATABASE_URL": with_database(url, name)}, [], f"database {name} (dropped after)"
        finally:
            with contextlib.suppress(Exception):
                _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with tempfile.TemporaryDirectory(prefix="curbe-qa-", ignore_cleanup_errors=True) as tmp:
        data = Path(tmp) / "data"
        yield {}, ["--data-dir", str(data)], "embedded PostgreSQL in a temporary folder"


def serve_command() -> list[str]:
    script = Path(sys.executable).parent / "curbe-chat"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "web.cli"]


class ServeProcess:
    """``curbe-chat serve --port 0 --demo`` as a child process (stopped with SIGTERM)."""

    def __init__(self, log_path: Path, env: dict[str, str], args: list[str]) -> None:
        self.log_path = log_path
        self.env = {**os.environ, **env}
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.banner: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = [
            *serve_command(),
            "serve",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        command.append("--demo")
        self.proc = subprocess.Popen(
            command + self.args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.env,
            cwd=Path(__file__).resolve().parents[1],
        )
        lines: queue.Queue[bytes] = queue.Queue()

        def pump() -> None:  # read stdout to its end so the pipe never fills
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, name="serve-stdout", daemon=True).start()
        buffer = b""
        deadline = time.monotonic() + BANNER_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(
                    f"curbe-chat serve printed no banner in {BANNER_TIMEOUT:.0f} s "
                    f"(see {self.log_path})"
                ) from None
            if not line:
                code = self.proc.wait()
                raise RuntimeError(
                    f"curbe-chat serve exited ({code}) before its banner (see {self.log_path})"
                )
            buffer += line
            try:
                self.banner = json.loads(buffer)
                return self.banner
            except ValueError:
                continue

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proc = None


class HostSite:
    """A customer's site: ``pages[path] = html`` (query strings ignored), other paths are 404."""

    def __init__(self, host: str = "localhost") -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name for it
                body = pages.get(urlsplit(self.path).path)
                data = (body if body is not None else "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def __enter__(self) -> HostSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def customer_page(snippet: str = "") -> str:
    """InsureMax's product page, with ``snippet`` pasted before ``</body>`` (or not yet)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Auto insurance · InsureMax</title>"
        "<style>body{font-family:'DejaVu Sans',sans-serif;margin:0;color:#1e293b}"
        "header{background:#0b3d91;color:#fff;padding:18px 28px;font-size:22px;font-weight:bold}"
        "main{padding:28px}h1{font-size:30px;margin:0 0 12px}p{line-height:1.5;max-width:560px}"
        ".cta{display:inline-block;background:#f59e0b;color:#111;padding:12px 22px;"
        "border-radius:8px;font-weight:bold;margin-top:8px}"
        ".plans{display:flex;gap:14px;margin-top:26px}.plan{border:1px solid #cbd5e1;"
        "border-radius:10px;padding:14px 18px;width:150px}.plan b{display:block;font-size:20px}"
        "</style></head><body>"
        "<header>InsureMax</header><main><h1>Auto insurance in minutes</h1>"
        "<p>Compare plans for your car, get a quote online and talk to an advisor if you have "
        "questions.</p><span class='cta'>Get a quote</span>"
        "<div class='plans'><div class='plan'>Basic<b>$29/mo</b></div>"
        "<div class='plan'>Plus<b>$45/mo</b></div><div class='plan'>Full<b>$68/mo</b></div>"
        f"</div></main>{snippet}</body></html>"
    )
