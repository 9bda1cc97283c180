"""What the server pushes to an open visitor page, in a real Chromium: agent-started chats,
``agents_online_changed`` and ``queue_position`` reach ``widget/widget.js`` without a reload.

Same set-up as ``test_widget_chat.py`` (whose helpers this reuses): a real server on a fresh
database, the customer's page on a second origin, the browser scenario in a worker thread while
the Trio loop serves. A scenario that needs the Trio side mid-way (an agent's inbox socket
opening or closing) signals it with ``trio.from_thread.run_sync(event.set)``. Nothing sleeps: every
step waits on the DOM or on ``CurbeChat.state()``. Screenshots go to ``artifacts/browser/live_*``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio

from tests.browser.support import HostSite, agent_online, artifact, in_browser
from tests.browser.test_widget_chat import (
    AGENT,
    Visit,
    World,
    expect,
    send,
    start_chat,
    thread,
    visiting,
    world,
)
from tests.support import Server

pytestmark = pytest.mark.slow

MARK = "window.__sameDocument = true"  # survives only while the page is not reloaded
ABOUT = re.compile(r"^About [1-9][0-9]* min$")
UNOS = re.compile(r"^Unos [1-9][0-9]* min$")


def shot(v: Visit, name: str) -> None:
    v.page.screenshot(path=str(artifact(f"live_{name}.png")))


def within(v: Visit, condition: str, ms: int) -> None:
    """Wait at most ``ms`` until ``condition`` (JS, ``s`` = CurbeChat.state()) holds."""
    v.page.wait_for_function(
        f"(() => {{ const s = window.CurbeChat && CurbeChat.state(); return !!s && ({condition}); }})()",
        timeout=ms,
    )


def proactive(w: World, agent: Any, visitor_id: str, text: str) -> dict[str, Any]:
    """The agent starts a chat with the visitor (browser thread, sync client)."""
    r = agent.http.post(f"/api/chat/visitors/{visitor_id}/conversations", json={"message": text})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# --- agent-started chats ---------------------------------------------------------------------------


async def test_agent_started_chat_opens_the_panel_and_the_visitor_can_reply(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)

    def scenario(v: Visit) -> dict[str, Any]:
        agent = w.agent()
        # no chat yet, panel closed: the socket is open all the same
        v.wait("s.mounted && s.socket === 'ready' && s.screen === 'launcher' && !s.conversationId")
        v.page.evaluate(MARK)
        visitor_id = v.state()["visitorId"]
        # only the socket may bring the chat (the heartbeat would name it too, 15 s later)
        v.page.route("**/heartbeat", lambda route: route.abort())
        first = proactive(w, agent, visitor_id, "Hi! Need help with your quote?")
        assert first["status"] == "OPEN"
        # the panel opens by itself on the OPEN screen with the agent's message
        expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible()
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["Hi! Need help with your quote?"])
        expect(v.w(".cc-sys")).to_have_text([f"{AGENT} joined the chat"])  # once
        expect(v.w("textarea.cc-text")).to_be_enabled()
        shot(v, "proactive_open")
        opened = v.state()
        send(v, "Yes please, for my car")
        expect(v.w(".cc-msg-visitor[data-status=sent]")).to_have_count(1)
        v.wait("s.sending === 0 && s.failed === 0")
        replied = {"thread": thread(v), "server": agent.conversation(first["id"])}

        # a solved chat does not stop the next one: minimised on "Chat ended", a new agent-started
        # chat replaces it and opens the panel again
        agent.http.post(f"/api/chat/conversations/{first['id']}/solve").raise_for_status()
        expect(v.w(".cc-ended-text")).to_be_visible()
        v.w(".cc-minimize").click()
        v.wait("s.screen === 'launcher'")
        second = proactive(w, agent, visitor_id, "One more thing about your policy")
        v.wait(f"s.conversationId === {second['id']!r} && s.screen === 'open'")
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["One more thing about your policy"])
        shot(v, "proactive_after_solved")
        same_document = v.page.evaluate("window.__sameDocument === true")
        # a reload finds it again (GET .../conversation), panel open as it was
        v.page.unroute("**/heartbeat")
        v.page.reload()
        v.wait(
            f"s.conversationId === {second['id']!r} && s.screen === 'open' && s.socket === 'ready'"
        )
        expect(v.w(".cc-msg-agent .cc-bub")).to_have_text(["One more thing about your policy"])
        return {
            "first": first,
            "opened": opened,
            "replied": replied,
            "second": v.state(),
            "secondThread": thread(v),
            "who": v.texts(".cc-who"),
            "sameDocument": same_document,
        }

    out = await in_browser(visiting(w.url, scenario))
    assert out["sameDocument"] is True  # no reload until the end
    opened = out["opened"]
    assert opened["conversationId"] == out["first"]["id"]
    assert opened["screen"] == "open" and opened["status"] == "OPEN"
    assert opened["assignee"] == AGENT
    conv = out["replied"]["server"]
    assert [(m["senderType"], m["text"]) for m in conv["messages"]] == [
        ("agent", "Hi! Need help with your quote?"),
        ("visitor", "Yes please, for my car"),
    ]
    assert out["replied"]["thread"] == [
        (m["senderType"], m["text"], str(m["seq"])) for m in conv["messages"]
    ]
    assert out["second"]["status"] == "OPEN" and out["second"]["unread"] == 0
    assert [t for _, t, _ in out["secondThread"]] == ["One more thing about your policy"]
    assert out["who"] == [AGENT]


# --- agentsOnline, live -------------------------------------------------------------------------------


async def test_agents_online_changes_reach_an_open_page_without_a_heartbeat(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)
    come_online = trio.Event()
    go_offline = trio.Event()

    async def the_agent() -> None:
        await come_online.wait()
        async with agent_online(server, w.token):
            await go_offline.wait()

    def scenario(v: Visit) -> dict[str, Any]:
        v.wait("s.mounted && s.socket === 'ready' && s.agentsOnline === false")
        v.page.evaluate(MARK)
        # from now on only the socket can say who is online (no heartbeat gets through)
        v.page.route("**/heartbeat", lambda route: route.abort())
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
        expect(v.w(".cc-title")).to_have_text("We're offline")
        shot(v, "agents_offline")
        v.w(".cc-head-back").click()
        v.w(".cc-minimize").click()

        trio.from_thread.run_sync(come_online.set)  # the agent opens the inbox
        within(v, "s.agentsOnline === true", 3000)
        v.w(".cc-launch").click()
        v.w(".cc-start").click()
        expect(v.w(".cc-title")).to_have_text("Start a conversation")
        expect(v.w("input.cc-name")).to_be_visible()
        shot(v, "agents_online_prechat")
        v.w(".cc-head-back").click()

        trio.from_thread.run_sync(go_offline.set)  # the last agent leaves
        within(v, "s.agentsOnline === false", 3000)
        v.w(".cc-start").click()
        expect(v.w(".cc-title")).to_have_text("We're offline")
        return {
            "sameDocument": v.page.evaluate("window.__sameDocument === true"),
            "state": v.state(),
        }

    async with trio.open_nursery() as nursery:
        nursery.start_soon(the_agent)
        try:
            out = await in_browser(visiting(w.url, scenario))
        finally:
            nursery.cancel_scope.cancel()
    assert out["sameDocument"] is True
    assert out["state"]["screen"] == "offline" and out["state"]["conversationId"] is None


# --- queue position -------------------------------------------------------------------------------------


async def waiting_chat(server: Server, w: World, name: str) -> str:
    """Another visitor (over the API) starts a chat that waits; returns its id."""
    async with server.http() as client:
        r = await client.post(
            f"/api/chat/widgets/{w.who.widget_id}/heartbeat",
            json={"currentDomain": "127.0.0.1", "currentUrl": "http://127.0.0.1/pricing"},
        )
        assert r.status_code == 200, r.text
        token = r.json()["visitorToken"]
        r = await client.post(
            f"/api/chat/widgets/{w.who.widget_id}/conversations",
            json={"name": name, "email": "queue@example.com", "message": f"{name} waits"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "WAITING"
        return r.json()["id"]  # type: ignore[no-any-return]


async def test_queue_position_is_shown_and_moves_up_live(
    server: Server, host_site: HostSite
) -> None:
    w = await world(server, host_site)  # routing: manual (the default)

    async with agent_online(server, w.token):
        oldest = await waiting_chat(server, w, "Ana")
        await waiting_chat(server, w, "Beto")

        def scenario(v: Visit) -> dict[str, Any]:
            agent = w.agent()
            v.page.evaluate(MARK)
            cid = start_chat(v)
            expect(v.w(".cc-queue")).to_have_text("You are number 3 in line")
            expect(v.w(".cc-eta")).to_have_count(0)  # nothing accepted yet: no estimate
            shot(v, "queue_3")
            agent.accept(oldest)
            expect(v.w(".cc-queue")).to_have_text("You are number 2 in line")
            # one chat accepted: the tenant's average wait gives an estimate (at least 1 min)
            expect(v.w(".cc-eta")).to_have_text(ABOUT)
            expect(v.w(".cc-status-text")).to_have_text("Searching for available agents\u2026")
            shot(v, "queue_2")
            at_two = v.state()
            agent.accept(cid)
            expect(v.page.get_by_text(f"Connected with {AGENT}")).to_be_visible()
            gone = v.w(".cc-queue").count()
            return {
                "atTwo": at_two,
                "gone": gone,
                "sameDocument": v.page.evaluate("window.__sameDocument === true"),
            }

        out = await in_browser(visiting(w.url, scenario))
    assert out["sameDocument"] is True
    assert out["atTwo"]["screen"] == "waiting" and out["atTwo"]["status"] == "WAITING"
    assert out["gone"] == 0  # OPEN: no queue line


async def test_queue_position_in_spanish(server: Server, host_site: HostSite) -> None:
    w = await world(server, host_site, locale="es")

    async with agent_online(server, w.token):
        oldest = await waiting_chat(server, w, "Ana")

        def scenario(v: Visit) -> dict[str, Any]:
            agent = w.agent()
            start_chat(v, searching="Buscando agentes disponibles\u2026")
            expect(v.w(".cc-queue")).to_have_text("Eres el n\u00famero 2 en la fila")
            agent.accept(oldest)
            expect(v.w(".cc-queue")).to_have_text("Eres el n\u00famero 1 en la fila")
            expect(v.w(".cc-eta")).to_have_text(UNOS)
            shot(v, "queue_es")
            return v.state()

        out = await in_browser(visiting(w.url, scenario))
    assert out["screen"] == "waiting" and out["locale"] == "es"
