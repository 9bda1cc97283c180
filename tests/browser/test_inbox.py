"""The agent Inbox in a real browser: live views and counts, Accept races, messages both ways,
Solve, live visitors, Start chat, details, escaping, tenancy, time zones and presence.

Each test runs a real server (Hypercorn + PostgreSQL) and headless Chromium in a worker thread
(:func:`tests.browser.support.in_browser`). Visitors are driven over the HTTP API from inside the
browser scenario with ``call`` (it runs a coroutine in the test's Trio loop, which keeps serving
meanwhile). Agents sign in by cookie, except one test that uses the sign-in form. Waits are on DOM
conditions (or on a WebSocket frame), never on the clock; a page error, a console error or any
dialog fails the test. Screenshots of each view go to ``artifacts/browser/inbox_*.png``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import trio

from storage import queries
from tests.browser.support import artifact, in_browser, listening
from tests.support import (
    ManualClock,
    Seed,
    Server,
    Socket,
    Visitor,
    login,
    new_visitor,
    open_server,
    open_socket,
    seed,
    visitor_says,
    visitor_socket,
    visitor_view,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")
XSS = "<img src=x onerror=alert(1)>"
COUNT_VIEWS = ["open", "unread", "assigned", "unassigned", "waiting", "visitors", "solved", "all"]


# --- helpers (browser side: these run in the worker thread) ----------------------------------


def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in the test's Trio loop from the browser thread."""
    return trio.from_thread.run(functools.partial(fn, *args, **kwargs))


def new_page(
    browser: Any, srv: Server, token: str | None = None, **context: Any
) -> tuple[Any, list[str]]:
    """A page of a fresh context signed in with ``token``, and the list its problems go to."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context.setdefault("locale", "en-US")
    ctx = browser.new_context(base_url=srv.base_url, **context)
    if token:
        ctx.add_cookies([{"name": "curbe_session", "value": token, "url": srv.base_url}])
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))

    def console(msg: Any) -> None:
        # Chromium logs each 4xx answer (a 409 on a lost Accept is expected); anything else
        # logged as an error (a CSP refusal, an exception) is a problem.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console.error: {msg.text}")

    def dialog(d: Any) -> None:
        problems.append(f"unexpected dialog: {d.type}: {d.message}")
        d.dismiss()

    page.on("console", console)
    page.on("dialog", dialog)
    return page, problems


def open_inbox(page: Any, view: str = "open") -> None:
    """Go to the inbox on ``view`` and wait until its socket is live and the list loaded."""
    from playwright.sync_api import expect

    page.goto(f"/inbox#{view}")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    expect(page.locator("#list-loading")).to_be_hidden()


def view_button(page: Any, view: str) -> Any:
    return page.locator(f'[data-view="{view}"]')


def count(page: Any, view: str) -> Any:
    return view_button(page, view).locator(".count")


def conv_row(page: Any, cid: str) -> Any:
    return page.locator(f'#conversation-list [data-conversation-id="{cid}"]')


def details(page: Any, name: str) -> Any:
    return page.locator(f'#details-body [data-field="{name}"]')


def shot(page: Any, name: str) -> None:
    page.screenshot(path=artifact(f"inbox_{name}.png"))


# --- helpers (Trio side) ---------------------------------------------------------------------


async def start_chat(
    srv: Server,
    v: Visitor,
    text: str,
    name: str = "Carlos Lopez",
    email: str = "carlos@example.com",
    **extra: Any,
) -> dict[str, Any]:
    async with srv.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations",
            json={"name": name, "email": email, "message": text, **extra},
        )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def heartbeat(srv: Server, v: Visitor, url: str) -> None:
    async with srv.http(v.token) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/heartbeat",
            json={"currentDomain": "shop.example.com", "currentUrl": url},
        )
    assert r.status_code == 200, r.text
    assert r.json()["visitorId"] == v.visitor_id


async def agent_get(srv: Server, token: str, path: str) -> Any:
    async with srv.http(token) as client:
        r = await client.get(path)
    assert r.status_code == 200, r.text
    return r.json()


async def widget_config(srv: Server, widget_id: str) -> dict[str, Any]:
    async with srv.http() as client:
        r = await client.get(f"/api/chat/widgets/{widget_id}/config")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def next_frame(sock: Socket, type_: str, test: Callable[[dict[str, Any]], bool]) -> Any:
    while True:
        frame = await sock.wait_for(type_)
        if test(frame):
            return frame


async def signed_in(srv: Server, agents: int = 1, **kwargs: Any) -> list[tuple[Seed, str]]:
    people = await seed(srv, agents=agents, **kwargs)
    return [(who, await login(srv, who)) for who in people]


# --- a new chat, everywhere at once ------------------------------------------------------------


async def test_a_new_chat_reaches_both_inboxes_live_and_the_login_form_leads_there(
    server: Server,
) -> None:
    (a, ta), (b, _tb) = await signed_in(server, agents=2)
    v = await new_visitor(server, a.widget_id)
    async with server.http() as client:  # no session: the page sends you to sign in first
        r = await client.get("/inbox")
        assert r.status_code == 302
        assert r.headers["location"] == "/login?next=/inbox"
    async with server.http(cookies={"curbe_session": ta}) as client:
        r = await client.get("/inbox")
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text  # no inline script: the JSON block only

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page_a, problems_a = new_page(browser, server, ta)
        open_inbox(page_a, "waiting")
        expect(page_a.locator("#list-empty")).to_contain_text("Nobody is waiting")
        expect(count(page_a, "waiting")).to_have_text("0")
        expect(page_a).to_have_title("Inbox · Curbe Chat")
        shot(page_a, "waiting_empty")

        page_b, problems_b = new_page(browser, server)  # B signs in through the form
        page_b.goto("/inbox")
        page_b.wait_for_url(re.compile(r"/login\?next=(%2F|/)inbox$"))
        page_b.get_by_label("Email").fill(b.agent_email)
        page_b.get_by_label("Password").fill(b.password)
        page_b.get_by_role("button", name="Sign in").click()
        page_b.wait_for_url(re.compile(r"/inbox(#.*)?$"))
        expect(page_b.locator("#live-indicator")).to_have_text("Live")
        expect(page_b.locator(".whoami-name")).to_have_text(b.agent_name)
        view_button(page_b, "waiting").click()
        expect(page_b.locator("#list-empty")).to_be_visible()

        chat = call(start_chat, server, v, "hola, ¿tienen seguro de auto?")
        cid = chat["id"]
        for page in (page_a, page_b):  # no reload: the row, the counts, the title
            row = conv_row(page, cid)
            expect(row).to_have_attribute("data-status", "WAITING")
            expect(row.locator(".conv-name")).to_have_text("Carlos Lopez")
            expect(row.locator(".conv-preview")).to_have_text("hola, ¿tienen seguro de auto?")
            expect(row.locator(".conv-time")).to_contain_text("waited")
            expect(row.locator(".unread-dot")).to_have_count(1)
            expect(row.get_by_role("button", name="Accept Chat")).to_be_visible()
            expect(count(page, "waiting")).to_have_text("1")
            expect(count(page, "unassigned")).to_have_text("1")
            expect(count(page, "unread")).to_have_text("1")
            expect(count(page, "all")).to_have_text("1")
            expect(count(page, "open")).to_have_text("0")
            expect(page.locator("#list-empty")).to_be_hidden()
        # page A was already on Waiting: the title still says so until the agent looks
        expect(page_a).to_have_title("(1) New chat · Curbe Inbox")
        shot(page_a, "waiting")
        page_a.locator("#conversation-list").click(position={"x": 5, "y": 5})  # the agent looks
        expect(page_a).to_have_title("Inbox · Curbe Chat")

        # the waited time runs live
        first = conv_row(page_a, cid).locator(".conv-time").text_content()
        page_a.wait_for_function(
            """([id, before]) => {
                const t = document.querySelector(`[data-conversation-id="${id}"] .conv-time`);
                return t && t.textContent !== before;
            }""",
            arg=[cid, first],
        )
        assert problems_a == [] and problems_b == [], (problems_a, problems_b)

    await in_browser(scenario)


async def test_two_agents_accept_at_once_and_exactly_one_gets_it(server: Server) -> None:
    (a, ta), (b, tb) = await signed_in(server, agents=2)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    names = {a.agent_id: a.agent_name, b.agent_id: b.agent_name}

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page_a, problems_a = new_page(browser, server, ta)
        page_b, problems_b = new_page(browser, server, tb)
        for page in (page_a, page_b):
            open_inbox(page, "waiting")
            expect(conv_row(page, cid).get_by_role("button", name="Accept Chat")).to_be_enabled()
        click = """id => document.querySelector(
            `#conversation-list [data-conversation-id="${id}"] [data-action="accept"]`).click()"""
        # both requests are held at the browser until both are out, then reach the server at
        # once (else the first can win and remove the row before the second click)
        held: list[Any] = []
        accept_url = f"**/api/chat/conversations/{cid}/accept"

        def hold(route: Any) -> None:
            held.append(route)

        for page in (page_a, page_b):
            page.route(accept_url, hold)
        page_a.evaluate(click, cid)
        page_b.evaluate(click, cid)
        for _ in range(200):  # each call lets Playwright deliver the routes it holds
            if len(held) == 2:
                break
            page_a.evaluate("0")
        assert len(held) == 2, "both accepts should be on their way"
        for route in held:
            route.continue_()

        for page in (page_a, page_b):  # the row leaves both Waiting lists
            expect(conv_row(page, cid)).to_have_count(0)
            expect(count(page, "waiting")).to_have_text("0")
        detail = call(agent_get, server, ta, f"/api/chat/conversations/{cid}")
        winner_id = detail["assignee"]["id"]
        assert detail["status"] == "OPEN" and winner_id in names
        won, lost = (page_a, page_b) if winner_id == a.agent_id else (page_b, page_a)

        # the winner has it open, assigned to them, and may reply
        expect(won.locator("#thread")).to_have_attribute("data-conversation-id", cid)
        expect(won.locator("#thread")).to_have_attribute("data-status", "OPEN")
        expect(details(won, "assignee")).to_have_text(f"{names[winner_id]} (you)")
        expect(won.locator("#composer-text")).to_be_enabled()
        expect(count(won, "assigned")).to_have_text("1")
        # the other is told who got it
        expect(lost.locator("#list-notice")).to_have_text(f"{names[winner_id]} accepted this chat")
        expect(count(lost, "assigned")).to_have_text("0")
        expect(count(lost, "open")).to_have_text("1")
        shot(lost, "accept_lost")
        shot(won, "accept_won")
        assert problems_a == [] and problems_b == [], (problems_a, problems_b)

    await in_browser(scenario)


# --- a conversation ---------------------------------------------------------------------------


async def test_typing_shows_in_the_list_and_the_thread_and_goes_to_the_visitor(
    server: Server,
) -> None:
    # before: an agent could not tell a visitor was writing, nor the visitor that they were
    [(a, ta), (b, tb)], v, cid = await accepted_chat_of(server, agents=2)

    async with (
        listening(server, f"/api/chat/widgets/{v.widget_id}/ws?token={v.token}") as widget,
        listening(server, f"/api/chat/inbox/ws?token={tb}") as colleague,
    ):

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            page.clock.install()
            open_inbox(page, "open")
            row = conv_row(page, cid)
            typing = "Carlos Lopez is typing\u2026"
            widget.say({"type": "typing", "conversationId": cid, "state": "on"})
            expect(row.locator(".conv-preview")).to_have_text(typing)  # in the list, closed
            widget.say({"type": "typing", "conversationId": cid, "state": "off"})
            expect(row.locator(".conv-preview")).to_have_text("hola")

            row.locator(".conv-open").click()
            indicator = page.locator("#typing-indicator")
            expect(indicator).to_have_attribute("role", "status")
            widget.say({"type": "typing", "conversationId": cid, "state": "on"})
            expect(indicator).to_have_text(typing)
            shot(page, "visitor_typing")
            call(visitor_says, server, v, cid, "¿sigues ahí?")  # the message ends it
            expect(page.locator('#messages .msg[data-sender="visitor"]')).to_have_count(2)
            expect(indicator).to_have_text("")
            expect(row.locator(".conv-preview")).to_have_text("¿sigues ahí?")
            widget.say({"type": "typing", "conversationId": cid, "state": "on"})
            expect(indicator).to_have_text(typing)
            page.clock.fast_forward(13_000)  # the visitor's tab vanished without an "off"
            expect(indicator).to_have_text("")
            expect(row.locator(".conv-preview")).to_have_text("¿sigues ahí?")

            # the agent types: the visitor (and a colleague) hear it; this inbox does not
            # show its own agent
            start = len(widget)
            composer = page.locator("#composer-text")
            composer.press_sequentially("Un momento")
            heard = widget.wait_for(lambda f: f.get("type") == "typing", start)
            assert heard["data"]["senderName"] == a.agent_name
            assert heard["data"]["state"] == "on"
            colleague.wait_for(typing_heard)  # alone, or in its inbox's batch of hints
            expect(indicator).to_have_text("")
            composer.fill("")  # emptied: "off"
            composer.dispatch_event("input")
            widget.wait_for(
                lambda f: f.get("type") == "typing" and f["data"]["state"] == "off", start
            )
            composer.press_sequentially("Listo")
            widget.wait_for(
                lambda f: f.get("type") == "typing" and f["data"]["state"] == "on", start + 2
            )
            page.clock.fast_forward(6_000)  # idle: "off"
            widget.wait_for(
                lambda f: f.get("type") == "typing" and f["data"]["state"] == "off", start + 3
            )
            assert not [f for f in widget if "Un momento" in str(f) or "Listo" in str(f)]
            assert problems == [], problems

        await in_browser(scenario)


def typing_heard(frame: dict[str, Any]) -> bool:
    """A typing event, alone or in an ``activity_batch`` (typing hints coalesced per inbox)."""
    if frame.get("type") == "activity_batch":
        return any(e.get("type") == "typing" for e in frame["data"]["events"])
    return frame.get("type") == "typing"


async def test_a_typing_storm_reaches_the_inbox_in_batches_and_every_row_shows_it(
    server: Server,
) -> None:
    # issue 17: many visitors typing at once cost an inbox a few frames a second, not one per
    # hint; inbox.js applies a batch's events as if each had come alone
    [(a, ta)] = await signed_in(server)
    chats = []
    for n in range(3):
        v = await new_visitor(server, a.widget_id)
        cid = (await start_chat(server, v, f"hola {n}", name=f"Visitor {n}"))["id"]
        await accept_as(server, ta, cid)
        chats.append((v, cid))
    async with (
        listening(server, f"/api/chat/widgets/{chats[0][0].widget_id}/ws?token={chats[0][0].token}") as w0,
        listening(server, f"/api/chat/widgets/{chats[1][0].widget_id}/ws?token={chats[1][0].token}") as w1,
        listening(server, f"/api/chat/widgets/{chats[2][0].widget_id}/ws?token={chats[2][0].token}") as w2,
    ):  # fmt: skip
        widgets = [w0, w1, w2]

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            frames: list[str] = []

            def frame(payload: Any) -> None:
                frames.append(payload)

            page.on("websocket", lambda ws: ws.on("framereceived", frame))
            open_inbox(page, "open")
            previews = [conv_row(page, cid).locator(".conv-preview") for _, cid in chats]
            for n, preview in enumerate(previews):
                expect(preview).to_have_text(f"hola {n}")

            def everyone(state: str) -> None:
                for widget, (_, cid) in zip(widgets, chats, strict=True):
                    widget.say({"type": "typing", "conversationId": cid, "state": state})
                for n, preview in enumerate(previews):  # each one's last word, applied
                    expect(preview).to_have_text(
                        f"Visitor {n} is typing\u2026" if state == "on" else f"hola {n}"
                    )

            # the first hint of a quiet quarter-second goes at once, the next ones together
            # when it is up: three visitors at once make a batch (a few tries, as the three
            # frames may straddle a window; the typing frame rate allows five changes at once)
            for _ in range(2):
                everyone("on")
                if any('"activity_batch"' in f for f in frames):
                    break
                everyone("off")
            assert any('"activity_batch"' in f for f in frames), frames
            for widget, (_, cid) in zip(widgets, chats, strict=True):
                widget.say({"type": "typing", "conversationId": cid, "state": "off"})
            for n, preview in enumerate(previews):
                expect(preview).to_have_text(f"hola {n}")
            assert problems == [], problems

        await in_browser(scenario)


async def test_the_agent_sees_which_of_their_messages_the_visitor_has_seen(
    server: Server,
) -> None:
    # before: an agent could not tell whether the visitor had read the answer
    [(a, ta)], v, cid = await accepted_chat_of(server, agents=1)

    async with listening(server, f"/api/chat/widgets/{v.widget_id}/ws?token={v.token}") as widget:

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page, "open")
            conv_row(page, cid).locator(".conv-open").click()
            composer = page.locator("#composer-text")
            for text in ("Hola Carlos", "¿Qué auto es?"):
                composer.fill(text)
                composer.press("Enter")
            mine = page.locator('#messages .msg[data-sender="agent"]')
            expect(mine).to_have_count(2)
            expect(page.locator(".msg-seen")).to_have_count(0)  # not read yet
            first = widget.wait_for(
                lambda f: (
                    f.get("type") == "message_created"
                    and f["data"]["message"]["text"] == "Hola Carlos"
                )
            )
            widget.say({"type": "read", "conversationId": cid, "seq": first["seq"]})
            expect(mine.first.locator(".msg-seen")).to_have_text("Seen")
            expect(page.locator(".msg-seen")).to_have_count(1)
            widget.say({"type": "read", "conversationId": cid})  # everything
            expect(mine.last.locator(".msg-seen")).to_have_text("Seen")
            expect(page.locator(".msg-seen")).to_have_count(1)  # the latest seen only
            shot(page, "seen")
            page.reload()  # the mark comes with the conversation
            expect(page.locator("#live-indicator")).to_have_text("Live")
            expect(mine.last.locator(".msg-seen")).to_have_text("Seen")
            assert problems == [], problems

        await in_browser(scenario)


async def test_transfer_hands_the_chat_to_an_online_colleague(server: Server) -> None:
    # before: an agent could not pass a chat on; only going offline moved it
    # Bea (the third) stays offline
    [(a, ta), (b, tb), (c, _tc)], v, cid = await accepted_chat_of(server, agents=3)

    async with (
        listening(server, f"/api/chat/widgets/{v.widget_id}/ws?token={v.token}") as widget,
        listening(server, f"/api/chat/inbox/ws?token={tb}"),  # Ana is online
    ):

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page, "assigned")
            conv_row(page, cid).locator(".conv-open").click()
            page.locator("#thread-transfer").click()
            dialog = page.locator("#transfer-dialog")
            expect(dialog).to_be_visible()
            ana = dialog.locator(f'input[value="{b.agent_id}"]')
            expect(ana).to_be_enabled()
            expect(ana).to_be_focused()  # the first one free: keyboard first
            expect(dialog.locator(f'input[value="{c.agent_id}"]')).to_be_disabled()  # offline
            expect(dialog.locator(f'input[value="{a.agent_id}"]')).to_be_disabled()  # has it
            expect(dialog).to_contain_text("offline")
            shot(page, "transfer_dialog")
            page.keyboard.press("Space")
            page.locator("#transfer-send").click()
            expect(dialog).to_be_hidden()
            expect(page.locator("#thread-notice")).to_have_text("Transferred to Ana Ruiz.")
            expect(page.locator(".thread-assignee")).to_have_text("Assigned to Ana Ruiz")
            expect(conv_row(page, cid)).to_have_count(0)  # no longer in my Assigned to me
            heard = widget.wait_for(lambda f: f.get("type") == "conversation_assigned")
            assert heard["data"]["agent"]["id"] == b.agent_id
            assert heard["data"]["previousAgent"]["id"] == a.agent_id
            assert problems == [], problems

        await in_browser(scenario)


async def test_slash_in_the_composer_finds_a_canned_reply_and_fills_it_in(server: Server) -> None:
    # before: an agent typed the same answers again and again
    [(a, ta)], v, cid = await accepted_chat_of(server, agents=1)
    async with server.http(ta) as client:
        for shortcut, text in (
            ("thanks", "Thank you {{visitor.first_name}}! I'm {{agent.name}}, {{unknown}}."),
            ("hours", "We answer 9 to 6."),
            ("bye", "Thanks for chatting, {{visitor.name}}."),
        ):
            r = await client.post(
                "/api/chat/canned-replies", json={"shortcut": shortcut, "text": text}
            )
            assert r.status_code == 201, r.text

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, "open")
        conv_row(page, cid).locator(".conv-open").click()
        composer = page.locator("#composer-text")
        expect(composer).to_be_enabled()
        options = page.locator("#canned-list [role=option]")
        composer.press_sequentially("/")
        expect(options).to_have_count(3)  # every reply, by shortcut
        expect(options.locator(".canned-option-shortcut")).to_have_text(
            ["/bye", "/hours", "/thanks"]
        )
        composer.press_sequentially("tha")  # "/tha": its shortcut first, then a text holding it
        expect(options.locator(".canned-option-shortcut")).to_have_text(["/thanks", "/bye"])
        expect(options.first).to_have_attribute("aria-selected", "true")
        expect(page.locator("#canned-status")).to_contain_text("/thanks, 1 of 2")
        shot(page, "canned")
        composer.press("ArrowDown")
        expect(options.last).to_have_attribute("aria-selected", "true")
        composer.press("ArrowDown")  # round to the first
        composer.press("Enter")  # inserts, does not send
        expect(page.locator("#canned-list")).to_be_hidden()
        expect(composer).to_have_value(f"Thank you Carlos! I'm {a.agent_name}, {{{{unknown}}}}.")
        expect(page.locator('#messages .msg[data-sender="agent"]')).to_have_count(0)
        composer.fill("")
        composer.press_sequentially("/zzz")
        expect(page.locator("#canned-status")).to_have_text("No canned reply matches.")
        composer.press("Escape")
        composer.fill("")
        composer.press_sequentially("/bye")
        expect(options).to_have_count(1)
        composer.press("Tab")
        expect(composer).to_have_value("Thanks for chatting, Carlos Lopez.")
        composer.press("Enter")  # now it sends
        expect(page.locator('#messages .msg[data-sender="agent"] .msg-text')).to_have_text(
            ["Thanks for chatting, Carlos Lopez."]
        )
        assert problems == [], problems

    await in_browser(scenario)


async def test_an_internal_note_stays_with_the_team_and_its_mention_finds_the_colleague(
    server: Server,
) -> None:
    # before: agents had nowhere to tell each other about a chat but the chat itself
    [(a, ta), (b, tb)], v, cid = await accepted_chat_of(server, agents=2)
    secret = "she asked for the yearly price"

    async with listening(server, f"/api/chat/widgets/{v.widget_id}/ws?token={v.token}") as widget:

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            hers, her_problems = new_page(browser, server, tb)
            open_inbox(page, "open")
            open_inbox(hers, "open")
            conv_row(page, cid).locator(".conv-open").click()
            page.locator("#mode-note").click()
            expect(page.locator("#mode-note")).to_have_attribute("aria-pressed", "true")
            composer = page.locator("#composer-text")
            expect(composer).to_be_focused()
            composer.fill(f"@Ana {secret}")
            composer.press("Enter")
            note = page.locator("#messages .msg-note")
            expect(note).to_have_count(1)
            expect(note.locator(".note-label")).to_have_text("Internal note")
            expect(note.locator(".msg-text")).to_have_text(f"@Ana {secret}")
            shot(page, "note")
            expect(hers.locator("#mentions-new")).to_have_text("1")  # live, on her page
            hers.locator("#mentions-open").click()
            mention = hers.locator("#mentions-list .mention")
            expect(mention).to_have_count(1)
            expect(mention.locator(".mention-text")).to_have_text(f"@Ana {secret}")
            mention.get_by_role("button", name="Open").click()
            expect(hers.locator("#mentions-dialog")).to_be_hidden()
            expect(hers.locator("#messages .msg-note .msg-text")).to_have_text(f"@Ana {secret}")

            page.locator("#mode-reply").click()  # back to the visitor
            composer.fill("¿Anual o mensual?")
            composer.press("Enter")
            expect(page.locator('#messages .msg[data-sender="agent"] .msg-text')).to_have_text(
                ["¿Anual o mensual?"]
            )
            widget.wait_for(lambda f: f.get("type") == "message_created" and "Anual" in str(f))
            page.reload()  # the note comes back with the conversation, in its place
            expect(page.locator("#messages .msg-note")).to_have_count(1)
            expect(page.locator("#messages > li").nth(1)).to_have_attribute(
                "data-note-id", re.compile(".+")
            )
            assert problems == [] and her_problems == [], (problems, her_problems)

        await in_browser(scenario)
        assert secret not in str(list(widget))  # the visitor's socket never carried it


async def test_the_visitors_rating_shows_in_the_details_live(server: Server) -> None:
    # before: an agent never learned what the visitor thought of the chat
    [(a, ta)], v, cid = await accepted_chat_of(server)
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/solve")).status_code == 200

    async def rate(score: int, comment: str) -> None:
        async with server.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{v.widget_id}/conversations/{cid}/rating",
                json={"score": score, "comment": comment},
            )
            assert r.status_code == 200, r.text

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, "solved")
        conv_row(page, cid).locator(".conv-open").click()
        rating = details(page, "rating")
        expect(rating).to_have_text("—")
        call(rate, 4, "Quick <b>and</b> clear")
        expect(rating).to_have_text("★★★★☆ 4/5 — “Quick <b>and</b> clear”")  # as text
        page.reload()
        expect(rating).to_have_text("★★★★☆ 4/5 — “Quick <b>and</b> clear”")
        assert problems == [], problems

    await in_browser(scenario)


async def accepted_chat_of(
    srv: Server, agents: int = 1
) -> tuple[list[tuple[Seed, str]], Visitor, str]:
    """Signed-in agents, and a visitor's chat ("hola", as Carlos Lopez) the first one accepted."""
    team = await signed_in(srv, agents=agents)
    v = await new_visitor(srv, team[0][0].widget_id)
    cid = (await start_chat(srv, v, "hola"))["id"]
    await accept_as(srv, team[0][1], cid)
    return team, v, cid


async def accept_as(srv: Server, token: str, cid: str) -> None:
    async with srv.http(token) as client:
        r = await client.post(f"/api/chat/conversations/{cid}/accept")
        assert r.status_code == 200, r.text


async def test_messages_flow_both_ways_live(server: Server) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)

    async with visitor_socket(server, v) as widget:

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page, "waiting")
            cid = call(start_chat, server, v, "hola")["id"]
            conv_row(page, cid).locator('[data-action="open"]').click()
            thread = page.locator("#thread")
            expect(thread).to_have_attribute("data-status", "WAITING")
            expect(page.locator("#messages .msg")).to_have_count(1)
            composer = page.locator("#composer-text")
            expect(composer).to_be_disabled()  # accept first
            expect(page.locator("#composer-hint")).to_have_text("Accept this chat to reply.")
            expect(conv_row(page, cid)).to_have_attribute("data-unread", "false")  # opened

            page.locator("#thread-accept").click()
            expect(thread).to_have_attribute("data-status", "OPEN")
            expect(composer).to_be_enabled()
            expect(count(page, "assigned")).to_have_text("1")

            call(visitor_says, server, v, cid, "¿Cubre robo total?")  # visitor -> agent
            visitor_msgs = page.locator('#messages .msg[data-sender="visitor"]')
            expect(visitor_msgs).to_have_count(2)
            expect(visitor_msgs.last.locator(".msg-text")).to_have_text("¿Cubre robo total?")
            expect(visitor_msgs.last.locator(".msg-sender")).to_have_text("Carlos Lopez")
            expect(count(page, "unread")).to_have_text("0")  # open and visible: read

            composer.fill("Sí, cubre robo total.")  # agent -> visitor, Shift+Enter = new line
            composer.press("Shift+Enter")
            composer.type("¿Le envío una cotización?")
            composer.press("Enter")
            text = "Sí, cubre robo total.\n¿Le envío una cotización?"
            said = call(
                next_frame,
                widget,
                "message_created",
                lambda f: f["data"]["message"]["senderType"] == "agent",
            )
            assert said["data"]["message"]["text"] == text
            assert said["data"]["message"]["senderName"] == a.agent_name
            mine = page.locator('#messages .msg[data-sender="agent"]')
            expect(mine).to_have_count(1)  # confirmed once, not doubled by the event
            expect(mine.locator(".msg-text")).to_have_text(text)
            expect(mine).to_have_attribute("data-message-id", said["data"]["message"]["id"])
            expect(mine).not_to_have_attribute("data-state", re.compile("."))
            expect(composer).to_have_value("")
            expect(conv_row(page, cid)).to_have_count(0)  # not waiting any more
            view_button(page, "open").click()
            expect(conv_row(page, cid).locator(".conv-preview")).to_have_text(f"You: {text}")
            shot(page, "conversation")

            stored = call(visitor_view, server, v)
            assert [m["text"] for m in stored["messages"]] == ["hola", "¿Cubre robo total?", text]
            assert problems == [], problems

        await in_browser(scenario)


async def test_solve_moves_it_to_solved_in_every_inbox_and_reopen_brings_it_back(
    server: Server,
) -> None:
    (a, ta), (b, tb) = await signed_in(server, agents=2)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page_a, problems_a = new_page(browser, server, ta)
        page_b, problems_b = new_page(browser, server, tb)
        open_inbox(page_a, f"open/{cid}")
        open_inbox(page_b, "open")
        expect(conv_row(page_b, cid)).to_have_attribute("data-status", "OPEN")
        expect(page_a.locator("#thread")).to_have_attribute("data-status", "OPEN")
        for view, title in [
            ("unread", "Unread"),
            ("assigned", "Assigned to me"),
            ("unassigned", "Unassigned"),
            ("all", "All chats"),
        ]:  # every view, as agent A sees it
            view_button(page_a, view).click()
            expect(page_a.locator("#list-title")).to_have_text(title)
            expect(page_a.locator("#list-loading")).to_be_hidden()
            shot(page_a, f"view_{view}")

        page_a.locator("#thread-solve").click()
        for page in (page_a, page_b):
            expect(conv_row(page, cid)).to_have_count(0 if page is page_b else 1)
            expect(count(page, "solved")).to_have_text("1")
            expect(count(page, "open")).to_have_text("0")
        expect(page_a.locator("#thread")).to_have_attribute("data-status", "SOLVED")
        expect(details(page_a, "status")).to_have_text("Solved")
        expect(page_a.locator("#composer-text")).to_be_disabled()
        expect(page_a.locator("#thread-reopen")).to_be_visible()
        view_button(page_b, "solved").click()
        expect(conv_row(page_b, cid)).to_have_attribute("data-status", "SOLVED")
        view_button(page_a, "solved").click()
        expect(conv_row(page_a, cid)).to_have_attribute("data-status", "SOLVED")
        shot(page_a, "solved")

        page_b.locator(f'#conversation-list [data-conversation-id="{cid}"] .conv-open').click()
        page_b.locator("#thread-reopen").click()  # B reopens: OPEN, assigned to B
        expect(page_b.locator("#thread")).to_have_attribute("data-status", "OPEN")
        for page in (page_a, page_b):
            expect(conv_row(page, cid)).to_have_count(0)
            expect(count(page, "solved")).to_have_text("0")
            expect(count(page, "open")).to_have_text("1")
        expect(details(page_a, "assignee")).to_have_text(b.agent_name)
        expect(count(page_b, "assigned")).to_have_text("1")
        expect(count(page_a, "assigned")).to_have_text("0")
        assert problems_a == [] and problems_b == [], (problems_a, problems_b)

    await in_browser(scenario)
    assert (await visitor_view(server, v))["status"] == "OPEN"


# --- live visitors ----------------------------------------------------------------------------


async def test_live_visitors_count_up_and_leave_after_the_last_heartbeat(
    database_url: str,
) -> None:
    async with open_server(database_url, visitor_expiry_seconds=3) as server:
        [(a, ta)] = await signed_in(server)

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page, "visitors")
            expect(page.locator("#list-empty")).to_contain_text("No visitors on your site")
            shot(page, "visitors_empty")

            url = "https://shop.example.com/seguros/auto?plan=basico"
            v = call(new_visitor, server, a.widget_id, url)
            row = page.locator(f'#visitor-list [data-visitor-id="{v.visitor_id}"]')
            expect(row).to_have_count(1)
            expect(count(page, "visitors")).to_have_text("1")
            link = row.locator(".visitor-url a")
            expect(link).to_have_text(url)
            expect(link).to_have_attribute("href", url)
            expect(link).to_have_attribute("target", "_blank")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
            expect(row.locator(".visitor-location")).to_have_text("—")
            expect(row.locator(".in-chat-badge")).to_have_count(0)
            name = row.locator(".visitor-name").text_content() or ""
            assert name and v.visitor_id not in name and "unknown" not in name.lower()

            call(heartbeat, server, v, url)  # still here: the clock keeps running
            on_site = row.locator(".time-on-site")
            before = int(on_site.get_attribute("data-seconds") or "0")
            page.wait_for_function(
                """([id, before]) => {
                    const t = document.querySelector(
                        `[data-visitor-id="${id}"] .time-on-site`);
                    return t && Number(t.getAttribute("data-seconds")) > before;
                }""",
                arg=[v.visitor_id, before],
            )
            after = int(on_site.get_attribute("data-seconds") or "0")
            assert after > before, (before, after)
            assert re.fullmatch(r"\d+:\d\d", on_site.text_content() or ""), on_site.text_content()
            shot(page, "visitors")

            # no more heartbeats: gone 3 s after the last one, without a reload
            expect(row).to_have_count(0)
            expect(count(page, "visitors")).to_have_text("0")
            expect(page.locator("#list-empty")).to_be_visible()
            assert problems == [], problems

        await in_browser(scenario)


async def ten_at_a_time(n: int, one: Callable[[], Awaitable[None]]) -> None:
    """``one()`` ``n`` times, ten running at once."""

    async def run(k: int) -> None:
        for _ in range(k):
            await one()

    async with trio.open_nursery() as nursery:
        for k in [n // 10 + (1 if i < n % 10 else 0) for i in range(10)]:
            nursery.start_soon(run, k)


async def mint_visitors(srv: Server, widget_id: str, n: int) -> list[str]:
    """``n`` visitors at once: their presence reaches the inbox in batches."""
    out: list[str] = []

    async def mint() -> None:
        out.append((await new_visitor(srv, widget_id)).visitor_id)

    await ten_at_a_time(n, mint)
    return out


async def test_a_crowd_of_live_visitors_comes_a_page_at_a_time_and_batches_land(
    server: Server,
) -> None:
    # before: the list loaded every live visitor at once, and a presence batch was ignored
    [(a, ta)] = await signed_in(server)
    crowd = await mint_visitors(server, a.widget_id, 105)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        frames: list[str] = []

        def frame(payload: Any) -> None:
            frames.append(payload)

        page.on("websocket", lambda ws: ws.on("framereceived", frame))
        open_inbox(page, "visitors")
        rows = page.locator("#visitor-list .visitor-row")
        expect(rows).to_have_count(100)  # the first page
        expect(count(page, "visitors")).to_have_text("105")  # counted by the server
        expect(page.locator("#visitors-shown")).to_have_text("Showing 100 of 105")
        shown = page.eval_on_selector_all(
            "#visitor-list .visitor-row", "rows => rows.map(r => r.dataset.visitorId)"
        )
        # the first page is the server's first 100 by arrival; the page shows them by arrival
        # as the wire gives it (milliseconds, then the id: visitors minted within one
        # millisecond may stand in another order than the microseconds the server pages by)
        assert set(shown) == set(crowd_sorted[:100])
        assert shown == sorted(shown, key=lambda vid: (arrival[vid], vid))

        late = call(new_visitor, server, a.widget_id).visitor_id  # beyond the loaded page
        expect(count(page, "visitors")).to_have_text("106")
        expect(page.locator(f'[data-visitor-id="{late}"]')).to_have_count(0)

        page.locator("#visitors-more-button").click()
        expect(rows).to_have_count(106)
        expect(page.locator("#visitors-more")).to_be_hidden()
        expect(page.locator(f'#visitor-list [data-visitor-id="{late}"]')).to_have_count(1)
        shot(page, "visitors_paged")

        # the whole list is here now: a crowd arriving at once lands from its batch frames
        more = call(mint_visitors, server, a.widget_id, 8)
        expect(rows).to_have_count(114)
        expect(count(page, "visitors")).to_have_text("114")
        for vid in more:
            expect(page.locator(f'#visitor-list [data-visitor-id="{vid}"]')).to_have_count(1)
        assert any('"visitor_presence_batch"' in f for f in frames)
        assert problems == [], problems

    stored = await server.run(
        queries.select_live_visitors, a.tenant_id, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    crowd_sorted = [v.visitor_id for v in stored]
    arrival = {v.visitor_id: v.first_seen_at.replace(microsecond=0) + dt.timedelta(
        milliseconds=v.first_seen_at.microsecond // 1000) for v in stored}  # fmt: skip
    assert sorted(crowd_sorted) == sorted(crowd)
    await in_browser(scenario)


async def many_chats(srv: Server, widget_id: str, n: int) -> list[str]:
    """``n`` waiting chats; their ids in the order they were created."""
    made: list[tuple[str, str]] = []

    async def make() -> None:
        chat = await start_chat(srv, await new_visitor(srv, widget_id), "hola")
        made.append((chat["createdAt"], chat["id"]))

    await ten_at_a_time(n, make)
    return [cid for _, cid in sorted(made)]


async def test_a_long_view_comes_a_page_at_a_time_and_live_chats_still_land_on_top(
    server: Server,
) -> None:
    # before: a view showed its 200 newest conversations and nothing told of the others
    # (the widget waits an hour: on a loaded machine, making 205 chats can outlast a 60 s wait,
    # and a chat that timed out leaves the Waiting view: this test is about pages, not timeouts)
    [(a, ta)] = await signed_in(server, wait_timeout=3600)
    chats = await many_chats(server, a.widget_id, 205)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, "waiting")
        rows = page.locator("#conversation-list .conv-row")
        expect(rows).to_have_count(200)
        expect(count(page, "waiting")).to_have_text("205")
        more = page.locator("#conversations-more-button")
        expect(more).to_be_visible()
        expect(conv_row(page, chats[-1])).to_have_count(1)  # the newest
        expect(conv_row(page, chats[0])).to_have_count(0)  # the oldest: on the next page

        late = call(start_chat, server, call(new_visitor, server, a.widget_id), "late")["id"]
        expect(conv_row(page, late)).to_have_count(1)  # live, on top
        expect(rows.first).to_have_attribute("data-conversation-id", late)
        expect(conv_row(page, chats[5])).to_have_count(0)  # pushed to the second page
        expect(rows).to_have_count(200)

        more.click()
        expect(rows).to_have_count(206)
        expect(conv_row(page, chats[0])).to_have_count(1)
        expect(conv_row(page, chats[5])).to_have_count(1)
        expect(page.locator("#conversations-more")).to_be_hidden()
        shot(page, "waiting_paged")

        page.locator('[data-view="open"]').click()  # another view starts from its first page
        expect(page.locator("#list-empty")).to_be_visible()
        expect(page.locator("#conversations-more")).to_be_hidden()
        assert problems == [], problems

    await in_browser(scenario)


async def long_chat(srv: Server, who: Seed, token: str, replies: int) -> tuple[Visitor, str]:
    """A chat the agent accepted and answered ``replies`` times (m1…): 1 + replies messages."""
    v = await new_visitor(srv, who.widget_id)
    cid = (await start_chat(srv, v, "m0"))["id"]
    async with srv.http(token) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        for n in range(1, replies + 1):
            r = await client.post(f"/api/chat/conversations/{cid}/messages", json={"text": f"m{n}"})
            assert r.status_code == 201, r.text
    return v, cid


async def test_a_long_thread_opens_at_its_latest_and_reads_back_on_demand(
    server: Server,
) -> None:
    # before: opening a conversation loaded every message it ever had
    [(a, ta)] = await signed_in(server)
    _, cid = await long_chat(server, a, ta, 204)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        page.goto(f"/inbox#open/{cid}")
        messages = page.locator("#messages [data-message-id]")
        expect(messages).to_have_count(200)  # the latest 200: m5 … m204
        expect(messages.first.locator(".msg-text")).to_have_text("m5")
        expect(messages.last.locator(".msg-text")).to_have_text("m204")
        earlier = page.locator("#thread-earlier")
        expect(earlier).to_be_visible()
        earlier.click()
        expect(messages).to_have_count(205)
        expect(messages.first.locator(".msg-text")).to_have_text("m0")
        expect(earlier).to_have_count(0)  # nothing earlier now
        expect(messages.first).to_be_focused()
        shot(page, "thread_earlier")
        assert problems == [], problems

    await in_browser(scenario)


async def test_start_chat_from_live_visitors_reaches_the_visitor(server: Server) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)
    hello = "Hi! Can I help you choose a plan?"

    async with visitor_socket(server, v) as widget:

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page, "visitors")
            row = page.locator(f'#visitor-list [data-visitor-id="{v.visitor_id}"]')
            row.get_by_role("button", name="Start chat").click()
            dialog = page.locator("#start-chat-dialog")
            expect(dialog).to_be_visible()
            page.locator("#start-chat-text").fill(hello)
            shot(page, "start_chat_dialog")
            page.locator("#start-chat-send").click()
            expect(dialog).to_be_hidden()

            thread = page.locator("#thread")
            expect(thread).to_have_attribute("data-status", "OPEN")
            mine = page.locator('#messages .msg[data-sender="agent"]')
            expect(mine).to_have_count(1)
            expect(mine.locator(".msg-text")).to_have_text(hello)
            expect(page.locator("#composer-text")).to_be_enabled()
            expect(details(page, "assignee")).to_have_text(f"{a.agent_name} (you)")
            expect(row.locator(".in-chat-badge")).to_have_text("In chat")  # live, from the event
            expect(row.get_by_role("button", name="Open chat")).to_be_visible()
            expect(count(page, "assigned")).to_have_text("1")
            expect(count(page, "open")).to_have_text("1")
            shot(page, "visitors_in_chat")

            said = call(next_frame, widget, "message_created", lambda f: True)
            assert said["data"]["message"]["text"] == hello
            seen = call(visitor_view, server, v)
            assert seen["status"] == "OPEN"
            assert seen["assignee"]["id"] == a.agent_id
            assert seen["messages"][0]["senderType"] == "agent"
            assert seen["messages"][0]["text"] == hello
            assert thread.get_attribute("data-conversation-id") == seen["id"]
            assert problems == [], problems

        await in_browser(scenario)


# --- details, escaping, tenancy ---------------------------------------------------------------


CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


async def test_details_show_a_dash_for_no_phone_and_the_visitor_id_only_in_its_field(
    server: Server,
) -> None:
    [(a, ta)] = await signed_in(server)
    url = "https://shop.example.com/pricing"
    v = await new_visitor(server, a.widget_id, url)
    async with server.http(v.token, headers={"User-Agent": CHROME_MAC}) as client:
        r = await client.post(
            f"/api/chat/widgets/{v.widget_id}/conversations",
            json={"name": "Carlos Lopez", "email": "carlos@example.com", "message": "hola"},
        )
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
    async with server.http() as client:  # an offline message, with a phone the person typed
        r = await client.post(
            f"/api/chat/widgets/{a.widget_id}/offline-messages",
            json={
                "name": "Lucía Pérez",
                "email": "lucia@example.com",
                "message": "Llámenme mañana, por favor.",
                "phone": "+34 600 000 000",
            },
        )
        assert r.status_code == 201, r.text
        offline = r.json()

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, f"waiting/{cid}")
        expect(page.locator("#details-body")).to_be_visible()
        expect(details(page, "status")).to_have_text("Waiting")
        expect(details(page, "assignee")).to_have_text("Unassigned")
        expect(details(page, "chatId")).to_have_text(cid)
        expect(details(page, "created")).to_contain_text(str(dt.datetime.now(dt.UTC).year))
        expect(details(page, "name")).to_have_text("Carlos Lopez")
        expect(details(page, "email")).to_have_text("carlos@example.com")
        expect(details(page, "phone")).to_have_text("—")
        expect(details(page, "visitorId")).to_have_text(v.visitor_id)
        expect(details(page, "ip")).to_have_text("127.0.0.1")
        link = details(page, "currentUrl").locator("a")
        expect(link).to_have_text(url)
        expect(link).to_have_attribute("href", url)
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(details(page, "browser")).to_have_text("Chrome 120")
        expect(details(page, "os")).to_have_text("Mac OS X 10.15")
        expect(details(page, "location")).to_have_text("—")
        # the visitor id is in its own field and nowhere else on the page
        elsewhere = page.evaluate(
            """() => {
                const main = document.querySelector("main").cloneNode(true);
                main.querySelector('[data-field="visitorId"]').remove();
                return main.textContent;
            }"""
        )
        assert v.visitor_id not in elsewhere
        assert "unknown" not in page.locator("main").inner_text().lower()
        shot(page, "details")

        # an offline message is its own kind: not waiting for Accept, a mail reply, Solve
        view_button(page, "unassigned").click()
        row = conv_row(page, offline["id"])
        expect(row.locator(".kind-badge")).to_have_text("Offline message")
        expect(row.get_by_role("button", name="Accept Chat")).to_have_count(0)
        row.locator(".conv-open").click()
        expect(details(page, "kind")).to_have_text("Offline message")
        expect(details(page, "phone")).to_have_text("+34 600 000 000")
        expect(details(page, "name")).to_have_text("Lucía Pérez")
        expect(page.locator("#thread-accept")).to_be_hidden()
        reply = page.get_by_role("link", name="Reply by email")
        expect(reply).to_have_attribute("href", re.compile(r"^mailto:lucia(%40|@)example\.com\?"))
        expect(page.locator("#composer-text")).to_be_disabled()
        expect(page.locator("#composer-hint")).to_contain_text("Reply by email")
        shot(page, "offline_message")
        page.locator("#thread-solve").click()
        expect(details(page, "status")).to_have_text("Solved")
        expect(row).to_have_count(0)
        expect(count(page, "solved")).to_have_text("1")
        assert conv_row(page, cid).count() == 1  # the live chat is still unassigned
        assert problems == [], problems

    await in_browser(scenario)


async def test_markup_from_visitors_shows_as_text(server: Server) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, "waiting")
        cid = call(start_chat, server, v, XSS, name=XSS)["id"]
        row = conv_row(page, cid)
        expect(row.locator(".conv-name")).to_have_text(XSS)
        expect(row.locator(".conv-preview")).to_have_text(XSS)
        row.locator(".conv-open").click()
        expect(page.locator("#messages .msg-text")).to_have_text(XSS)
        expect(page.locator("#messages .msg-sender")).to_have_text(XSS)
        expect(page.locator("#thread-name")).to_have_text(XSS)
        expect(details(page, "name")).to_have_text(XSS)
        page.locator("#thread-accept").click()
        call(visitor_says, server, v, cid, "<script>alert(2)</script><b>bold</b>")
        expect(page.locator("#messages .msg-text").last).to_have_text(
            "<script>alert(2)</script><b>bold</b>"
        )
        injected = "main img, main b, main script:not(#initial-me)"
        assert page.locator(injected).count() == 0
        shot(page, "escaping")
        assert problems == [], problems  # no alert dialog, no error

    await in_browser(scenario)


async def test_an_agent_of_another_tenant_sees_none_of_it(server: Server) -> None:
    [(a, ta)] = await signed_in(server, tenant_name="InsureMax")
    [(_other, to)] = await signed_in(server, tenant_name="Rival Seguros")

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        mine, problems_a = new_page(browser, server, ta)
        theirs, problems_o = new_page(browser, server, to)
        open_inbox(mine, "waiting")
        open_inbox(theirs, "waiting")
        v = call(new_visitor, server, a.widget_id)
        cid = call(start_chat, server, v, "hola")["id"]
        expect(conv_row(mine, cid)).to_have_count(1)  # it happened, live
        expect(count(mine, "waiting")).to_have_text("1")
        expect(count(mine, "visitors")).to_have_text("1")

        for view in COUNT_VIEWS:  # and the other tenant's agent sees none of it
            view_button(theirs, view).click()
            expect(theirs.locator("#list-empty")).to_be_visible()
            expect(count(theirs, view)).to_have_text("0")
        assert theirs.locator("[data-conversation-id], [data-visitor-id]").count() == 0
        expect(theirs).to_have_title("Inbox · Curbe Chat")
        shot(theirs, "other_tenant_visitors")
        theirs.goto(f"/inbox#all/{cid}")  # not by its id either
        expect(theirs.locator("#thread-notice")).to_contain_text("does not exist")
        assert "hola" not in theirs.locator("main").inner_text()
        assert problems_a == [] and problems_o == [], (problems_a, problems_o)

    await in_browser(scenario)


# --- time zones -------------------------------------------------------------------------------


async def test_one_instant_reads_right_in_mexico_city_and_madrid(database_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    clock = ManualClock(offset=now.replace(hour=13, minute=20, second=0, microsecond=0) - now)
    async with open_server(database_url, clock=clock) as server:
        [(a, ta)] = await signed_in(server)
        v = await new_visitor(server, a.widget_id)
        chat = await start_chat(server, v, "¿A qué hora abren?")
        written = chat["messages"][0]["createdAt"]
        moment = dt.datetime.fromisoformat(written.replace("Z", "+00:00"))
        assert (moment.hour, moment.minute) == (13, 20), written

        def local(zone: str) -> str:
            t = moment.astimezone(ZoneInfo(zone))
            return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"

        assert local("America/Mexico_City") == "7:20 AM"
        assert local("Europe/Madrid") in ("2:20 PM", "3:20 PM")  # CET, or CEST in summer

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            problems: list[str] = []
            for zone in ("America/Mexico_City", "Europe/Madrid"):
                page, seen = new_page(browser, server, ta, timezone_id=zone)
                problems += seen
                open_inbox(page, f"waiting/{chat['id']}")
                stamp = page.locator("#messages .msg time").first
                expect(stamp).to_have_text(local(zone))  # today: the time alone
                expect(stamp).to_have_attribute("datetime", written)
                hm = local(zone).split(" ")[0]
                expect(details(page, "created")).to_contain_text(hm + ":")
                shot(page, "time_" + zone.split("/")[1].lower())
            assert problems == [], problems

        await in_browser(scenario)


# --- presence ---------------------------------------------------------------------------------


async def test_the_online_away_toggle_drives_agents_online(server: Server) -> None:
    [(a, ta)] = await signed_in(server)
    assert (await widget_config(server, a.widget_id))["agentsOnline"] is False

    async with open_socket(server, f"/api/chat/inbox/ws?token={ta}&presence=0") as watch:

        def presence(online: bool) -> None:
            call(
                next_frame,
                watch,
                "agent_presence_update",
                lambda f: f["data"]["agentsOnline"] is online,
            )
            assert call(widget_config, server, a.widget_id)["agentsOnline"] is online

        def scenario(browser: Any) -> None:
            from playwright.sync_api import expect

            page, problems = new_page(browser, server, ta)
            open_inbox(page)
            presence(True)  # an open inbox makes the agent available
            status = page.locator("#my-status")
            expect(status).to_have_attribute("data-status", "online")
            page.get_by_role("button", name="Away").click()
            presence(False)
            expect(status).to_have_attribute("data-status", "away")
            expect(page.get_by_role("button", name="Away")).to_have_attribute(
                "aria-pressed", "true"
            )
            shot(page, "away")
            page.get_by_role("button", name="Online", exact=True).click()
            presence(True)
            expect(status).to_have_attribute("data-status", "online")

            # the profile: a new name shows at once and is what visitors will see
            page.locator("#profile-open").click()
            page.locator("#profile-name").fill("Javier L.")
            page.locator("#profile-avatar").fill("javascript:alert(1)")
            page.locator("#profile-save").click()
            expect(page.locator("#profile-error")).to_be_visible()
            page.locator("#profile-avatar").fill("")
            page.locator("#profile-save").click()
            expect(page.locator("#profile-dialog")).to_be_hidden()
            expect(page.locator(".whoami-name")).to_have_text("Javier L.")
            me = call(agent_get, server, ta, "/api/auth/me")
            assert me["agent"]["name"] == "Javier L."
            page.close()
            presence(False)  # closing the inbox ends it
            assert problems == [], problems

        await in_browser(scenario)


# --- never a reload: reconnects and retries ------------------------------------------------------


async def test_a_dropped_connection_catches_up_without_missing_or_doubling(
    server: Server,
) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        sockets: list[Any] = []
        offline = {"on": False}

        def route(ws: Any) -> None:  # the page's inbox socket, through a switch the test holds
            if offline["on"]:
                ws.close(code=4000, reason="test: network down")
                return
            ws.connect_to_server()
            sockets.append(ws)

        page.route_web_socket(re.compile(r"/api/chat/inbox/ws"), route)
        open_inbox(page, f"open/{cid}")
        visitor_msgs = page.locator('#messages .msg[data-sender="visitor"]')
        expect(visitor_msgs).to_have_count(1)

        offline["on"] = True
        sockets[-1].close(code=4000, reason="test: network down")
        expect(page.locator("#live-indicator")).to_have_text("Reconnecting…")
        expect(page.locator("#my-status")).to_have_attribute("data-status", "offline")
        shot(page, "reconnecting")
        # meanwhile: a message in the open conversation and a new waiting chat elsewhere
        call(visitor_says, server, v, cid, "¿sigue ahí?")
        other = call(new_visitor, server, a.widget_id)
        new_cid = call(start_chat, server, other, "buenas tardes", name="Ana Gómez")["id"]

        offline["on"] = False
        page.evaluate("window.dispatchEvent(new Event('online'))")  # back: reconnect at once
        expect(page.locator("#live-indicator")).to_have_text("Live")
        expect(visitor_msgs).to_have_count(2)  # caught up by resume
        expect(visitor_msgs.last.locator(".msg-text")).to_have_text("¿sigue ahí?")
        expect(count(page, "waiting")).to_have_text("1")  # and by refetching counts and views
        view_button(page, "waiting").click()
        expect(conv_row(page, new_cid).locator(".conv-name")).to_have_text("Ana Gómez")

        call(visitor_says, server, v, cid, "¿hola?")  # live again
        expect(visitor_msgs).to_have_count(3)
        texts = [t for t in page.locator("#messages .msg-text").all_text_contents()]
        assert texts == ["hola", "¿sigue ahí?", "¿hola?"], texts
        assert len(sockets) >= 2
        assert problems == [], problems

    await in_browser(scenario)


async def test_a_second_drop_before_the_replay_still_catches_up(server: Server) -> None:
    """The socket comes back, the page refetches its view (whose row says how far the
    conversation has gone) and asks for a replay (in the socket's address), but that socket
    drops before the replay arrives: the next socket must ask again from the last event the page
    got, not from the row's lastSeq, or the message sent while it was offline never shows."""
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        sockets: list[Any] = []
        offline = {"on": False}
        swallowed: list[str] = []

        def route(ws: Any) -> None:
            if offline["on"]:
                ws.close(code=4000, reason="test: network down")
                return
            upstream = ws.connect_to_server()
            if len(sockets) == 1:  # the first socket after the outage: its replay is lost

                def from_server(message: str) -> None:
                    if '"message_created"' in message or '"resumed"' in message:
                        swallowed.append(message)
                    else:
                        ws.send(message)

                upstream.on_message(from_server)
            sockets.append(ws)

        page.route_web_socket(re.compile(r"/api/chat/inbox/ws"), route)
        open_inbox(page, f"open/{cid}")
        visitor_msgs = page.locator('#messages .msg[data-sender="visitor"]')
        expect(visitor_msgs).to_have_count(1)

        offline["on"] = True
        sockets[-1].close(code=4000, reason="test: network down")
        expect(page.locator("#live-indicator")).to_have_text("Reconnecting…")
        missed = call(visitor_says, server, v, cid, "¿sigue ahí?")

        offline["on"] = False
        with page.expect_response(lambda r: "/api/chat/conversations?view=" in r.url):
            page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(page.locator("#live-indicator")).to_have_text("Live")
        expect(visitor_msgs).to_have_count(1)  # the replay was lost on the way
        assert any('"message_created"' in m for m in swallowed), swallowed
        assert f"conversationId={cid}" in sockets[1].url, sockets[1].url
        sockets[-1].close(code=4000, reason="test: dropped again")
        expect(page.locator("#live-indicator")).to_have_text("Reconnecting…")
        page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(page.locator("#live-indicator")).to_have_text("Live")
        expect(visitor_msgs).to_have_count(2)  # asked again from where the page really was
        expect(visitor_msgs.last.locator(".msg-text")).to_have_text("¿sigue ahí?")
        assert len(sockets) == 3
        # asked again from below the message it missed (what the page holds), not from the
        # row's lastSeq, which the refetched view had already moved past it
        again = re.search(r"afterSeq=(\d+)", sockets[2].url)
        assert again is not None and int(again.group(1)) < missed["seq"], sockets[2].url
        assert problems == [], problems

    await in_browser(scenario)


async def test_a_failed_send_is_retried_with_the_same_id_and_stored_once(server: Server) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)
    cid = (await start_chat(server, v, "hola"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        bodies: list[Any] = []

        def fail_the_first_try(route: Any) -> None:
            bodies.append(route.request.post_data_json)
            if len(bodies) == 1:
                route.abort("internetdisconnected")
            else:
                route.continue_()

        page.route(f"**/api/chat/conversations/{cid}/messages", fail_the_first_try)
        open_inbox(page, f"open/{cid}")
        composer = page.locator("#composer-text")
        expect(composer).to_be_enabled()
        composer.fill("Le llamo en cinco minutos.")
        composer.press("Enter")
        mine = page.locator('#messages .msg[data-sender="agent"]')
        expect(mine).to_have_attribute("data-state", "failed")
        expect(mine.locator(".msg-state")).to_contain_text("Failed")
        expect(mine.locator(".msg-text")).to_have_text("Le llamo en cinco minutos.")
        shot(page, "send_failed")
        mine.get_by_role("button", name="Retry").click()
        expect(mine).to_have_attribute("data-message-id", re.compile("^msg_"))
        expect(mine).not_to_have_attribute("data-state", re.compile("."))
        expect(mine).to_have_count(1)
        assert len(bodies) == 2, bodies
        assert bodies[0] == bodies[1], bodies  # the same clientMessageId both times
        assert bodies[0]["clientMessageId"], bodies
        assert problems == [], problems

    await in_browser(scenario)
    stored = await visitor_view(server, v)
    assert [m["text"] for m in stored["messages"]] == ["hola", "Le llamo en cinco minutos."]


async def test_search_finds_messages_and_contacts_and_opens_the_thread_at_the_message(
    server: Server,
) -> None:
    # before: an agent had no way to find a conversation but scrolling the views
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)
    first = f"{XSS} my refund please"
    cid = (await start_chat(server, v, first, name="Ana Pérez", phone="+34 600 123 456"))["id"]
    async with server.http(ta) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/accept")).status_code == 200
        for n in range(1, 205):  # the visitor's message is past the thread's first page
            r = await client.post(f"/api/chat/conversations/{cid}/messages", json={"text": f"m{n}"})
            assert r.status_code == 201, r.text

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        open_inbox(page, "open")
        box = page.locator("#search-input")
        box.fill("refund")
        box.press("Enter")
        status = page.locator("#search-status")
        expect(status).to_have_text("1 message for “refund”.")
        expect(page.locator("#conversation-list")).to_be_hidden()
        hit = page.locator("#search-messages .conv-open")
        expect(hit).to_have_count(1)
        expect(hit.locator("mark")).to_have_text("refund")
        expect(hit.locator(".search-headline")).to_contain_text(XSS)  # as text, not an image
        assert page.locator("#search-results img").count() == 0
        shot(page, "search")

        hit.click()
        found = page.locator("#messages [data-found='true']")
        expect(found).to_have_count(1)
        expect(found.locator(".msg-text")).to_have_text(first)
        expect(found).to_be_focused()
        expect(found).to_be_in_viewport()
        expect(page.locator("#messages [data-message-id]")).to_have_count(205)
        shot(page, "search_found")

        # a contact by the digits of its phone, then Escape back to the view's list
        box.fill("600123")
        box.press("Enter")
        expect(status).to_have_text("1 contact for “600123”.")
        contact = page.locator("#search-contacts .conv-open")
        expect(contact.locator(".conv-name")).to_have_text("Ana Pérez")
        expect(contact.locator("mark")).to_have_text("600 123")
        box.fill("zzz")
        box.press("Enter")
        expect(status).to_have_text("Nothing found for “zzz”.")
        box.press("Escape")
        expect(page.locator("#search-results")).to_be_hidden()
        expect(conv_row(page, cid)).to_be_visible()
        assert problems == [], problems

    await in_browser(scenario)


async def test_the_workspace_language_makes_search_find_spanish_without_accents(
    server: Server,
) -> None:
    [(a, ta)] = await signed_in(server)
    v = await new_visitor(server, a.widget_id)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        page.goto("/settings/workspace")
        language = page.locator("#search-language")
        expect(language).to_have_value("simple")
        language.select_option("spanish")
        page.locator("#workspace-save").click()
        expect(page.locator("#workspace-notice")).to_have_text(
            "Saved. New messages are searched in Spanish."
        )
        page.reload()
        expect(language).to_have_value("spanish")

        cid = call(start_chat, server, v, "¿Tienen la canción en vinilo?")["id"]
        open_inbox(page, "waiting")
        page.locator("#search-input").fill("cancion")  # typed as it comes, without the accent
        hit = page.locator("#search-messages .conv-open")
        expect(hit).to_have_attribute("data-conversation-id", cid)  # found while typing
        expect(hit.locator("mark")).to_have_text("canción")
        assert problems == [], problems

    await in_browser(scenario)


async def test_files_in_the_inbox_thumbnails_in_and_a_document_out_with_progress(
    server: Server,
) -> None:
    # before: an agent could neither see a visitor's image nor send a document
    import io

    from PIL import Image

    [(a, ta)], v, cid = await accepted_chat_of(server)
    out = io.BytesIO()
    Image.new("RGB", (900, 300), (10, 160, 90)).save(out, "JPEG")
    photo = out.getvalue()

    async def visitor_sends_photo() -> dict[str, Any]:
        async with server.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{v.widget_id}/conversations/{cid}/attachments",
                content=photo,
                headers={"X-File-Name": "recibo.jpg", "Content-Type": "image/jpeg"},
            )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, ta)
        page.goto(f"/inbox#open/{cid}")
        expect(page.locator("#live-indicator")).to_have_text("Live")
        sent = call(visitor_sends_photo)
        thumb = page.locator(f'#messages [data-attachment-id="{sent["attachments"][0]["id"]}"] img')
        expect(thumb).to_have_attribute("alt", "recibo.jpg")
        expect(thumb).to_have_js_property("naturalWidth", 320)
        expect(conv_row(page, cid).locator(".conv-preview")).to_have_text("\U0001f4ce recibo.jpg")

        page.evaluate(
            """() => { window.sawProgress = false;
              new MutationObserver(() => { if (document.querySelector('#messages progress'))
                window.sawProgress = true; }).observe(document.getElementById('messages'),
                {subtree: true, childList: true}); }"""
        )
        page.locator("#composer-file").set_input_files(
            {"name": "Póliza.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}
        )
        document = page.locator("#messages .msg-agent .msg-file")
        expect(document.locator(".msg-file-name")).to_have_text("Póliza.pdf")
        expect(document).to_have_attribute("download", "Póliza.pdf")
        assert page.evaluate("window.sawProgress") is True
        shot(page, "files")
        assert problems == [], problems

    await in_browser(scenario)
    stored = await visitor_view(server, v)
    assert [f["name"] for m in stored["messages"] for f in m.get("attachments", [])] == [
        "recibo.jpg",
        "Póliza.pdf",
    ]
