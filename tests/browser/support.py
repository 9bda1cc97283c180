"""Browser tests: headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

The server under test runs in the test's Trio loop (real Hypercorn, real sockets); the browser
script runs in a worker thread with Playwright's sync API. trio-asyncio replaces asyncio's loop
policy for the whole process, so the worker thread sets a plain asyncio policy for itself first
(trio-asyncio keeps a policy set outside Trio thread-local).

A second origin — the "customer's site" — is a tiny ASGI app on another port serving whatever
HTML the test gives it, so the widget runs cross-origin exactly as it would on a real site.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import hypercorn.config
import hypercorn.trio
import trio

T = TypeVar("T")

CHROMIUM = os.environ.get("CURBE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


def artifact(name: str) -> Path:
    """Where a screenshot or trace of a browser test goes (``artifacts/browser/``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


async def in_browser(scenario: Callable[[Any], T], **launch: Any) -> T:
    """Run ``scenario(browser)`` with a fresh headless Chromium in a worker thread (Trio flavour).

    The Trio loop keeps serving while the browser works, so the scenario may talk to the server.
    """

    def run() -> T:
        if not Path(CHROMIUM).exists():
            raise RuntimeError(
                f"{CHROMIUM} is missing: install Debian's chromium (`.ci/run` does) "
                "to run browser tests"
            )
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())  # this thread only
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **launch
            )
            try:
                return scenario(browser)
            finally:
                browser.close()

    # abandoned when the test's deadline cancels it: a browser that hangs fails its own test
    # (tests/deadlines.py) instead of holding the whole run until pytest-timeout ends it
    return await trio.to_thread.run_sync(run, abandon_on_cancel=True)


@attrs.define
class HostSite:
    """A customer's site on its own origin. ``pages[path] = html`` decides what it serves."""

    base_url: str
    pages: dict[str, str] = attrs.field(factory=dict)

    def url(self, path: str = "/") -> str:
        return self.base_url.rstrip("/") + path


@asynccontextmanager
async def open_host_site(host: str = "127.0.0.1") -> AsyncIterator[HostSite]:
    """Serve :class:`HostSite` pages on a free port of ``host`` (a second origin)."""
    site = HostSite(base_url="")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        page = site.pages.get(scope["path"])
        status, body = (200, page) if page is not None else (404, "not found")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    config = hypercorn.config.Config()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app,  # type: ignore[arg-type]
                config,
                shutdown_trigger=stop.wait,  # type: ignore[arg-type]
                task_status=task_status,
            )
        )
        site.base_url = binds[0]
        yield site
        stop.set()


def page_with(snippet: str, *, where: str = "body", title: str = "Acme Insurance") -> str:
    """A plain customer page with ``snippet`` pasted into its ``<head>`` or ``<body>``."""
    head = snippet if where == "head" else ""
    body = snippet if where == "body" else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title>{head}</head>"
        f"<body><h1>{title}</h1><p>Quotes in minutes.</p>"
        f"<button id='host-button' onclick=\"this.textContent='clicked'\">Get a quote</button>"
        f"{body}</body></html>"
    )


class Heard(list[dict[str, Any]]):
    """The frames a socket received so far (a list, appended as they come), and that socket:
    ``say`` and ``wait_for`` are for the browser's thread (they cross into the Trio loop).
    An ``activity_batch`` (typing hints and read marks coalesced for an inbox) is listed as the
    events it carries, as inbox.js applies it; the batch itself is kept in ``batches``."""

    def __init__(self, ws: Any) -> None:
        super().__init__()
        self.ws = ws
        self._changed = trio.Event()
        self.batches: list[dict[str, Any]] = []

    def take(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "activity_batch":
            self.batches.append(frame)
            for event in frame["data"]["events"]:
                self.append(event)
        else:
            self.append(frame)

    def append(self, frame: dict[str, Any]) -> None:
        super().append(frame)
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_for(
        self, match: Callable[[dict[str, Any]], bool], start: int
    ) -> dict[str, Any]:
        with trio.fail_after(10):
            while True:
                for frame in self[start:]:
                    if match(frame):
                        return frame
                await self._changed.wait()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], start: int = 0) -> dict[str, Any]:
        """The first frame from index ``start`` on that ``match``es, waiting for it (10 s)."""
        found: dict[str, Any] = trio.from_thread.run(self._wait_for, match, start)
        return found

    def say(self, frame: dict[str, Any]) -> None:
        import json

        trio.from_thread.run(self.ws.send_message, json.dumps(frame))


@asynccontextmanager
async def listening(server: Any, path: str) -> AsyncIterator[Heard]:
    """A socket open on ``path`` (after its ``ready``), read continuously for the block."""
    import json

    import trio_websocket

    async with trio_websocket.open_websocket_url(f"{server.ws_url}{path}") as ws:
        first = json.loads(await ws.get_message())
        assert first["type"] == "ready", first
        heard = Heard(ws)

        async def read() -> None:
            try:
                while True:
                    heard.take(json.loads(await ws.get_message()))
            except trio_websocket.ConnectionClosed:
                return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            yield heard
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def agent_online(server: Any, token: str) -> AsyncIterator[Heard]:
    """Keep an agent online (an open inbox socket, read continuously) for the block.

    Yields the frames the inbox received (and its socket, to send frames as the agent).
    """
    async with listening(server, f"/api/chat/inbox/ws?token={token}") as heard:
        yield heard
