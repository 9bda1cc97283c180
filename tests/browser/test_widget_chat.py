"""The whole visitor experience of ``widget/widget.js`` in a real Chromium (issue 4).

Each test runs a real server on a fresh PostgreSQL database, serves a customer's page on a second
origin (:class:`HostSite`) with the embed code copied from ``GET /api/chat/widgets``, and drives
the widget as a visitor would while an agent acts over the HTTP API. The browser runs in a worker
thread (:func:`in_browser`) while the Trio loop keeps serving, so the scenario calls the API with
a plain synchronous ``httpx.Client``. Playwright's CSS selectors pierce the widget's open shadow
root. Every test fails on an uncaught page error, and saves a screenshot per state under
``artifacts/browser/chat_*.png``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import httpx
import pytest

from tests.browser.support import HostSite, agent_online, artifact, in_browser, page_with
from tests.support import Seed, Server, add_agent, login, parse_utc, seed

pytestmark = pytest.mark.slow

HOST = "curbe-chat-widget"
WAIT_MS = 10_000
XSS = "<img src=x onerror=alert(1)>"
AGENT = "Javier Lazo"  # the first agent that tests.support.seed creates
MEXICO = "America/Mexico_City"
SOCKET = re.compile(r"/api/chat/widgets/[^/]+/ws")


# --- the world: a seeded tenant, its widget on the host site, an agent with a token -------------


@attrs.define
class World:
    server: Server
    site: HostSite
    who: Seed
    token: str

    @property
    def url(self) -> str:
        return self.site.url("/")

    def agent(self) -> Agent:
        """The agent's API client, for the browser thread."""
        return Agent(
            httpx.Client(
                base_url=self.server.base_url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
        )


async def world(
    server: Server,
    site: HostSite,
    *,
    patch: dict[str, Any] | None = None,
    locale: str | None = None,
    head: str = "",
) -> World:
    """Seed a tenant, optionally PATCH its widget, and paste its embed code into the host page."""
    [who] = await seed(server, domains=["127.0.0.1"])
    token = await login(server, who)
    async with server.http(token) as client:
        if patch:
            r = await client.patch(f"/api/chat/widgets/{who.widget_id}", json=patch)
            assert r.status_code == 200, r.text
        r = await client.get("/api/chat/widgets")
        assert r.status_code == 200, r.text
    [widget] = [w for w in r.json()["widgets"] if w["id"] == who.widget_id]
    snippet = widget["embedCode"]
    if locale:
        snippet = snippet.replace("<script ", f'<script data-locale="{locale}" ', 1)
    site.pages["/"] = page_with(head + snippet)
    return World(server, site, who, token)


@attrs.define
class Agent:
    """What an agent does in the inbox, over the HTTP API (synchronous: browser thread)."""

    http: httpx.Client

    def _ok(self, r: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert r.status_code == status, r.text
        return r.json()  # type: ignore[no-any-return]

    def accept(self, cid: str) -> dict[str, Any]:
        return self._ok(self.http.post(f"/api/chat/conversations/{cid}/accept"))

    def say(self, cid: str, text: str) -> dict[str, Any]:
        body = {"text": text, "clientMessageId": f"agent-{uuid.uuid4()}"}
        return self._ok(self.http.post(f"/api/chat/conversations/{cid}/messages", json=body), 201)

    def read(self, cid: str) -> dict[str, Any]:
        return self._ok(self.http.post(f"/api/chat/conversations/{cid}/read"))

    def solve(self, cid: str) -> dict[str, Any]:
        return self._ok(self.http.post(f"/api/chat/conversations/{cid}/solve"))

    def conversation(self, cid: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/api/chat/conversations/{cid}"))

    def conversations(self) -> list[dict[str, Any]]:
        return self._ok(self.http.get("/api/chat/conversations?view=all"))["conversations"]  # type: ignore[no-any-return]


# --- the visitor's browser ------------------------------------------------------------------------


@attrs.define
class Visit:
    """One visitor's tab: the page, what it threw, the dialogs it opened."""

    page: Any
    errors: list[str] = attrs.field(factory=list)
    dialogs: list[str] = attrs.field(factory=list)

    def w(self, selector: str) -> Any:
        """A locator inside the widget's shadow root."""
        return self.page.locator(f"{HOST} {selector}")

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("CurbeChat.state()")  # type: ignore[no-any-return]

    def wait(self, condition: str) -> None:
        """Wait until ``condition`` (JS, with ``s`` = CurbeChat.state()) holds."""
        self.page.wait_for_function(
            f"(() => {{ const s = window.CurbeChat && CurbeChat.state(); return !!s && ({condition}); }})()"
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(artifact(f"chat_{name}.png")))

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(
            f"{HOST} {selector}", "els => els.map(e => e.textContent)"
        )  # type: ignore[no-any-return]


def visiting(
    url: str,
    scenario: Callable[[Visit], Any],
    *,
    before: Callable[[Any], None] | None = None,
    **context: Any,
) -> Callable[[Any], Any]:
    """A browser scenario: a fresh context (``context`` options: time zone...) on ``url``."""

    def run(browser: Any) -> Any:
        ctx = browser.new_context(viewport={"width": 1100, "height": 800}, **context)
        page = ctx.new_page()
        page.set_default_timeout(WAIT_MS)
        visit = Visit(page)
        page.on("pageerror", lambda exc: visit.errors.append(str(exc)))

        def on_dialog(dialog: Any) -> None:
            visit.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        try:
            if before:
                before(page)
            page.goto(url)
            result = scenario(visit)
            assert visit.errors == [], visit.errors
            assert visit.dialogs == [], visit.dialogs
            return result
        finally:
            ctx.close()

    return run


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def start_chat(
    v: Visit,
    *,
    name: str = "Carlos Lopez",
    email: str = "carlos@example.com",
    message: str = "hola, necesito una cotizacion",
    searching: str = "Searching for available agents\u2026",
    from_launcher: bool = True,
) -> str:
    """Launcher -> welcome -> pre-chat form -> WAITING. Returns the conversation id."""
    if from_launcher:
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
    v.w("input.cc-name").fill(name)
    v.w("input.cc-email").fill(email)
    v.w("textarea.cc-message").fill(message)
    v.w(".cc-send").click()
    expect(v.w(".cc-status-text")).to_have_text(searching)
    v.wait("s.screen === 'waiting' && s.status === 'WAITING' && s.socket === 'ready'")
    return v.state()["conversationId"]  # type: ignore[no-any-return]


def open_chat(v: Visit, agent: Agent, **kwargs: Any) -> str:
    """Start a chat and have the agent accept it; returns the conversation id once OPEN."""
    cid = start_chat(v, **kwargs)
    agent.accept(cid)
    expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible()
    return cid


def send(v: Visit, text: str) -> None:
    v.w("textarea.cc-text").fill(text)
    v.w("textarea.cc-text").press("Enter")


def thread(v: Visit) -> list[tuple[str, str, str | None]]:
    """The messages shown, in DOM order: (sender, text, data-seq)."""
    rows = v.page.eval_on_selector_all(
        f"{HOST} .cc-msg",
        """els => els.map(e => [e.classList.contains('cc-msg-agent') ? 'agent' : 'visitor',
                              e.querySelector('.cc-bub').textContent, e.getAttribute('data-seq')])""",
    )
    return [tuple(row) for row in rows]


def stored(conversation: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m["senderType"], m["text"], str(m["seq"])) for m in conversation["messages"]]


# --- start chat -> WAITING -------------------------------------------------------------------------


async def test_start_chat_shows_waiting_and_creates_a_waiting_conversation(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
        # validated in place: nothing is sent while a field is wrong
        v.w("input.cc-email").fill("not-an-email")
        v.w(".cc-send").click()
        errors = v.texts(".cc-err")
        invalid = v.page.eval_on_selector_all(
            f"{HOST} .cc-input[aria-invalid=true]", "els => els.map(e => e.name)"
        )
        v.shot("prechat_errors")
        assert v.state()["conversationId"] is None
        cid = start_chat(v, from_launcher=False)
        expect(v.w(".cc-spin")).to_be_visible()
        expect(v.page.get_by_text("Searching for available agents")).to_be_visible()
        v.shot("waiting")
        return {
            "errors": errors,
            "invalid": invalid,
            "state": v.state(),
            "thread": thread(v),
            "server": agent.conversation(cid),
            "inputEnabled": v.w("textarea.cc-text").is_enabled(),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["errors"] == [
        "Please fill in this field.",
        "Enter a valid email address, like name@example.com.",
        "Please fill in this field.",
    ]
    assert out["invalid"] == ["name", "email", "message"]
    conv = out["server"]
    assert conv["status"] == "WAITING" and conv["kind"] == "live_chat"
    assert conv["id"] == out["state"]["conversationId"]
    assert conv["contact"]["name"] == "Carlos Lopez"
    assert conv["contact"]["email"] == "carlos@example.com"
    assert [m["text"] for m in conv["messages"]] == ["hola, necesito una cotizacion"]
    assert out["thread"] == [("visitor", "hola, necesito una cotizacion", "2")]
    assert out["state"]["screen"] == "waiting" and out["state"]["status"] == "WAITING"
    assert out["inputEnabled"] is True  # the visitor may write while WAITING


# --- accept -> OPEN within 2 s -----------------------------------------------------------------------


async def test_agent_accept_connects_the_visitor_within_two_seconds(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = start_chat(v)
        agent.accept(cid)
        # the acceptance criterion: no spinner left, "Connected with {name}" within 2 s
        expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible(timeout=2000)
        expect(v.w(".cc-spin")).to_have_count(0, timeout=2000)
        expect(v.w(".cc-sys")).to_have_text(f"{AGENT} joined the chat")
        expect(v.w(".cc-head .cc-dot")).to_be_visible()
        v.shot("open")
        return {
            "title": v.w(".cc-title").text_content(),
            "avatar": v.w(".cc-av").text_content(),
            "imgs": v.w("img").count(),
            "state": v.state(),
            "inputEnabled": v.w("textarea.cc-text").is_enabled(),
            "searching": v.page.get_by_text("Searching for available agents").count(),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["title"] == AGENT
    assert out["avatar"] == "JL"  # no avatarUrl: initials
    assert out["imgs"] == 0
    assert out["state"]["screen"] == "open" and out["state"]["status"] == "OPEN"
    assert out["state"]["assignee"] == AGENT
    assert out["inputEnabled"] is True
    assert out["searching"] == 0


# --- messages both ways, server times in the browser's zone ------------------------------------------


def wall_clock(created_at: str, zone: str) -> str:
    """``1:20 PM``: what en-US Intl shows for that instant in ``zone`` (hour: numeric, 2-digit min)."""
    local = parse_utc(created_at).astimezone(ZoneInfo(zone))
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


async def test_messages_flow_both_ways_with_server_times_in_the_browser_zone(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        send(v, "I drive a 2019 Corolla")
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2)
        agent.say(cid, "Great, a quote is on its way")
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["Great, a quote is on its way"])
        send(v, "Thanks!")
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(3)
        agent.say(cid, "You're welcome")
        expect(v.w(".cc-msg")).to_have_count(5)
        v.wait("s.sending === 0 && s.messages === 5")
        v.shot("messages")
        times = v.page.eval_on_selector_all(
            f"{HOST} .cc-msg",
            "els => els.map(e => [e.getAttribute('data-seq'), e.querySelector('time').getAttribute('datetime'),"
            " e.querySelector('time').textContent])",
        )
        return {
            "thread": thread(v),
            "times": times,
            "server": agent.conversation(cid),
            "zone": v.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"),
            "who": v.texts(".cc-who"),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario, timezone_id=MEXICO))
    assert out["zone"] == MEXICO
    conv = out["server"]
    assert out["thread"] == stored(conv)  # every message once, in seq order
    assert [t for _, t, _ in out["thread"]] == [
        "hola, necesito una cotizacion",
        "I drive a 2019 Corolla",
        "Great, a quote is on its way",
        "Thanks!",
        "You're welcome",
    ]
    assert out["who"] == [AGENT, AGENT]
    by_seq = {str(m["seq"]): m for m in conv["messages"]}
    today = dt.datetime.now(ZoneInfo(MEXICO)).date()
    for seq, datetime_attr, shown in out["times"]:
        created = by_seq[seq]["createdAt"]
        assert datetime_attr == created  # the server's createdAt, never a client clock
        shown = re.sub(r"\s", " ", shown)  # ICU puts a narrow no-break space before AM/PM
        expected = wall_clock(created, MEXICO)
        assert expected in shown, (shown, expected, created)
        assert wall_clock(created, "UTC") not in shown  # not the UTC hour (Mexico is UTC-6)
        if parse_utc(created).astimezone(ZoneInfo(MEXICO)).date() == today:
            assert shown == expected  # today: the time alone


async def test_messages_both_ways_every_message_once(server: Server, host_site: HostSite) -> None:
    """The same exchange, checked strictly: DOM == stored, in order, nothing pending."""
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        for n in range(3):
            send(v, f"visitor {n}")
            expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2 + n)
            agent.say(cid, f"agent {n}")
            expect(v.w(".cc-msg-agent")).to_have_count(1 + n)
        v.wait("s.sending === 0 && s.failed === 0 && s.messages === 7")
        return {"thread": thread(v), "server": agent.conversation(cid)}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["thread"] == stored(out["server"])
    assert [t for _, t, _ in out["thread"]] == [
        "hola, necesito una cotizacion",
        "visitor 0",
        "agent 0",
        "visitor 1",
        "agent 1",
        "visitor 2",
        "agent 2",
    ]


# --- reload mid-chat ---------------------------------------------------------------------------------


async def test_reload_mid_chat_keeps_the_conversation_and_reopens_the_panel(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        send(v, "before the reload")
        agent.say(cid, "got it")
        expect(v.w(".cc-msg")).to_have_count(3)
        before = thread(v)
        v.page.reload()
        expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible()  # panel reopened
        v.wait("s.socket === 'ready'")
        after = thread(v)
        joined = v.texts(".cc-sys")
        state = v.state()
        # the socket resumed: a message after the reload arrives live
        agent.say(cid, "still here")
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["got it", "still here"])
        v.shot("reload")
        # minimised before a reload: it comes back minimised, same conversation
        v.w(".cc-minimize").click()
        v.page.reload()
        v.wait("s.mounted && s.socket === 'ready'")
        minimised = v.state()
        # minimised, an agent message shows as a badge on the launcher; opening clears it
        agent.say(cid, "are you still there?")
        expect(v.w(".cc-launch .cc-badge")).to_have_text("1")
        v.shot("unread_badge")
        v.w(".cc-launch").click()
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(
            ["got it", "still here", "are you still there?"]
        )
        badges = v.w(".cc-badge").count()
        return {
            "badges": badges,
            "cid": cid,
            "before": before,
            "after": after,
            "joined": joined,
            "state": state,
            "minimised": minimised,
            "server": agent.conversation(cid),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["after"] == out["before"]
    assert out["joined"] == [f"{AGENT} joined the chat"]
    assert out["state"]["conversationId"] == out["cid"]
    assert out["state"]["screen"] == "open" and out["state"]["status"] == "OPEN"
    assert out["minimised"]["screen"] == "launcher"
    assert out["minimised"]["conversationId"] == out["cid"]
    assert out["minimised"]["messages"] == 4
    assert len(out["server"]["messages"]) == 5
    assert out["badges"] == 0


async def test_a_long_chat_rehydrates_at_its_latest_and_reads_back_on_demand(
    server: Server, host_site: HostSite
) -> None:
    # before: a reload loaded every message the chat ever had
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent, message="m0")
        for n in range(1, 205):
            agent.say(cid, f"m{n}")
        expect(v.w(".cc-msg")).to_have_count(205)  # live, as they came
        v.page.reload()
        v.wait("s.socket === 'ready'")
        expect(v.w(".cc-msg")).to_have_count(200)  # the latest 200 after a reload
        expect(v.w(".cc-msg .cc-bub").first).to_have_text("m5")
        earlier = v.w(".cc-earlier")
        expect(earlier).to_have_text("Load earlier messages")
        earlier.click()
        expect(v.w(".cc-msg")).to_have_count(205)
        expect(v.w(".cc-msg .cc-bub").first).to_have_text("m0")
        expect(v.w(".cc-earlier")).to_have_count(0)
        agent.say(cid, "still live")
        expect(v.w(".cc-msg .cc-bub").last).to_have_text("still live")
        v.shot("earlier")
        return {"texts": [t for _, t, _ in thread(v)]}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["texts"] == [f"m{n}" for n in range(205)] + ["still live"]


# --- network cut ---------------------------------------------------------------------------------------


async def test_network_cut_and_restore_misses_nothing_and_doubles_nothing(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)
    cut = {"on": False}
    page_sides: list[Any] = []
    refused: list[int] = []

    def route(ws: Any) -> None:
        if cut["on"]:
            refused.append(1)
            ws.close()  # refuse the reconnect while the network is "down"
            return
        ws.connect_to_server()
        page_sides.append(ws)

    def before(page: Any) -> None:
        page.route_web_socket(SOCKET, route)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        agent.say(cid, "before the cut")
        expect(v.w(".cc-msg-agent")).to_have_count(1)
        # cut: close the page's side of the socket and refuse every reconnect
        cut["on"] = True
        for ws in page_sides:
            ws.close()
        v.wait("s.socket !== 'ready'")
        expect(v.page.get_by_text("Reconnecting\u2026")).to_be_visible()
        for n in (1, 2, 3):
            agent.say(cid, f"during the cut {n}")
        send(v, "typed during the cut")
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2)  # stored over REST
        v.wait("s.retries >= 2 && s.socket !== 'ready'")  # a reconnect was tried and refused
        missing = v.w(".cc-msg-agent").count()  # nothing arrived while cut
        v.shot("network_cut")
        # restore: allow reconnects, and tell the page the network is back
        cut["on"] = False
        v.page.evaluate("window.dispatchEvent(new Event('online'))")
        v.wait("s.socket === 'ready'")
        expect(v.w(".cc-msg-agent")).to_have_count(4)
        agent.say(cid, "after the cut")
        expect(v.w(".cc-msg-agent")).to_have_count(5)
        v.wait("s.sending === 0 && s.failed === 0")
        v.shot("network_restored")
        return {
            "missing": missing,
            "refused": len(refused),
            "thread": thread(v),
            "server": agent.conversation(cid),
            "state": v.state(),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario, before=before))
    assert out["missing"] == 1  # only "before the cut": the cut was real
    assert out["refused"] >= 1  # the widget tried to reconnect during the cut
    texts = [t for _, t, _ in out["thread"]]
    assert texts == [
        "hola, necesito una cotizacion",
        "before the cut",
        "during the cut 1",
        "during the cut 2",
        "during the cut 3",
        "typed during the cut",
        "after the cut",
    ]
    assert out["thread"] == stored(out["server"])  # every message exactly once, in seq order
    assert [m["text"] for m in out["server"]["messages"]].count("typed during the cut") == 1
    assert out["state"]["lastSeq"] == out["server"]["lastSeq"]


async def test_failed_message_shows_retry_and_is_stored_once(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)
    cut = {"on": False}
    page_sides: list[Any] = []

    def route(ws: Any) -> None:
        if cut["on"]:
            ws.close()
            return
        ws.connect_to_server()
        page_sides.append(ws)

    def before(page: Any) -> None:
        page.route_web_socket(SOCKET, route)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        # the socket and the REST fallback are both down
        cut["on"] = True
        v.page.route("**/conversations/*/messages", lambda r: r.abort("internetdisconnected"))
        for ws in page_sides:
            ws.close()
        v.wait("s.socket !== 'ready'")
        send(v, "are you there?")
        expect(v.w(".cc-msg-failed .cc-retry")).to_be_visible()
        failed_text = v.w(".cc-msg-failed .cc-meta").text_content()
        v.shot("failed_retry")
        # REST is back: Retry sends the same clientMessageId
        v.page.unroute("**/conversations/*/messages")
        v.w(".cc-retry").click()
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2)
        # the socket comes back too; the resumed stream does not double it
        cut["on"] = False
        v.page.evaluate("window.dispatchEvent(new Event('online'))")
        v.wait("s.socket === 'ready'")
        agent.say(cid, "yes!")
        expect(v.w(".cc-msg-agent")).to_have_count(1)
        return {"failed": failed_text, "thread": thread(v), "server": agent.conversation(cid)}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario, before=before))
    assert out["failed"] == "Not sentRetry"
    assert out["thread"] == stored(out["server"])
    assert [m["text"] for m in out["server"]["messages"]] == [
        "hola, necesito una cotizacion",
        "are you there?",
        "yes!",
    ]


# --- offline fallback ------------------------------------------------------------------------------------

CHANNELS = {
    "channels": {
        "whatsapp": "+52 55 1234 5678",
        "sms": "+1 (555) 010-2000",
        "call": "+52 55 8765 4321",
    }
}
EXPECTED_LINKS = {
    "whatsapp": "https://wa.me/525512345678",
    "sms": "sms:+15550102000",
    "call": "tel:+525587654321",
}


def links(v: Visit) -> dict[str, str]:
    pairs = v.page.eval_on_selector_all(
        f"{HOST} a.cc-link", "els => els.map(e => [e.className, e.getAttribute('href')])"
    )
    return {cls.split("cc-link-")[1]: href for cls, href in pairs}


async def test_no_agents_online_offers_offline_fallback_that_creates_an_offline_message(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site, patch=CHANNELS)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        v.wait("s.mounted && s.agentsOnline === false")
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
        expect(v.w(".cc-title")).to_have_text("We're offline")
        found = links(v)
        v.w(".cc-send-note").click()  # empty: validated in place
        errors = v.texts(".cc-err")
        v.w("input.cc-name").fill("Ana Gomez")
        v.w("input.cc-email").fill("ana@example.com")
        v.w("input.cc-phone").fill("+52 55 1111 2222")
        v.w("textarea.cc-note").fill("Please call me about a home policy")
        v.shot("offline")
        v.w(".cc-send-note").click()
        expect(
            v.page.get_by_text("Thanks! We got your message and will reply by email.")
        ).to_be_visible()
        v.shot("offline_sent")
        return {"links": found, "errors": errors, "conversations": agent.conversations()}

    out = await in_browser(visiting(w.url, scenario))  # nobody online
    assert out["links"] == EXPECTED_LINKS
    assert out["errors"] == ["Please fill in this field."] * 3  # name, email, message
    [conv] = out["conversations"]
    assert conv["kind"] == "offline_message"
    assert conv["contact"]["name"] == "Ana Gomez"
    assert conv["contact"]["email"] == "ana@example.com"
    assert conv["contact"]["phone"] == "+52 55 1111 2222"
    assert conv["firstMessage"]["text"] == "Please call me about a home policy"


async def test_wait_timeout_fallback_then_a_late_accept_connects(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site, patch={"waitTimeoutSeconds": 2, **CHANNELS})

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = start_chat(v)
        expect(v.w(".cc-title")).to_have_text("Nobody is free right now")
        found = links(v)
        v.shot("timeout")
        v.w(".cc-leave").click()
        prefilled = [
            v.w("input.cc-name").input_value(),
            v.w("input.cc-email").input_value(),
        ]
        v.w("textarea.cc-note").fill("Call me back tomorrow, please")
        v.w(".cc-send-note").click()
        expect(
            v.page.get_by_text("Thanks! We got your message and will reply by email.")
        ).to_be_visible()
        v.w(".cc-done").click()  # back: the chat still waits
        expect(v.w(".cc-title")).to_have_text("Nobody is free right now")
        v.w(".cc-keep").click()
        expect(v.page.get_by_text("Searching for available agents\u2026")).to_be_visible()
        during = agent.conversations()
        agent.accept(cid)
        expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible(timeout=2000)
        v.shot("timeout_then_open")
        return {"cid": cid, "links": found, "prefilled": prefilled, "during": during}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["links"] == EXPECTED_LINKS
    assert out["prefilled"] == ["Carlos Lopez", "carlos@example.com"]
    kinds = {c["kind"]: c for c in out["during"]}
    assert set(kinds) == {"live_chat", "offline_message"}
    assert kinds["live_chat"]["id"] == out["cid"]
    assert kinds["live_chat"]["status"] == "WAITING"  # the fallback does not drop the chat
    assert kinds["live_chat"]["waitTimedOut"] is True
    assert kinds["offline_message"]["firstMessage"]["text"] == "Call me back tomorrow, please"


async def test_accept_while_typing_an_offline_message_switches_to_open(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site, patch={"waitTimeoutSeconds": 1})

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = start_chat(v)
        expect(v.w(".cc-title")).to_have_text("Nobody is free right now")
        v.w(".cc-leave").click()
        v.w("textarea.cc-note").fill("half a thought")
        agent.accept(cid)
        expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible(timeout=2000)
        return {"screen": v.state()["screen"]}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["screen"] == "open"


# --- solve -> closing screen -> start new chat --------------------------------------------------------


async def test_solve_shows_closing_screen_and_start_new_chat_starts_fresh(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        first = open_chat(v, agent)
        agent.solve(first)
        expect(v.page.get_by_text("This chat has ended. Thanks for reaching out!")).to_be_visible()
        expect(v.w("textarea.cc-text")).to_be_disabled()
        expect(v.w(".cc-sendbtn")).to_be_disabled()
        v.shot("solved")
        v.w(".cc-new").click()
        prefilled = [
            v.w("input.cc-name").input_value(),
            v.w("input.cc-email").input_value(),
            v.w("textarea.cc-message").input_value(),
        ]
        v.w("textarea.cc-message").fill("one more question")
        v.w(".cc-send").click()
        expect(v.page.get_by_text("Searching for available agents\u2026")).to_be_visible()
        v.wait(f"s.conversationId !== {first!r} && s.status === 'WAITING'")
        second = v.state()["conversationId"]
        v.shot("new_chat")
        return {
            "first": first,
            "second": second,
            "prefilled": prefilled,
            "thread": thread(v),
            "firstServer": agent.conversation(first),
            "secondServer": agent.conversation(second),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["prefilled"] == ["Carlos Lopez", "carlos@example.com", ""]
    assert out["second"] != out["first"]
    assert out["firstServer"]["status"] == "SOLVED"
    assert out["secondServer"]["status"] == "WAITING"
    assert out["thread"] == [("visitor", "one more question", "2")]  # a fresh thread


# --- text is text ---------------------------------------------------------------------------------------


async def test_markup_in_messages_is_shown_as_text(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent, message=XSS)
        send(v, XSS + " again")
        agent.say(cid, XSS)
        expect(v.w(".cc-msg")).to_have_count(3)
        v.shot("xss")
        return {
            "texts": [t for _, t, _ in thread(v)],
            "imgs": v.w("img").count(),
            "hostImgs": v.page.locator("img").count(),
        }

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["texts"] == [XSS, XSS + " again", XSS]
    assert out["imgs"] == 0 and out["hostImgs"] == 0
    # (no dialog: `visiting` asserts it)


# --- a hostile host page -----------------------------------------------------------------------------------

HOSTILE = (
    "<style>* { all: unset !important; }</style>"
    "<div id='overlay' style='position: fixed !important; top: 0 !important; left: 0 !important;"
    " width: 240px !important; height: 60px !important; display: block !important;"
    " z-index: 2147483647 !important; background: #f00 !important'>promo</div>"
)


async def test_hostile_host_css_and_z_index_do_not_break_the_chat(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site, head=HOSTILE)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        overlay_z = v.page.eval_on_selector("#overlay", "e => getComputedStyle(e).zIndex")
        cid = open_chat(v, agent)  # clicks the launcher, Start chat, the form: all reachable
        send(v, "hello from a hostile page")
        agent.say(cid, "hi!")
        expect(v.w(".cc-msg")).to_have_count(3)
        panel = v.page.eval_on_selector(
            f"{HOST} .cc-panel",
            "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).display,"
            " e.getBoundingClientRect().width]",
        )
        v.shot("hostile_css")
        return {"z": overlay_z, "panel": panel}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out["z"] == "2147483647"
    background, display, width = out["panel"]
    assert background == "rgb(255, 255, 255)" and display == "flex" and width > 300


# --- Spanish -----------------------------------------------------------------------------------------------


async def test_spanish_snippet_shows_spanish_copy(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site, locale="es")

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        label = v.w(".cc-launch").get_attribute("aria-label")
        cid = start_chat(v, searching="Buscando agentes disponibles\u2026")
        expect(v.page.get_by_text("Buscando agentes disponibles\u2026")).to_be_visible()
        v.shot("spanish_waiting")
        agent.accept(cid)
        expect(v.page.get_by_text(f"Conectado con {AGENT}")).to_be_visible(timeout=2000)
        expect(v.w(".cc-sys")).to_have_text(f"{AGENT} se uni\u00f3 al chat")
        v.shot("spanish_open")
        return {"label": label, "placeholder": v.w("textarea.cc-text").get_attribute("placeholder")}

    async with agent_online(server, w.token):
        out = await in_browser(visiting(w.url, scenario))
    assert out == {"label": "Abrir chat", "placeholder": "Escribe un mensaje\u2026"}


# --- preview screens (Settings) -----------------------------------------------------------------------------


async def test_preview_shows_chat_screens_with_sample_data(
    server: Server, host_site: HostSite
) -> None:
    host_site.pages["/settings"] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Settings</title>"
        f'<script src="{server.base_url}/widget.js"></script></head><body>'
        "<div id='box' style='width:480px;height:700px'></div></body></html>"
    )
    config = {
        "name": "InsureMax",
        "appearance": {"welcome": {"title": "Hi there", "text": ""}},
        "channels": {"whatsapp": "+52 55 1234 5678"},
        "locale": "en",
        "agentsOnline": True,
    }

    def scenario(v: Visit) -> dict[str, Any]:
        requests: list[str] = []
        v.page.on("request", lambda r: requests.append(r.url))
        v.page.wait_for_function("window.CurbeChat && CurbeChat.version")
        v.page.evaluate(
            "cfg => window.h = CurbeChat.preview(document.getElementById('box'), cfg,"
            " {screen: 'waiting'})",
            config,
        )
        out: dict[str, Any] = {}
        out["waiting"] = v.w(".cc-status-text").text_content()
        v.page.evaluate("h.show('open')")
        out["open"] = v.w(".cc-sub").text_content()
        v.shot("preview_open")
        v.page.evaluate("h.show('offline')")
        out["offline"] = v.w(".cc-title").text_content()
        v.page.evaluate("h.show('timeout')")
        out["timeout"] = v.w(".cc-title").text_content()
        v.page.evaluate("h.show('solved')")
        out["solved"] = v.w(".cc-ended-text").text_content()
        out["api"] = [u for u in requests if "/api/" in u]
        return out

    out = await in_browser(visiting(host_site.url("/settings"), scenario))
    assert out == {
        "waiting": "Searching for available agents\u2026",
        "open": "Connected with Alex Rivera",
        "offline": "We're offline",
        "timeout": "Nobody is free right now",
        "solved": "This chat has ended. Thanks for reaching out!",
        "api": [],
    }


# --- typing, both ways ------------------------------------------------------------------------------


def visitor_typing(frame: dict[str, Any], state: str) -> bool:
    return (
        frame.get("type") == "typing"
        and frame["data"]["senderType"] == "visitor"
        and frame["data"]["state"] == state
    )


def typing_frames(heard: list[dict[str, Any]], sender: str) -> list[str]:
    return [
        f["data"]["state"]
        for f in heard
        if f.get("type") == "typing" and f["data"]["senderType"] == sender
    ]


async def test_typing_shows_both_ways_and_never_carries_the_text(
    server: Server, host_site: HostSite
) -> None:
    # before: nothing told the visitor an answer was being written, nor the agent a question
    w = await world(server, host_site)

    def scenario(v: Visit, inbox: Any) -> None:
        agent = w.agent()
        cid = open_chat(v, agent)
        indicator = v.w(".cc-typing")
        expect(indicator).to_have_attribute("role", "status")  # read out when it changes
        expect(indicator).to_have_text("")

        inbox.say({"type": "typing", "conversationId": cid, "state": "on"})
        expect(indicator).to_have_text(f"{AGENT} is typing\u2026")
        v.shot("agent_typing")
        inbox.say({"type": "typing", "conversationId": cid, "state": "off"})
        expect(indicator).to_have_text("")
        inbox.say({"type": "typing", "conversationId": cid, "state": "on"})
        expect(indicator).to_have_text(f"{AGENT} is typing\u2026")
        agent.say(cid, "Here is your quote")  # the message ends it
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["Here is your quote"])
        expect(indicator).to_have_text("")
        inbox.say({"type": "typing", "conversationId": cid, "state": "on"})
        expect(indicator).to_have_text(f"{AGENT} is typing\u2026")
        v.page.clock.fast_forward(13_000)  # no "off" ever came (a closed laptop): it expires
        expect(indicator).to_have_text("")

        # the visitor types: the inbox hears "on", never a letter of the draft (each state
        # waited for before the next: an "on" and an "off" within one quarter-second reach an
        # inbox as the "off" alone, engine/broker.py ActivityBatcher)
        start = len(inbox)
        v.w("textarea.cc-text").press_sequentially("secret draft")
        inbox.wait_for(lambda f: visitor_typing(f, "on"), start)
        v.page.clock.fast_forward(6_000)  # 5 s without a key: "off"
        inbox.wait_for(lambda f: visitor_typing(f, "off"), start)
        assert typing_frames(inbox[start:], "visitor") == ["on", "off"]
        assert not [f for f in inbox if "secret draft" in str(f)]

        def heard(*states: str) -> None:  # the visitor's typing the inbox has heard, so far
            inbox.wait_for(lambda _: typing_frames(inbox[start:], "visitor") == [*states], start)

        v.w("textarea.cc-text").press_sequentially(" more")
        heard("on", "off", "on")
        v.w("textarea.cc-text").blur()  # leaving the composer: "off"
        heard("on", "off", "on", "off")
        v.w("textarea.cc-text").press_sequentially("!")
        v.w("textarea.cc-text").press("Enter")  # sent: the message ends it, no "off" needed
        inbox.wait_for(lambda f: f.get("type") == "message_created", start)
        # the last "on" is dropped when it was still held for the inbox as the message came
        assert typing_frames(inbox[start:], "visitor") in (
            ["on", "off", "on", "off", "on"],
            ["on", "off", "on", "off"],
        )

    async with agent_online(server, w.token) as inbox:
        await in_browser(
            visiting(w.url, lambda v: scenario(v, inbox), before=lambda p: p.clock.install())
        )


async def test_typing_seen_and_transfer_in_spanish(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site, locale="es")
    ana = await add_agent(server, w.who.tenant_id, w.who.widget_id, "Ana Ruiz")

    def scenario(v: Visit, inbox: Any) -> None:
        cid = start_chat(v, searching="Buscando agentes disponibles\u2026")
        w.agent().accept(cid)
        expect(v.page.get_by_text(f"Conectado con {AGENT}")).to_be_visible()
        inbox.say({"type": "typing", "conversationId": cid, "state": "on"})
        expect(v.w(".cc-typing")).to_have_text(f"{AGENT} est\u00e1 escribiendo\u2026")
        send(v, "¿Hola?")
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2)
        w.agent().read(cid)
        expect(v.w(".cc-seen")).to_have_text("\u00b7 Visto")
        r = w.agent().http.post(
            f"/api/chat/conversations/{cid}/transfer", json={"agentId": ana.agent_id}
        )
        assert r.status_code == 200, r.text
        expect(v.w(".cc-sys").last).to_have_text("Ahora hablas con Ana Ruiz")

    async with (
        agent_online(server, w.token) as inbox,
        agent_online(server, await login(server, ana)),
    ):
        await in_browser(visiting(w.url, lambda v: scenario(v, inbox)))


# --- seen, and the unread badge ------------------------------------------------------------------


async def test_seen_under_the_visitors_message_and_a_badge_that_survives_a_reload(
    server: Server, host_site: HostSite
) -> None:
    # before: the visitor never knew an agent had read them, and a reload forgot the badge
    w = await world(server, host_site)

    def scenario(v: Visit, inbox: Any) -> dict[str, Any]:
        agent = w.agent()
        cid = open_chat(v, agent)
        send(v, "¿Cubre robo total?")
        last = v.w(".cc-msg-visitor[data-status=sent]").last
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(2)
        expect(v.w(".cc-seen")).to_have_count(0)  # nobody has read it yet
        agent.read(cid)
        expect(last.locator(".cc-seen")).to_have_text("\u00b7 Seen")
        expect(v.w(".cc-seen")).to_have_count(1)  # under the last message only
        v.shot("seen")
        si = agent.say(cid, "Sí")  # the answer says it was read: no "Seen" left
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["Sí"])
        expect(v.w(".cc-seen")).to_have_count(0)

        v.w(".cc-minimize").click()  # closed: what it showed is read, what arrives now is not
        inbox.wait_for(
            lambda f: (
                f.get("type") == "conversation_read"
                and f["data"]["reader"] == "visitor"
                and f["data"]["lastReadSeq"] >= si["seq"]
            )
        )
        agent.say(cid, "¿Algo más?")
        agent.say(cid, "Estoy aquí")
        expect(v.w(".cc-badge")).to_have_text("2")
        start = len(inbox)
        v.page.reload()  # the badge comes from the stored mark, not from this tab's memory
        expect(v.w(".cc-badge")).to_have_text("2")
        v.w(".cc-launch").click()  # in front of the visitor now: the mark goes to the server
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["Sí", "¿Algo más?", "Estoy aquí"])
        read = inbox.wait_for(
            lambda f: f.get("type") == "conversation_read" and f["data"]["reader"] == "visitor",
            start,
        )
        return {"cid": cid, "read": read["data"]}

    async with agent_online(server, w.token) as inbox:
        out = await in_browser(visiting(w.url, lambda v: scenario(v, inbox)))
    async with server.http(w.token) as client:
        detail = (await client.get(f"/api/chat/conversations/{out['cid']}")).json()
    assert out["read"]["lastReadSeq"] == detail["lastSeq"] == detail["visitorLastReadSeq"]


# --- transfer ---------------------------------------------------------------------------------------


async def test_a_transfer_tells_the_visitor_who_they_are_chatting_with_now(
    server: Server, host_site: HostSite
) -> None:
    # before: a chat could only move when its agent went away, and said "joined" like any accept
    w = await world(server, host_site)
    ana = await add_agent(server, w.who.tenant_id, w.who.widget_id, "Ana Ruiz")

    def scenario(v: Visit) -> None:
        agent = w.agent()
        cid = open_chat(v, agent)
        r = agent.http.post(
            f"/api/chat/conversations/{cid}/transfer", json={"agentId": ana.agent_id}
        )
        assert r.status_code == 200, r.text
        expect(v.w(".cc-sys").last).to_have_text("You are now chatting with Ana Ruiz")
        expect(v.page.get_by_text("Connected with Ana Ruiz")).to_be_visible()
        v.shot("transferred")

    async with agent_online(server, await login(server, ana)):
        await in_browser(visiting(w.url, scenario))


# --- rating ------------------------------------------------------------------------------------------


async def test_a_solved_chat_asks_for_a_rating_once(server: Server, host_site: HostSite) -> None:
    # before: nobody asked the visitor how the chat went
    w = await world(server, host_site)

    def scenario(v: Visit) -> str:
        agent = w.agent()
        cid = open_chat(v, agent)
        agent.solve(cid)
        expect(v.w(".cc-rate-ask")).to_have_text("How was your chat?")
        expect(v.w(".cc-rate-send")).to_have_count(0)  # a score first
        v.w('[aria-label="4 out of 5"]').click()
        expect(v.w('[aria-label="4 out of 5"]')).to_have_attribute("aria-pressed", "true")
        expect(v.w('[aria-label="4 out of 5"]')).to_be_focused()
        expect(v.w(".cc-star-on")).to_have_count(4)
        v.w(".cc-rate-comment").fill("Rápido y claro <b>gracias</b>")
        v.shot("rating")
        v.w(".cc-rate-send").click()
        expect(v.w(".cc-rated")).to_have_text("Thanks for your rating!")
        v.page.reload()  # rated: not asked again
        v.wait("s.screen === 'solved'")
        expect(v.w(".cc-rated")).to_have_text("Thanks for your rating!")
        expect(v.w(".cc-star")).to_have_count(0)
        return cid

    async with agent_online(server, w.token):
        cid = await in_browser(visiting(w.url, scenario))
    async with server.http(w.token) as client:
        rating = (await client.get(f"/api/chat/conversations/{cid}")).json()["rating"]
    assert rating["score"] == 4 and rating["comment"] == "Rápido y claro <b>gracias</b>"


async def test_the_rating_in_spanish(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site, locale="es")

    def scenario(v: Visit) -> None:
        cid = start_chat(v, searching="Buscando agentes disponibles\u2026")
        agent = w.agent()
        agent.accept(cid)
        expect(v.page.get_by_text(f"Conectado con {AGENT}")).to_be_visible()
        agent.solve(cid)
        expect(v.w(".cc-rate-ask")).to_have_text("¿Qué te pareció el chat?")
        v.w('[aria-label="5 de 5"]').click()
        v.w(".cc-rate-send").click()
        expect(v.w(".cc-rated")).to_have_text("¡Gracias por tu valoración!")

    async with agent_online(server, w.token):
        await in_browser(visiting(w.url, scenario))


def png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# records whether an upload's progress bar was ever in the widget (it may come and go quickly)
WATCH_PROGRESS = """() => {
  const root = document.querySelector('curbe-chat-widget').shadowRoot;
  window.sawProgress = false;
  new MutationObserver(() => {
    if (root.querySelector('progress.cc-progress')) window.sawProgress = true;
  }).observe(root, {subtree: true, childList: true});
}"""


async def test_files_go_both_ways_with_progress_thumbnails_and_reasons(
    server: Server, host_site: HostSite
) -> None:
    # before: neither side could send an image or a document
    w = await world(server, host_site)
    photo = png(800, 600)

    def scenario(v: Visit) -> None:
        agent = w.agent()
        cid = open_chat(v, agent)
        v.page.evaluate(WATCH_PROGRESS)
        expect(v.w(".cc-attach")).to_have_attribute("aria-label", "Attach an image or a PDF")
        picker = v.w(".cc-picker")
        picker.set_input_files({"name": "coche.png", "mimeType": "image/png", "buffer": photo})
        thumb = v.w(".cc-msg-sent .cc-file img")
        expect(thumb).to_have_attribute("alt", "coche.png")
        expect(thumb).to_have_js_property(
            "naturalWidth", 320
        )  # the thumbnail, fetched with the token
        assert v.page.evaluate("window.sawProgress") is True
        stored_file = agent.conversation(cid)["messages"][-1]["attachments"][0]
        assert (stored_file["name"], stored_file["size"]) == ("coche.png", len(photo))

        # the agent sends a PDF: a button that downloads it
        r = agent.http.post(
            f"/api/chat/conversations/{cid}/attachments",
            content=PDF,
            headers={"X-File-Name": "poliza.pdf", "Content-Type": "application/pdf"},
        )
        assert r.status_code == 201, r.text
        document = v.w(".cc-msg-agent .cc-file")
        expect(document).to_have_text("\U0001f4ce poliza.pdf")
        expect(document).to_have_attribute("aria-label", "Download poliza.pdf")
        with v.page.expect_download() as download:
            document.click()
        assert download.value.suggested_filename == "poliza.pdf"
        assert open(download.value.path(), "rb").read() == PDF
        v.shot("files")

        # too large: said before anything is sent
        big = b"%PDF-" + b"0" * (10 * 1024 * 1024)
        picker.set_input_files({"name": "big.pdf", "mimeType": "application/pdf", "buffer": big})
        expect(v.w(".cc-err")).to_have_text("This file is too large to send")
        # not a file we take: the server's reason, and no Retry (it would be refused again)
        picker.set_input_files({"name": "page.png", "mimeType": "image/png", "buffer": b"<html>"})
        failed = v.w(".cc-msg-failed")
        expect(failed.locator(".cc-meta")).to_have_text(
            "Send an image (PNG, JPEG, GIF, WebP) or a PDF"
        )
        expect(failed.locator(".cc-retry")).to_have_count(0)

    async with agent_online(server, w.token):
        await in_browser(visiting(w.url, scenario))


async def test_the_attach_control_in_spanish(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site, locale="es")

    def scenario(v: Visit) -> None:
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
        v.w("input.cc-name").fill("Carlos")
        v.w("input.cc-email").fill("carlos@example.com")
        v.w("textarea.cc-message").fill("hola")
        v.w(".cc-send").click()
        v.wait("s.screen === 'waiting' && s.socket === 'ready'")
        attach = v.w(".cc-attach")
        expect(attach).to_have_attribute("aria-label", "Adjuntar una imagen o un PDF")
        attach.focus()
        expect(attach).to_be_focused()  # reachable from the keyboard

    async with agent_online(server, w.token):
        await in_browser(visiting(w.url, scenario))
