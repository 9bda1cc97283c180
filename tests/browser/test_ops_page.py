"""The operator page (``GET /ops``) in a real browser: live actors, refresh, filters, detail, token.

A real server (Hypercorn + PostgreSQL) and headless Chromium in a worker thread
(:func:`tests.browser.support.in_browser`). Visitors are driven over the HTTP API, from inside
the browser scenario with ``call`` (it runs a coroutine in the test's Trio loop, which keeps
serving meanwhile). Waits are on DOM conditions only; a page error, a console error other than a
failed request, or any dialog fails the test. Screenshots go to ``artifacts/browser/ops_*.png``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import trio

from engine.faults import FaultPlan
from tests.browser.support import artifact, in_browser
from tests.support import OPS_TOKEN, Server, Visitor, new_visitor, open_server, seed

pytestmark = pytest.mark.slow

T = TypeVar("T")
XSS = "<img src=x onerror=alert(1)>"


def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in the test's Trio loop from the browser thread."""
    return trio.from_thread.run(functools.partial(fn, *args, **kwargs))


def new_page(browser: Any, srv: Server) -> tuple[Any, list[str]]:
    """A page of a fresh context, and the list its problems go to."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    page = browser.new_context(base_url=srv.base_url, locale="en-US").new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))

    def console(msg: Any) -> None:
        # Chromium logs each 4xx answer (the wrong token's 401 is expected); anything else
        # logged as an error (a CSP refusal, an exception) is a problem.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console.error: {msg.text}")

    def dialog(d: Any) -> None:
        problems.append(f"unexpected dialog: {d.type}: {d.message}")
        d.dismiss()

    page.on("console", console)
    page.on("dialog", dialog)
    return page, problems


def open_ops(page: Any, token: str) -> Any:
    """Go to /ops and enter ``token``; returns the page's response."""
    response = page.goto("/ops")
    page.fill("#ops-token", token)
    page.click("#ops-token-submit")
    return response


def actor_row(page: Any, kind: str, actor_id: str) -> Any:
    return page.locator(f'tr[data-kind="{kind}"][data-actor-id="{actor_id}"]')


async def start_chat(srv: Server, v: Visitor) -> str:
    async with srv.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations",
            json={"name": "María López", "email": "maria@example.com", "message": "hola"},
        )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def test_the_ops_page_shows_a_live_conversation_and_refreshes(server: Server) -> None:
    who = (await seed(server))[0]
    visitor = await new_visitor(server, who.widget_id, f"https://shop.example.com/pricing?q={XSS}")
    conversation_id = await start_chat(server, visitor)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server)
        response = open_ops(page, OPS_TOKEN)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert response.headers["x-frame-options"] == "DENY"

        # the conversation's actor (by the conversation's id), the visitor's, the widget's
        conversation = actor_row(page, "conversation", conversation_id)
        expect(conversation).to_be_visible()
        expect(conversation.locator(".ops-col-state")).to_have_text("WAITING")
        expect(conversation.locator(".ops-col-tenant")).to_have_text(who.tenant_id)
        expect(conversation.locator(".ops-col-deadline time")).to_have_count(1)  # the wait timer
        session = actor_row(page, "visitor_session", visitor.visitor_id)
        expect(session).to_be_visible()
        expect(session.locator(".ops-col-state")).to_have_text("LIVE")
        expect(actor_row(page, "widget", who.widget_id)).to_be_visible()
        expect(page.locator("#ops-live")).to_have_attribute("data-state", "live")
        assert "ops-test-token" not in page.url
        page.screenshot(path=str(artifact("ops_actors.png")), full_page=True)

        # a new actor appears without a reload
        newcomer = call(new_visitor, server, who.widget_id)
        expect(actor_row(page, "visitor_session", newcomer.visitor_id)).to_be_visible()

        # the detail view: the conversation's recent events
        conversation.locator(".ops-open").click()
        detail = page.locator("#ops-detail")
        expect(detail).to_be_visible()
        expect(page.locator("#ops-detail-title")).to_have_text(f"conversation {conversation_id}")
        expect(detail.locator('dd[data-field="visitorId"]')).to_have_text(visitor.visitor_id)
        expect(page.locator("#ops-event-rows .ops-event")).to_have_count(2)
        expect(page.locator("#ops-event-rows")).to_contain_text("conversation_created")
        expect(page.locator("#ops-event-rows")).to_contain_text("message_created")
        page.screenshot(path=str(artifact("ops_detail.png")), full_page=True)

        # a visitor's URL is text, not markup
        session.locator(".ops-open").click()
        expect(detail.locator('dd[data-field="currentUrl"]')).to_contain_text(XSS)
        expect(page.locator("#ops-events-empty")).to_be_visible()
        assert page.locator("main img").count() == 0

        # filters go to the server: by kind, by tenant
        page.select_option("#ops-kind", "visitor_session")
        expect(conversation).to_have_count(0)
        expect(session).to_be_visible()
        expect(
            page.locator("#ops-rows tr[data-kind]:not([data-kind='visitor_session'])")
        ).to_have_count(0)
        page.fill("#ops-tenant", "ten_nobody")
        expect(page.locator("#ops-empty")).to_be_visible()
        expect(session).to_have_count(0)
        page.fill("#ops-tenant", who.tenant_id)
        page.select_option("#ops-kind", "")
        expect(conversation).to_be_visible()
        expect(page.locator("#ops-empty")).to_be_hidden()

        # the token stays for this tab: a reload goes straight to the table
        page.reload()
        expect(page.locator("#ops-dashboard")).to_be_visible()
        expect(actor_row(page, "conversation", conversation_id)).to_be_visible()
        page.click("#ops-forget")
        expect(page.locator("#ops-token-form")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('curbe.opsToken')") is None
        assert not problems, problems

    await in_browser(scenario)


async def test_a_wrong_token_shows_an_error(server: Server) -> None:
    await seed(server)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server)
        open_ops(page, "wrong-token")
        error = page.locator("#ops-token-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("refused")
        expect(page.locator("#ops-dashboard")).to_be_hidden()
        expect(page.locator("#ops-token")).to_have_attribute("aria-invalid", "true")
        assert page.evaluate("sessionStorage.getItem('curbe.opsToken')") is None
        page.screenshot(path=str(artifact("ops_wrong_token.png")), full_page=True)

        # an empty token is refused in the page, without a request
        page.fill("#ops-token", "  ")
        page.click("#ops-token-submit")
        expect(error).to_have_text("Enter the operator token.")

        # a stored token that stopped working (rotated CURBE_OPS_TOKEN) asks again
        page.evaluate("sessionStorage.setItem('curbe.opsToken', 'rotated-away')")
        page.reload()
        expect(error).to_contain_text("refused")
        expect(page.locator("#ops-dashboard")).to_be_hidden()

        # the right one then works
        page.fill("#ops-token", OPS_TOKEN)
        page.click("#ops-token-submit")
        expect(page.locator("#ops-dashboard")).to_be_visible()
        expect(page.locator("#ops-live")).to_have_attribute("data-state", "live")
        assert not problems, problems

    await in_browser(scenario)


async def test_the_ops_page_shows_an_actor_given_up_until_it_recovers(database_url: str) -> None:
    faults = FaultPlan()
    async with open_server(database_url, faults=faults, actor_max_restarts=0) as srv:
        who = (await seed(srv))[0]
        v = await new_visitor(srv, who.widget_id)
        cid = await start_chat(srv, v)

        async def post(text: str) -> int:
            async with srv.http(v.token) as client:
                r = await client.post(
                    f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/messages",
                    json={"text": text},
                )
            return r.status_code

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, srv)
            open_ops(page, OPS_TOKEN)
            expect(actor_row(page, "service", "routing_listener")).to_be_visible()
            expect(page.locator("#ops-escalated")).to_be_hidden()
            faults.arm("conversation", "before_commit", cid)
            assert call(post, "<b>crash</b>") == 503  # no restart allowed: given up at once
            escalation = page.locator(f'#ops-escalated li[data-actor-id="{cid}"]')
            expect(escalation).to_be_visible()
            expect(escalation).to_contain_text("InjectedFault: injected fault: conversation")
            expect(escalation).to_contain_text("engine/conversation_actor.py:")
            expect(escalation.locator("time")).to_have_count(1)
            page.screenshot(path=str(artifact("ops_escalated.png")), full_page=True)
            assert call(post, "back") == 201
            assert call(post, "and again") == 201
            expect(page.locator("#ops-escalated")).to_be_hidden()
            assert problems == []

        await in_browser(scenario)
