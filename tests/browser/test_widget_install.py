"""The product brief's QA case 1, in a real browser: new widget -> copy the snippet -> paste it
into a site on another origin -> the open Settings list turns the widget Active, domain filled,
without a reload.
"""

from __future__ import annotations

from typing import Any

from storage import queries
from tests.browser.support import HostSite, artifact, in_browser, page_with
from tests.support import Server, login, seed


async def test_pasted_snippet_turns_the_widget_active_in_the_open_settings_list(
    server: Server, host_site: HostSite
) -> None:
    [a] = await seed(server, domains=["127.0.0.1"])
    token = await login(server, a)
    row = f'tr[data-widget-id="{a.widget_id}"]'

    def scenario(browser: Any) -> dict[str, Any]:
        from playwright.sync_api import expect

        agent = browser.new_context(
            base_url=server.base_url, timezone_id="Europe/Madrid", locale="en-GB"
        )
        agent.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
        agent.add_cookies([{"name": "curbe_session", "value": token, "url": server.base_url}])
        settings = agent.new_page()
        settings.goto("/settings/widgets")
        expect(settings.locator(f"{row} .status-badge")).to_have_text("Inactive")
        expect(settings.locator(f"{row} .widget-domain")).to_have_text("127.0.0.1")
        expect(settings.locator(f"{row} .widget-last-seen")).to_have_text("Never")
        expect(settings.locator("#live-indicator")).to_have_attribute("data-state", "live")
        settings.screenshot(path=artifact("install-1-settings-inactive.png"))

        # "Copy embed code" and paste it, untouched, into a plain page on the other origin
        settings.locator(f'{row} [data-action="copy"]').click()
        snippet = settings.evaluate("navigator.clipboard.readText()")
        assert a.widget_id in snippet and a.tenant_id in snippet
        host_site.pages["/"] = page_with(snippet, where="head")

        visitor = browser.new_context()
        site = visitor.new_page()
        site.goto(host_site.url("/"))
        expect(site.locator("curbe-chat-widget")).to_have_count(1)

        # the open list turns ACTIVE by itself (widget_status_changed over the inbox socket)
        expect(settings.locator(row)).to_have_attribute("data-status", "ACTIVE", timeout=10_000)
        expect(settings.locator(f"{row} .status-badge")).to_have_text("Active")
        expect(settings.locator(f"{row} .widget-domain")).to_have_text("127.0.0.1")
        expect(settings.locator(f"{row} .widget-last-seen")).not_to_have_text("Never")
        exact = settings.locator(f"{row} .widget-last-seen").get_attribute("title") or ""
        settings.screenshot(path=artifact("install-2-settings-active.png"))
        navigations = settings.evaluate("performance.getEntriesByType('navigation').length")
        return {"snippet": snippet, "exact": exact, "navigations": navigations}

    seen = await in_browser(scenario)
    assert seen["navigations"] == 1  # one page load: the row changed in place
    assert seen["snippet"].startswith("<script async src=")
    assert "CET" in seen["exact"] or "GMT+1" in seen["exact"] or "Madrid" in seen["exact"]
    [stored] = await server.run(queries.select_widgets, a.tenant_id)
    assert stored["last_seen_domain"] == "127.0.0.1"
    assert stored["last_seen_url"] == host_site.url("/")
