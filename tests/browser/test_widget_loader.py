"""The embeddable loader (``widget/widget.js``) in a real Chromium, on a second origin.

Each test serves a customer's page from :class:`HostSite` (another port, so another origin) with
the embed snippet in it, and checks what the visitor sees: the launcher inside the widget's
Shadow DOM, nothing at all where the widget must not show, and a host page that keeps working.
Playwright's CSS selectors pierce open shadow roots, so ``curbe-chat-widget .cc-launch`` finds
the launcher inside the widget's shadow tree.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.browser.support import HostSite, agent_online, artifact, in_browser, page_with
from tests.support import Seed, Server, login, seed

pytestmark = pytest.mark.slow

WIDGET_JS = Path(__file__).resolve().parents[2] / "widget" / "widget.js"
HOST = "curbe-chat-widget"
LAUNCHER = f"{HOST} .cc-launch"
TITLE = f"{HOST} .cc-title"
WAIT_MS = 10_000
XSS = "<img src=x onerror=alert(1)>"


def snippet(src_base: str, who: Seed | None = None, **data: str) -> str:
    """The embed code as a business pastes it (plus any extra ``data-*`` attributes)."""
    attrs_ = ""
    if who is not None:
        attrs_ += f' data-widget-id="{who.widget_id}" data-tenant="{who.tenant_id}"'
    for key, value in data.items():
        attrs_ += f' data-{key}="{value}"'
    return f'<script async src="{src_base}/widget.js"{attrs_}></script>'


async def patch_widget(server: Server, who: Seed, patch: dict[str, Any]) -> dict[str, Any]:
    token = await login(server, who)
    async with server.http(token) as client:
        r = await client.patch(f"/api/chat/widgets/{who.widget_id}", json=patch)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


async def get_widget(server: Server, who: Seed) -> dict[str, Any]:
    token = await login(server, who)
    async with server.http(token) as client:
        r = await client.get(f"/api/chat/widgets/{who.widget_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@attrs.define
class Watch:
    """What a page did that the host would notice: uncaught errors, dialogs, our console lines."""

    errors: list[str] = attrs.field(factory=list)
    dialogs: list[str] = attrs.field(factory=list)
    console: list[tuple[str, str]] = attrs.field(factory=list)

    def ours(self) -> list[tuple[str, str]]:
        return [(kind, text) for kind, text in self.console if "[Curbe Chat]" in text]


def run_page(
    url: str, scenario: Callable[[Any, Watch], Any], *, shot: str, init_script: str | None = None
) -> Callable[[Any], Any]:
    """A browser scenario: open ``url`` in a fresh context, watch it, screenshot it at the end."""

    def run(browser: Any) -> Any:
        context = browser.new_context(viewport={"width": 1100, "height": 760})
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        watch = Watch()
        page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
        page.on("console", lambda msg: watch.console.append((msg.type, msg.text)))

        def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        try:
            page.goto(url)
            return scenario(page, watch)
        finally:
            try:
                page.screenshot(path=str(artifact(shot + ".png")))
            finally:
                context.close()

    return run


def host_button_works(page: Any) -> None:
    """The host page's own button is on top where it is and does its job."""
    page.click("#host-button")  # Playwright refuses when another element would get the click
    page.wait_for_function("document.getElementById('host-button').textContent === 'clicked'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- booting from the snippet ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["head", "body"])
async def test_snippet_boots_heartbeats_and_opens(
    server: Server, host_site: HostSite, where: str
) -> None:
    [a] = await seed(server)
    await patch_widget(
        server,
        a,
        {
            "appearance": {"welcome": {"title": "Hola from InsureMax", "text": "Ask us anything"}},
            "channels": {
                "whatsapp": "+52 55 1234 5678",
                "call": "+52 55 1234 5678",
                "telegram": "@insuremax",
                "email": "help@insuremax.example",
            },
        },
    )
    host_site.pages["/"] = page_with(snippet(server.base_url, a), where=where)
    key = f"curbe:{a.widget_id}:visitorId"

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        page.wait_for_selector(LAUNCHER, state="visible")
        visitor_id = page.evaluate(f"localStorage.getItem({json.dumps(key)})")
        token = page.evaluate(f"localStorage.getItem('curbe:{a.widget_id}:visitorToken')")
        state = page.evaluate("CurbeChat.state()")
        globals_ = page.evaluate("Object.keys(window.CurbeChat).sort()")
        host_button_works(page)

        page.click(LAUNCHER)
        page.wait_for_selector(TITLE, state="visible")
        title = page.text_content(TITLE)
        links = page.eval_on_selector_all(
            f"{HOST} a.cc-link",
            "els => els.map(e => [e.className, e.getAttribute('href'), e.target, e.rel])",
        )
        page.click(f"{HOST} .cc-start")
        page.wait_for_selector(f"{HOST} form.cc-form", state="visible")
        send_disabled = page.is_disabled(f"{HOST} .cc-send")
        page.click(f"{HOST} .cc-minimize")
        page.wait_for_selector(LAUNCHER, state="visible")
        return {
            "visitorId": visitor_id,
            "token": token,
            "state": state,
            "globals": globals_,
            "title": title,
            "links": links,
            "sendDisabled": send_disabled,
            "errors": watch.errors,
        }

    # an agent is online, so Start chat leads to the pre-chat form (issue 4: else "We're offline")
    async with agent_online(server, await login(server, a)):
        out = await in_browser(run_page(host_site.url("/"), scenario, shot=f"widget_boot_{where}"))
    assert out["errors"] == []
    assert out["visitorId"] and out["visitorId"].startswith("vis")
    assert out["token"]
    assert out["state"]["visitorId"] == out["visitorId"]
    assert out["state"]["widgetStatus"] == "ACTIVE"
    assert out["state"]["screen"] == "launcher"
    assert out["globals"] == ["preview", "state", "version"]
    assert out["title"] == "Hola from InsureMax"
    hrefs = {
        cls.split("cc-link-")[1]: (href, target, rel) for cls, href, target, rel in out["links"]
    }
    assert hrefs == {
        "whatsapp": ("https://wa.me/525512345678", "_blank", "noopener noreferrer"),
        "call": ("tel:+525512345678", "_blank", "noopener noreferrer"),
        "telegram": ("https://t.me/insuremax", "_blank", "noopener noreferrer"),
        "email": ("mailto:help@insuremax.example", "_blank", "noopener noreferrer"),
    }
    assert out["sendDisabled"] is False  # issue 4: the pre-chat form sends (validated in place)
    # the installation ping reached the server from the host page
    widget = await get_widget(server, a)
    assert widget["status"] == "ACTIVE"
    assert widget["lastSeenUrl"] == host_site.url("/")


# Playwright does not report navigator.sendBeacon requests: a spy records them (and sends them).
BEACON_SPY = """(() => {
  const send = navigator.sendBeacon.bind(navigator);
  window.__beacons = [];
  navigator.sendBeacon = (url, data) => {
    data.text().then(text => window.__beacons.push({url, type: data.type, text}));
    return send(url, data);
  };
})()"""


@attrs.define
class Frames:
    """The page's widget socket and every JSON frame the page wrote on it (Playwright's events)."""

    sockets: list[Any] = attrs.field(factory=list)
    sent: list[dict[str, Any]] = attrs.field(factory=list)

    @classmethod
    def watch(cls, page: Any) -> Frames:
        frames = cls()

        def opened(ws: Any) -> None:
            frames.sockets.append(ws)
            ws.on("framesent", lambda payload: frames.sent.append(json.loads(payload)))

        page.on("websocket", opened)
        return frames

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.sent if f["type"] == kind]


def is_frame(kind: str, marker: str = "") -> Callable[[Any], bool]:
    return lambda payload: json.loads(payload).get("type") == kind and marker in payload


async def test_heartbeat_follows_navigation_and_reuses_the_visitor(
    server: Server, host_site: HostSite
) -> None:
    [a] = await seed(server)
    host_site.pages["/"] = host_site.pages["/pricing"] = page_with(snippet(server.base_url, a))

    def is_heartbeat(marker: str) -> Callable[[Any], bool]:
        return lambda r: (
            r.method == "POST" and r.url.endswith("/heartbeat") and marker in (r.post_data or "")
        )

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        frames = Frames.watch(page)
        page.reload()  # watched from the start: the socket is the reloaded page's
        page.wait_for_selector(LAUNCHER, state="visible")
        first = page.evaluate("CurbeChat.state().visitorId")
        page.wait_for_function("CurbeChat.state().socket === 'ready'")
        [ws] = frames.sockets
        # the socket is open: a navigation's heartbeat goes on it, not over HTTP
        with ws.expect_event("framesent", is_frame("heartbeat", "/pricing")):
            page.evaluate("history.pushState({}, '', '/pricing')")
        with ws.expect_event("framesent", is_frame("heartbeat", "#quote")):
            page.evaluate("location.hash = 'quote'")
        pushed, hashed = frames.of("heartbeat")
        with page.expect_request(is_heartbeat("/pricing")) as reloaded:
            page.reload()  # a new page: its first heartbeat is HTTP, with the stored token
        page.wait_for_selector(LAUNCHER, state="visible")
        after_reload = page.evaluate("CurbeChat.state().visitorId")
        page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide'))")
        page.wait_for_function("window.__beacons.length > 0")
        beacon = page.evaluate("window.__beacons[0]")
        return {
            "first": first,
            "afterReload": after_reload,
            "body": pushed,
            "auth": reloaded.value.headers.get("authorization", ""),
            "reloadBody": json.loads(reloaded.value.post_data),
            "hash": hashed["currentUrl"],
            "beacon": beacon,
            "errors": watch.errors,
        }

    out = await in_browser(
        run_page(host_site.url("/"), scenario, shot="widget_navigation", init_script=BEACON_SPY)
    )
    assert out["errors"] == []
    body = out["body"]
    assert body["currentUrl"] == host_site.url("/pricing")
    assert body["currentDomain"] == "127.0.0.1"
    assert body["pageTitle"] == "Acme Insurance"
    assert body["timestamp"].endswith("Z")
    assert body["timeZone"] and body["language"]
    assert "visitorToken" not in body and "tenantId" not in body  # the socket proved who it is
    assert out["auth"].startswith("Bearer ")
    assert out["reloadBody"]["visitorId"] == out["first"]
    assert out["reloadBody"]["tenantId"] == a.tenant_id
    assert out["hash"] == host_site.url("/pricing#quote")
    assert out["afterReload"] == out["first"]  # the stored token keeps the visitor
    beacon = out["beacon"]
    assert beacon["url"] == f"{server.base_url}/api/chat/widgets/{a.widget_id}/heartbeat"
    assert beacon["type"].startswith("text/plain")  # a simple request: no CORS preflight
    last = json.loads(beacon["text"])
    assert last["visitorId"] == out["first"]
    assert last["currentUrl"] == host_site.url("/pricing#quote")
    assert last["visitorToken"]  # a beacon cannot carry an Authorization header


async def test_an_open_widget_makes_no_http_request_in_a_minute(
    server: Server, host_site: HostSite
) -> None:
    """Issue 13: while its socket is open a widget costs no HTTP request; its heartbeats (every
    15 s) travel on the socket, and pings only go when nothing else did. The page's clock is
    Playwright's, moved on 15 s at a time; each step waits for the server's answer."""
    [a] = await seed(server)
    host_site.pages["/"] = page_with(snippet(server.base_url, a))

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        frames = Frames.watch(page)
        requests: list[str] = []
        page.clock.install()
        page.goto(host_site.url("/"))
        page.wait_for_selector(LAUNCHER, state="visible")
        page.wait_for_function("CurbeChat.state().socket === 'ready'")
        [ws] = frames.sockets
        page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
        for _ in range(4):  # a minute, 15 s at a time, each step until the server answered
            with ws.expect_event("framereceived", is_frame("heartbeat")):
                page.clock.run_for(15_000)
        return {
            "requests": requests,
            "types": [f["type"] for f in frames.sent],
            "socket": page.evaluate("CurbeChat.state().socket"),
            "errors": watch.errors,
        }

    out = await in_browser(run_page("about:blank", scenario, shot="widget_minute"))
    assert out["errors"] == []
    assert out["requests"] == []  # a minute with the socket open: not one HTTP request
    assert out["types"].count("heartbeat") == 4
    assert "ping" not in out["types"]  # the heartbeats kept the socket busy enough
    assert out["socket"] == "ready"
    async with server.http(await login(server, a)) as client:
        live = (await client.get("/api/chat/visitors/live")).json()
    assert [v["currentUrl"] for v in live["visitors"]] == [host_site.url("/")]


# --- where the widget must not show -----------------------------------------------------------


async def test_outside_targeting_renders_nothing(server: Server, host_site: HostSite) -> None:
    [a] = await seed(server, domains=["other.example"])
    host_site.pages["/"] = page_with(snippet(server.base_url, a), where="head")

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        page.wait_for_function("CurbeChat.state().error === 'domain_not_allowed'")
        host_button_works(page)
        return {
            "hosts": page.locator(HOST).count(),
            "state": page.evaluate("CurbeChat.state()"),
            "errors": watch.errors,
            "ours": watch.ours(),
        }

    out = await in_browser(run_page(host_site.url("/"), scenario, shot="widget_targeting"))
    assert out["hosts"] == 0
    assert out["errors"] == []
    assert out["state"]["mounted"] is False
    assert out["state"]["widgetStatus"] == "MISCONFIGURED"
    assert len(out["ours"]) == 1, out["ours"]
    kind, text = out["ours"][0]
    assert kind == "warning" and "127.0.0.1" in text and "Targeting" in text
    widget = await get_widget(server, a)
    assert widget["status"] == "MISCONFIGURED"


async def test_unknown_widget_renders_nothing(server: Server, host_site: HostSite) -> None:
    [a] = await seed(server)
    ghost = attrs.evolve(a, widget_id="wgt_doesnotexist")
    host_site.pages["/"] = page_with(snippet(server.base_url, ghost))

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        page.wait_for_function("CurbeChat.state().error === 'not_found'")
        host_button_works(page)
        return {"hosts": page.locator(HOST).count(), "errors": watch.errors}

    out = await in_browser(run_page(host_site.url("/"), scenario, shot="widget_unknown"))
    assert out == {"hosts": 0, "errors": []}


async def test_unreachable_server_leaves_the_page_alone(
    server: Server, host_site: HostSite
) -> None:
    [a] = await seed(server)
    dead = f"http://127.0.0.1:{free_port()}"
    host_site.pages["/dead"] = page_with(snippet(dead, a), where="head")
    host_site.pages["/api-down"] = page_with(snippet(server.base_url, a))

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        # 1. the snippet itself points at a closed port: the script never arrives
        page.wait_for_load_state("load")
        host_button_works(page)
        dead_hosts = page.locator(HOST).count()
        # 2. widget.js loads but the API is unreachable: nothing renders, no error escapes
        page.route("**/api/chat/**", lambda route: route.abort("connectionrefused"))
        page.goto(host_site.url("/api-down"))
        page.wait_for_function("window.CurbeChat && CurbeChat.state().error === 'network'")
        down_hosts = page.locator(HOST).count()
        host_button_works(page)
        # 3. the network comes back: the next heartbeat (a navigation here) renders the widget
        page.unroute("**/api/chat/**")
        page.evaluate("location.hash = 'again'")
        page.wait_for_selector(LAUNCHER, state="visible")
        return {
            "dead": dead_hosts,
            "down": down_hosts,
            "errors": watch.errors,
            "ours": watch.ours(),
        }

    out = await in_browser(run_page(host_site.url("/dead"), scenario, shot="widget_unreachable"))
    assert out == {"dead": 0, "down": 0, "errors": [], "ours": []}


# --- a host page cannot break it ----------------------------------------------------------------

HOSTILE_CSS = (
    "<style>* { all: unset !important; } div { display: none !important; }"
    " button { position: static !important; }</style>"
)


async def test_hostile_host_css_cannot_hide_or_restyle_it(
    server: Server, host_site: HostSite
) -> None:
    [a] = await seed(server)
    await patch_widget(server, a, {"appearance": {"colorTheme": "#aa0000", "position": "left"}})
    host_site.pages["/"] = page_with(HOSTILE_CSS + snippet(server.base_url, a), where="head")

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        launcher = page.wait_for_selector(LAUNCHER, state="visible")
        bg = launcher.evaluate("e => getComputedStyle(e).backgroundColor")
        box = launcher.bounding_box()
        host_box = page.locator(HOST).bounding_box()
        host_button_works(page)
        launcher.click()
        page.wait_for_selector(TITLE, state="visible")
        head_bg = page.eval_on_selector(
            f"{HOST} .cc-head", "e => getComputedStyle(e).backgroundColor"
        )
        head_fg = page.eval_on_selector(f"{HOST} .cc-title", "e => getComputedStyle(e).color")
        return {
            "bg": bg,
            "box": box,
            "hostBox": host_box,
            "headBg": head_bg,
            "headFg": head_fg,
            "errors": watch.errors,
        }

    out = await in_browser(run_page(host_site.url("/"), scenario, shot="widget_hostile_css"))
    assert out["errors"] == []
    assert out["bg"] == "rgb(170, 0, 0)"
    assert out["headBg"] == "rgb(170, 0, 0)"
    assert out["headFg"] == "rgb(255, 255, 255)"  # white on a dark theme
    box = out["box"]
    assert box["width"] >= 40 and box["height"] >= 40
    assert box["x"] < 100  # position: left
    assert box["y"] + box["height"] > 760 - 60  # bottom corner
    host_box = out["hostBox"]
    assert host_box["width"] < 150 and host_box["height"] < 150  # covers only the launcher


# --- text from the config is text ---------------------------------------------------------------


async def test_config_text_is_never_html(server: Server, host_site: HostSite) -> None:
    [a] = await seed(server)
    await patch_widget(
        server,
        a,
        {
            "appearance": {
                "welcome": {"title": XSS, "text": XSS + " <b>bold</b>"},
                "branding": {"enabled": True, "text": XSS},
            }
        },
    )
    host_site.pages["/"] = page_with(snippet(server.base_url, a))

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        page.click(LAUNCHER)
        page.wait_for_selector(TITLE, state="visible")
        return {
            "title": page.text_content(TITLE),
            "text": page.text_content(f"{HOST} .cc-sub"),
            "brand": page.text_content(f"{HOST} .cc-brand"),
            "imgs": page.locator(f"{HOST} img").count(),
            "bolds": page.locator(f"{HOST} b").count(),
            "dialogs": watch.dialogs,
            "errors": watch.errors,
        }

    out = await in_browser(run_page(host_site.url("/"), scenario, shot="widget_xss"))
    assert out == {
        "title": XSS,
        "text": XSS + " <b>bold</b>",
        "brand": XSS,
        "imgs": 0,
        "bolds": 0,
        "dialogs": [],
        "errors": [],
    }


# --- the preview API (Settings page) ------------------------------------------------------------

PREVIEW_CONFIG: dict[str, Any] = {
    "name": "InsureMax",
    "appearance": {
        "colorTheme": "#2563eb",
        "minimized": "bubble",
        "position": "right",
        "showAgentAvatar": True,
        "branding": {"enabled": True, "text": "Powered by Curbe Chat"},
        "welcome": {"title": "Hi there", "text": "We answer in minutes"},
    },
    "channels": {"liveChat": True, "whatsapp": "+52 55 1234 5678", "sms": None},
    "locale": "en",
}


async def test_preview_renders_updates_and_translates(server: Server, host_site: HostSite) -> None:
    host_site.pages["/settings"] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Settings</title>"
        f'<script src="{server.base_url}/widget.js"></script></head><body>'
        "<div id='box' style='width:480px;height:640px;border:1px solid #ccc'></div>"
        "<div id='box-es' style='width:480px;height:640px'></div></body></html>"
    )
    cfg = json.dumps(PREVIEW_CONFIG)

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.wait_for_function("window.CurbeChat && CurbeChat.version")
        booted = page.evaluate("CurbeChat.state()")
        page.evaluate(f"window.h = CurbeChat.preview(document.getElementById('box'), {cfg})")
        launcher = page.wait_for_selector(f"#box {LAUNCHER}", state="visible")
        before = launcher.evaluate("e => getComputedStyle(e).backgroundColor")
        inside = page.evaluate(
            """() => {
              const b = document.getElementById('box').getBoundingClientRect();
              const l = document.querySelector('#box curbe-chat-widget').getBoundingClientRect();
              return l.left >= b.left && l.right <= b.right && l.top >= b.top && l.bottom <= b.bottom;
            }"""
        )
        page.evaluate(
            f"h.update(Object.assign({cfg}, {{appearance: Object.assign({cfg}.appearance,"
            " {colorTheme: '#0a7d32'})}))"
        )
        page.wait_for_function(
            "getComputedStyle(document.querySelector('#box curbe-chat-widget').shadowRoot"
            ".querySelector('.cc-launch')).backgroundColor === 'rgb(10, 125, 50)'"
        )
        page.evaluate("h.show('welcome')")
        page.wait_for_selector(f"#box {TITLE}", state="visible")
        title = page.text_content(f"#box {TITLE}")
        start_en = page.text_content(f"#box {HOST} .cc-start")
        # an unsaved edit re-renders at once and keeps the screen
        page.evaluate(
            f"h.update(Object.assign({cfg}, {{appearance: Object.assign({cfg}.appearance,"
            " {welcome: {title: 'Edited title', text: ''}})}))"
        )
        edited = page.text_content(f"#box {TITLE}")
        screen = page.evaluate("h.state().screen")
        page.evaluate("h.show('prechat')")
        page.wait_for_selector(f"#box {HOST} form.cc-form", state="visible")
        # Spanish
        page.evaluate(
            f"window.es = CurbeChat.preview(document.getElementById('box-es'),"
            f" Object.assign({cfg}, {{locale: 'es'}}), {{screen: 'welcome'}})"
        )
        page.wait_for_selector(f"#box-es {HOST} .cc-start", state="visible")
        start_es = page.text_content(f"#box-es {HOST} .cc-start")
        reach_es = page.text_content(f"#box-es {HOST} .cc-muted")
        page.evaluate("es.show('launcher')")
        label_es = page.get_attribute(f"#box-es {LAUNCHER}", "aria-label")
        page.evaluate("h.destroy()")
        left = page.locator(f"#box {HOST}").count()
        return {
            "booted": booted,
            "before": before,
            "inside": inside,
            "title": title,
            "startEn": start_en,
            "edited": edited,
            "screen": screen,
            "startEs": start_es,
            "reachEs": reach_es,
            "labelEs": label_es,
            "left": left,
            "api": [u for u in requests if "/api/" in u],
            "errors": watch.errors,
        }

    out = await in_browser(run_page(host_site.url("/settings"), scenario, shot="widget_preview"))
    assert out["errors"] == []
    assert out["booted"]["mounted"] is False  # no data-widget-id: preview only, no heartbeat
    assert out["api"] == []
    assert out["before"] == "rgb(37, 99, 235)"
    assert out["inside"] is True
    assert out["title"] == "Hi there"
    assert out["startEn"] == "Start chat"
    assert out["edited"] == "Edited title"
    assert out["screen"] == "welcome"
    assert out["startEs"] == "Iniciar chat"
    assert out["reachEs"] == "O contáctanos por"
    assert out["labelEs"] == "Abrir chat"
    assert out["left"] == 0


async def test_preview_escapes_text_and_bar_launcher(server: Server, host_site: HostSite) -> None:
    host_site.pages["/settings"] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Settings</title>"
        f'<script src="{server.base_url}/widget.js"></script></head><body>'
        "<div id='box' style='width:480px;height:640px'></div></body></html>"
    )
    cfg = {
        "name": XSS,
        "appearance": {
            "minimized": "bar",
            "colorTheme": "#fde047",  # light yellow: dark text
            "welcome": {"title": XSS, "text": XSS},
            "branding": {"enabled": False, "text": "hidden"},
        },
        "channels": {"liveChat": False, "messenger": "javascript:alert(1)", "email": XSS},
        "locale": "es",
    }

    def scenario(page: Any, watch: Watch) -> dict[str, Any]:
        page.wait_for_function("window.CurbeChat && CurbeChat.version")
        page.evaluate(
            f"window.h = CurbeChat.preview(document.getElementById('box'), {json.dumps(cfg)})"
        )
        bar = page.wait_for_selector(f"#box {HOST} .cc-bar", state="visible")
        bar_text = bar.text_content()
        fg = bar.evaluate("e => getComputedStyle(e).color")
        page.evaluate("h.show('welcome')")
        page.wait_for_selector(f"#box {TITLE}", state="visible")
        return {
            "bar": bar_text,
            "fg": fg,
            "title": page.text_content(f"#box {TITLE}"),
            "links": page.locator(f"#box {HOST} a").count(),
            "start": page.locator(f"#box {HOST} .cc-start").count(),
            "brand": page.locator(f"#box {HOST} .cc-brand").count(),
            "imgs": page.locator(f"#box {HOST} img").count(),
            "dialogs": watch.dialogs,
            "errors": watch.errors,
        }

    out = await in_browser(
        run_page(host_site.url("/settings"), scenario, shot="widget_preview_bar")
    )
    assert out == {
        "bar": "Chatea con nosotros",
        "fg": "rgb(17, 24, 39)",
        "title": XSS,
        "links": 0,  # neither a javascript: link nor a malformed email becomes a link
        "start": 0,  # live chat off
        "brand": 0,  # branding off
        "imgs": 0,
        "dialogs": [],
        "errors": [],
    }


# --- size ----------------------------------------------------------------------------------------


def test_widget_js_is_small() -> None:
    """What browsers download is the minified loader (its comments gone, its local names
    shortened): at most 20 KB gzipped, whatever the commented source weighs."""
    from web.routes.visitor import _widget_js

    served = _widget_js()
    assert len(served.gzipped) <= 20_000, f"widget.js is {len(served.gzipped)} bytes gzipped"
    assert len(served.plain) < 0.6 * len(WIDGET_JS.read_bytes())


def test_widget_js_is_ascii() -> None:
    """A host page in any charset reads the same copy: non-ASCII text is written as \\u escapes."""
    WIDGET_JS.read_bytes().decode("ascii")
