"""Settings › Chat widgets in a real browser: sign-in, the live list, the editor and its preview.

Each test drives headless Chromium against a real server with a fresh database. The browser side
runs in a worker thread (:func:`tests.browser.support.in_browser`); HTTP calls a scenario makes
meanwhile (to change a widget "from elsewhere") use a plain synchronous client, since the Trio
loop keeps serving. Waits are on DOM conditions only. One screenshot per page goes to
``artifacts/browser/``.

The headline test — the embed snippet pasted on a second origin turns the row Active live — lives
with the widget lifecycle tests; these cover the rest of the page.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.support import artifact, in_browser
from tests.support import Seed, Server, login, seed

pytestmark = pytest.mark.slow

XSS_NAME = "</script><img src=x onerror=alert(1)>"


# --- helpers (browser side: these run in the worker thread) ----------------------------------


def new_page(
    browser: Any,
    srv: Server,
    token: str | None = None,
    *,
    answers: list[bool] | None = None,
    **context: Any,
) -> tuple[Any, list[str]]:
    """A page of a fresh context (signed in with ``token``) and the list its errors go to.

    A dialog is a problem (an ``alert`` from injected markup would be one) unless ``answers``
    says how to answer the next confirm dialogs; their messages are recorded as ``dialog: ...``.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    ctx = browser.new_context(base_url=srv.base_url, locale="en-US", **context)
    if token:
        ctx.add_cookies(
            [{"name": "curbe_session", "value": token, "url": srv.base_url, "httpOnly": True}]
        )
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: _console(problems, msg))

    def dialog(d: Any) -> None:
        if answers:
            problems.append(f"dialog: {d.message}")
            d.accept() if answers.pop(0) else d.dismiss()
        else:
            problems.append(f"unexpected dialog: {d.type}: {d.message}")
            d.dismiss()

    page.on("dialog", dialog)
    return page, problems


def _console(problems: list[str], msg: Any) -> None:
    # Chromium logs every 4xx answer ("Failed to load resource"); the tests expect some (a wrong
    # password, a 422, a 404 page). Anything else logged as an error (a CSP refusal, an exception
    # in a script) is a problem.
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        problems.append(f"console.error: {msg.text}")


def row(page: Any, widget_id: str) -> Any:
    return page.locator(f'tr[data-widget-id="{widget_id}"]')


def field_error(page: Any, field: str) -> str | None:
    """The text of the ``.field-error`` right after the input whose data-field is ``field``."""
    return page.eval_on_selector(  # type: ignore[no-any-return]
        f'[data-field="{field}"]',
        """input => {
            const next = input.nextElementSibling;
            return next && next.matches(".field-error") ? next.textContent : null;
        }""",
    )


def api(srv: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=srv.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


# --- helpers (test side) ----------------------------------------------------------------------


async def create_widget(srv: Server, token: str, **body: Any) -> dict[str, Any]:
    async with srv.http(token) as client:
        r = await client.post("/api/chat/widgets", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


async def get_widget(srv: Server, token: str, widget_id: str) -> httpx.Response:
    async with srv.http(token) as client:
        return await client.get(f"/api/chat/widgets/{widget_id}")


async def heartbeat(srv: Server, widget_id: str, domain: str) -> int:
    async with srv.http() as client:
        r = await client.post(
            f"/api/chat/widgets/{widget_id}/heartbeat",
            json={"currentDomain": domain, "currentUrl": f"https://{domain}/pricing"},
        )
        return r.status_code


async def signed_in(srv: Server, **kwargs: Any) -> tuple[Seed, str]:
    who = (await seed(srv, **kwargs))[0]
    return who, await login(srv, who)


# --- sign-in ----------------------------------------------------------------------------------


async def test_settings_needs_sign_in_and_the_form_returns_there(server: Server) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])

    async with server.http() as client:
        r = await client.get("/settings/widgets")
        assert r.status_code == 302
        assert r.headers["location"] == "/login?next=/settings/widgets"
        page = await client.get("/login")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
    async with server.http(cookies={"curbe_session": token}) as client:
        # signed in already: straight to next, and only ever to a path on this origin
        for given, expected in [
            ("/settings/widgets", "/settings/widgets"),
            ("//evil.example/x", "/inbox"),
            ("/\\evil.example", "/inbox"),
            ("https://evil.example/", "/inbox"),
        ]:
            r = await client.get("/login", params={"next": given})
            assert r.status_code == 302, given
            assert r.headers["location"] == expected, given

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server)
        page.goto("/settings/widgets")
        page.wait_for_url(
            re.compile(r"/login\?next=%2Fsettings%2Fwidgets$|/login\?next=/settings/widgets$")
        )
        expect(page.get_by_label("Email")).to_be_focused()
        page.screenshot(path=artifact("settings_login.png"), full_page=True)

        page.get_by_label("Email").fill(who.agent_email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        error = page.locator("#login-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("wrong email or password", ignore_case=True)
        expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("Password").fill(who.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/settings/widgets")
        expect(row(page, who.widget_id)).to_be_visible()
        expect(page.locator(".whoami-name")).to_have_text(who.agent_name)
        assert problems == [], problems

    await in_browser(scenario)


# --- the list ---------------------------------------------------------------------------------


async def test_list_shows_status_domain_last_seen_and_reason(server: Server) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])
    seen = await create_widget(server, token, name="Acme", domains=["*.acme.test"])
    anywhere = await create_widget(server, token, name="Blog")
    wrong = await create_widget(server, token, name="Landing", domains=["landing.test"])
    assert await heartbeat(server, seen["id"], "www.acme.test") == 200
    assert await heartbeat(server, wrong["id"], "evil.test") == 403
    last_seen = (await get_widget(server, token, seen["id"])).json()["lastSeenAt"]
    assert last_seen is not None
    local = dt.datetime.fromisoformat(last_seen.replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/Mexico_City")
    )
    clock = f"{local.hour % 12 or 12}:{local.minute:02d}:{local.second:02d}"

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token, timezone_id="America/Mexico_City")
        page.goto("/settings/widgets")
        expect(page.locator("#live-indicator")).to_have_text("Live")

        new = row(page, who.widget_id)  # never pinged: Inactive, Targeting domain, Never
        expect(new).to_have_attribute("data-status", "INACTIVE")
        expect(new.locator(".status-badge")).to_have_text("Inactive")
        expect(new.locator(".widget-domain")).to_have_text("shop.example.com")
        expect(new.locator(".widget-last-seen")).to_have_text("Never")
        expect(new.locator(".status-reason")).to_contain_text("paste the embed code")

        active = row(page, seen["id"])  # pinged: Active, detected domain, relative time
        expect(active).to_have_attribute("data-status", "ACTIVE")
        expect(active.locator(".status-badge")).to_have_text("Active")
        expect(active.locator(".widget-domain")).to_have_text("www.acme.test")
        expect(active.locator(".widget-last-seen")).to_have_text(
            re.compile(r"^(now|\d+ seconds? ago)$")
        )
        title = active.locator(".widget-last-seen").get_attribute("title") or ""
        assert clock in title and "CST" in title, title  # the viewer's zone, named
        expect(active.locator(".status-reason")).to_have_count(0)

        expect(row(page, anywhere["id"]).locator(".widget-domain")).to_have_text("Any domain")

        bad = row(page, wrong["id"])  # refused ping: Misconfigured with its reason
        expect(bad).to_have_attribute("data-status", "MISCONFIGURED")
        expect(bad.locator(".status-badge")).to_have_text("Misconfigured")
        expect(bad.locator(".status-reason")).to_contain_text("evil.test")

        expect(page.locator("body")).not_to_contain_text("Unknown")
        page.screenshot(path=artifact("settings_widget_list.png"), full_page=True)
        assert problems == [], problems

    await in_browser(scenario)


async def test_list_is_useful_without_javascript(server: Server) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token, java_script_enabled=False)
        page.goto("/settings/widgets")
        new = row(page, who.widget_id)
        expect(new.locator(".status-badge")).to_have_text("Inactive")
        expect(new.locator(".widget-domain")).to_have_text("shop.example.com")
        expect(new.locator(".widget-last-seen")).to_have_text("Never")
        assert problems == [], problems

    await in_browser(scenario)


async def test_changes_made_elsewhere_show_up_without_reload(server: Server) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.goto("/settings/widgets")
        expect(page.locator("#live-indicator")).to_have_text("Live")
        page.evaluate("window.__sameDocument = true")

        with api(server, token) as client:
            r = client.patch(
                f"/api/chat/widgets/{who.widget_id}",
                json={"name": "InsureMax (renamed)", "domains": ["www.insuremax.test"]},
            )
            assert r.status_code == 200, r.text
            current = row(page, who.widget_id)
            expect(current.locator(".widget-name")).to_have_text("InsureMax (renamed)")
            expect(current.locator(".widget-domain")).to_have_text("www.insuremax.test")

            r = client.post("/api/chat/widgets", json={"name": "Created elsewhere"})
            assert r.status_code == 201, r.text
            created = r.json()["id"]
            expect(row(page, created).locator(".widget-name")).to_have_text("Created elsewhere")
            expect(row(page, created).locator(".status-badge")).to_have_text("Inactive")

            r = client.delete(f"/api/chat/widgets/{created}")
            assert r.status_code == 200, r.text
            expect(row(page, created)).to_have_count(0)

        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        page.screenshot(path=artifact("settings_widget_list_live.png"), full_page=True)
        assert problems == [], problems

    await in_browser(scenario)


# Counts the page's WebSockets so a test can drop one, as a network blip would.
TRACK_SOCKETS = """(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    function Tracked(url, protocols) {
        const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
        window.__sockets.push(ws);
        return ws;
    }
    Tracked.prototype = Native.prototype;
    for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Tracked[k] = Native[k];
    window.WebSocket = Tracked;
})();"""


async def test_after_a_dropped_socket_the_list_reconnects_and_catches_up(
    server: Server,
) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.add_init_script(TRACK_SOCKETS)
        page.goto("/settings/widgets")
        indicator = page.locator("#live-indicator")
        expect(indicator).to_have_text("Live")

        page.evaluate("window.__sockets[0].close()")
        expect(indicator).to_have_text("Reconnecting…")
        with api(server, token) as client:  # while no socket listens: only the refetch sees it
            r = client.patch(
                f"/api/chat/widgets/{who.widget_id}", json={"name": "Changed while away"}
            )
            assert r.status_code == 200, r.text
        expect(indicator).to_have_text("Live")
        expect(row(page, who.widget_id).locator(".widget-name")).to_have_text("Changed while away")
        assert page.evaluate("window.__sockets.length") == 2
        assert problems == [], problems

    await in_browser(scenario)


async def test_last_seen_refreshes_while_the_page_stays_open(server: Server) -> None:
    who, token = await signed_in(server)
    assert await heartbeat(server, who.widget_id, "shop.example.com") == 200

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.clock.install()
        page.goto("/settings/widgets")
        seen = row(page, who.widget_id).locator(".widget-last-seen")
        expect(seen).to_have_text(re.compile(r"^(now|\d+ seconds? ago)$"))
        page.clock.fast_forward("03:00")  # three minutes of 30-second refreshes
        expect(seen).to_have_text(re.compile(r"^[34] minutes ago$"))
        assert problems == [], problems

    await in_browser(scenario)


async def test_widget_names_render_as_text(server: Server) -> None:
    _, token = await signed_in(server)
    evil = await create_widget(server, token, name=XSS_NAME)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)  # an alert() would be a dialog
        page.goto("/settings/widgets")
        expect(page.locator("#live-indicator")).to_have_text("Live")
        expect(row(page, evil["id"]).locator(".widget-name")).to_have_text(XSS_NAME)
        assert page.locator("#widget-rows img").count() == 0

        with api(server, token) as client:  # the live path (built in the browser) too
            r = client.patch(
                f"/api/chat/widgets/{evil['id']}", json={"name": "<b>x</b>" + XSS_NAME}
            )
            assert r.status_code == 200, r.text
        expect(row(page, evil["id"]).locator(".widget-name")).to_have_text("<b>x</b>" + XSS_NAME)
        assert page.locator("#widget-rows img, #widget-rows b").count() == 0

        page.goto(f"/settings/widgets/{evil['id']}")
        expect(page.locator("#crumb-name")).to_have_text("<b>x</b>" + XSS_NAME)
        expect(page.get_by_label("Name", exact=True)).to_have_value("<b>x</b>" + XSS_NAME)
        assert page.locator("main img, main b").count() == 0
        assert problems == [], problems

    await in_browser(scenario)


async def test_copy_embed_code_puts_the_snippet_on_the_clipboard(server: Server) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(
            browser, server, token, permissions=["clipboard-read", "clipboard-write"]
        )
        page.goto("/settings/widgets")
        button = row(page, who.widget_id).locator('[data-action="copy"]')
        expect(button).to_have_text("Copy embed code")
        button.click()
        expect(button).to_have_text("Copied!")
        snippet = page.evaluate("navigator.clipboard.readText()")
        assert f'data-widget-id="{who.widget_id}"' in snippet, snippet
        assert f'data-tenant="{who.tenant_id}"' in snippet, snippet
        assert f'src="{server.base_url}/widget.js"' in snippet, snippet
        assert snippet.startswith("<script async ") and snippet.endswith("</script>"), snippet

        page.evaluate("navigator.clipboard.writeText('')")
        page.goto(f"/settings/widgets/{who.widget_id}")
        expect(page.locator("#embed-code")).to_have_value(snippet)
        expect(page.locator("#embed-section")).to_contain_text("<head>")
        page.get_by_role("button", name="Copy embed code").click()
        expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard")
        assert page.evaluate("navigator.clipboard.readText()") == snippet
        assert problems == [], problems

    await in_browser(scenario)


async def test_delete_from_the_list_asks_first(server: Server) -> None:
    who, token = await signed_in(server)

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        answers = [False, True]  # cancel the first confirm, accept the second
        page, problems = new_page(browser, server, token, answers=answers)
        page.goto("/settings/widgets")
        delete = row(page, who.widget_id).get_by_role("button", name="Delete")

        delete.click()  # returns once the dialog was answered
        expect(row(page, who.widget_id)).to_have_count(1)
        assert answers == [True], answers
        assert problems and "InsureMax" in problems[0], problems

        delete.click()
        expect(row(page, who.widget_id)).to_have_count(0)
        expect(page.locator("#widgets-empty")).to_be_visible()
        expect(page.locator("#list-notice")).to_contain_text("Deleted")
        assert [p for p in problems if not p.startswith("dialog: ")] == [], problems

    await in_browser(scenario)
    assert (await get_widget(server, token, who.widget_id)).status_code == 404


# --- the editor -------------------------------------------------------------------------------


async def test_create_a_widget_through_the_editor(server: Server) -> None:
    _, token = await signed_in(server)

    def scenario(browser: Any) -> str:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.goto("/settings/widgets")
        page.get_by_role("link", name="New widget").first.click()
        page.wait_for_url("**/settings/widgets/new")
        expect(page.locator("#embed-section")).to_be_hidden()  # nothing to embed yet

        page.get_by_label("Name", exact=True).fill("Acme Insurance")
        page.locator('[data-field="appearance.colorTheme"]').fill("#10b981")
        page.get_by_label("Position").select_option("left")
        page.get_by_label("Title").fill("Hola 👋")
        page.get_by_label("WhatsApp number").fill("+34 600 000 000")
        page.get_by_label("Telegram username").fill("acme_insurance")
        page.get_by_label("Allowed domains").fill("shop.acme.test\n*.acme.test\n")
        page.get_by_label("Wait timeout (seconds)").fill("45")
        page.get_by_label("Widget language").select_option("es")
        page.screenshot(path=artifact("settings_widget_new.png"), full_page=True)
        page.get_by_role("button", name="Create widget").click()

        page.wait_for_url(re.compile(r"/settings/widgets/wgt_[0-9a-f]+\?created=1$"))
        widget_id = page.url.split("/settings/widgets/")[1].split("?")[0]
        expect(page.locator("#embed-section")).to_be_visible()
        expect(page.locator("#embed-code")).to_have_value(re.compile(widget_id))
        expect(page.get_by_label("Name", exact=True)).to_have_value("Acme Insurance")
        expect(page.locator("#editor-status")).to_have_text("Inactive")

        page.goto("/settings/widgets")
        created = row(page, widget_id)
        expect(created.locator(".widget-name")).to_have_text("Acme Insurance")
        expect(created.locator(".status-badge")).to_have_text("Inactive")
        expect(created.locator(".widget-domain")).to_have_text("shop.acme.test")
        assert problems == [], problems
        return widget_id

    widget_id = await in_browser(scenario)
    saved = (await get_widget(server, token, widget_id)).json()
    assert saved["name"] == "Acme Insurance"
    assert saved["domains"] == ["shop.acme.test", "*.acme.test"]
    assert saved["waitTimeoutSeconds"] == 45
    assert saved["locale"] == "es"
    assert saved["appearance"]["colorTheme"] == "#10b981"
    assert saved["appearance"]["position"] == "left"
    assert saved["appearance"]["welcome"]["title"] == "Hola 👋"
    assert saved["channels"]["whatsapp"] == "+34 600 000 000"
    assert saved["channels"]["telegram"] == "acme_insurance"
    assert saved["channels"]["liveChat"] is True


async def test_invalid_fields_show_errors_beside_them_and_nothing_is_saved(
    server: Server,
) -> None:
    who, token = await signed_in(server, domains=["shop.example.com"])
    before = (await get_widget(server, token, who.widget_id)).json()

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.goto(f"/settings/widgets/{who.widget_id}")
        save = page.get_by_role("button", name="Save changes")
        colour = page.locator('[data-field="appearance.colorTheme"]')

        colour.fill("blue")  # caught in the page
        save.click()
        expect(colour).to_have_attribute("aria-invalid", "true")
        assert "colour like #2563eb" in (field_error(page, "appearance.colorTheme") or "")

        colour.fill("#2563eb")  # the server's verdict, field by field
        page.get_by_label("WhatsApp number").fill("call me maybe")
        page.get_by_label("Allowed domains").fill("shop.example.com\nnot a domain!")
        save.click()
        whatsapp = page.get_by_label("WhatsApp number")
        expect(whatsapp).to_have_attribute("aria-invalid", "true")
        assert "not a phone number" in (field_error(page, "channels.whatsapp") or "")
        domains = page.get_by_label("Allowed domains")
        expect(domains).to_have_attribute("aria-invalid", "true")
        assert "not a domain!" in (field_error(page, "domains") or "")
        expect(colour).not_to_have_attribute("aria-invalid", "true")  # cleared on the next save
        assert field_error(page, "appearance.colorTheme") is None
        expect(page.locator("#form-message")).to_be_visible()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifact("settings_widget_errors.png"), full_page=True)

        with api(server, token) as client:  # nothing was stored
            current = client.get(f"/api/chat/widgets/{who.widget_id}").json()
        assert current["channels"] == before["channels"]
        assert current["domains"] == before["domains"]
        assert current["updatedAt"] == before["updatedAt"]

        whatsapp.fill("+34 600 000 000")  # fixed: saves, and the errors go away
        domains.fill("shop.example.com")
        save.click()
        expect(page.locator("#save-status")).to_have_text("Saved")
        assert page.locator(".field-error").count() == 0
        assert page.locator('[aria-invalid="true"]').count() == 0
        assert problems == [], problems

    await in_browser(scenario)
    after = (await get_widget(server, token, who.widget_id)).json()
    assert after["channels"]["whatsapp"] == "+34 600 000 000"


PREVIEW_HAS_BACKGROUND = """rgb => {
    const host = document.querySelector("#widget-preview curbe-chat-widget")
        || document.querySelector("#widget-preview *");
    const root = host && host.shadowRoot;
    if (!root) return false;
    return [...root.querySelectorAll("*")].some(
        el => getComputedStyle(el).backgroundColor === rgb);
}"""


async def test_preview_follows_the_form_before_saving(server: Server) -> None:
    who, token = await signed_in(server)
    before = (await get_widget(server, token, who.widget_id)).json()

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.goto(f"/settings/widgets/{who.widget_id}")
        expect(page.locator("#preview-unavailable")).to_be_hidden()
        page.wait_for_function(PREVIEW_HAS_BACKGROUND, arg="rgb(37, 99, 235)")  # #2563eb

        page.locator('[data-field="appearance.colorTheme"]').fill("#ff0000")
        page.wait_for_function(PREVIEW_HAS_BACKGROUND, arg="rgb(255, 0, 0)")
        expect(page.locator("#f-color-picker")).to_have_value("#ff0000")

        page.get_by_label("Title").fill("Bienvenido a Acme")
        page.wait_for_function(
            """text => document.querySelector("#widget-preview curbe-chat-widget")
                .shadowRoot.textContent.includes(text)""",
            arg="Bienvenido a Acme",
        )
        screens = page.get_by_role("group", name="Preview screen")
        screens.get_by_role("button", name="Start chat").click()
        expect(screens.get_by_role("button", name="Start chat")).to_have_attribute(
            "aria-pressed", "true"
        )
        page.wait_for_function(
            """() => !!document.querySelector("#widget-preview curbe-chat-widget")
                .shadowRoot.querySelector("input[type=email]")"""
        )
        page.screenshot(path=artifact("settings_widget_editor_preview.png"), full_page=True)
        assert problems == [], problems

    await in_browser(scenario)
    after = (await get_widget(server, token, who.widget_id)).json()
    assert after["appearance"] == before["appearance"]  # a preview is not a save


async def test_another_tenants_widget_is_a_404_page(server: Server) -> None:
    mine, token = await signed_in(server, tenant_name="InsureMax")
    theirs = (await seed(server, tenant_name="Other Co"))[0]
    async with server.http(cookies={"curbe_session": token}) as client:
        r = await client.get(f"/settings/widgets/{theirs.widget_id}")
        assert r.status_code == 404
        assert theirs.widget_id not in r.text and theirs.tenant_id not in r.text
        for bad in ["wgt_nope", "%3Cscript%3E", "x" * 200]:
            r = await client.get(f"/settings/widgets/{bad}")
            assert r.status_code == 404, bad
            assert "text/html" in r.headers["content-type"], bad

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        response = page.goto(f"/settings/widgets/{theirs.widget_id}")
        assert response is not None and response.status == 404
        expect(page.locator("#not-found")).to_contain_text("Not found")
        expect(page.locator("#widget-form")).to_have_count(0)
        page.screenshot(path=artifact("settings_widget_404.png"), full_page=True)
        assert problems == [], problems

    await in_browser(scenario)


# --- canned replies ---------------------------------------------------------------------------


async def test_canned_replies_are_added_edited_and_deleted_in_settings(server: Server) -> None:
    # before: there was nowhere to keep the answers a team gives every day
    who = (await seed(server))[0]
    token = await login(server, who)
    xss = "<img src=x onerror=alert(1)>"

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token, answers=[True])
        page.goto("/settings/canned-replies")
        expect(page.locator('.topnav [aria-current="page"]')).to_have_text("Canned replies")
        expect(page.locator("#canned-empty")).to_be_visible()
        rows = page.locator("#canned-rows tr")

        page.locator("#canned-shortcut").fill("hours")
        page.locator("#canned-text").fill("We answer 9 to 6, {{visitor.first_name}}. " + xss)
        page.locator("#canned-save").click()
        expect(rows).to_have_count(1)
        expect(page.locator("#canned-notice")).to_have_text("Added /hours.")
        expect(rows.first.locator(".canned-shortcut")).to_have_text("/hours")
        expect(rows.first.locator(".canned-text")).to_contain_text(xss)  # as text
        expect(page.locator("#canned-shortcut")).to_be_focused()  # ready for the next one

        page.locator("#canned-shortcut").fill("HOURS")  # taken, whatever the case
        page.locator("#canned-text").fill("again")
        page.locator("#canned-save").click()
        expect(page.locator("#canned-error")).to_contain_text("another canned reply's shortcut")
        expect(rows).to_have_count(1)

        rows.first.get_by_role("button", name="Edit /hours").click()
        expect(page.locator("#canned-form-title")).to_have_text("Edit /hours")
        expect(page.locator("#canned-text")).to_have_value(
            "We answer 9 to 6, {{visitor.first_name}}. " + xss
        )
        page.locator("#canned-text").fill("Open 8 to 8.")
        page.locator("#canned-save").click()
        expect(rows.first.locator(".canned-text")).to_have_text("Open 8 to 8.")
        page.screenshot(path=artifact("settings_canned.png"))

        rows.first.get_by_role("button", name="Delete /hours").click()
        expect(rows).to_have_count(0)
        expect(page.locator("#canned-empty")).to_be_visible()
        assert [p for p in problems if not p.startswith("dialog: Delete /hours")] == [], problems

    await in_browser(scenario)
    async with server.http(token) as client:
        assert (await client.get("/api/chat/canned-replies")).json() == {"cannedReplies": []}


# --- reports ----------------------------------------------------------------------------------


async def test_the_reports_page_draws_the_weeks_and_lists_each_agent(server: Server) -> None:
    # before: there was no way to see how the team was doing
    from tests.support import accepted_chat

    who = (await seed(server))[0]
    token = await login(server, who)
    for _ in range(2):
        v, cid = await accepted_chat(server, who, token)
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/messages", json={"text": "hi"})
            assert r.status_code == 201, r.text
            assert (await client.post(f"/api/chat/conversations/{cid}/solve")).is_success
        async with server.http(v.token) as client:
            r = await client.post(
                f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/rating", json={"score": 4}
            )
            assert r.status_code == 200, r.text

    def scenario(browser: Any) -> None:
        from playwright.sync_api import expect

        page, problems = new_page(browser, server, token)
        page.goto("/reports")
        expect(page.locator('.topnav [aria-current="page"]')).to_have_text("Reports")
        bars = page.locator("#report-chart .report-bar")
        expect(bars).to_have_count(8)  # eight weeks by default, this one last
        expect(bars.last).to_have_attribute("data-chats", "2")
        expect(page.locator("#report-chart svg")).to_have_attribute(
            "aria-label", re.compile(r"^Chats per week\. .*: 2$")
        )
        row = page.locator("#report-rows tr")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text(who.agent_name)
        expect(row.locator("td").nth(2)).to_have_text("2")
        expect(row.locator("td").nth(5)).to_have_text("4.0 ★ (2)")
        page.screenshot(path=artifact("reports.png"))
        page.locator("#report-weeks").select_option("4")
        expect(bars).to_have_count(4)
        assert problems == [], problems

    await in_browser(scenario)
